import * as tf from '@tensorflow/tfjs-core';
import { AdapterModel } from '../src/engine/model/adapterModel';
import { EncoderInput, ForwardContext } from '../src/engine/model/bert';
import { EncodedExample } from '../src/engine/data/types';
import { argmax } from '../src/engine/analysis/evaluate';
import { makeBatches } from '../src/engine/data/batching';
import { computeMetrics } from '../src/engine/metrics/metrics';
import { EVAL_CONTEXT } from '../src/engine/experiment';

/**
 * The reference formulation for the benchmark and for the equivalence tests: the same model (it reads the
 * same parameters by name), written with plain tfjs ops the way one first writes it: tf.matMul with tfjs's own
 * gradients (whose transposed-operand matMuls are slow on wasm, and which compute weight gradients of frozen
 * weights too), q k^T as matMul(q, k, false, true), GELU and LayerNorm by autodiff, every layer recomputed every
 * time. Supports the bottleneck-adapter methods (houlsby, pfeiffer) and every base-only method.
 */
export function naiveOutputs(model: AdapterModel, input: EncoderInput, ctx: ForwardContext): tf.Tensor2D {
  const enc = model.encoder;
  const c = enc.config;
  const p = (name: string) => {
    const v = enc.params.get(name) ?? model.method.params.get(name) ?? model.head.params.get(name);
    if (!v) throw new Error(`no parameter ${name}`);
    return v as tf.Tensor;
  };
  const B = input.batchSize;
  const T = input.seqLen;
  const d = c.hiddenSize;
  const H = c.numHeads;
  const dh = d / H;
  const drop = (x: tf.Tensor, rate: number) => (ctx.training && ctx.rng && rate > 0 ? tf.dropout(x, rate, undefined, ctx.rng.seed()) : x);
  const dense = (x: tf.Tensor, name: string) => tf.add(tf.matMul(x as tf.Tensor2D, p(`${name}.weight`) as tf.Tensor2D), p(`${name}.bias`));
  const layerNorm = (x: tf.Tensor, name: string) => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, c.layerNormEps))), p(`${name}.weight`)), p(`${name}.bias`));
  };
  const gelu = (x: tf.Tensor) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.div(x, Math.SQRT2))));
  const act = (x: tf.Tensor, fn: string) => (fn === 'gelu' ? gelu(x) : fn === 'relu' ? tf.relu(x) : fn === 'tanh' ? tf.tanh(x) : fn === 'quick_gelu' ? tf.mul(x, tf.sigmoid(tf.mul(x, 1.702))) : tf.mul(x, tf.sigmoid(x)));
  // A sublayer's residual add and LayerNorm with the bottleneck adapter AdapterHub's BnConfig places there:
  // Houlsby's (original_ln_before false) LN(x + h + A(h)); Pfeiffer's (SeqBnConfig, original_ln_before true)
  // LN(x + h + A(LN(x + h))), the same LayerNorm applied twice.
  const bn = model.method.adapterConfig() as { non_linearity?: string; original_ln_before?: boolean; scaling?: number };
  const addAndNorm = (h: tf.Tensor, x: tf.Tensor, prefix: string, ln: string, on: boolean) => {
    if (!on || !model.method.params.get(`${prefix}.adapter_down.0.weight`)) return layerNorm(tf.add(h, x), ln);
    const z = bn.original_ln_before ? layerNorm(tf.add(h, x), ln) : h;
    const a = tf.mul(dense(act(dense(z, `${prefix}.adapter_down.0`), bn.non_linearity ?? 'gelu'), `${prefix}.adapter_up`), bn.scaling ?? 1);
    return layerNorm(tf.add(tf.add(h, a), x), ln);
  };
  const name = model.head.name;

  const ids = tf.tensor1d(input.inputIds, 'int32');
  const positions = tf.tile(tf.range(0, T, 1, 'int32'), [B]);
  let h = tf.add(tf.add(tf.gather(p('embeddings.word_embeddings.weight'), ids), tf.gather(p('embeddings.position_embeddings.weight'), positions)), tf.gather(p('embeddings.token_type_embeddings.weight'), tf.tensor1d(input.tokenTypeIds, 'int32')));
  h = drop(layerNorm(h, 'embeddings.LayerNorm'), ctx.hiddenDropout);
  const maskBias = tf.reshape(tf.mul(tf.sub(1, tf.tensor1d(input.attentionMask)), -1e9), [B, 1, 1, T]);
  for (let i = 0; i < c.numLayers; i++) {
    const l = `encoder.layer.${i}`;
    const on = !ctx.disabledAdapterLayers?.has(i);
    const split = (x: tf.Tensor) => tf.transpose(tf.reshape(x, [B, T, H, dh]), [0, 2, 1, 3]);
    const q = split(dense(h, `${l}.attention.self.query`));
    const k = split(dense(h, `${l}.attention.self.key`));
    const v = split(dense(h, `${l}.attention.self.value`));
    const scores = tf.add(tf.div(tf.matMul(q as tf.Tensor4D, k as tf.Tensor4D, false, true), Math.sqrt(dh)), maskBias);
    const probs = drop(tf.softmax(scores), ctx.attentionDropout);
    const context = tf.reshape(tf.transpose(tf.matMul(probs as tf.Tensor4D, v as tf.Tensor4D), [0, 2, 1, 3]), [B * T, d]);
    const attn = drop(dense(context, `${l}.attention.output.dense`), ctx.hiddenDropout);
    const h1 = addAndNorm(attn, h, `${l}.attention.output.adapters.${name}`, `${l}.attention.output.LayerNorm`, on);
    const ffn = drop(dense(act(dense(h1, `${l}.intermediate.dense`), c.hiddenAct), `${l}.output.dense`), ctx.hiddenDropout);
    h = addAndNorm(ffn, h1, `${l}.output.adapters.${name}`, `${l}.output.LayerNorm`, on);
  }
  const cls = tf.reshape(tf.slice(tf.reshape(h, [B, T, d]), [0, 0, 0], [B, 1, d]), [B, d]);
  const hidden = tf.tanh(dense(drop(cls, ctx.hiddenDropout), `heads.${name}.1`));
  return dense(drop(hidden, ctx.hiddenDropout), `heads.${name}.4`) as tf.Tensor2D;
}

