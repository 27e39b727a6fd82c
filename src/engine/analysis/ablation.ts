import * as tf from '@tensorflow/tfjs-core';
import { AdapterModel } from '../model/adapterModel';
import { ForwardContext } from '../model/bert';
import { Batch, EncodedExample } from '../data/types';
import { makeBatches } from '../data/batching';
import { computeMetrics } from '../metrics/metrics';
import { EVAL_CONTEXT } from '../experiment';
import { argmax } from './evaluate';

/**
 * The layer-removal ablation of Houlsby et al. 2019 (section 3.6): the dev metric with the adapters of every
 * contiguous span of layers i..j removed and the rest kept. matrix[i][j] (i <= j) is that metric; entries
 * below the diagonal are null. The diagonal is single-layer removal; [0][L-1] removes every adapter.
 *
 * Work is shared between spans instead of running the whole model L(L+1)/2 times: the states entering layer i
 * are the unablated model's for every span that starts at i, and the states after removing i..j are one layer
 * away from those after removing i..j-1. Per batch: L layers for the baseline, then for each i the removed
 * layers once and, for each j, only the layers above j. The last layer computes the first token only (all the
 * head reads).
 */
export interface AblationResult {
  metric: string;
  /** The metric with every adapter in place. */
  baseline: number;
  /** L x L, upper triangular. */
  matrix: (number | null)[][];
  /** Layers that carry the method's modules; removing a span with none of them changes nothing. */
  adapterLayers: number[];
  numLayers: number;
  split: string;
  examples: number;
}

/** The spans (i, j), i <= j, in the order of the matrix's rows: slot s + 1 of ablateBatch's result is span s. */
export function ablationSpans(L: number): [number, number][] {
  const spans: [number, number][] = [];
  for (let i = 0; i < L; i++) for (let j = i; j < L; j++) spans.push([i, j]);
  return spans;
}

/**
 * One batch's predictions (class index or value) in batch row order: slot 0 with every adapter, then slot
 * s + 1 with span s removed. `onSpan` is called after each span.
 */
export function ablateBatch(model: AdapterModel, batch: Batch, onSpan?: () => void): number[][] {
  const enc = model.encoder;
  const L = enc.config.numLayers;
  const on: ForwardContext = model.withHooks(EVAL_CONTEXT);
  const off = (layer: number): ForwardContext => ({ ...on, disabledAdapterLayers: new Set([layer]) });
  const regression = model.head.taskType === 'regression';
  const slots: number[][] = [];
  const record = (out: tf.Tensor2D) => {
    const rows = out.arraySync() as number[][];
    slots.push(rows.map((r) => (regression ? r[0] : argmax(r))));
  };
  // The last layer's output reaches only the head, which reads the first token: states after it are [B, d].
  const headOf = (cls: tf.Tensor2D) => model.head.forward(cls, EVAL_CONTEXT);
  const { batchSize: B, seqLen: T } = batch;
  const bias = tf.keep(enc.attentionBias(batch));
  const layer = (i: number, h: tf.Tensor2D, ctx: ForwardContext) => enc.layer(i, h, bias, B, T, ctx, i === L - 1);
  // States entering each layer with every adapter in place: states[i] enters layer i.
  const states: tf.Tensor2D[] = [tf.keep(tf.tidy(() => enc.embed(batch, EVAL_CONTEXT)))];
  for (let i = 0; i < L; i++) states.push(tf.keep(tf.tidy(() => layer(i, states[i], on))));
  tf.tidy(() => record(headOf(states[L])));
  for (let i = 0; i < L; i++) {
    let removed = states[i];
    for (let j = i; j < L; j++) {
      const previous = removed;
      removed = tf.keep(tf.tidy(() => layer(j, previous, off(j))));
      if (previous !== states[i]) previous.dispose();
      const from = removed;
      tf.tidy(() => {
        let h = from;
        for (let k = j + 1; k < L; k++) h = layer(k, h, on);
        record(headOf(h));
      });
      onSpan?.();
    }
    if (removed !== states[i]) removed.dispose();
  }
  for (const s of states) s.dispose();
  bias.dispose();
  return slots;
}

export interface AblationOptions {
  metric: string;
  batchSize: number;
  split?: string;
  padId?: number;
  onSpan?: (done: number, total: number) => void;
}

export function ablationBatches(model: AdapterModel, examples: EncodedExample[], opts: AblationOptions): Batch[] {
  return makeBatches(examples, opts.batchSize, { shuffle: false, padId: opts.padId ?? 0, taskType: model.head.taskType });
}

export function layerAblation(model: AdapterModel, examples: EncodedExample[], opts: AblationOptions): AblationResult {
  const batches = ablationBatches(model, examples, opts);
  const total = ablationSpans(model.encoder.config.numLayers).length * batches.length;
  let done = 0;
  return ablationResult(model, examples, batches, batches.map((b) => ablateBatch(model, b, () => opts.onSpan?.(++done, total))), opts);
}

/** The matrix from every batch's ablateBatch predictions. */
export function ablationResult(model: AdapterModel, examples: EncodedExample[], batches: Batch[], perBatch: number[][][], opts: AblationOptions): AblationResult {
  const L = model.encoder.config.numLayers;
  const spans = ablationSpans(L);
  // predictions[s][example]: s = 0 baseline, then spans in (i, j) order.
  const predictions: number[][] = Array.from({ length: spans.length + 1 }, () => new Array<number>(examples.length));
  batches.forEach((batch, b) => perBatch[b].forEach((slot, s) => batch.indices.forEach((idx, r) => (predictions[s][idx] = slot[r]))));

  const labels = examples.map((e) => e.label);
  const metricOf = (preds: number[]) => {
    const m = computeMetrics(model.head.taskType, preds, labels, model.head.labels?.length)[opts.metric];
    if (m === undefined) throw new Error(`metric "${opts.metric}" is not computed for this task`);
    return m;
  };
  const matrix: (number | null)[][] = Array.from({ length: L }, () => new Array<number | null>(L).fill(null));
  spans.forEach(([i, j], s) => (matrix[i][j] = metricOf(predictions[s + 1])));
  return {
    metric: opts.metric,
    baseline: metricOf(predictions[0]),
    matrix,
    adapterLayers: model.method.adapterLayers,
    numLayers: L,
    split: opts.split ?? 'dev',
    examples: examples.length,
  };
}
