import * as tf from '@tensorflow/tfjs-core';
import { activate, linear } from '../tf/ops';
import { adapterLayerIndices, initVariable, layerNormParams, MethodDefinition, MethodOptions, zerosVariable } from './method';
import { Rng } from '../util/random';
import { BertEncoder, SublayerOutputHook } from '../model/bert';
import { MethodConfig, MethodType } from '../config/types';
import { bottleneckSize, sizeFromReductionFactor } from '../config/load';
import { UserInputError } from '../errors';

/**
 * Bottleneck adapters as AdapterHub's `Adapter` (sequential) and `ParallelAdapter` modules compute them
 * (methods/modeling.py and methods/bottleneck.py of adapter-hub/adapters, v0.2 to v1.2). At a sublayer with
 * output h, input x (the residual) and LayerNorm LN, with A(z) = s * (W_up f(W_down z + b_down) + b_up):
 *
 *   pre_forward:   residual = h                      (residual_before_ln true)
 *                  z = h, or LN(h + x) when original_ln_before (residual = h + x when residual_before_ln
 *                  is "post_add", = LN(h + x) when it is false)
 *   adapter:       out = A(z) + residual
 *   post_forward:  LN(out + x) when original_ln_after, else out
 *
 * A parallel adapter (is_parallel; He et al. 2022, AdapterHub's ParBnConfig) reads the sublayer's input instead
 * and adds its output to the sublayer's: z = x, out = A(x) + h, then the same post_forward, LN(x + h + A(x)).
 *
 * Houlsby et al. 2019 (AdapterHub's DoubleSeqBnConfig): adapters after attention and feed-forward,
 * original_ln_before false: LN(x + h + A(h)). Pfeiffer et al. 2021 (SeqBnConfig): feed-forward only,
 * original_ln_before true: LN(x + h + A(LN(x + h))). Parameter names are AdapterHub's: `adapter_down.0` (the
 * down projection; `.1` is the non-linearity) and `adapter_up`. Initialised as AdapterHub's "houlsby" init:
 * weights truncated normal (std initStd, 0.01 by default, cut at 2 std), biases zero.
 */

/** Where and how a bottleneck adapter sits: the subset of AdapterHub's BnConfig this engine computes. */
export interface BnPlacement {
  mhAdapter: boolean;
  outputAdapter: boolean;
  originalLnBefore: boolean;
  originalLnAfter: boolean;
  residualBeforeLn: boolean | 'post_add';
  scaling: number;
  /** Beside the sublayer (reading its input) rather than after it: AdapterHub's ParallelAdapter. */
  isParallel: boolean;
}

export const HOULSBY_PLACEMENT: BnPlacement = { mhAdapter: true, outputAdapter: true, originalLnBefore: false, originalLnAfter: true, residualBeforeLn: true, scaling: 1, isParallel: false };
export const PFEIFFER_PLACEMENT: BnPlacement = { mhAdapter: false, outputAdapter: true, originalLnBefore: true, originalLnAfter: true, residualBeforeLn: true, scaling: 1, isParallel: false };
/** AdapterHub's ParBnConfig: beside the feed-forward sublayer, output scaled by 4. */
export const PARALLEL_PLACEMENT: BnPlacement = { mhAdapter: false, outputAdapter: true, originalLnBefore: false, originalLnAfter: true, residualBeforeLn: true, scaling: 4, isParallel: true };

/** AdapterHub's BnConfig defaults (v1.2.0), for keys a saved config leaves out. */
const BN_DEFAULTS: Record<string, unknown> = {
  original_ln_before: false,
  original_ln_after: true,
  ln_before: false,
  ln_after: false,
  is_parallel: false,
  scaling: 1.0,
  use_gating: false,
  residual_before_ln: true,
  adapter_residual_before_ln: false,
  inv_adapter: null,
  phm_layer: false,
};

/**
 * The placement an AdapterHub adapter_config.json's `config` describes; refuses, naming the key, what this
 * engine does not compute (adapter-own LayerNorms, gating, PHM layers, invertible adapters, a learned scaling).
 */
