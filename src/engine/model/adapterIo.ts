import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { isLinearWeight, transpose2d } from './checkpoint';
import { readSafetensors, TensorMap, writeSafetensors } from './safetensors';
import { AdapterHubNaming, adapterHubNaming } from './encoderVariants';
import { UserInputError } from '../errors';
import { writeJsonAtomic } from '../util/atomicFile';

/**
 * Adapters on disk in AdapterHub's layout, so a Python user can load them with the `adapters` library:
 *   adapter_config.json      {config, hidden_size, model_class, model_name, model_type, name, version}
 *   adapter.safetensors      the method's parameters and any base parameters it trained, full names
 *                            (`bert.encoder.layer.0.output.adapters.<name>.adapter_down.0.weight`, PyTorch [out, in])
 *   head_config.json         AdapterHub's head config (classification head, 2 layers, tanh)
 *   model_head.safetensors   `heads.<name>.1.weight` ... in PyTorch layout
 * adapter_config.json also carries an `adapter_lab` block (task, method options, labels, model) so this tool
 * can rebuild the exact model from the folder alone.
 */

/** Adapter parameter names as AdapterHub's BERT model has them (kept for BERT-only callers; see adapterHubNaming). */
export const ENCODER_PREFIX = 'bert.';

export interface AdapterLabMeta {
  /** The model reference the adapter was trained on (`builtin:...` or a folder). */
  model: string;
  method: Record<string, unknown> & { type: string };
  task: { name: string; type: 'classification' | 'regression'; labels: string[] | null };
  maxSeqLength: number;
  adapterName: string;
  /**
   * Hidden size and layers of the base, to refuse loading onto another model; its fingerprint (model/fingerprint.ts)
   * when recorded; its Hugging Face model_type (absent: bert), which sets AdapterHub's parameter names.
   */
  base: { hiddenSize: number; numLayers: number; vocabSize: number; fingerprint?: string; modelType?: string };
}

/** `naming`: a prefix for every name, or a model type's AdapterHub naming (encoderVariants.ts). */
export function toPytorch(params: Map<string, tf.Variable>, naming: string | AdapterHubNaming): TensorMap {
  const out: TensorMap = new Map();
  const hubName = typeof naming === 'string' ? (n: string) => naming + n : naming.toHub;
  for (const [name, v] of params) {
    const arr = { shape: v.shape, data: v.dataSync() as Float32Array };
    out.set(hubName(name), isLinearWeight(name, arr.shape) ? transpose2d(arr) : arr);
  }
  return out;
}

export function fromPytorch(tensors: TensorMap, naming: string | AdapterHubNaming): TensorMap {
  const out: TensorMap = new Map();
  const ourName = typeof naming === 'string' ? (n: string) => (n.startsWith(naming) ? n.slice(naming.length) : n) : naming.fromHub;
  for (const [fullName, arr] of tensors) {
    const name = ourName(fullName);
    out.set(name, isLinearWeight(name, arr.shape) ? transpose2d(arr) : arr);
  }
  return out;
}

export function saveAdapterFolder(
  dir: string,
  parts: {
    adapterParams: Map<string, tf.Variable>;
    headParams: Map<string, tf.Variable>;
    adapterConfig: Record<string, unknown>;
    headConfig: Record<string, unknown>;
    meta: AdapterLabMeta;
  },
): void {
  fs.mkdirSync(dir, { recursive: true });
  const naming = adapterHubNaming(parts.meta.base.modelType);
  writeSafetensors(path.join(dir, 'adapter.safetensors'), toPytorch(parts.adapterParams, naming), { metadata: { format: 'pt' } });
  writeSafetensors(path.join(dir, 'model_head.safetensors'), toPytorch(parts.headParams, ''), { metadata: { format: 'pt' } });
  writeJsonAtomic(path.join(dir, 'adapter_config.json'), {
    config: parts.adapterConfig,
    hidden_size: parts.meta.base.hiddenSize,
    model_class: naming.modelClass,
    model_name: parts.meta.model,
    model_type: naming.modelType,
    name: parts.meta.adapterName,
    version: 'adapters.1.0.0',
    adapter_lab: parts.meta,
  });
  writeJsonAtomic(path.join(dir, 'head_config.json'), { ...parts.headConfig, model_class: naming.modelClass, model_type: naming.modelType });
}

export interface AdapterFolder {
  meta: AdapterLabMeta;
  /** Parameter values by this codebase's names and layout. */
  adapterParams: TensorMap;
  headParams: TensorMap;
}

export function readAdapterFolder(dir: string): AdapterFolder {
  const cfgFile = path.join(dir, 'adapter_config.json');
  if (!fs.existsSync(cfgFile)) throw new UserInputError(`no adapter_config.json in ${dir}`, { file: cfgFile });
  let cfg: { adapter_lab?: AdapterLabMeta; model_type?: string };
  try {
    cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
  } catch (err) {
    throw new UserInputError(`cannot parse: ${(err as Error).message}`, { file: cfgFile });
  }
  if (!cfg.adapter_lab) {
    throw new UserInputError('adapter_config.json has no "adapter_lab" block: only adapters saved by Adapter Lab can be loaded back here', { file: cfgFile });
  }
  return {
    meta: cfg.adapter_lab,
    adapterParams: fromPytorch(readSafetensors(path.join(dir, 'adapter.safetensors')).tensors, adapterHubNaming(cfg.adapter_lab.base.modelType ?? cfg.model_type)),
    headParams: fromPytorch(readSafetensors(path.join(dir, 'model_head.safetensors')).tensors, ''),
  };
}

/** Copies saved values into live variables, checking names and shapes. */
export function assignParams(target: Map<string, tf.Variable>, values: TensorMap, where: string): void {
  for (const [name, v] of target) {
    const arr = values.get(name);
    if (!arr) throw new UserInputError(`${where}: parameter ${name} is missing`);
    if (arr.shape.join(',') !== v.shape.join(',')) throw new UserInputError(`${where}: parameter ${name} has shape [${arr.shape}], expected [${v.shape}]`);
    v.assign(tf.tensor(arr.data as Float32Array, v.shape));
  }
}

/** Current values of variables, by name (for checkpoints and best-model snapshots). */
export function snapshot(params: Map<string, tf.Variable>): TensorMap {
  const out: TensorMap = new Map();
  for (const [n, v] of params) out.set(n, { shape: v.shape, data: (v.dataSync() as Float32Array).slice() });
  return out;
}
