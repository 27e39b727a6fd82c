import * as tf from '@tensorflow/tfjs-core';
import { BertEncoder, ForwardContext } from '../model/bert';
import { TensorMap } from '../model/safetensors';
import { activate, batchMatMul, layerNorm, linear } from '../tf/ops';
import { Rng } from '../util/random';
import { MaskedBatch } from './data';

/**
 * BERT's masked-language-model head (BertForMaskedLM's `cls.predictions`), computed only at the chosen
 * positions: their final hidden states are gathered first, so the vocabulary-sized product costs
 * (chosen positions x d x V) rather than (all tokens x d x V).
 *
 *   h = LayerNorm(act(x W_t + b_t))           cls.predictions.transform.{dense, LayerNorm}
 *   logits = h E^T + b                         decoder tied to the word embeddings E; cls.predictions.bias
 *
 * Parameter names are Hugging Face's; the dense weight is stored [in, out] like the encoder's linears.
 */

export const HEAD_PARAM_NAMES = [
  'cls.predictions.transform.dense.weight',
  'cls.predictions.transform.dense.bias',
  'cls.predictions.transform.LayerNorm.weight',
  'cls.predictions.transform.LayerNorm.bias',
  'cls.predictions.bias',
] as const;

export function headParamShapes(hidden: number, vocabSize: number): Map<string, number[]> {
  return new Map<string, number[]>([
    ['cls.predictions.transform.dense.weight', [hidden, hidden]],
    ['cls.predictions.transform.dense.bias', [hidden]],
    ['cls.predictions.transform.LayerNorm.weight', [hidden]],
    ['cls.predictions.transform.LayerNorm.bias', [hidden]],
    ['cls.predictions.bias', [vocabSize]],
  ]);
}

/** BERT's initialisation of the head: dense weight N(0, 0.02) truncated, LayerNorm gain one, biases zero. */
export function initHeadArrays(hidden: number, vocabSize: number, rng: Rng, std = 0.02): TensorMap {
  const out: TensorMap = new Map();
  for (const [name, shape] of headParamShapes(hidden, vocabSize)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    if (name.endsWith('LayerNorm.weight')) data.fill(1);
    else if (name.endsWith('dense.weight'))
      for (let i = 0; i < size; i++) {
        let z = rng.normal();
        while (Math.abs(z) > 2) z = rng.normal();
        data[i] = z * std;
      }
    out.set(name, { shape, data });
  }
  return out;
}

/**
 * Rows of `table` [N, d] at `idx` [n], with the gradient scattered back with scatterND (wasm has no kernel for
 * gather's own gradient, UnsortedSegmentSum). The indices go through `save`: a tensor only closed over by the
 * gradient function would be disposed with the forward pass's scope before the backward pass runs.
 */
