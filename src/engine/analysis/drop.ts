import * as tf from '@tensorflow/tfjs-core';
import { AdapterModel } from '../model/adapterModel';
import { ForwardContext } from '../model/bert';
import { Batch, EncodedExample } from '../data/types';
import { makeBatches } from '../data/batching';
import { computeMetrics } from '../metrics/metrics';
import { EVAL_CONTEXT } from '../experiment';
import { argmax, predict } from './evaluate';

/**
 * The AdapterDrop trade-off (Rücklé et al. 2021): for n = 0..L, the dev metric and the inference throughput
 * with the adapters of the lowest n layers dropped (n = 0: every adapter; n = L: none, the base model and the
 * head). Written by `adapter-lab drop` as `drop.json`:
 *
 *   metric, baseline        the metric and its value with every adapter (= points[0].value)
 *   points                  [{n, value, tokensPerSecond}] for n = 0..L
 *   numLayers, adapterLayers, split, examples
 *   timing                  {examples, tokens, repeats, batchSize}: what the throughput was measured on
 *
 * The metric shares work the way the layer ablation does: the states entering layer n with the lowest n layers'
 * adapters dropped are the base model's, one layer on from those for n - 1, so each batch runs the base layers
 * once and, for each n, only the layers from n up. The throughput is what a deployment gets: the whole
 * forward pass (tokenisation aside) of the model with the lowest n layers' adapters dropped, timed on a sample
 * of the examples, the median of `repeats` runs, the levels interleaved so that all see the same machine load.
 */
export interface DropPoint {
  n: number;
  value: number;
  tokensPerSecond: number;
}

export interface DropResult {
  metric: string;
  baseline: number;
  points: DropPoint[];
  numLayers: number;
  adapterLayers: number[];
  split: string;
  examples: number;
  timing: { examples: number; tokens: number; repeats: number; batchSize: number };
}

export interface DropOptions {
  metric: string;
  batchSize: number;
  split?: string;
  padId?: number;
  /** Timed runs per level (default 3). */
  repeats?: number;
  /** Examples the throughput is measured on: the first ones (default 256). */
  timingExamples?: number;
  onProgress?: (done: number, total: number) => void;
}

/** The context that drops the adapters of layers 0..n-1. */
export function withLowestDropped(n: number, ctx: ForwardContext = EVAL_CONTEXT): ForwardContext {
  return { ...ctx, disabledAdapterLayers: new Set([...Array(n).keys()]) };
}

/** One batch's predictions (class index or value) in row order for n = 0..L lowest layers' adapters dropped. */
export function dropBatch(model: AdapterModel, batch: Batch): number[][] {
  const enc = model.encoder;
  const L = enc.config.numLayers;
  const on = model.withHooks(EVAL_CONTEXT);
  const off = withLowestDropped(L, on);
  const regression = model.head.taskType === 'regression';
  const levels: number[][] = [];
  const { batchSize: B, seqLen: T } = batch;
  const bias = tf.keep(enc.attentionBias(batch));
  let prefix = tf.keep(tf.tidy(() => enc.embed(batch, EVAL_CONTEXT)));
  for (let n = 0; n <= L; n++) {
    const from = prefix;
    const rows = tf.tidy(() => model.head.forward(enc.firstTokenOutput(from, batch, on, n), EVAL_CONTEXT).arraySync() as number[][]);
    levels.push(rows.map((r) => (regression ? r[0] : argmax(r))));
    if (n < L) {
      prefix = tf.keep(tf.tidy(() => enc.layer(n, from, bias, B, T, off)));
      from.dispose();
    }
  }
  prefix.dispose();
  bias.dispose();
  return levels;
}

export function dropBatches(model: AdapterModel, examples: EncodedExample[], opts: DropOptions): Batch[] {
  return makeBatches(examples, opts.batchSize, { shuffle: false, padId: opts.padId ?? 0, taskType: model.head.taskType });
}

/**
 * What the trade-off needs computed, in this thread or over workers (parallel/pool.ts): each batch's dropBatch,
 * and a whole prediction pass over examples with a context (the timed deployment).
 */
export interface DropExecutor {
  dropBatches(batches: Batch[]): number[][][] | Promise<number[][][]>;
  predict(examples: EncodedExample[], batchSize: number, ctx: ForwardContext): unknown;
}

export function adapterDropTradeoff(model: AdapterModel, examples: EncodedExample[], opts: DropOptions): DropResult {
  const executor: DropExecutor = { dropBatches: (batches) => batches.map((b) => dropBatch(model, b)), predict: (ex, bs, ctx) => predict(model, ex, bs, ctx) };
  // The steps are written once (a generator) for both executors; here each is run as it comes, never awaited.
  const steps = tradeoffSteps(model, examples, opts, executor);
  let next = steps.next();
  while (!next.done) next = steps.next(next.value);
  return next.value;
}

/** The trade-off over workers: the same metric values; the throughput of the workers together. */
export async function adapterDropTradeoffWith(model: AdapterModel, examples: EncodedExample[], opts: DropOptions, executor: DropExecutor): Promise<DropResult> {
  const steps = tradeoffSteps(model, examples, opts, executor);
  let next = steps.next();
  while (!next.done) next = steps.next(await next.value);
  return next.value;
}

/** The trade-off's steps: each yields what the executor computes and receives its result (awaited or not). */
function* tradeoffSteps(model: AdapterModel, examples: EncodedExample[], opts: DropOptions, executor: DropExecutor): Generator<unknown, DropResult, unknown> {
  const L = model.encoder.config.numLayers;
  const repeats = opts.repeats ?? 3;
  const timingSet = examples.slice(0, opts.timingExamples ?? 256);
  const total = L + 1 + (L + 1) * (repeats + 1);
  let done = 0;
  const batches = dropBatches(model, examples, opts);
  const perBatch = (yield executor.dropBatches(batches)) as number[][][];
  // predictions[n][example]
  const predictions = Array.from({ length: L + 1 }, () => new Array<number>(examples.length));
  batches.forEach((batch, b) => perBatch[b].forEach((level, n) => batch.indices.forEach((idx, r) => (predictions[n][idx] = level[r]))));
  done = L + 1;
  opts.onProgress?.(done, total);

  // Throughput: one warm-up pass per level, then `repeats` rounds over the levels.
  const times = Array.from({ length: L + 1 }, () => [] as number[]);
  for (let round = -1; round < repeats; round++) {
    for (let n = 0; n <= L; n++) {
      const t0 = performance.now();
      yield executor.predict(timingSet, opts.batchSize, withLowestDropped(n));
      if (round >= 0) times[n].push(performance.now() - t0);
      opts.onProgress?.(++done, total);
    }
  }
  const tokens = timingSet.reduce((s, e) => s + e.inputIds.length, 0);

  const labels = examples.map((e) => e.label);
  const metricOf = (preds: number[]) => {
    const m = computeMetrics(model.head.taskType, preds, labels, model.head.labels?.length)[opts.metric];
    if (m === undefined) throw new Error(`metric "${opts.metric}" is not computed for this task`);
    return m;
  };
  const points = predictions.map((preds, n) => ({ n, value: metricOf(preds), tokensPerSecond: (tokens * 1000) / median(times[n]) }));
  return {
    metric: opts.metric,
    baseline: points[0].value,
    points,
    numLayers: L,
    adapterLayers: model.method.adapterLayers,
    split: opts.split ?? 'dev',
    examples: examples.length,
    timing: { examples: timingSet.length, tokens, repeats, batchSize: opts.batchSize },
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
