import * as tf from '@tensorflow/tfjs-core';
import { AdapterModel } from '../model/adapterModel';
import { ResolvedConfig } from '../config/types';
import { Batch } from '../data/types';
import { trainingContext } from '../experiment';
import { withBatchShard } from '../tf/ops';
import { Rng } from '../util/random';
import type { FrozenPrefixCache } from '../train/frozenPrefix';
import type { MaskedBatch } from '../pretrain/data';
import type { MlmModel } from '../pretrain/mlm';

/**
 * Data parallelism's arithmetic, the same in the coordinator and in every worker thread: a batch cut into
 * contiguous shards of rows (each padded to the whole batch's length, so the dropout masks line up), and the
 * loss and gradients of one shard as its part of the whole batch's.
 */

export interface BatchShard {
  batch: Batch;
  /** The shard's first row in the whole batch. */
  firstRow: number;
}

/** The rows [from, to) of up to n shards of B rows, of as equal a size as can be (none empty), in order. */
function shardRows(B: number, n: number): [number, number][] {
  const count = Math.max(1, Math.min(n, B));
  return Array.from({ length: count }, (_, k) => [Math.floor((k * B) / count), Math.floor(((k + 1) * B) / count)]);
}

/** Up to n shards of as equal a size as can be (none empty), in row order. */
export function shardBatch(batch: Batch, n: number): BatchShard[] {
  const T = batch.seqLen;
  const rows = shardRows(batch.batchSize, n);
  if (rows.length === 1) return [{ batch, firstRow: 0 }];
  const shards: BatchShard[] = [];
  for (const [from, to] of rows) {
    const indices = batch.indices.slice(from, to);
    const attentionMask = batch.attentionMask.slice(from * T, to * T);
    let realTokens = 0;
    for (const v of attentionMask) realTokens += v;
    shards.push({
      firstRow: from,
      batch: {
        inputIds: batch.inputIds.slice(from * T, to * T),
        tokenTypeIds: batch.tokenTypeIds.slice(from * T, to * T),
        attentionMask,
        labels: batch.labels.slice(from, to),
        batchSize: to - from,
        seqLen: T,
        realTokens,
        indices,
      },
    });
  }
  return shards;
}

/** Seeds derived from the run's seed and a counter (epoch or step), independent of earlier draws. */
export function derivedRng(seed: number, salt: number, counter: number): Rng {
  return new Rng(((seed * 1000003) ^ (salt * 7919 + counter * 2654435761)) >>> 0);
}

/**
 * The loss of a shard of step `step`'s batch (its mean times rows / batch rows; the method's penalty in the
 * first shard only) and its gradients by parameter name. Dropout masks, AdapterDrop's choice and every other
 * random draw come from the step's generator and the rows' places in the whole batch, so the shards' sums equal
 * the whole batch's loss and gradients whatever the number of shards (up to float summation order).
 */
export function shardLossAndGradients(
  model: AdapterModel,
  shard: BatchShard,
  batchRows: number,
  cfg: ResolvedConfig,
  step: number,
  vars: tf.Variable[],
  nameOfVar: Map<string, string>,
  cache?: FrozenPrefixCache,
): { loss: number; grads: Map<string, tf.Tensor> } {
  const rng = derivedRng(cfg.training.seed, 2, step);
  const ctx = trainingContext(cfg, model, rng);
  const k = cfg.method.dropLowest;
  if (k > 0) {
    // Robust AdapterDrop: drop the adapters of the lowest n layers, n uniform in 0..k.
    const n = rng.int(k + 1);
    ctx.disabledAdapterLayers = new Set([...Array(n).keys()]);
  }
  const { batch, firstRow } = shard;
  const share = { weight: batch.batchSize / batchRows, penalty: firstRow === 0 };
  const { value, grads } = withBatchShard(firstRow, batch.batchSize, () =>
    tf.variableGrads(() => model.loss(batch, batch.labels, ctx, cache ? { hidden: cache.hiddenFor(batch), from: cache.depth } : undefined, share), vars),
  );
  const loss = value.dataSync()[0];
  value.dispose();
  const named = new Map<string, tf.Tensor>();
  for (const [varName, g] of Object.entries(grads)) named.set(nameOfVar.get(varName)!, g);
  return { loss, grads: named };
}

