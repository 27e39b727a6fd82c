import * as tf from '@tensorflow/tfjs-core';
import { activate, linear } from '../tf/ops';
import { initVariable, zerosVariable } from './method';
import { Rng } from '../util/random';
import { BertEncoder } from '../model/bert';
import { MethodConfig } from '../config/types';
import { bottleneckSize } from '../config/load';

/**
 * The bottleneck adapter of Houlsby et al. 2019: h + W_up f(W_down h + b_down) + b_up, with d -> m -> d and
 * near-identity initialisation (small truncated-normal weights, zero biases). 2md + d + m parameters.
 * Parameter names follow AdapterHub: `adapter_down.0` (the down projection; `.1` is the non-linearity) and
 * `adapter_up`.
 */
export class BottleneckAdapter {
  readonly params: Map<string, tf.Variable>;

  constructor(
    readonly prefix: string,
    readonly d: number,
    readonly m: number,
    readonly nonLinearity: string,
    initStd: number,
    rng: Rng,
  ) {
    this.params = new Map([
      [`${prefix}.adapter_down.0.weight`, initVariable([d, m], initStd, rng)],
      [`${prefix}.adapter_down.0.bias`, zerosVariable([m])],
      [`${prefix}.adapter_up.weight`, initVariable([m, d], initStd, rng)],
      [`${prefix}.adapter_up.bias`, zerosVariable([d])],
    ]);
  }

  private v<R extends tf.Rank>(suffix: string): tf.Tensor<R> {
    return this.params.get(`${this.prefix}.${suffix}`) as unknown as tf.Tensor<R>;
  }

  apply(h: tf.Tensor2D): tf.Tensor2D {
    return tf.add(h, this.delta(h));
  }

  /** W_up f(W_down h + b_down) + b_up: the output before the adapter's residual add (AdapterHub's `up`). */
  delta(h: tf.Tensor2D): tf.Tensor2D {
    const down = activate(linear(h, this.v('adapter_down.0.weight'), this.v('adapter_down.0.bias')), this.nonLinearity) as tf.Tensor2D;
    return linear(down, this.v('adapter_up.weight'), this.v('adapter_up.bias'));
  }
}

/** Builds one adapter per (layer, position) and the matching hook. */
export function buildAdapters(
  encoder: BertEncoder,
  cfg: MethodConfig & { nonLinearity: string; initStd: number },
  layers: number[],
  positions: { sublayer: 'attention.output' | 'output' }[],
  adapterName: string,
  rng: Rng,
): Map<string, BottleneckAdapter> {
  const d = encoder.config.hiddenSize;
  if (cfg.bottleneckPerLayer && cfg.bottleneckPerLayer.length !== encoder.config.numLayers) {
    throw new Error(`method.bottleneckPerLayer has ${cfg.bottleneckPerLayer.length} entries but the model has ${encoder.config.numLayers} layers`);
  }
  const adapters = new Map<string, BottleneckAdapter>();
  for (const i of layers) {
    for (const { sublayer } of positions) {
      const prefix = `encoder.layer.${i}.${sublayer}.adapters.${adapterName}`;
      adapters.set(`${i}:${sublayer}`, new BottleneckAdapter(prefix, d, bottleneckSize(cfg as Parameters<typeof bottleneckSize>[0], i, d), cfg.nonLinearity, cfg.initStd, rng));
    }
  }
  return adapters;
}

export function collectParams(adapters: Iterable<BottleneckAdapter>): Map<string, tf.Variable> {
  const params = new Map<string, tf.Variable>();
  for (const a of adapters) for (const [n, v] of a.params) params.set(n, v);
  return params;
}

/** AdapterHub's BnConfig keys for an adapter placed as in Houlsby et al. (before residual and LayerNorm). */
export function bnConfig(cfg: MethodConfig & { nonLinearity: string; initStd: number; leaveOut: number[] }, d: number, attention: boolean): Record<string, unknown> {
  const m = cfg.bottleneck ?? (cfg.reductionFactor ? Math.round(d / cfg.reductionFactor) : 64);
  const reduction: number | Record<string, number> = cfg.bottleneckPerLayer
    ? Object.fromEntries([...cfg.bottleneckPerLayer.map((mi, i) => [String(i), d / mi]), ['default', d / m]])
    : d / m;
  return {
    architecture: 'bottleneck',
    mh_adapter: attention,
    output_adapter: true,
    reduction_factor: reduction,
    non_linearity: cfg.nonLinearity === 'gelu' ? 'gelu' : cfg.nonLinearity,
    original_ln_before: false,
    original_ln_after: true,
    residual_before_ln: true,
    ln_before: false,
    ln_after: false,
    adapter_residual_before_ln: false,
    init_weights: 'bert',
    is_parallel: false,
    scaling: 1.0,
    use_gating: false,
    leave_out: cfg.leaveOut,
    dropout: 0.0,
  };
}
