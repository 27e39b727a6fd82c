import * as crypto from 'node:crypto';
import type * as tf from '@tensorflow/tfjs-core';
import { BertEncoder } from './bert';

/**
 * A short hash that tells base models apart: two checkpoints of the same shape (a pretrained encoder and a
 * randomly initialised one, two pretraining seeds) get different fingerprints. It hashes every parameter's
 * name, shape and an evenly strided sample of at most 1024 of its values, so it costs milliseconds even for
 * bert-base. Adapters record the fingerprint of the base they were trained on; AdapterFusion and multi-task
 * inference refuse adapters whose base differs.
 */
export function baseFingerprint(encoder: { params: ReadonlyMap<string, tf.Variable> }): string {
  const hash = crypto.createHash('sha256');
  for (const name of [...encoder.params.keys()].sort()) {
    const v = encoder.params.get(name)!;
    const data = v.dataSync() as Float32Array;
    const stride = Math.max(1, Math.floor(data.length / 1024));
    const sample = new Float32Array(Math.ceil(data.length / stride));
    for (let i = 0, j = 0; i < data.length; i += stride, j++) sample[j] = data[i];
    hash.update(`${name}[${v.shape.join(',')}]`);
    hash.update(Buffer.from(sample.buffer));
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * What differs between the base an adapter records (adapter_config.json's `adapter_lab.base`) and `encoder`:
 * layers, hidden size, vocabulary, then weights by fingerprint when the adapter recorded one. Empty: the same.
 */
export function baseDifferences(base: { numLayers: number; hiddenSize: number; vocabSize: number; fingerprint?: string }, encoder: BertEncoder, fingerprint: () => string): string[] {
  const c = encoder.config;
  const differences: string[] = [];
  // 0: not recorded (an adapter AdapterHub saved records its hidden size only).
  if (base.numLayers && base.numLayers !== c.numLayers) differences.push(`${base.numLayers} layers, not ${c.numLayers}`);
  if (base.hiddenSize && base.hiddenSize !== c.hiddenSize) differences.push(`hidden size ${base.hiddenSize}, not ${c.hiddenSize}`);
  if (base.vocabSize && base.vocabSize !== c.vocabSize) differences.push(`vocabulary ${base.vocabSize}, not ${c.vocabSize}`);
  if (differences.length === 0 && base.fingerprint && base.fingerprint !== fingerprint()) differences.push(`other weights (fingerprint ${base.fingerprint}, not ${fingerprint()})`);
  return differences;
}