export function placementFromBnConfig(config: Record<string, unknown>, file: string): BnPlacement {
  const get = (k: string) => (k in config ? config[k] : BN_DEFAULTS[k]);
  const arch = config.architecture;
  if (arch !== undefined && arch !== null && arch !== 'bottleneck') {
    throw new UserInputError(`config.architecture is "${String(arch)}": only bottleneck adapters (AdapterHub's BnConfig) can be loaded here`, { file, field: 'config.architecture' });
  }
  const unsupported: [string, unknown, string][] = [
    ['ln_before', true, "an adapter's own LayerNorm before it"],
    ['ln_after', true, "an adapter's own LayerNorm after it"],
    ['use_gating', true, 'gated adapters'],
    ['phm_layer', true, 'PHM (Compacter) layers'],
  ];
  for (const [key, value, what] of unsupported) {
    if (get(key) === value) throw new UserInputError(`config.${key} is ${JSON.stringify(value)}: ${what} are not supported here`, { file, field: `config.${key}` });
  }
  if (get('inv_adapter')) throw new UserInputError('config.inv_adapter is set: invertible adapters are not supported here', { file, field: 'config.inv_adapter' });
  const scaling = get('scaling');
  if (typeof scaling !== 'number') throw new UserInputError(`config.scaling is ${JSON.stringify(scaling)}: only a constant scaling is supported here`, { file, field: 'config.scaling' });
  const residual = get('residual_before_ln');
  if (residual !== true && residual !== false && residual !== 'post_add') throw new UserInputError(`config.residual_before_ln is ${JSON.stringify(residual)}`, { file, field: 'config.residual_before_ln' });
  const placement: BnPlacement = {
    mhAdapter: Boolean(config.mh_adapter),
    outputAdapter: Boolean(config.output_adapter),
    originalLnBefore: Boolean(get('original_ln_before')),
    originalLnAfter: Boolean(get('original_ln_after')),
    residualBeforeLn: residual,
    scaling,
    isParallel: get('is_parallel') === true,
  };
  if (residual === 'post_add' && !placement.originalLnBefore && !placement.isParallel) {
    throw new UserInputError('config.residual_before_ln is "post_add" without original_ln_before: AdapterHub has no residual for that adapter', { file, field: 'config.residual_before_ln' });
  }
  if (!placement.mhAdapter && !placement.outputAdapter) throw new UserInputError('config has neither mh_adapter nor output_adapter: no adapter to load', { file, field: 'config.output_adapter' });
  return placement;
}

/**
 * AdapterHub's init_weights: "houlsby" (weights truncated normal with std initStd, biases zero) or "mam_adapter"
 * (ParBnConfig's: the down projection as PyTorch's Linear default, kaiming_uniform with a = sqrt(5), i.e.
 * U(-1/sqrt(d), 1/sqrt(d)), its bias zero; the up projection all zeros, so a fresh adapter adds exactly nothing).
 */
export type BnInit = 'houlsby' | 'mam_adapter';

export class BottleneckAdapter {
  readonly params: Map<string, tf.Variable>;

  constructor(
    readonly prefix: string,
    readonly d: number,
    readonly m: number,
    readonly nonLinearity: string,
    initStd: number,
    rng: Rng,
    readonly scaling = 1,
    init: BnInit = 'houlsby',
  ) {
    const bound = 1 / Math.sqrt(d);
    this.params = new Map([
      [`${prefix}.adapter_down.0.weight`, init === 'mam_adapter' ? tf.variable(tf.randomUniform([d, m], -bound, bound, 'float32', rng.seed()), true) : initVariable([d, m], initStd, rng)],
      [`${prefix}.adapter_down.0.bias`, zerosVariable([m])],
      [`${prefix}.adapter_up.weight`, init === 'mam_adapter' ? zerosVariable([m, d]) : initVariable([m, d], initStd, rng)],
      [`${prefix}.adapter_up.bias`, zerosVariable([d])],
    ]);
  }

  private v<R extends tf.Rank>(suffix: string): tf.Tensor<R> {
    return this.params.get(`${this.prefix}.${suffix}`) as unknown as tf.Tensor<R>;
  }

  /** A(z) = s * (W_up f(W_down z + b_down) + b_up): the output before the adapter's residual add (AdapterHub's `up`). */
  delta(z: tf.Tensor2D): tf.Tensor2D {
    const down = activate(linear(z, this.v('adapter_down.0.weight'), this.v('adapter_down.0.bias')), this.nonLinearity) as tf.Tensor2D;
    const up = linear(down, this.v('adapter_up.weight'), this.v('adapter_up.bias'));
    return this.scaling === 1 ? up : tf.mul(up, this.scaling);
  }
}

