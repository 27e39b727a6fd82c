import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../util/random';
import { batchNormInference, batchNormTraining, conv2d } from '../../tf/conv';

/**
 * A ResNet for small images (28 x 28 or 32 x 32, grey or colour): Rebuffi et al.'s ResNet-26 layout scaled down.
 * A 3 x 3 stem convolution with BatchNorm, three stages of basic blocks (two 3 x 3 convolutions, each followed by
 * BatchNorm), the second and third stages halving the resolution in their first block, global average pooling.
 * With four blocks per stage this is ResNet-26 (1 + 3 * 4 * 2 convolutions + the classifier).
 *
 * As in Rebuffi et al.'s code, the shortcut of a downsampling block has no parameters: 2 x 2 average pooling and
 * zero channels appended, so the parameter count is that of the convolutions and the BatchNorms alone.
 *
 * Tensors are NHWC (TensorFlow.js's layout); convolution weights are [kh, kw, in, out]. Convolutions and
 * BatchNorm are src/engine/tf/conv.ts's: tf.conv2d's values, with gradients written out on SIMD kernels where the
 * wasm backend lacks them or runs them slowly.
 */

export interface ResNetConfig {
  modelType: 'resnet';
  /** 1 (grey) or 3 (colour). */
  inputChannels: number;
  /** Height and width of the input images (a multiple of 4: the two downsampling stages halve it). */
  imageSize: number;
  /** Channels of the three stages (the stem has the first stage's). */
  widths: [number, number, number];
  /** Basic blocks per stage: 4 is ResNet-26. */
  blocksPerStage: number;
}

/** BatchNorm's running statistics follow the batch statistics with this weight (PyTorch's default momentum). */
export const BN_MOMENTUM = 0.1;
export const BN_EPSILON = 1e-5;

/** One 3 x 3 convolution of the network, followed by its BatchNorm. */
export interface ConvSite {
  /** Parameter name stem: `conv1` (the stem) or `layer{s}.{b}.conv{1|2}`. */
  conv: string;
  /** Its BatchNorm's name stem (`bn1`, `layer{s}.{b}.bn{1|2}`). */
  bn: string;
  in: number;
  out: number;
  stride: 1 | 2;
  /** The block it belongs to (0-based over all stages), or null for the stem. */
  block: number | null;
}

export function checkResNetConfig(c: ResNetConfig): void {
  if (c.inputChannels !== 1 && c.inputChannels !== 3) throw new Error(`resnet inputChannels must be 1 or 3, not ${c.inputChannels}`);
  if (!Number.isInteger(c.imageSize) || c.imageSize < 4 || c.imageSize % 4 !== 0) throw new Error(`resnet imageSize must be a multiple of 4, not ${c.imageSize}`);
  if (c.widths.length !== 3 || c.widths.some((w) => !Number.isInteger(w) || w < 1)) throw new Error(`resnet widths must be three positive integers, not ${JSON.stringify(c.widths)}`);
  for (let s = 1; s < 3; s++) if (c.widths[s] < c.widths[s - 1]) throw new Error(`resnet widths must not decrease (the shortcut appends zero channels): ${JSON.stringify(c.widths)}`);
  if (!Number.isInteger(c.blocksPerStage) || c.blocksPerStage < 1) throw new Error(`resnet blocksPerStage must be a positive integer, not ${c.blocksPerStage}`);
}

/** Every convolution of the network with its BatchNorm, in forward order. */
export function convSites(c: ResNetConfig): ConvSite[] {
  const sites: ConvSite[] = [{ conv: 'conv1', bn: 'bn1', in: c.inputChannels, out: c.widths[0], stride: 1, block: null }];
  let inWidth = c.widths[0];
  let block = 0;
  for (let s = 0; s < 3; s++) {
    for (let b = 0; b < c.blocksPerStage; b++) {
      const stem = `layer${s + 1}.${b}`;
      const stride = s > 0 && b === 0 ? 2 : 1;
      sites.push({ conv: `${stem}.conv1`, bn: `${stem}.bn1`, in: inWidth, out: c.widths[s], stride, block });
      sites.push({ conv: `${stem}.conv2`, bn: `${stem}.bn2`, in: c.widths[s], out: c.widths[s], stride: 1, block });
      inWidth = c.widths[s];
      block++;
    }
  }
  return sites;
}

export function numBlocks(c: ResNetConfig): number {
  return 3 * c.blocksPerStage;
}

