import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { adapterLayerIndices, initVariable, layerNormParams, MethodDefinition, MethodInstance } from './method';
import { BottleneckAdapter } from './bottleneck';
import { BertEncoder, ForwardContext } from '../model/bert';
import { AdapterLabMeta, assignParams, readAdapterFolder } from '../model/adapterIo';
import { TensorMap } from '../model/safetensors';
import { baseDifferences, baseFingerprint } from '../model/fingerprint';
import { dropout, linear } from '../tf/ops';
import { UserInputError } from '../errors';
import { Rng } from '../util/random';

/**
 * AdapterFusion, stage 2 (Pfeiffer et al. 2021), as AdapterHub's `BertFusion` with the "dynamic" config
 * computes it. N adapters trained earlier on other tasks stay frozen; at the FFN output of each layer, before
 * the residual add and LayerNorm, with h the FFN output:
 *
 *   a_j = W_up,j f(W_down,j h + b_down,j) + b_up,j      each fused adapter's output before its residual add
 *   s_j = (h W_Q + b_Q) . (a_j W_K + b_K)               query from h, keys from the adapters' outputs
 *   p   = softmax_j(s)                                  per token, over the adapters present at the layer
 *   out = h + (sum_j p_j a_j) W_V                       values: W_V (no bias) of the weighted outputs
 *
 * then the layer's residual add and LayerNorm as usual. W_V is applied once to the mixed outputs rather than to
 * each a_j: the same thing, since it is linear without a bias. Trained: W_Q, b_Q, W_K, b_K, W_V per layer and the
 * head. Initialisation as AdapterHub's: query and key weights small random (std 0.02), biases zero, W_V the
 * identity with 1e-6 off the diagonal (so fusion starts as the attention-weighted sum of the adapters);
 * AdapterHub's regularisation 0.01 * ||I - W_V||^2 is the method's penalty, and dropout
 * (attention_probs_dropout_prob) falls on the scores before the softmax, as there.
 *
 * What is fused: each adapter's FFN-position adapter (`encoder.layer.i.output.adapters.<name>`), the one
 * AdapterHub's Fuse composition uses. Not used, as in AdapterHub: a Houlsby adapter's attention-position
 * adapters, and any LayerNorms a fused adapter was trained with (`trainLayerNorm`); the base model's own
 * LayerNorms are used. So adapters meant for fusion are best trained with `trainLayerNorm: false`.
 *
 * A fused adapter is a run folder (its `adapter/`) or an adapter folder; every one must be a houlsby or pfeiffer
 * adapter on the same base model (shape and fingerprint). A layer where none of the fused adapters has an
 * adapter (their `leaveOut`) gets no fusion layer; `method.leaveOut` leaves out fusion layers too.
 * Parameter names are AdapterHub's: `encoder.layer.i.output.adapter_fusion_layer.<a,b,c>.{query,key,value}.*`.
 */

export interface FusionState {
  /** The fused adapters' names (their tasks), in the order of `method.adapters`. */
  readonly adapterNames: string[];
  /** The adapter folders they were read from (copied into a fusion run's adapter folder when it is saved). */
  readonly sources: string[];
  /** Things worth a warning: fused adapters whose trained LayerNorms or attention adapters are not used. */
  readonly notes: string[];
  /** Set by analyses: receives each fusion layer's attention [tokens, adapters present at the layer]. */
  onAttention: ((layer: number, adapters: number[], probs: tf.Tensor2D) => void) | null;
  /** Forces the attention onto one fused adapter (index), to see what it alone contributes; null: learnt. */
  forcedAdapter: number | null;
}

export interface FusionInstance extends MethodInstance {
  readonly type: 'fusion';
  readonly fusion: FusionState;
}

export function isFusion(method: MethodInstance): method is FusionInstance {
  return method.type === 'fusion' && 'fusion' in method;
}

const FUSABLE = ['houlsby', 'pfeiffer'];
/** AdapterHub's DynamicFusionConfig: what this implementation computes. */
const DYNAMIC_FUSION_CONFIG = {
  key: true,
  query: true,
  value: true,
  query_before_ln: false,
  regularization: true,
  residual_before: false,
  temperature: false,
  value_before_softmax: true,
  value_initialized: true,
  dropout_prob: null,
};
const VALUE_REGULARIZATION = 0.01;