export function gatherRows(table: tf.Tensor2D, idx: tf.Tensor1D): tf.Tensor2D {
  const op = tf.customGrad(((tt: tf.Tensor2D, ii: tf.Tensor1D, save: tf.GradSaveFunc) => {
    save([ii]);
    return {
      value: tf.gather(tt, ii),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.scatterND(tf.reshape(saved[0], [-1, 1]), dy, tt.shape), tf.zerosLike(saved[0])],
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (op as unknown as (t: tf.Tensor2D, i: tf.Tensor1D) => tf.Tensor2D)(table, idx);
}

/**
 * logits = h E^T + b with E^T made by an explicit transpose, then a batched matMul whose gradients are
 * transpose-free (ops.ts); the gradient reaches E through the transpose.
 */
export function tiedDecoder(h: tf.Tensor2D, embeddings: tf.Tensor2D, bias: tf.Tensor1D): tf.Tensor2D {
  const [n, d] = h.shape;
  const V = embeddings.shape[0];
  const eT = tf.reshape(tf.transpose(embeddings), [1, d, V]) as tf.Tensor3D;
  const logits = tf.reshape(batchMatMul(tf.reshape(h, [1, n, d]) as tf.Tensor3D, eT), [n, V]);
  return tf.add(logits, bias) as tf.Tensor2D;
}

export class MlmModel {
  constructor(
    readonly encoder: BertEncoder,
    /** The head's parameters by their Hugging Face names. */
    readonly head: Map<string, tf.Variable>,
  ) {}

  private h<R extends tf.Rank>(name: string): tf.Tensor<R> {
    const v = this.head.get(name);
    if (!v) throw new Error(`MLM head parameter ${name} is missing`);
    return v as unknown as tf.Tensor<R>;
  }

  /** Every parameter (encoder and head) by name. */
  allParams(): Map<string, tf.Variable> {
    return new Map([...this.encoder.params, ...this.head]);
  }

  /** Logits [n, V] at the batch's chosen positions. */
  logits(batch: MaskedBatch, ctx: ForwardContext): tf.Tensor2D {
    const input = { inputIds: batch.inputIds, tokenTypeIds: batch.tokenTypeIds, attentionMask: batch.attentionMask, batchSize: batch.batchSize, seqLen: batch.seqLen };
    const hidden = this.encoder.forward(input, ctx);
    const picked = gatherRows(hidden, tf.tensor1d(batch.positions, 'int32'));
    const t = activate(
      linear(picked, this.h('cls.predictions.transform.dense.weight'), this.h('cls.predictions.transform.dense.bias')),
      this.encoder.config.hiddenAct,
    ) as tf.Tensor2D;
    const normed = layerNorm(t, this.h('cls.predictions.transform.LayerNorm.weight'), this.h('cls.predictions.transform.LayerNorm.bias'), this.encoder.config.layerNormEps);
    const E = this.encoder.params.get('embeddings.word_embeddings.weight') as unknown as tf.Tensor2D;
    return tiedDecoder(normed, E, this.h('cls.predictions.bias'));
  }

  /** Mean cross-entropy over the chosen positions (a scalar). */
  loss(batch: MaskedBatch, ctx: ForwardContext): tf.Scalar {
    const logits = this.logits(batch, ctx);
    return crossEntropy(logits, batch.labels);
  }

  /** Summed loss and number of correct top-1 predictions over the chosen positions, without gradients. */
  evaluate(batch: MaskedBatch): { lossSum: number; correct: number; count: number } {
    if (batch.positions.length === 0) return { lossSum: 0, correct: 0, count: 0 };
    return tf.tidy(() => {
      const logits = this.logits(batch, { training: false, hiddenDropout: 0, attentionDropout: 0, rng: null });
      const n = batch.labels.length;
      const lossSum = tf.mul(crossEntropy(logits, batch.labels), n).dataSync()[0];
      const pred = tf.argMax(logits, 1).dataSync();
      let correct = 0;
      for (let i = 0; i < n; i++) if (pred[i] === batch.labels[i]) correct++;
      return { lossSum, correct, count: n };
    });
  }

  /** Top-1 predictions at the chosen positions. */
  predict(batch: MaskedBatch): Int32Array {
    return tf.tidy(() => tf.argMax(this.logits(batch, { training: false, hiddenDropout: 0, attentionDropout: 0, rng: null }), 1).dataSync() as Int32Array);
  }

  dispose(): void {
    this.encoder.dispose();
    for (const v of this.head.values()) v.dispose();
  }
}

/** Mean of -log softmax(logits)[label]; the label is picked with a one-hot product (no gather gradient). */
export function crossEntropy(logits: tf.Tensor2D, labels: Int32Array): tf.Scalar {
  const V = logits.shape[1];
  const logProbs = tf.logSoftmax(logits);
  // oneHot straight to float32 gives zeros on the wasm backend (tfjs 4.22); make int32 and cast.
  const oneHot = tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), V), 'float32');
  return tf.neg(tf.mean(tf.sum(tf.mul(logProbs, oneHot), 1))) as tf.Scalar;
}
