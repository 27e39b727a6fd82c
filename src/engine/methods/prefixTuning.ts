import * as tf from '@tensorflow/tfjs-core';
import { activate, linear, sharedDropout } from '../tf/ops';
import { adapterLayerIndices, layerNormParams, MethodDefinition, MethodInstance } from './method';
import { BertEncoder, ForwardContext, KeysValues } from '../model/bert';
import { saveAdapterFolder } from '../model/adapterIo';
import { UserInputError } from '../errors';
import { PREFIX_TUNING_DEFAULTS } from './catalog';

/**
 * Prefix-tuning (Li & Liang 2021) as AdapterHub's PrefixTuningConfig computes it (methods/prefix_tuning.py of
 * adapter-hub/adapters v1.2): each layer with a prefix attends over P trained key/value pairs before the tokens'
 * own (the queries stay the tokens'; the attention mask gets P zeros in front, attended). For the n layers with a
 * prefix, the keys and values of all of them come from one [P, n·2·d] matrix KV, laid out by position p, then
 * layer k, then key (2k) or value (2k + 1), each d = H·dh wide (heads in the usual order):
 *
 *   reparametrised (flat: false, AdapterHub's PrefixTuning):  KV = W2 f(E W1 + b1) + b2, with E the P x d
 *     embedding `wte`, W1 d x bottleneckSize, f tanh, W2 bottleneckSize x n·2·d (`control_trans.0` and `.2`);
 *   flat (flat: true, FlatPrefixTuning): KV is the trained vector `control_trans` itself (P·n·2·d).
 *
 * Dropout (`dropout`) applies to KV while training. Training uses the reparametrisation by default, as the paper
 * does; the saved adapter is the flat form (AdapterHub's eject_prefix_tuning: KV computed once), with
 * `flat: true` in its config so that AdapterHub builds a FlatPrefixTuning for it. Initialised as AdapterHub's
 * modules are: E and the flat vector N(0, 1) (nn.Embedding, torch.randn), the two Linear layers PyTorch's default
 * U(-1/sqrt(in), 1/sqrt(in)) for weights and biases. Prefix-tuning has no identity at initialisation: a fresh
 * prefix already changes every attention.
 *
 * Parameter names are AdapterHub's: the prefix pool of the base model, `prefix_tuning.prefix_tunings.<name>.
 * self_prefix.…` ("self" for DistilBERT). AdapterHub's save_adapter also writes the same tensors under each
 * layer's `encoder.layer.<i>.attention.self.prefix_tuning.pool.…` (the pool is a submodule of every layer);
 * loading reads either, and the tensors are written once, under the base model's name, which is all
 * AdapterHub's loader needs (the copies are the same parameter).
 */

/** The prefix pool's name prefix for an adapter: AdapterHub's, with the model's location key (encoderVariants.ts). */
export function prefixPoolName(adapterName: string, encoder: BertEncoder): string {
  return `prefix_tuning.prefix_tunings.${adapterName}.${encoder.variant.prefixLocation}`;
}

/**
 * Where AdapterHub's state dict holds the prefix pool again, under each layer's PrefixTuningLayer (the pool is a
 * submodule of every layer): `…layer.<i>.attention[.self].prefix_tuning.pool.prefix_tunings.<name>.…`.
 */
export const PER_LAYER_POOL = '.prefix_tuning.pool.prefix_tunings.';

export interface PrefixTuningInstance extends MethodInstance {
  /** KV in the flat form (AdapterHub's eject): the `control_trans` vector of FlatPrefixTuning, P·n·2·d. */
  flatPrefix(): tf.Tensor1D;
}

