import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { BertConfig, parseBertConfig, toHfConfig, variantOfConfig } from './config';
import { EncoderVariant, ourName, ownName } from './encoderVariants';
import { findInHubCache, isHubModelId } from './hfCache';
import { BertEncoder, encoderParamShapes } from './bert';
import { NamedArray, readSafetensors, TensorMap, writeSafetensors } from './safetensors';
import { readTorchBin } from './torchPickle';
import { UserInputError } from '../errors';
import { Rng } from '../util/random';
import { writeJsonAtomic } from '../util/atomicFile';

/**
 * Loading and saving encoders in the Hugging Face layout: a folder with `config.json`, `model.safetensors`
 * and the tokenizer files, for every member of the BERT family (encoderVariants.ts). The name mapping is
 * plain: strip the base model's prefix (`bert.` in BertForPreTraining and BertForSequenceClassification
 * checkpoints, `roberta.`, ...), read old-style `gamma`/`beta` as `weight`/`bias`, rename the member's own
 * module names to BertModel's, and transpose linear weights from PyTorch's [out, in] to [in, out].
 */

export const BUILTIN_PREFIX = 'builtin:';

/** The folder of the package (where `models/` lives), found by walking up from this file. */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if (JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'adapter-lab') return dir;
      } catch {
        // keep walking
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the adapter-lab package root');
    dir = parent;
  }
}

export function builtinModelsDir(): string {
  return path.join(packageRoot(), 'models');
}

export function listBuiltinModels(): string[] {
  const dir = builtinModelsDir();
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((n) => fs.existsSync(path.join(dir, n, 'config.json'))).sort();
}

/**
 * Resolves `builtin:<name>`, a folder path (relative to baseDir), or a Hugging Face model id found in the local
 * hub cache (hfCache.ts) to an existing model folder. When none holds the model, the error lists every place.
 */
export function resolveModelDir(ref: string, baseDir = process.cwd()): string {
  if (ref.startsWith(BUILTIN_PREFIX)) {
    const name = ref.slice(BUILTIN_PREFIX.length);
    const dir = path.join(builtinModelsDir(), name);
    if (!fs.existsSync(path.join(dir, 'config.json'))) {
      const known = listBuiltinModels();
      throw new UserInputError(`unknown built-in model "${ref}" (available: ${known.length ? known.map((n) => BUILTIN_PREFIX + n).join(', ') : 'none'})`, { field: 'model' });
    }
    return dir;
  }
  const dir = path.resolve(baseDir, ref);
  if (fs.existsSync(path.join(dir, 'config.json'))) return dir;
  const looked = [`${dir}: ${fs.existsSync(dir) ? 'no config.json' : 'no such folder'}`];
  if (isHubModelId(ref)) {
    const cached = findInHubCache(ref);
    if ('dir' in cached) return cached.dir;
    looked.push(cached.missing);
  }
  throw new UserInputError(
    `model "${ref}" not found. Looked in:\n  ${looked.join('\n  ')}\n` +
      'A model is a folder in the Hugging Face layout (config.json, model.safetensors, tokenizer.json or vocab.txt), "builtin:<name>", or a model id already in the Hugging Face cache (nothing is downloaded).',
    { field: 'model' },
  );
}

/** Linear weights are the 2-D `.weight`s that are not embedding tables. */
export function isLinearWeight(name: string, shape: number[]): boolean {
  // Embedding tables are [rows, dim] on both sides: the model's, and prefix-tuning's `wte`.
  return shape.length === 2 && name.endsWith('.weight') && !name.includes('embeddings.') && !name.endsWith('.wte.weight');
}

/**
 * Tensors stored transposed here ([in, out]) from PyTorch's layout: linear weights ([out, in]), and the LoRA
 * family's `lora_A` ([r, in] there, [in, r] here) and `lora_B` ([out, r] there, [r, out] here; (IA)³'s [out, 1]
 * vector is [1, out] here).
 */
export function transposedInPytorch(name: string, shape: number[]): boolean {
  return isLinearWeight(name, shape) || (shape.length === 2 && /\.lora_[AB]$/.test(name));
}

export function transpose2d(arr: NamedArray): NamedArray {
  const [r, c] = arr.shape;
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = arr.data[i * c + j];
  return { shape: [c, r], data: out };
}

/**
 * A checkpoint's name -> this codebase's name, or null for tensors the encoder does not use. Strips the base
 * model's prefix (`bert.` in BertForMaskedLM, `roberta.`, `distilbert.`, `electra.`), reads old-style
 * `gamma`/`beta` as `weight`/`bias`, and renames the member's own module names (encoderVariants.ts).
 */
function canonicalName(hfName: string, variant: EncoderVariant): string | null {
  let n = hfName.startsWith(variant.prefix) ? hfName.slice(variant.prefix.length) : hfName;
  n = ourName(variant, n.replace(/LayerNorm\.gamma$/, 'LayerNorm.weight').replace(/LayerNorm\.beta$/, 'LayerNorm.bias'));
  if (n.startsWith('embeddings.') || n.startsWith('embeddings_project.') || n.startsWith('encoder.layer.')) return n;
  return null; // pooler, MLM, NSP and discriminator heads, position_ids buffers
}

