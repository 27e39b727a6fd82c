import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadAdapterModel } from '../experiment';
import { encoderArrays, saveEncoderHf } from './checkpoint';
import { baseFingerprint } from './fingerprint';
import { saveAdapterFolder } from './adapterIo';
import { readTaskFields, writeTaskFields } from './taskFields';
import { UserInputError } from '../errors';
import { METHOD_NAMES, catalogEntry } from '../methods/catalog';

/** Tokenizer files a model folder may hold (WordPiece and byte-level BPE), copied beside the merged weights. */
const TOKENIZER_FILES = ['tokenizer.json', 'vocab.txt', 'vocab.json', 'merges.txt', 'sentencepiece.bpe.model', 'tokenizer_config.json', 'special_tokens_map.json'];

/** The folder under a merged model that holds the task head, as an adapter folder of method `head`. */
export const MERGED_HEAD_DIR = 'head';

export interface MergeResult {
  modelDir: string;
  headDir: string;
  /** Encoder parameters whose values the merge changed. */
  changed: string[];
}

/**
 * Folds a trained adapter that reparametrises the weights (LoRA, (IA)³) into its base model and writes the result
 * as a Hugging Face model folder (config.json, model.safetensors, the base model's tokenizer files) in `dest`, with
 * the task's head as an adapter folder of method `head` in `dest/head` (its model is `..`): predicting from that
 * folder computes what the adapter computed, at the base model's cost. Base parameters the method trained
 * (LayerNorms with trainLayerNorm) are written with their trained values.
 */
export async function mergeAdapter(adapterDir: string, dest: string): Promise<MergeResult> {
  const { model, meta, modelDir } = await loadAdapterModel(adapterDir);
  try {
    if (!model.method.mergedBaseValues) {
      const mergeable = METHOD_NAMES.filter((n) => catalogEntry(n).kind === 'reparametrisation');
      throw new UserInputError(`${adapterDir}: a ${model.method.type} adapter adds modules of its own, which do not fold into the base weights; merge takes the methods that reparametrise them (${mergeable.join(', ')})`);
    }
    if (fs.existsSync(dest) && (!fs.statSync(dest).isDirectory() || fs.readdirSync(dest).length)) throw new UserInputError(`${dest} exists and is not empty`);
    const merged = model.method.mergedBaseValues();
    for (const [name, arr] of merged) tf.tidy(() => model.encoder.params.get(name)!.assign(tf.tensor(arr.data as Float32Array, arr.shape)));
    const cfg = model.encoder.config;
    saveEncoderHf(dest, cfg, encoderArrays(model.encoder), { metadata: { source: `${meta.model} with the ${meta.method.type} adapter ${meta.adapterName} merged in` } });
    for (const f of TOKENIZER_FILES) if (fs.existsSync(path.join(modelDir, f))) fs.copyFileSync(path.join(modelDir, f), path.join(dest, f));
    const headDir = path.join(dest, MERGED_HEAD_DIR);
    const method = { type: 'head', nonLinearity: 'gelu', initStd: 0.01, trainLayerNorm: false, leaveOut: [], dropLowest: 0 };
    saveAdapterFolder(headDir, {
      adapterParams: new Map(),
      headParams: model.head.params,
      adapterConfig: { architecture: 'head' },
      headConfig: model.head.headConfig('..'),
      meta: { ...meta, model: '..', method, base: { ...meta.base, fingerprint: baseFingerprint(model.encoder) } },
    });
    const fields = readTaskFields(adapterDir);
    if (fields) writeTaskFields(headDir, fields);
    return { modelDir: dest, headDir, changed: [...merged.keys()] };
  } finally {
    model.dispose();
  }
}