/** A shard of a masked-language-model batch: its rows, its chosen positions re-based to them. */
export interface MaskedBatchShard {
  batch: MaskedBatch;
  firstRow: number;
}

/**
 * Up to n shards of a pretraining batch, cut as shardBatch cuts (contiguous rows, the batch's length). The
 * batch is masked whole before it is cut (maskBatch with the step's generator), so the chosen positions and
 * their replacements are the whole batch's whatever the number of shards.
 */
export function shardMaskedBatch(batch: MaskedBatch, n: number): MaskedBatchShard[] {
  const T = batch.seqLen;
  const rows = shardRows(batch.batchSize, n);
  if (rows.length === 1) return [{ batch, firstRow: 0 }];
  const shards: MaskedBatchShard[] = [];
  let p = 0;
  for (const [from, to] of rows) {
    const firstPosition = p;
    while (p < batch.positions.length && batch.positions[p] < to * T) p++;
    const attentionMask = batch.attentionMask.slice(from * T, to * T);
    let realTokens = 0;
    for (const v of attentionMask) realTokens += v;
    shards.push({
      firstRow: from,
      batch: {
        batchSize: to - from,
        seqLen: T,
        inputIds: batch.inputIds.slice(from * T, to * T),
        tokenTypeIds: batch.tokenTypeIds.slice(from * T, to * T),
        attentionMask,
        positions: batch.positions.slice(firstPosition, p).map((flat) => flat - from * T),
        labels: batch.labels.slice(firstPosition, p),
        realTokens,
      },
    });
  }
  return shards;
}

/** What a pretraining step's shards share: the dropout rate and the generator the step's dropout comes from. */
export interface MlmStepSettings {
  seed: number;
  step: number;
  dropout: number;
}

/** The dropout generator of pretraining step `step` (the same in every worker; masks drawn per row). */
export function mlmDropoutRng(seed: number, step: number): Rng {
  return derivedRng(seed, 4, step);
}

/**
 * The masked-language-model loss of a shard of a step's batch as its part of the whole batch's and its
 * gradients by parameter name. The loss is a mean over the batch's chosen positions, so a shard's mean counts
 * with weight (its chosen positions / the batch's): the shards' sums are the whole batch's mean and its
 * gradients, up to float summation order. A shard without chosen positions adds nothing. Dropout masks are the
 * shard's rows of the whole batch's (withBatchShard).
 */
export function mlmShardLossAndGradients(
  model: MlmModel,
  shard: MaskedBatchShard,
  batchPositions: number,
  settings: MlmStepSettings,
  vars: tf.Variable[],
  nameOfVar: Map<string, string>,
): { loss: number; grads: Map<string, tf.Tensor> } {
  const { batch, firstRow } = shard;
  const named = new Map<string, tf.Tensor>();
  if (batch.positions.length === 0 && batchPositions > 0) return { loss: 0, grads: named };
  const ctx = { training: true, hiddenDropout: settings.dropout, attentionDropout: settings.dropout, rng: mlmDropoutRng(settings.seed, settings.step) };
  const weight = batch.positions.length / batchPositions;
  const { value, grads } = withBatchShard(firstRow, batch.batchSize, () =>
    tf.variableGrads(() => {
      const mean = model.loss(batch, ctx);
      // The whole batch as one shard: its mean as it is (no multiply by one, so one worker computes what it did).
      return weight === 1 ? mean : (tf.mul(mean, weight) as tf.Scalar);
    }, vars),
  );
  const loss = value.dataSync()[0];
  value.dispose();
  for (const [varName, g] of Object.entries(grads)) named.set(nameOfVar.get(varName)!, g);
  return { loss, grads: named };
}