export function readConfig(modelDir: string): BertConfig {
  const file = path.join(modelDir, 'config.json');
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UserInputError(`cannot read model config: ${(err as Error).message}`, { file });
  }
  return parseBertConfig(raw, file);
}

/** Reads the encoder's weights from a model folder into this codebase's layout, checking every shape. */
export function readEncoderArrays(modelDir: string, cfg: BertConfig): { arrays: TensorMap; extra: TensorMap } {
  // model.safetensors, else the pytorch_model.bin that older Hugging Face checkpoints have (torch.save's format,
  // read by a restricted unpickler that builds tensors and runs nothing).
  const safetensors = path.join(modelDir, 'model.safetensors');
  const bin = path.join(modelDir, 'pytorch_model.bin');
  if (!fs.existsSync(safetensors) && !fs.existsSync(bin)) throw new UserInputError('neither model.safetensors nor pytorch_model.bin is there', { file: modelDir });
  const file = fs.existsSync(safetensors) ? safetensors : bin;
  const tensors = file === safetensors ? readSafetensors(file).tensors : readTorchBin(file);
  const expected = encoderParamShapes(cfg);
  const variant = variantOfConfig(cfg);
  const arrays: TensorMap = new Map();
  const extra: TensorMap = new Map();
  for (const [hfName, arr] of tensors) {
    const name = canonicalName(hfName, variant);
    if (!name) {
      extra.set(hfName, arr);
      continue;
    }
    const value = isLinearWeight(name, arr.shape) ? transpose2d(arr) : arr;
    arrays.set(name, value);
  }
  for (const [name, shape] of expected) {
    const got = arrays.get(name);
    const own = variant.prefix + ownName(variant, name);
    if (!got) throw new UserInputError(`weight ${own} is missing`, { file });
    if (got.shape.join(',') !== shape.join(',')) {
      // Shapes in PyTorch's layout, as the file has them.
      const torchShape = (s: number[]) => (isLinearWeight(name, s) ? [...s].reverse() : s);
      throw new UserInputError(`weight ${own} has shape [${torchShape(got.shape)}] but config.json implies [${torchShape(shape)}]`, { file });
    }
  }
  for (const name of [...arrays.keys()]) if (!expected.has(name)) arrays.delete(name);
  return { arrays, extra };
}

export function encoderFromArrays(cfg: BertConfig, arrays: TensorMap): BertEncoder {
  const params = new Map<string, tf.Variable>();
  for (const [name, shape] of encoderParamShapes(cfg)) {
    const arr = arrays.get(name)!;
    params.set(name, tf.variable(tf.tensor(arr.data as Float32Array, shape, 'float32'), false));
  }
  return new BertEncoder(cfg, params);
}

export interface LoadedModel {
  encoder: BertEncoder;
  modelDir: string;
  /** Tensors in model.safetensors the encoder does not use (pooler, MLM head), by their file names. */
  extra: TensorMap;
}

export function loadEncoder(modelDir: string): LoadedModel {
  const cfg = readConfig(modelDir);
  const { arrays, extra } = readEncoderArrays(modelDir, cfg);
  return { encoder: encoderFromArrays(cfg, arrays), modelDir, extra };
}

/**
 * BERT's initialisation (truncated normal, std 0.02, for weights and embeddings; LayerNorm gains one, biases
 * zero), in this codebase's layout. Used for pretraining from scratch and for test checkpoints.
 */
export function initEncoderArrays(cfg: BertConfig, rng: Rng, std = 0.02): TensorMap {
  const arrays: TensorMap = new Map();
  for (const [name, shape] of encoderParamShapes(cfg)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    if (name.includes('LayerNorm.weight')) data.fill(1);
    else if (!name.endsWith('.bias')) for (let i = 0; i < size; i++) data[i] = truncatedNormal(rng) * std;
    arrays.set(name, { shape, data });
  }
  return arrays;
}

function truncatedNormal(rng: Rng): number {
  for (;;) {
    const z = rng.normal();
    if (Math.abs(z) <= 2) return z;
  }
}

/** Current values of the encoder's parameters, in this codebase's layout. */
export function encoderArrays(encoder: BertEncoder): TensorMap {
  const arrays: TensorMap = new Map();
  for (const [name, v] of encoder.params) arrays.set(name, { shape: v.shape, data: v.dataSync() as Float32Array });
  return arrays;
}

/** Writes config.json and model.safetensors in the Hugging Face layout (the member's own names, [out, in] linears). */
export function saveEncoderHf(
  dir: string,
  cfg: BertConfig,
  arrays: TensorMap,
  options: { extra?: TensorMap; float16?: boolean; metadata?: Record<string, string>; prefix?: string } = {},
): void {
  fs.mkdirSync(dir, { recursive: true });
  const out: TensorMap = new Map();
  const prefix = options.prefix ?? '';
  const variant = variantOfConfig(cfg);
  for (const [name, arr] of arrays) out.set(prefix + ownName(variant, name), isLinearWeight(name, arr.shape) ? transpose2d(arr) : arr);
  for (const [name, arr] of options.extra ?? []) out.set(name, arr);
  writeSafetensors(path.join(dir, 'model.safetensors'), out, { float16: options.float16, metadata: { format: 'pt', ...options.metadata } });
  writeJsonAtomic(path.join(dir, 'config.json'), toHfConfig(cfg));
}
