import * as tf from '@tensorflow/tfjs-core';
import { AdapterModel } from '../src/engine/model/adapterModel';
import { EncoderInput, ForwardContext } from '../src/engine/model/bert';
import { EncodedExample } from '../src/engine/data/types';
import { argmax } from '../src/engine/analysis/evaluate';
import { makeBatches } from '../src/engine/data/batching';
import { computeMetrics } from '../src/engine/metrics/metrics';
import { EVAL_CONTEXT } from '../src/engine/experiment';
import { ResNetDomainModel, crossEntropy } from '../src/engine/families/resnet/model';
import { BN_EPSILON, BatchNormParams, ConvSite, ResNetContext } from '../src/engine/families/resnet/network';

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

// ---- the ResNet family -------------------------------------------------------------------------------------

/**
 * The ResNet family's forward pass written the first way (the network as it was before src/engine/tf/conv.ts): on
 * the wasm backend, which has no filter gradient for tf.conv2d, a 3 x 3 convolution is nine shifted slices of
 * the padded input (every other row and column by a reshape and a slice at stride 2), concatenated, and one
 * tf.matMul with tfjs's own gradients; elsewhere plain tf.conv2d. BatchNorm by tf.moments and elementwise ops
 * with autodiff gradients. Reads the same parameters as `model`, for every method of the catalog (the residual
 * adapters by their parameter names); records the batch statistics into ctx.batchNormUpdates as the network does.
 */
export function naiveResNetOutputs(model: ResNetDomainModel, x: tf.Tensor4D, ctx: ResNetContext): tf.Tensor2D {
  const net = model.network;
  const method = model.method;
  const param = (name: string) => (net.params.get(name) ?? method.params.get(name) ?? model.head.get(name)) as tf.Tensor | undefined;
  const stat = (name: string) => (net.stats.get(name) ?? method.stats.get(name))!;
  const bnParams = (stem: string): BatchNormParams => {
    const weight = param(`${stem}.weight`) as tf.Variable;
    return { weight: weight as tf.Tensor as tf.Tensor1D, bias: param(`${stem}.bias`) as tf.Tensor1D, runningMean: stat(`${stem}.running_mean`), runningVar: stat(`${stem}.running_var`), frozen: !weight.trainable };
  };
  const batchNorm = (y: tf.Tensor4D, bn: BatchNormParams): tf.Tensor4D => {
    if (!ctx.training || bn.frozen) {
      const scale = tf.mul(bn.weight, tf.rsqrt(tf.add(bn.runningVar, BN_EPSILON)));
      return tf.add(tf.mul(tf.sub(y, bn.runningMean), scale), bn.bias);
    }
    const { mean, variance } = tf.moments(y, [0, 1, 2]);
    if (ctx.batchNormUpdates) {
      const n = y.shape[0] * y.shape[1] * y.shape[2];
      ctx.batchNormUpdates.push({ runningMean: bn.runningMean, runningVar: bn.runningVar, mean: tf.keep(tf.clone(mean)) as tf.Tensor1D, variance: tf.keep(tf.mul(variance, n / (n - 1))) as tf.Tensor1D });
    }
    return tf.add(tf.mul(tf.mul(tf.sub(y, mean), tf.rsqrt(tf.add(variance, BN_EPSILON))), bn.weight), bn.bias);
  };
  const afterConv = (site: ConvSite, input: tf.Tensor4D, y: tf.Tensor4D): tf.Tensor4D => {
    const stem = `${site.conv}.adapters.${model.domain}`;
    const w = param(`${stem}.conv.weight`) as tf.Tensor4D | undefined;
    if (!w || site.block === null || method.disabledBlocks.has(site.block)) return y;
    if (method.type === 'residual-series') return tf.add(y, naiveConv1x1(batchNorm(y, bnParams(`${stem}.bn`)), w, 1));
    return tf.add(y, naiveConv1x1(input, w, site.stride));
  };
  const convBn = (site: ConvSite, input: tf.Tensor4D): tf.Tensor4D => {
    const y = afterConv(site, input, naiveConv3x3(input, param(`${site.conv}.weight`) as tf.Tensor4D, site.stride));
    return batchNorm(y, method.hooks.batchNorm?.(site.bn) ?? bnParams(site.bn));
  };
  let h = tf.relu(convBn(net.sites[0], x));
  for (let i = 1; i < net.sites.length; i += 2) {
    const first = net.sites[i];
    const y = convBn(net.sites[i + 1], tf.relu(convBn(first, h)));
    let shortcut = h;
    const [B, H, W, C] = h.shape;
    if (first.stride === 2) shortcut = tf.mean(tf.reshape(h, [B, H / 2, 2, W / 2, 2, C]), [2, 4]) as tf.Tensor4D;
    if (first.out > C) shortcut = tf.pad(shortcut, [[0, 0], [0, 0], [0, 0], [0, first.out - C]]);
    h = tf.relu(tf.add(y, shortcut)) as tf.Tensor4D;
  }
  const features = tf.mean(h, [1, 2]) as tf.Tensor2D;
  return tf.add(tf.matMul(features, param(`heads.${model.domain}.weight`) as tf.Tensor2D), param(`heads.${model.domain}.bias`)!) as tf.Tensor2D;
}

export function naiveResNetLoss(model: ResNetDomainModel, x: tf.Tensor4D, labels: Int32Array, ctx: ResNetContext): tf.Scalar {
  return crossEntropy(naiveResNetOutputs(model, x, ctx), labels);
}

/** 3 x 3 convolution, padding 1, stride 1 or 2 (even sizes): tf.conv2d, or on wasm nine shifted slices and one matMul. */
export function naiveConv3x3(x: tf.Tensor4D, w: tf.Tensor4D, stride: 1 | 2): tf.Tensor4D {
  if (tf.getBackend() !== 'wasm') return tf.conv2d(x, w, stride, 1);
  const [B, H, W, C] = x.shape;
  const padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]);
  const shifted: tf.Tensor4D[] = [];
  for (let dy = 0; dy < 3; dy++) {
    for (let dx = 0; dx < 3; dx++) {
      const s = tf.slice(padded, [0, dy, dx, 0], [B, H, W, C]);
      shifted.push(stride === 1 ? s : subsample2(s));
    }
  }
  const patches = tf.reshape(tf.concat(shifted, 3), [(B * H * W) / stride ** 2, 9 * C]);
  return tf.reshape(tf.matMul(patches, tf.reshape(w, [9 * C, w.shape[3]])), [B, H / stride, W / stride, w.shape[3]]);
}

/** 1 x 1 convolution, stride 1 or 2 (even sizes): one matMul after subsampling. */
function naiveConv1x1(x: tf.Tensor4D, w: tf.Tensor4D, stride: 1 | 2): tf.Tensor4D {
  const input = stride === 1 ? x : subsample2(x);
  const [B, H, W, C] = input.shape;
  return tf.reshape(tf.matMul(tf.reshape(input, [B * H * W, C]), tf.reshape(w, [C, w.shape[3]])), [B, H, W, w.shape[3]]);
}

/** Every other row and column, starting at the first. */
function subsample2(x: tf.Tensor4D): tf.Tensor4D {
  const [B, H, W, C] = x.shape;
  const grid = tf.reshape(x, [B, H / 2, 2, W / 2, 2, C]);
  return tf.reshape(tf.slice(grid, [0, 0, 0, 0, 0, 0], [B, H / 2, 1, W / 2, 1, C]), [B, H / 2, W / 2, C]);
}