type Norm = Parameters<SublayerOutputHook>[3];

/**
 * AdapterHub's Adapter.pre_forward: the adapter's input and the residual its output is added to; for a parallel
 * adapter (ParallelAdapter.pre_forward), the sublayer's input x for both.
 */
export function preForward(p: BnPlacement, h: tf.Tensor2D, x: tf.Tensor2D, norm: Norm): { input: tf.Tensor2D; residual: tf.Tensor2D } {
  if (p.isParallel) return { input: x, residual: x };
  let residual = h;
  let input = h;
  if (p.originalLnBefore) {
    input = tf.add(h, x);
    if (p.residualBeforeLn === 'post_add') residual = input;
    input = norm(input);
  }
  if (p.residualBeforeLn === false) residual = input;
  return { input, residual };
}

/** AdapterHub's Adapter.post_forward: the sublayer's residual add and LayerNorm after the adapter. */
export function postForward(p: BnPlacement, out: tf.Tensor2D, x: tf.Tensor2D, norm: Norm): tf.Tensor2D {
  return p.originalLnAfter ? norm(out, x) : out;
}

/**
 * The adapter's output with its residual: A(z) + residual (Adapter.forward), or for a parallel adapter A(x) + h
 * (ParallelAdapter.forward adds no residual; its post_forward adds the sublayer's output h first).
 */
export function adapterOutput(p: BnPlacement, delta: tf.Tensor2D, h: tf.Tensor2D, residual: tf.Tensor2D): tf.Tensor2D {
  return tf.add(delta, p.isParallel ? h : residual);
}

/** The hook that runs a sublayer's adapter (where it has one) around its residual add and LayerNorm. */
export function adapterHook(adapters: Map<number, BottleneckAdapter>, p: BnPlacement): SublayerOutputHook {
  return (i, h, x, norm) => {
    const adapter = adapters.get(i);
    if (!adapter) return norm(h, x);
    const { input, residual } = preForward(p, h, x, norm);
    return postForward(p, adapterOutput(p, adapter.delta(input), h, residual), x, norm);
  };
}

export type Sublayer = 'attention.output' | 'output';

/** One adapter per layer at one sublayer, by layer. */
export function buildAdapters(
  encoder: BertEncoder,
  cfg: MethodOptions['config'],
  layers: number[],
  sublayer: Sublayer,
  adapterName: string,
  rng: Rng,
  scaling = 1,
  init: BnInit = 'houlsby',
): Map<number, BottleneckAdapter> {
  const d = encoder.config.hiddenSize;
  if (cfg.bottleneckPerLayer && cfg.bottleneckPerLayer.length !== encoder.config.numLayers) {
    throw new Error(`method.bottleneckPerLayer has ${cfg.bottleneckPerLayer.length} entries but the model has ${encoder.config.numLayers} layers`);
  }
  const adapters = new Map<number, BottleneckAdapter>();
  for (const i of layers) {
    const prefix = `encoder.layer.${i}.${sublayer}.adapters.${adapterName}`;
    adapters.set(i, new BottleneckAdapter(prefix, d, bottleneckSize(cfg, i, d), cfg.nonLinearity, cfg.initStd, rng, scaling, init));
  }
  return adapters;
}

export function collectParams(adapters: Iterable<BottleneckAdapter>): Map<string, tf.Variable> {
  const params = new Map<string, tf.Variable>();
  for (const a of adapters) for (const [n, v] of a.params) params.set(n, v);
  return params;
}

/**
 * A reduction factor that AdapterHub turns back into exactly m: int(d // rf) == m with Python's float floor
 * division. d / (m + 0.5) puts d / rf half-way between m and m + 1, far from both (the exhaustive test in
 * test/engine/methods/bnConfig.test.ts checks every m for d = 64, 256, 768 in Python).
 */
export function reductionFactorFor(d: number, m: number): number {
  return d / (m + 0.5);
}

/** The reduction factor to declare for the size m a config gives: the config's own when it rebuilds m. */
function declaredReductionFactor(cfg: MethodConfig, d: number, m: number): number {
  if (cfg.reductionFactor !== undefined && cfg.bottleneck === undefined && sizeFromReductionFactor(d, cfg.reductionFactor) === m) return cfg.reductionFactor;
  return reductionFactorFor(d, m);
}

