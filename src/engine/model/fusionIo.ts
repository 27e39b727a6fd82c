import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { AdapterFolder, AdapterLabMeta, fromPytorch, HEAD_WEIGHTS, readAdapterFolder, readWeights, toPytorch, writeAdapterHubJson, writeWeights } from './adapterIo';
import { adapterHubNaming } from './encoderVariants';
import { UserInputError } from '../errors';
import { copyTreeRefusingLinks } from '../runs/confined';

/**
 * An AdapterFusion on disk, in the layout of AdapterHub's `save_adapter_fusion` (with_head) beside copies of
 * the adapters it fuses, so that the folder loads on its own (here, and in Python with the `adapters` library):
 *   adapter_fusion_config.json        {config (AdapterHub's DynamicFusionConfig keys), hidden_size, model_class,
 *                                      model_name, model_type, name ("a,b,c"), version, adapter_names,
 *                                      adapter_lab (as in adapter_config.json, plus `fused`: [{name, folder}])}
 *   model_adapter_fusion.safetensors  bert.encoder.layer.{i}.{attention.output,output}.adapter_fusion_layer.{a,b,c}.
 *   pytorch_model_adapter_fusion.bin  {query,key,value}.* (PyTorch [out, in] layout), and the LayerNorms the fusion
 *                                     computed with when they are not the base model's
 *   head_config.json, model_head.safetensors, pytorch_model_head.bin   the fusion task's head
 *   <adapter>/                        each fused adapter's own folder, copied as it was trained
 * A Python user loads the adapters with `model.load_adapter("<dir>/<adapter>")` and then the fusion with
 * `model.load_adapter_fusion("<dir>")`.
 */

export const FUSION_CONFIG_FILE = 'adapter_fusion_config.json';
export const FUSION_WEIGHTS = { safetensors: 'model_adapter_fusion.safetensors', bin: 'pytorch_model_adapter_fusion.bin' };

/** A trained adapter folder as read back; for a fusion, the folders of the adapters it fuses. */
export interface TrainedAdapterFolder extends AdapterFolder {
  fusedAdapters?: string[];
}

export function isFusionFolder(dir: string): boolean {
  return fs.existsSync(path.join(dir, FUSION_CONFIG_FILE));
}

/** Whether a folder holds a trained adapter of either kind (a single adapter or a fusion). */
export function isAdapterFolder(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'adapter_config.json')) || isFusionFolder(dir);
}

/** A fused adapter's folder name inside the fusion folder: its name when that is a plain file name. */
function folderFor(name: string, index: number, taken: Set<string>): string {
  let folder = /^[A-Za-z0-9][\w.-]*$/.test(name) && !name.endsWith('.json') && !name.endsWith('.safetensors') ? name : `adapter-${index}`;
  while (taken.has(folder)) folder += '_';
  taken.add(folder);
  return folder;
}

export function saveFusionFolder(
  dir: string,
  parts: {
    /** The fusion layers (and any base parameters the fusion trained). */
    fusionParams: Map<string, tf.Variable>;
    headParams: Map<string, tf.Variable>;
    fusionConfig: Record<string, unknown>;
    headConfig: Record<string, unknown>;
    meta: AdapterLabMeta;
    /** The fused adapters: their names and the folders they were read from. */
    fused: { name: string; dir: string }[];
  },
): void {
  fs.mkdirSync(dir, { recursive: true });
  const taken = new Set<string>();
  const fused = parts.fused.map((f, i) => ({ name: f.name, folder: folderFor(f.name, i, taken) }));
  parts.fused.forEach((f, i) => {
    const to = path.join(dir, fused[i].folder);
    if (path.resolve(f.dir) === path.resolve(to)) return; // saving a loaded fusion back in place
    fs.rmSync(to, { recursive: true, force: true });
    copyTreeRefusingLinks(f.dir, to);
  });
  const naming = adapterHubNaming(parts.meta.base.modelType);
  writeWeights(dir, FUSION_WEIGHTS, toPytorch(parts.fusionParams, naming));
  writeWeights(dir, HEAD_WEIGHTS, toPytorch(parts.headParams, ''));
  writeAdapterHubJson(path.join(dir, 'head_config.json'), { ...parts.headConfig, model_class: naming.modelClass, model_type: naming.modelType });
  // Written last: its presence marks a complete fusion folder.
  writeAdapterHubJson(path.join(dir, FUSION_CONFIG_FILE), {
    config: parts.fusionConfig,
    hidden_size: parts.meta.base.hiddenSize,
    model_class: naming.modelClass,
    model_name: parts.meta.model,
    model_type: naming.modelType,
    name: fused.map((f) => f.name).join(','),
    version: 'adapters.1.0.0',
    adapter_names: fused.map((f) => f.name),
    adapter_lab: { ...parts.meta, fused },
  });
}

/**
 * A fused adapter's folder as recorded in the fusion's config: a plain relative path, cleaned, that stays inside
 * the fusion folder (a config saying `../elsewhere` or `/abs` is refused, not followed).
 */
function fusedFolderInside(dir: string, folder: unknown, cfgFile: string, index: number): string {
  const field = `adapter_lab.fused[${index}].folder`;
  if (typeof folder !== 'string' || folder.trim() === '') throw new UserInputError('must be the name of a folder inside the fusion folder', { file: cfgFile, field });
  const clean = path.normalize(folder);
  const abs = path.resolve(dir, clean);
  const rel = path.relative(path.resolve(dir), abs);
  if (path.isAbsolute(folder) || rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new UserInputError(`"${folder}" is not a folder inside ${dir}`, { file: cfgFile, field });
  }
  return abs;
}

function readFusionFolder(dir: string): TrainedAdapterFolder {
  const cfgFile = path.join(dir, FUSION_CONFIG_FILE);
  let cfg: { adapter_lab?: AdapterLabMeta & { fused?: { name: string; folder: string }[] } };
  try {
    cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
  } catch (err) {
    throw new UserInputError(`cannot parse: ${(err as Error).message}`, { file: cfgFile });
  }
  const meta = cfg.adapter_lab;
  if (!meta?.fused) {
    throw new UserInputError(`${FUSION_CONFIG_FILE} has no "adapter_lab" block: only fusions saved by Adapter Lab can be loaded back here`, { file: cfgFile });
  }
  const fusedAdapters = meta.fused.map((f, i) => fusedFolderInside(dir, f?.folder, cfgFile, i));
  for (const f of fusedAdapters) {
    if (!fs.existsSync(path.join(f, 'adapter_config.json'))) throw new UserInputError(`the fused adapter folder ${f} is missing or has no adapter_config.json`, { file: cfgFile });
  }
  const plainMeta: AdapterLabMeta & { fused?: unknown } = { ...meta };
  delete plainMeta.fused;
  return {
    meta: plainMeta,
    adapterParams: fromPytorch(readWeights(dir, FUSION_WEIGHTS), adapterHubNaming(meta.base.modelType)),
    headParams: fromPytorch(readWeights(dir, HEAD_WEIGHTS), ''),
    fusedAdapters,
  };
}

/** Reads a trained adapter folder of either kind: a single adapter (adapter_config.json) or a fusion. */
export function readTrainedAdapter(dir: string): TrainedAdapterFolder {
  return isFusionFolder(dir) && !fs.existsSync(path.join(dir, 'adapter_config.json')) ? readFusionFolder(dir) : readAdapterFolder(dir);
}