/** The adapter folder a `method.adapters` entry names: a run folder's `adapter/`, or an adapter folder. */
export function fusedAdapterDir(entry: string): string {
  const fail = (why: string) => new UserInputError(`${entry}: ${why}`, { field: 'method.adapters' });
  if (!fs.existsSync(entry) || !fs.statSync(entry).isDirectory()) throw fail('no such folder (give a run folder or an adapter folder)');
  if (fs.existsSync(path.join(entry, 'adapter_fusion_config.json'))) throw fail('is an AdapterFusion; fuse single adapters (houlsby or pfeiffer runs)');
  if (fs.existsSync(path.join(entry, 'adapter_config.json'))) return entry;
  if (fs.existsSync(path.join(entry, 'run.json'))) {
    const adapterDir = path.join(entry, 'adapter');
    if (fs.existsSync(path.join(adapterDir, 'adapter_config.json'))) return adapterDir;
    let status = 'unknown';
    try {
      status = JSON.parse(fs.readFileSync(path.join(entry, 'run.json'), 'utf8')).status;
    } catch {
      // the message below still says what is missing
    }
    throw fail(`the run has no trained adapter yet (status: ${status})`);
  }
  throw fail('neither a run folder (run.json) nor an adapter folder (adapter_config.json)');
}

/** Refuses an adapter trained on another base model than `encoder`, saying what differs. */
function checkSameBase(meta: AdapterLabMeta, entry: string, encoder: BertEncoder, fingerprint: () => string, baseModel: string | undefined): void {
  const differences = baseDifferences(meta.base, encoder, fingerprint);
  if (differences.length === 0) return;
  throw new UserInputError(
    `the adapter "${meta.adapterName}" (${entry}) was trained on another base model, ${meta.model}: ` +
      `${differences.join(', ')}${baseModel ? ` as in this config's model ${baseModel}` : ''}. AdapterFusion needs adapters trained on the same base model.`,
    { field: 'method.adapters' },
  );
}

/** One fused adapter's FFN-position adapters, by layer, frozen and holding the saved values. */
function loadFusedAdapter(values: TensorMap, name: string, nonLinearity: string, encoder: BertEncoder, where: string): Map<number, BottleneckAdapter> {
  const byLayer = new Map<number, BottleneckAdapter>();
  for (let i = 0; i < encoder.config.numLayers; i++) {
    const prefix = `encoder.layer.${i}.output.adapters.${name}`;
    const down = values.get(`${prefix}.adapter_down.0.weight`);
    if (!down) continue;
    const adapter = new BottleneckAdapter(prefix, encoder.config.hiddenSize, down.shape[1], nonLinearity, 0, new Rng(0));
    assignParams(adapter.params, values, where);
    for (const v of adapter.params.values()) v.trainable = false;
    byLayer.set(i, adapter);
  }
  return byLayer;
}

function valueInit(d: number): tf.Variable {
  return tf.variable(tf.tidy(() => tf.add(tf.mul(tf.eye(d), 1 - 1e-6), 1e-6)), true);
}