/** AdapterHub's keys that hold floats (written as JSON floats, 1.0 not 1: BnConfig refuses an integer scaling). */
export const BN_FLOAT_KEYS = new Set(['reduction_factor', 'scaling', 'dropout', 'phm_init_range', 'stochastic_depth', 'inv_adapter_reduction_factor']);

/**
 * The `config` of AdapterHub's adapter_config.json, every key as BnConfig's `to_dict()` writes it (v1.2.0): no
 * `architecture` (a class attribute, not a field; AdapterHub maps only its absence to BnConfig).
 */
export function bnConfig(cfg: MethodOptions['config'], d: number, p: BnPlacement): Record<string, unknown> {
  const sizeAt = (i: number) => bottleneckSize(cfg, i, d);
  const reduction: number | Record<string, number> = cfg.bottleneckPerLayer
    ? Object.fromEntries([...cfg.bottleneckPerLayer.map((mi, i) => [String(i), reductionFactorFor(d, mi)]), ['default', reductionFactorFor(d, sizeAt(0))]])
    : declaredReductionFactor(cfg, d, sizeAt(0));
  return {
    mh_adapter: p.mhAdapter,
    output_adapter: p.outputAdapter,
    reduction_factor: reduction,
    non_linearity: cfg.nonLinearity,
    original_ln_before: p.originalLnBefore,
    original_ln_after: p.originalLnAfter,
    ln_before: false,
    ln_after: false,
    init_weights: p.isParallel ? 'mam_adapter' : 'houlsby',
    init_weights_seed: null,
    is_parallel: p.isParallel,
    scaling: p.scaling,
    use_gating: false,
    residual_before_ln: p.residualBeforeLn,
    adapter_residual_before_ln: false,
    inv_adapter: null,
    inv_adapter_reduction_factor: null,
    cross_adapter: false,
    leave_out: cfg.leaveOut,
    dropout: 0.0,
    phm_layer: false,
    phm_dim: 4,
    factorized_phm_W: true,
    shared_W_phm: false,
    shared_phm_rule: true,
    factorized_phm_rule: false,
    phm_c_init: 'normal',
    phm_init_range: 0.0001,
    learn_phm: true,
    hypercomplex_nonlinearity: 'glorot-uniform',
    phm_rank: 1,
    phm_bias: true,
    stochastic_depth: 0.0,
  };
}

/**
 * A bottleneck-adapter method (houlsby, pfeiffer, parallel): its default placement (with the config's `scaling`
 * where it sets one), or the one a loaded adapter's AdapterHub config spells out (`bnConfig` in the method
 * options: adapters trained in Python, and adapters saved by earlier versions of this tool).
 */
export function bottleneckMethod(type: MethodType, defaultPlacement: BnPlacement): MethodDefinition {
  return {
    type,
    create(encoder, { adapterName, config, rng }) {
      const p = config.bnConfig
        ? placementFromBnConfig(config.bnConfig, 'adapter_config.json')
        : { ...defaultPlacement, scaling: config.scaling ?? defaultPlacement.scaling };
      const init: BnInit = p.isParallel ? 'mam_adapter' : 'houlsby';
      const layers = adapterLayerIndices(encoder, config.leaveOut);
      const attention = p.mhAdapter ? buildAdapters(encoder, config, layers, 'attention.output', adapterName, rng, p.scaling, init) : new Map<number, BottleneckAdapter>();
      const output = p.outputAdapter ? buildAdapters(encoder, config, layers, 'output', adapterName, rng, p.scaling, init) : new Map<number, BottleneckAdapter>();
      return {
        type,
        params: collectParams([...attention.values(), ...output.values()]),
        trainedBaseParams: config.trainLayerNorm ? layerNormParams(encoder) : [],
        adapterLayers: layers,
        hooks: {
          ...(p.mhAdapter ? { attentionOutput: adapterHook(attention, p) } : {}),
          ...(p.outputAdapter ? { feedForwardOutput: adapterHook(output, p) } : {}),
        },
        penalty: () => null,
        adapterConfig: () => bnConfig(config, encoder.config.hiddenSize, p),
      };
    },
  };
}