export const prefixTuning: MethodDefinition = {
  type: 'prefix-tuning',
  create(encoder, { adapterName, config, rng }): PrefixTuningInstance {
    const { hiddenSize: d } = encoder.config;
    const P = config.prefixLength ?? PREFIX_TUNING_DEFAULTS.prefix_length;
    const b = config.bottleneckSize ?? PREFIX_TUNING_DEFAULTS.bottleneck_size;
    const flat = config.flat === true;
    const rate = config.dropout ?? 0;
    const nonLinearity = config.nonLinearity ?? 'tanh';
    const layers = adapterLayerIndices(encoder, config.leaveOut);
    const n = layers.length;
    /** Layer index -> its position k among the layers with a prefix (AdapterHub's prefix_id). */
    const slot = new Map(layers.map((layer, k) => [layer, k]));
    const pool = prefixPoolName(adapterName, encoder);
    const uniform = (shape: number[], fanIn: number) => tf.variable(tf.randomUniform(shape, -1 / Math.sqrt(fanIn), 1 / Math.sqrt(fanIn), 'float32', rng.seed()), true);
    const normal = (shape: number[]) => tf.variable(tf.randomNormal(shape, 0, 1, 'float32', rng.seed()), true);
    const params = new Map<string, tf.Variable>(
      flat
        ? [[`${pool}.control_trans`, normal([P * n * 2 * d])]]
        : [
            [`${pool}.wte.weight`, normal([P, d])],
            [`${pool}.control_trans.0.weight`, uniform([d, b], d)],
            [`${pool}.control_trans.0.bias`, uniform([b], d)],
            [`${pool}.control_trans.2.weight`, uniform([b, n * 2 * d], b)],
            [`${pool}.control_trans.2.bias`, uniform([n * 2 * d], b)],
          ],
    );
    const v = <R extends tf.Rank>(suffix: string) => params.get(`${pool}.${suffix}`) as unknown as tf.Tensor<R>;

    /**
     * Layer k's keys and values, [P, 2d] (keys first): columns 2kd..2(k+1)d of KV. The reparametrised form
     * computes only those columns of W2 (the same numbers as the whole product, column by column); the saved
     * flat form is built from this same function, so a loaded adapter computes bit for bit what the trained one did.
     */
    const layerKeyValues = (k: number): tf.Tensor2D => {
      if (flat) return tf.slice(tf.reshape(v<tf.Rank.R1>('control_trans'), [P, n * 2 * d]) as tf.Tensor2D, [0, 2 * k * d], [P, 2 * d]);
      const hidden = activate(linear(v<tf.Rank.R2>('wte.weight'), v('control_trans.0.weight'), v('control_trans.0.bias')), nonLinearity) as tf.Tensor2D;
      return linear(hidden, tf.slice(v<tf.Rank.R2>('control_trans.2.weight'), [0, 2 * k * d], [b, 2 * d]), tf.slice(v<tf.Rank.R1>('control_trans.2.bias'), [2 * k * d], [2 * d]));
    };

    const keyValues = (i: number, kv: KeysValues, ctx: ForwardContext): KeysValues => {
      const k = slot.get(i);
      if (k === undefined) return kv;
      const [B, , dk] = kv.keys.shape;
      if (dk !== d) throw new Error(`prefix-tuning: keys of width ${dk}, expected ${d}`);
      let prefix = layerKeyValues(k);
      // One prefix for the whole batch: its mask is the step's, not an example's (the same in every worker).
      if (ctx.training && rate > 0 && ctx.rng) prefix = sharedDropout(prefix, rate, ctx.rng.seed()) as tf.Tensor2D;
      const batch = (x: tf.Tensor2D) => tf.broadcastTo(tf.reshape(x, [1, P, d]), [B, P, d]) as tf.Tensor3D;
      return {
        keys: tf.concat([batch(tf.slice(prefix, [0, 0], [P, d])), kv.keys], 1),
        values: tf.concat([batch(tf.slice(prefix, [0, d], [P, d])), kv.values], 1),
        // PrefixTuningLayer.compose_single: the prefix positions are attended (an additive 0) in every row.
        bias: tf.concat([tf.zeros([B, 1, 1, P]), kv.bias], 3) as tf.Tensor4D,
      };
    };

    const adapterConfig = (asFlat: boolean) => ({
      ...PREFIX_TUNING_DEFAULTS,
      leave_out: [...config.leaveOut],
      flat: asFlat,
      prefix_length: P,
      bottleneck_size: b,
      non_linearity: nonLinearity,
      dropout: rate,
    });

    const flatPrefix = (): tf.Tensor1D =>
      tf.tidy(() => tf.reshape(tf.concat(layers.map((_, k) => layerKeyValues(k)), 1), [P * n * 2 * d]) as tf.Tensor1D);

    return {
      type: 'prefix-tuning',
      params,
      trainedBaseParams: config.trainLayerNorm ? layerNormParams(encoder) : [],
      adapterLayers: layers,
      hooks: { keyValues },
      penalty: () => null,
      adapterConfig: () => adapterConfig(flat),
      flatPrefix,
      saveAdapter(dir, parts) {
        if (flat) return saveAdapterFolder(dir, parts);
        // The flat form, as eject_prefix_tuning leaves it: the MLP is for training only.
        const flatVar = tf.variable(flatPrefix(), false);
        try {
          const adapterParams = new Map([...parts.adapterParams].filter(([name]) => !name.startsWith(`${pool}.`)));
          adapterParams.set(`${pool}.control_trans`, flatVar);
          saveAdapterFolder(dir, { ...parts, adapterParams, adapterConfig: adapterConfig(true), meta: { ...parts.meta, method: { ...parts.meta.method, flat: true } } });
        } finally {
          flatVar.dispose();
        }
      },
    };
  },
};

/**
 * The method options a saved prefix-tuning config (AdapterHub's PrefixTuningConfig `config` object) describes;
 * refuses, naming the key, what this engine does not compute (gating, a cross-attention-only prefix).
 */
export function prefixOptionsFromConfig(config: Record<string, unknown>, file: string): Record<string, unknown> {
  const get = (k: keyof typeof PREFIX_TUNING_DEFAULTS) => (k in config ? config[k] : PREFIX_TUNING_DEFAULTS[k]);
  if (get('use_gating') === true) throw new UserInputError('config.use_gating is true: gated prefixes (UniPELT) are not supported here', { file, field: 'config.use_gating' });
  if (get('encoder_prefix') === false) throw new UserInputError('config.encoder_prefix is false: no prefix on an encoder', { file, field: 'config.encoder_prefix' });
  const intField = (k: 'prefix_length' | 'bottleneck_size') => {
    const value = get(k);
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw new UserInputError(`config.${k} is ${JSON.stringify(value)}: expected a positive integer`, { file, field: `config.${k}` });
    return value;
  };
  const nonLinearity = String(get('non_linearity')).toLowerCase();
  if (!['relu', 'gelu', 'gelu_new', 'swish', 'silu', 'tanh'].includes(nonLinearity)) {
    throw new UserInputError(`config.non_linearity "${String(get('non_linearity'))}" is not supported here (relu, gelu, gelu_new, swish, silu, tanh)`, { file, field: 'config.non_linearity' });
  }
  const rate = get('dropout');
  if (typeof rate !== 'number' || rate < 0 || rate >= 1) throw new UserInputError(`config.dropout is ${JSON.stringify(rate)}: expected a number in [0, 1)`, { file, field: 'config.dropout' });
  const leaveOut = get('leave_out');
  if (!Array.isArray(leaveOut) || !leaveOut.every((i) => Number.isInteger(i))) throw new UserInputError('config.leave_out must be a list of layer numbers', { file, field: 'config.leave_out' });
  return { prefixLength: intField('prefix_length'), bottleneckSize: intField('bottleneck_size'), flat: get('flat') === true, nonLinearity, dropout: rate, leaveOut };
}
