import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../util/random';
import { catalogEntry, catalogLearningRate, METHOD_NAMES } from '../../methods/catalog';
import { batchNorm, batchNormInit, BatchNormParams, conv1x1, ConvSite, convSites, ResNet, ResNetConfig, ResNetContext, ResNetHooks } from './network';

/**
 * The methods for the ResNet family (Rebuffi et al. 2017, 2018): what each adds to a network pretrained on one
 * domain so that it serves another.
 *
 * - `residual-series` (2017): after each block convolution, x + W(BN(x)) with W a 1 x 1 convolution and BN a
 *   BatchNorm of the adapter's own (Rebuffi's `conv1x1` in series mode), then the domain's own BatchNorm.
 * - `residual-parallel` (2018): a 1 x 1 convolution beside each block convolution, on the same input and stride,
 *   its output added to the 3 x 3 one's, then the domain's own BatchNorm.
 * - `batchnorm`: the domain's own BatchNorm everywhere (scales, shifts and running statistics), nothing else.
 * - `head`: the new classifier on frozen features.
 * - `full`: every parameter of the network, from the pretrained values.
 * - `scratch`: every parameter, from a fresh initialisation (the network's pretraining is not used).
 *
 * Adapters sit in the blocks' convolutions only (not the stem: Rebuffi's `is_proj=0` there); the per-domain
 * BatchNorms are at every convolution, the stem's included. Domain modules start as the identity: 1 x 1 weights
 * zero, domain BatchNorms copies of the base's, so that a new domain starts from the base network's function.
 * The base network's own parameters and statistics are never changed by these methods, so the base domain's
 * predictions stay bit-identical whatever other domains train.
 */

export type VisionMethodType = 'residual-series' | 'residual-parallel' | 'batchnorm' | 'head' | 'full' | 'scratch';

export interface VisionMethodEntry {
  readonly title: string;
  readonly description: string;
  readonly learningRate: number;
  /** The size rule in words (c_in, c_out the channels of a convolution; sums over the sites named). */
  readonly sizeRule: string;
  /** Trains the base network's own parameters (full, scratch). */
  readonly trainsBase: boolean;
  /** Parameters the method adds for one domain (its own modules; the head and trained base parameters not counted). */
  addedParams(network: ResNetConfig): number;
}

/** The ResNet's methods: the catalog's entries (methods/catalog.ts) that name this family. */
export const VISION_METHOD_NAMES = METHOD_NAMES.filter((n) => catalogEntry(n).families.includes('resnet')) as VisionMethodType[];

/** The catalog's data on each method, with the size rule on a ResNetConfig. */
export const VISION_METHODS = Object.fromEntries(
  VISION_METHOD_NAMES.map((name) => {
    const entry = catalogEntry(name);
    const vision: VisionMethodEntry = {
      title: entry.title,
      description: entry.description,
      learningRate: catalogLearningRate(name, 'image-classification'),
      sizeRule: entry.sizeRule,
      trainsBase: entry.trainsBase === 'everything',
      addedParams: (c) => entry.addedParams({ d: 0, L: 0, intermediate: 0, convSites: convSites(c) }, {}),
    };
    return [name, vision];
  }),
) as Record<VisionMethodType, VisionMethodEntry>;

export function isVisionMethod(name: string): name is VisionMethodType {
  return Object.prototype.hasOwnProperty.call(VISION_METHODS, name);
}

export interface VisionMethodInstance {
  readonly type: VisionMethodType;
  /** Trained parameters the method adds, by name (the domain's name inside: several domains can share a network). */
  readonly params: Map<string, tf.Variable>;
  /** Running statistics of the method's BatchNorms (saved with it, never trained by gradient). */
  readonly stats: Map<string, tf.Variable>;
  /** The network's own parameters the method trains. */
  readonly trainedBaseParams: string[];
  readonly hooks: ResNetHooks;
  /** Blocks that carry the method's adapters (what the block ablation removes). */
  readonly adapterBlocks: number[];
  /** Blocks whose adapters are switched off (the block ablation); the domain BatchNorms stay. */
  readonly disabledBlocks: Set<number>;
}

export interface VisionMethodOptions {
  /** The domain's (task's) name in parameter names. */
  domain: string;
  rng: Rng;
}