export const fusion: MethodDefinition = {
  type: 'fusion',
  create(encoder, { config, rng, baseModel }): FusionInstance {
    const entries = config.adapters ?? [];
    if (entries.length === 0) throw new UserInputError('fusion needs at least one adapter to fuse', { field: 'method.adapters' });
    const d = encoder.config.hiddenSize;
    let fp: string | undefined;
    const fingerprint = () => (fp ??= baseFingerprint(encoder));

    const names: string[] = [];
    const sources: string[] = [];
    const notes: string[] = [];
    const fused: Map<number, BottleneckAdapter>[] = [];
    const fixedParams = new Map<string, tf.Variable>();
    try {
      for (const entry of entries) {
        const dir = fusedAdapterDir(entry);
        const folder = readAdapterFolder(dir);
        const meta = folder.meta;
        if (!FUSABLE.includes(meta.method.type)) {
          throw new UserInputError(`${entry} is a ${meta.method.type} run; AdapterFusion fuses bottleneck adapters (houlsby or pfeiffer)`, { field: 'method.adapters' });
        }
        checkSameBase(meta, entry, encoder, fingerprint, baseModel);
        const other = names.indexOf(meta.adapterName);
        if (other >= 0) {
          throw new UserInputError(`${entries[other]} and ${entry} are both adapters named "${meta.adapterName}"; fused adapters need distinct names (their tasks' names)`, { field: 'method.adapters' });
        }
        const byLayer = loadFusedAdapter(folder.adapterParams, meta.adapterName, String(meta.method.nonLinearity ?? 'gelu'), encoder, `adapter ${dir}`);
        if (byLayer.size === 0) throw new UserInputError(`${entry} has no FFN-position adapter weights for "${meta.adapterName}"`, { field: 'method.adapters' });
        for (const a of byLayer.values()) for (const [n, v] of a.params) fixedParams.set(n, v);
        if (meta.method.type === 'houlsby') notes.push(`${meta.adapterName}: a Houlsby adapter; its attention-position adapters are not used by the fusion (as in AdapterHub)`);
        if (meta.method.trainLayerNorm) notes.push(`${meta.adapterName}: trained with its LayerNorms (trainLayerNorm); the fusion uses the base model's LayerNorms (as AdapterHub does), so this adapter works in a slightly different model than it was trained in`);
        names.push(meta.adapterName);
        sources.push(dir);
        fused.push(byLayer);
      }
    } catch (err) {
      for (const v of fixedParams.values()) v.dispose();
      throw err;
    }

    const fusionName = names.join(',');
    const prefixOf = (i: number) => `encoder.layer.${i}.output.adapter_fusion_layer.${fusionName}`;
    const withFusion = adapterLayerIndices(encoder, config.leaveOut).filter((i) => fused.some((a) => a.has(i)));
    const presentAt = new Map(withFusion.map((i) => [i, fused.map((a, j) => (a.has(i) ? j : -1)).filter((j) => j >= 0)]));
    const params = new Map<string, tf.Variable>();
    for (const i of withFusion) {
      const p = prefixOf(i);
      params.set(`${p}.query.weight`, initVariable([d, d], 0.02, rng));
      params.set(`${p}.query.bias`, tf.variable(tf.zeros([d]), true));
      params.set(`${p}.key.weight`, initVariable([d, d], 0.02, rng));
      params.set(`${p}.key.bias`, tf.variable(tf.zeros([d]), true));
      params.set(`${p}.value.weight`, valueInit(d));
    }
    const w = (i: number, n: string) => params.get(`${prefixOf(i)}.${n}`) as unknown as tf.Tensor2D;
    const b = (i: number, n: string) => params.get(`${prefixOf(i)}.${n}`) as unknown as tf.Tensor1D;

    const state: FusionState = { adapterNames: names, sources, notes, onAttention: null, forcedAdapter: null };

    const fuse = (i: number, h: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D => {
      const present = presentAt.get(i);
      if (!present) return h;
      const outputs = present.map((j) => fused[j].get(i)!.delta(h)); // a_j, [n, d] each
      const query = linear(h, w(i, 'query.weight'), b(i, 'query.bias'));
      const keys = tf.split(linear(tf.concat(outputs, 0), w(i, 'key.weight'), b(i, 'key.bias')), outputs.length, 0) as tf.Tensor2D[];
      let scores = tf.concat(keys.map((k) => tf.sum(tf.mul(k, query), -1, true)), 1) as tf.Tensor2D; // [n, N]
      if (ctx.training && ctx.attentionDropout > 0 && ctx.rng) scores = dropout(scores, ctx.attentionDropout, ctx.rng.seed()) as tf.Tensor2D;
      let probs = tf.softmax(scores) as tf.Tensor2D;
      if (state.forcedAdapter !== null) {
        // All attention on the forced adapter; none at all at a layer where it has no adapter.
        const forced = present.map((j) => (j === state.forcedAdapter ? 1 : 0));
        probs = tf.tile(tf.tensor2d([forced]), [h.shape[0], 1]) as tf.Tensor2D;
      }
      state.onAttention?.(i, present, probs);
      const weights = tf.split(probs, present.length, 1);
      const mixed = outputs.length === 1 ? tf.mul(weights[0], outputs[0]) : tf.addN(outputs.map((a, j) => tf.mul(weights[j], a)));
      return tf.add(linear(mixed as tf.Tensor2D, w(i, 'value.weight'), null), h);
    };

    return {
      type: 'fusion',
      params,
      fixedParams,
      trainedBaseParams: config.trainLayerNorm ? layerNormParams(encoder) : [],
      adapterLayers: withFusion,
      hooks: { afterFeedForward: fuse },
      penalty: () => {
        if (withFusion.length === 0) return null;
        const eye = tf.eye(d);
        const terms = withFusion.map((i) => tf.sum(tf.square(tf.sub(eye, w(i, 'value.weight')))));
        return tf.mul(tf.addN(terms), VALUE_REGULARIZATION) as tf.Scalar;
      },
      adapterConfig: () => ({ ...DYNAMIC_FUSION_CONFIG }),
      fusion: state,
    };
  },
};