/** Trainable parameters of the network (convolutions and BatchNorm scales and shifts; running statistics are state). */
export function resnetParameterCount(c: ResNetConfig): number {
  return convSites(c).reduce((n, s) => n + 9 * s.in * s.out + 2 * s.out, 0);
}

/** The features the head reads: the last stage's width. */
export function featureSize(c: ResNetConfig): number {
  return c.widths[2];
}

/** The four tensors of one BatchNorm. */
export interface BatchNormParams {
  weight: tf.Tensor1D;
  bias: tf.Tensor1D;
  runningMean: tf.Variable;
  runningVar: tf.Variable;
  /**
   * Not trained in this run (a frozen base network's BatchNorm): it normalises with its running statistics even
   * in training mode and they stay as they are, so a frozen base computes exactly what it computed before.
   */
  frozen: boolean;
}

/** A batch's statistics, to be folded into the running ones after the step (outside the gradient tape). */
export interface BatchNormUpdate {
  runningMean: tf.Variable;
  runningVar: tf.Variable;
  mean: tf.Tensor1D;
  /** Unbiased, as PyTorch's running variance. */
  variance: tf.Tensor1D;
}

export interface ResNetContext {
  training: boolean;
  /** Training mode collects here the statistics BatchNorm's running averages take in (see applyBatchNormUpdates). */
  batchNormUpdates?: BatchNormUpdate[];
}

/**
 * What a method changes in the forward pass: which BatchNorm a site uses (per-domain BatchNorm) and what it adds
 * around a convolution (residual adapters). Absent hooks leave the base network as it is.
 */
export interface ResNetHooks {
  /** The BatchNorm for a site's `bn` name stem; absent or undefined: the base network's. */
  batchNorm?(bn: string): BatchNormParams | undefined;
  /** The convolution's output as the method changes it, given the convolution's input x and output y. */
  afterConv?(site: ConvSite, x: tf.Tensor4D, y: tf.Tensor4D, ctx: ResNetContext): tf.Tensor4D;
}

export class ResNet {
  readonly sites: ConvSite[];

  /** `params`: weights and BatchNorm scales/shifts; `stats`: BatchNorm running means and variances. */
  constructor(
    readonly config: ResNetConfig,
    readonly params: Map<string, tf.Variable>,
    readonly stats: Map<string, tf.Variable>,
  ) {
    checkResNetConfig(config);
    this.sites = convSites(config);
  }

  /** He-initialised convolutions, BatchNorm at scale 1 and shift 0, running statistics 0 and 1 (as PyTorch). */
  static init(config: ResNetConfig, rng: Rng): ResNet {
    checkResNetConfig(config);
    const params = new Map<string, tf.Variable>();
    const stats = new Map<string, tf.Variable>();
    for (const s of convSites(config)) {
      params.set(`${s.conv}.weight`, tf.variable(tf.randomNormal([3, 3, s.in, s.out], 0, Math.sqrt(2 / (9 * s.out)), 'float32', rng.seed()), false));
      for (const [n, v] of Object.entries(batchNormInit(s.out))) (n.startsWith('running') ? stats : params).set(`${s.bn}.${n}`, v);
    }
    return new ResNet(config, params, stats);
  }