/** The method's modules on `network`; `scratch` re-initialises the network's parameters from `rng`. */
export function createVisionMethod(type: VisionMethodType, network: ResNet, opts: VisionMethodOptions): VisionMethodInstance {
  const params = new Map<string, tf.Variable>();
  const stats = new Map<string, tf.Variable>();
  const disabledBlocks = new Set<number>();
  const hooks: ResNetHooks = {};
  let trainedBaseParams: string[] = [];
  let adapterBlocks: number[] = [];

  if (type === 'full' || type === 'scratch') {
    trainedBaseParams = [...network.params.keys()];
    if (type === 'scratch') {
      const fresh = ResNet.init(network.config, opts.rng);
      for (const [n, v] of network.params) v.assign(fresh.params.get(n)!);
      for (const [n, v] of network.stats) v.assign(fresh.stats.get(n)!);
      fresh.dispose();
    }
  }

  if (type === 'residual-series' || type === 'residual-parallel' || type === 'batchnorm') {
    // The domain's own BatchNorm at every site, a copy of the base's.
    const domainBn = new Map<string, BatchNormParams>();
    for (const site of network.sites) {
      const base = network.baseBatchNorm(site.bn);
      const stem = `${site.bn}.domains.${opts.domain}`;
      const bn = copyBatchNorm(base, stem, params, stats);
      domainBn.set(site.bn, bn);
    }
    hooks.batchNorm = (bn) => domainBn.get(bn);
  }

  if (type === 'residual-series' || type === 'residual-parallel') {
    const series = type === 'residual-series';
    const adapters = new Map<string, { weight: tf.Variable; bn: BatchNormParams | null }>();
    for (const site of network.sites) {
      if (site.block === null) continue;
      const stem = `${site.conv}.adapters.${opts.domain}`;
      // Zero weights: the adapter starts as the identity (series) or adds nothing (parallel).
      const weight = tf.variable(tf.zeros([1, 1, series ? site.out : site.in, site.out]), true);
      params.set(`${stem}.conv.weight`, weight);
      let bn: BatchNormParams | null = null;
      if (series) {
        const fresh = batchNormInit(site.out);
        params.set(`${stem}.bn.weight`, fresh.weight);
        params.set(`${stem}.bn.bias`, fresh.bias);
        stats.set(`${stem}.bn.running_mean`, fresh.running_mean);
        stats.set(`${stem}.bn.running_var`, fresh.running_var);
        fresh.weight.trainable = true;
        fresh.bias.trainable = true;
        bn = { weight: fresh.weight as tf.Tensor as tf.Tensor1D, bias: fresh.bias as tf.Tensor as tf.Tensor1D, runningMean: fresh.running_mean, runningVar: fresh.running_var, frozen: false };
      }
      adapters.set(site.conv, { weight, bn });
    }
    adapterBlocks = [...new Set(network.sites.filter((s) => s.block !== null).map((s) => s.block!))];
    hooks.afterConv = (site: ConvSite, x: tf.Tensor4D, y: tf.Tensor4D, ctx: ResNetContext) => {
      const adapter = adapters.get(site.conv);
      if (!adapter || disabledBlocks.has(site.block!)) return y;
      const w = adapter.weight as tf.Tensor as tf.Tensor4D;
      if (series) return tf.add(y, conv1x1(batchNorm(y, adapter.bn!, ctx), w, 1));
      return tf.add(y, conv1x1(x, w, site.stride));
    };
  }

  return { type, params, stats, trainedBaseParams, hooks, adapterBlocks, disabledBlocks };
}

/** A trainable copy of a BatchNorm (values and running statistics), registered under `stem`. */
function copyBatchNorm(base: BatchNormParams, stem: string, params: Map<string, tf.Variable>, stats: Map<string, tf.Variable>): BatchNormParams {
  const weight = tf.variable(base.weight, true);
  const bias = tf.variable(base.bias, true);
  const runningMean = tf.variable(base.runningMean, false);
  const runningVar = tf.variable(base.runningVar, false);
  params.set(`${stem}.weight`, weight);
  params.set(`${stem}.bias`, bias);
  stats.set(`${stem}.running_mean`, runningMean);
  stats.set(`${stem}.running_var`, runningVar);
  return { weight: weight as tf.Tensor as tf.Tensor1D, bias: bias as tf.Tensor as tf.Tensor1D, runningMean, runningVar, frozen: false };
}