export function naiveLoss(model: AdapterModel, input: EncoderInput, labels: Float32Array, ctx: ForwardContext): tf.Scalar {
  return model.head.loss(naiveOutputs(model, input, ctx), labels);
}

/**
 * The layer-removal ablation computed the plain way: the naive model evaluated from scratch, batch by batch,
 * for the baseline and for each of the L(L+1)/2 spans.
 */
export function naiveAblation(model: AdapterModel, examples: EncodedExample[], opts: { metric: string; batchSize: number }): { baseline: number; matrix: (number | null)[][] } {
  const L = model.encoder.config.numLayers;
  const labels = examples.map((e) => e.label);
  const value = (disabled: Set<number>) => {
    const predictions = new Array<number>(examples.length);
    for (const batch of makeBatches(examples, opts.batchSize, { shuffle: false, padId: 0, taskType: model.head.taskType })) {
      const rows = tf.tidy(() => naiveOutputs(model, batch, { ...EVAL_CONTEXT, disabledAdapterLayers: disabled }).arraySync() as number[][]);
      batch.indices.forEach((idx, r) => (predictions[idx] = model.head.taskType === 'regression' ? rows[r][0] : argmax(rows[r])));
    }
    return computeMetrics(model.head.taskType, predictions, labels, model.head.labels?.length)[opts.metric];
  };
  const matrix: (number | null)[][] = Array.from({ length: L }, () => new Array<number | null>(L).fill(null));
  for (let i = 0; i < L; i++) for (let j = i; j < L; j++) matrix[i][j] = value(new Set(Array.from({ length: j - i + 1 }, (_, k) => i + k)));
  return { baseline: value(new Set()), matrix };
}
