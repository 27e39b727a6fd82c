import * as tf from '@tensorflow/tfjs-core';
import { AdapterModel } from '../model/adapterModel';
import { Batch, EncodedExample } from '../data/types';
import { makeBatches } from '../data/batching';
import { EVAL_CONTEXT } from '../experiment';

/**
 * The outputs of the frozen layers below the lowest trained module (AdapterDrop's leaveOut of the lowest
 * layers, the head-only probe, top-k), computed once per example and reused at every step and epoch instead of
 * being recomputed. Dropout is off in the cached layers: that is the behaviour of `training.cacheFrozenLayers`.
 *
 * States are kept per example without padding, so batches of any composition (shuffled, bucketed) can be
 * assembled from them; padded positions are zeros, which attention masks out exactly.
 */
export class FrozenPrefixCache {
  private readonly rows = new Map<number, Float32Array>();
  private readonly d: number;

  constructor(
    private readonly model: AdapterModel,
    /** Layers cached: the states entering layer `depth`. */
    readonly depth: number,
  ) {
    this.d = model.encoder.config.hiddenSize;
  }

  /** Computes and stores the prefix states of every example (once). */
  build(examples: EncodedExample[], batchSize: number, padId: number): void {
    const enc = this.model.encoder;
    for (const batch of makeBatches(examples, batchSize, { shuffle: false, padId, taskType: this.model.head.taskType })) {
      const statesTensor = tf.tidy(() => enc.layers(enc.embed(batch, EVAL_CONTEXT), batch, EVAL_CONTEXT, 0, this.depth));
      // Read outside tidy: tidy walks whatever its callback returns, and a large typed array is slow to walk.
      const states = statesTensor.dataSync() as Float32Array;
      statesTensor.dispose();
      batch.indices.forEach((index, r) => {
        const len = examples[index].inputIds.length;
        this.rows.set(index, states.slice(r * batch.seqLen * this.d, (r * batch.seqLen + len) * this.d));
      });
    }
  }

  /** The cached states of a batch's examples, padded to the batch's length: [B*T, d]. */
  hiddenFor(batch: Batch): tf.Tensor2D {
    const { batchSize: B, seqLen: T } = batch;
    const out = new Float32Array(B * T * this.d);
    batch.indices.forEach((index, r) => {
      const row = this.rows.get(index);
      if (!row) throw new Error(`no cached states for example ${index}`);
      out.set(row, r * T * this.d);
    });
    return tf.tensor2d(out, [B * T, this.d]);
  }

  get size(): number {
    return this.rows.size;
  }
}
