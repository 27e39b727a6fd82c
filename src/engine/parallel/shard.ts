import * as tf from '@tensorflow/tfjs-core';
import { AdapterModel } from '../model/adapterModel';
import { ResolvedConfig } from '../config/types';
import { Batch } from '../data/types';
import { trainingContext } from '../experiment';
import { withBatchShard } from '../tf/ops';
import { Rng } from '../util/random';
import type { FrozenPrefixCache } from '../train/frozenPrefix';

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

/** Up to n shards of as equal a size as can be (none empty), in row order. */
export function shardBatch(batch: Batch, n: number): BatchShard[] {
  const B = batch.batchSize;
  const T = batch.seqLen;
  const count = Math.max(1, Math.min(n, B));
  if (count === 1) return [{ batch, firstRow: 0 }];
  const shards: BatchShard[] = [];
  for (let k = 0; k < count; k++) {
    const from = Math.floor((k * B) / count);
    const to = Math.floor(((k + 1) * B) / count);
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
