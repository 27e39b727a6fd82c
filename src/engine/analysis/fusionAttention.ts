import * as tf from '@tensorflow/tfjs-core';
import { AdapterModel } from '../model/adapterModel';
import { EncodedExample } from '../data/types';
import { makeBatches } from '../data/batching';
import { EVAL_CONTEXT } from '../experiment';
import { isFusion } from '../methods/fusion';

/**
 * Where an AdapterFusion looks (Pfeiffer et al. 2021, figure 5): the mean attention each fusion layer pays to
 * each fused adapter, over the real (non-padding) tokens of the examples of each class. Saved by the trainer as
 * `fusion-attention.json` in a fusion run's folder:
 *
 *   layers    the layers that have a fusion layer (the rows of each matrix)
 *   adapters  the fused adapters' names (the columns)
 *   classes   the task's class names (by gold label); ["all"] for a regression task
 *   matrix    matrix[class][layer][adapter]: mean attention, null where that adapter has no adapter at that layer;
 *             each row (one class, one layer) sums to one
 *   overall   [layer][adapter]: the same over every example
 *   examples  examples per class; tokens: real tokens per class
 */
export interface FusionAttentionResult {
  split: string;
  layers: number[];
  adapters: string[];
  classes: string[];
  matrix: (number | null)[][][];
  overall: (number | null)[][];
  examples: number[];
  tokens: number[];
}

export function fusionAttention(model: AdapterModel, examples: EncodedExample[], opts: { batchSize: number; split?: string; padId?: number }): FusionAttentionResult {
  const method = model.method;
  if (!isFusion(method)) throw new Error(`fusion attention needs a fusion model, not ${method.type}`);
  const layers = method.adapterLayers;
  const A = method.fusion.adapterNames.length;
  const regression = model.head.taskType === 'regression';
  const classes = regression ? ['all'] : model.head.labels!;
  const C = classes.length;
  // sums[c][l][a] and, per class and layer, the tokens counted; `present` marks adapters present at a layer.
  const sums = Array.from({ length: C }, () => layers.map(() => new Float64Array(A)));
  const tokens = new Array<number>(C).fill(0);
  const counts = new Array<number>(C).fill(0);
  const present = layers.map(() => new Array<boolean>(A).fill(false));
  const rowOf = new Map(layers.map((l, r) => [l, r]));

  let classOfRow: number[] = [];
  let mask: Float32Array = new Float32Array(0);
  let seqLen = 0;
  method.fusion.onAttention = (layer, adapters, probs) => {
    const r = rowOf.get(layer)!;
    const p = probs.dataSync() as Float32Array;
    const N = adapters.length;
    adapters.forEach((a) => (present[r][a] = true));
    for (let t = 0; t < mask.length; t++) {
      if (mask[t] === 0) continue;
      const target = sums[classOfRow[Math.floor(t / seqLen)]][r];
      for (let j = 0; j < N; j++) target[adapters[j]] += p[t * N + j];
    }
  };
  try {
    for (const batch of makeBatches(examples, opts.batchSize, { shuffle: false, padId: opts.padId ?? 0, taskType: model.head.taskType })) {
      classOfRow = batch.indices.map((i) => (regression ? 0 : examples[i].label));
      mask = batch.attentionMask;
      seqLen = batch.seqLen;
      batch.indices.forEach((i, r) => {
        counts[classOfRow[r]]++;
        tokens[classOfRow[r]] += examples[i].inputIds.length;
      });
      // Every token's fusion attention is read, so every token runs through every layer (not `outputs`, whose
      // last layer computes the first token only).
      tf.tidy(() => void model.hidden(batch, EVAL_CONTEXT));
    }
  } finally {
    method.fusion.onAttention = null;
  }

  const mean = (sum: Float64Array, r: number, n: number) => Array.from(sum, (v, a) => (present[r][a] ? (n > 0 ? v / n : 0) : null));
  const totalTokens = tokens.reduce((x, y) => x + y, 0);
  return {
    split: opts.split ?? 'dev',
    layers,
    adapters: method.fusion.adapterNames,
    classes,
    matrix: sums.map((perLayer, c) => perLayer.map((sum, r) => mean(sum, r, tokens[c]))),
    overall: layers.map((_, r) => {
      const sum = new Float64Array(A);
      for (let c = 0; c < C; c++) for (let a = 0; a < A; a++) sum[a] += sums[c][r][a];
      return mean(sum, r, totalTokens);
    }),
    examples: counts,
    tokens,
  };
}