  parameterCount(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  baseBatchNorm(bn: string): BatchNormParams {
    return {
      weight: this.params.get(`${bn}.weight`)! as tf.Tensor as tf.Tensor1D,
      bias: this.params.get(`${bn}.bias`)! as tf.Tensor as tf.Tensor1D,
      runningMean: this.stats.get(`${bn}.running_mean`)!,
      runningVar: this.stats.get(`${bn}.running_var`)!,
      frozen: !this.params.get(`${bn}.weight`)!.trainable,
    };
  }

  /** Pooled features [B, widths[2]] of images [B, H, W, C]. */
  features(x: tf.Tensor4D, ctx: ResNetContext, hooks: ResNetHooks = {}): tf.Tensor2D {
    const [, H, W, C] = x.shape;
    const c = this.config;
    if (H !== c.imageSize || W !== c.imageSize || C !== c.inputChannels) {
      throw new Error(`the network takes ${c.imageSize}x${c.imageSize}x${c.inputChannels} images, not ${H}x${W}x${C}`);
    }
    const convBn = (site: ConvSite, input: tf.Tensor4D): tf.Tensor4D => {
      let y = conv3x3(input, this.params.get(`${site.conv}.weight`)! as tf.Tensor as tf.Tensor4D, site.stride);
      if (hooks.afterConv) y = hooks.afterConv(site, input, y, ctx);
      return batchNorm(y, hooks.batchNorm?.(site.bn) ?? this.baseBatchNorm(site.bn), ctx);
    };
    let h = tf.relu(convBn(this.sites[0], x));
    for (let i = 1; i < this.sites.length; i += 2) {
      const first = this.sites[i];
      const second = this.sites[i + 1];
      const y = convBn(second, tf.relu(convBn(first, h)));
      h = tf.relu(tf.add(y, shortcut(h, first.stride, first.out))) as tf.Tensor4D;
    }
    return tf.mean(h, [1, 2]) as tf.Tensor2D;
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    for (const v of this.stats.values()) v.dispose();
  }
}

/** A BatchNorm's fresh tensors (scale 1, shift 0; running mean 0, variance 1), by PyTorch's names. */
export function batchNormInit(channels: number): Record<'weight' | 'bias' | 'running_mean' | 'running_var', tf.Variable> {
  return {
    weight: tf.variable(tf.ones([channels]), false),
    bias: tf.variable(tf.zeros([channels]), false),
    running_mean: tf.variable(tf.zeros([channels]), false),
    running_var: tf.variable(tf.ones([channels]), false),
  };
}

/** 3 x 3 convolution, padding 1, stride 1 or 2 (even sizes). */
export function conv3x3(x: tf.Tensor4D, w: tf.Tensor4D, stride: 1 | 2): tf.Tensor4D {
  return conv2d(x, w, stride, 1);
}

/** 1 x 1 convolution (no bias), stride 1 or 2: at stride 1 a matrix product on the [B * H * W, C] view. w is [1, 1, in, out]. */
export function conv1x1(x: tf.Tensor4D, w: tf.Tensor4D, stride: 1 | 2): tf.Tensor4D {
  return conv2d(x, w, stride, 0);
}

/** The parameter-free shortcut: identity, or 2 x 2 average pooling with zero channels appended. */
function shortcut(x: tf.Tensor4D, stride: 1 | 2, outChannels: number): tf.Tensor4D {
  const [B, H, W, C] = x.shape;
  let y = x;
  if (stride === 2) y = tf.mean(tf.reshape(x, [B, H / 2, 2, W / 2, 2, C]), [2, 4]) as tf.Tensor4D;
  if (outChannels > C) {
    y = tf.pad(y, [
      [0, 0],
      [0, 0],
      [0, 0],
      [0, outChannels - C],
    ]);
  }
  return y;
}

/**
 * BatchNorm over batch, height and width. Training mode normalises with the batch's statistics (biased variance)
 * and records them for the running averages (unbiased, as PyTorch); evaluation uses the running statistics.
 */
export function batchNorm(x: tf.Tensor4D, bn: BatchNormParams, ctx: ResNetContext): tf.Tensor4D {
  if (!ctx.training || bn.frozen) return batchNormInference(x, bn.runningMean, bn.runningVar, bn.weight, bn.bias, BN_EPSILON);
  const updates = ctx.batchNormUpdates;
  // n: the rows the statistics are over (the whole batch's when BatchNorm is synchronised over shards).
  return batchNormTraining(x, bn.weight, bn.bias, BN_EPSILON, updates && ((mean, variance, n) => {
    const unbiased = n > 1 ? tf.mul(variance, n / (n - 1)) : tf.clone(variance);
    updates.push({ runningMean: bn.runningMean, runningVar: bn.runningVar, mean: tf.keep(tf.clone(mean)) as tf.Tensor1D, variance: tf.keep(unbiased) as tf.Tensor1D });
  }));
}

/** Folds a training step's batch statistics into the running ones (momentum BN_MOMENTUM) and frees them. */
export function applyBatchNormUpdates(updates: BatchNormUpdate[]): void {
  for (const u of updates) {
    tf.tidy(() => {
      u.runningMean.assign(tf.add(tf.mul(u.runningMean, 1 - BN_MOMENTUM), tf.mul(u.mean, BN_MOMENTUM)));
      u.runningVar.assign(tf.add(tf.mul(u.runningVar, 1 - BN_MOMENTUM), tf.mul(u.variance, BN_MOMENTUM)));
    });
    u.mean.dispose();
    u.variance.dispose();
  }
  updates.length = 0;
}
