import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { adapterLayerIndices, initVariable, layerNormParams, MethodDefinition, MethodInstance } from './method';
import { BnPlacement, BottleneckAdapter, HOULSBY_PLACEMENT, PFEIFFER_PLACEMENT, placementFromBnConfig, postForward, preForward, Sublayer } from './bottleneck';
import { BertEncoder, ForwardContext, SublayerOutputHook } from '../model/bert';
import { AdapterLabMeta, assignParams, readAdapterFolder } from '../model/adapterIo';
import { TensorMap } from '../model/safetensors';
import { baseDifferences, baseFingerprint } from '../model/fingerprint';
import { dropout, linear } from '../tf/ops';
import { UserInputError } from '../errors';
import { Rng } from '../util/random';
import { saveFusionFolder } from '../model/fusionIo';
import { ADAPTER_DIR, RESULT, RUN_FILE } from '../runs/files';
import { fusionAttention } from '../analysis/fusionAttention';

/**
 * AdapterFusion, stage 2 (Pfeiffer et al. 2021), as AdapterHub's `BertFusion` with the "dynamic" config
 * computes it (methods/bottleneck.py compose_fuse and methods/modeling.py BertFusion). N adapters trained
 * earlier on other tasks stay frozen. At every sublayer where all fused adapters have an adapter (the
 * feed-forward output; the attention output too when they are all Houlsby adapters), with h the sublayer output
 * and x its input, and the last fused adapter's placement (AdapterHub takes pre_forward and post_forward from it):
 *
 *   z, r = pre_forward(h, x)                            z = h for Houlsby, LN(h + x) for Pfeiffer; r = h
 *   a_j  = A_j(z)                                       each fused adapter's output before its residual add
 *   s_j  = (z W_Q + b_Q) . (a_j W_K + b_K)              query from z, keys from the adapters' outputs
 *   p    = softmax_j(s)                                 per token, over the adapters present at the layer
 *   out  = post_forward(r + (sum_j p_j a_j) W_V, x)     LN(. + x)
 *
 * W_V is applied once to the mixed outputs rather than to each a_j: the same thing, since it is linear without
 * a bias. Trained: W_Q, b_Q, W_K, b_K, W_V per fusion layer and the head. Initialisation as AdapterHub's: query
 * and key weights small random (std 0.02), biases zero, W_V the identity with 1e-6 off the diagonal;
 * AdapterHub's regularisation 0.01 * ||I - W_V||^2 is the method's penalty, and dropout
 * (attention_probs_dropout_prob) falls on the scores before the softmax, as there.
 *
 * As AdapterHub: adapters that differ in where they sit (mh_adapter: Houlsby with Pfeiffer) are refused; at a
 * layer where some fused adapters have an adapter but the last one has none, AdapterHub fails, so that is
 * refused too. LayerNorms a fused adapter was trained with (`trainLayerNorm`) are used as loading the adapters
 * in Python in the order of `method.adapters` leaves them: the last fused adapter that carries LayerNorms
 * sets them; the fusion folder carries them as well, so that `load_adapter_fusion` sets the same ones.
 *
 * A fused adapter is a run folder (its `adapter/`) or an adapter folder (saved here or by AdapterHub); every one
 * must be a bottleneck adapter on the same base model (shape and fingerprint). `method.leaveOut` is refused:
 * AdapterHub fuses at every layer where the adapters are. Parameter names are AdapterHub's:
 * `encoder.layer.i.{attention.output,output}.adapter_fusion_layer.<a,b,c>.{query,key,value}.*`.
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
  if (fs.existsSync(path.join(entry, RUN_FILE))) {
    const adapterDir = path.join(entry, ADAPTER_DIR);
    if (fs.existsSync(path.join(adapterDir, 'adapter_config.json'))) return adapterDir;
    let status = 'unknown';
    try {
      status = JSON.parse(fs.readFileSync(path.join(entry, RUN_FILE), 'utf8')).status;
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

/** One fused adapter's adapters at one sublayer, by layer, frozen and holding the saved values. */
function loadFusedAdapter(values: TensorMap, name: string, sublayer: Sublayer, nonLinearity: string, scaling: number, encoder: BertEncoder, where: string): Map<number, BottleneckAdapter> {
  const byLayer = new Map<number, BottleneckAdapter>();
  for (let i = 0; i < encoder.config.numLayers; i++) {
    const prefix = `encoder.layer.${i}.${sublayer}.adapters.${name}`;
    const down = values.get(`${prefix}.adapter_down.0.weight`);
    if (!down) continue;
    const adapter = new BottleneckAdapter(prefix, encoder.config.hiddenSize, down.shape[1], nonLinearity, 0, new Rng(0), scaling);
    assignParams(adapter.params, values, where);
    for (const v of adapter.params.values()) v.trainable = false;
    byLayer.set(i, adapter);
  }
  return byLayer;
}

function valueInit(d: number): tf.Variable {
  return tf.variable(tf.tidy(() => tf.add(tf.mul(tf.eye(d), 1 - 1e-6), 1e-6)), true);
}

/** The sublayers AdapterHub fuses at, as its BottleneckLayer location keys name them. */
const SUBLAYERS: { sublayer: Sublayer; key: 'mhAdapter' | 'outputAdapter'; configKey: string }[] = [
  { sublayer: 'attention.output', key: 'mhAdapter', configKey: 'mh_adapter' },
  { sublayer: 'output', key: 'outputAdapter', configKey: 'output_adapter' },
];

export const fusion: MethodDefinition = {
  type: 'fusion',
  create(encoder, { config, rng, baseModel }): FusionInstance {
    const entries = config.adapters ?? [];
    if (entries.length === 0) throw new UserInputError('fusion needs at least one adapter to fuse', { field: 'method.adapters' });
    if (config.leaveOut.length > 0) {
      throw new UserInputError('AdapterFusion fuses at every layer where the fused adapters are (as AdapterHub does); leave layers out when training the adapters instead', { field: 'method.leaveOut' });
    }
    const d = encoder.config.hiddenSize;
    let fp: string | undefined;
    const fingerprint = () => (fp ??= baseFingerprint(encoder));

    const names: string[] = [];
    const sources: string[] = [];
    const notes: string[] = [];
    const placements: BnPlacement[] = [];
    /** fused[s][j]: adapter j's adapters at sublayer s, by layer. */
    const fused: Map<number, BottleneckAdapter>[][] = SUBLAYERS.map(() => []);
    const fixedParams = new Map<string, tf.Variable>();
    const baseValues: TensorMap = new Map();
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
        const bn = meta.method.bnConfig as Record<string, unknown> | undefined;
        const placement = bn ? placementFromBnConfig(bn, path.join(dir, 'adapter_config.json')) : meta.method.type === 'houlsby' ? HOULSBY_PLACEMENT : PFEIFFER_PLACEMENT;
        // AdapterHub's add_fusion_layer: "All given adapters must define the same value for config attribute mh_adapter".
        for (const { key, configKey } of SUBLAYERS) {
          if (placements.length > 0 && placements[0][key] !== placement[key]) {
            throw new UserInputError(
              `method.adapters: ${entries[0]} and ${entry} differ in ${configKey} (${placements[0][key]} and ${placement[key]}): AdapterHub refuses to fuse them ("All given adapters must define the same value for config attribute ${configKey}"); fuse Houlsby adapters with Houlsby adapters and Pfeiffer adapters with Pfeiffer adapters`,
              { field: 'method.adapters' },
            );
          }
        }
        const nonLinearity = String(meta.method.nonLinearity ?? 'gelu');
        SUBLAYERS.forEach(({ sublayer, key }, s) => {
          const byLayer = placement[key] ? loadFusedAdapter(folder.adapterParams, meta.adapterName, sublayer, nonLinearity, placement.scaling, encoder, `adapter ${dir}`) : new Map<number, BottleneckAdapter>();
          for (const a of byLayer.values()) for (const [n, v] of a.params) fixedParams.set(n, v);
          fused[s].push(byLayer);
        });
        if (fused.every((f) => f[f.length - 1].size === 0)) throw new UserInputError(`${entry} has no adapter weights for "${meta.adapterName}"`, { field: 'method.adapters' });
        const layerNorms = [...folder.adapterParams].filter(([n]) => n.includes('LayerNorm.'));
        if (layerNorms.length > 0) {
          for (const [n, v] of layerNorms) baseValues.set(n, v);
          notes.push(`${meta.adapterName}: trained with its LayerNorms; the fusion uses them (as loading the adapters in this order in Python does: the last one with LayerNorms sets them)`);
        }
        names.push(meta.adapterName);
        sources.push(dir);
        placements.push(placement);
      }
    } catch (err) {
      for (const v of fixedParams.values()) v.dispose();
      throw err;
    }

    const last = names.length - 1;
    const lastPlacement = placements[last];
    const fusionName = names.join(',');
    const prefixOf = (s: number, i: number) => `encoder.layer.${i}.${SUBLAYERS[s].sublayer}.adapter_fusion_layer.${fusionName}`;
    // Per sublayer: the layers with a fusion layer, and the adapters present at each.
    const presentAt: Map<number, number[]>[] = SUBLAYERS.map((_, s) => {
      const m = new Map<number, number[]>();
      for (let i = 0; i < encoder.config.numLayers; i++) {
        const present = fused[s].map((a, j) => (a.has(i) ? j : -1)).filter((j) => j >= 0);
        if (present.length === 0) continue;
        if (!fused[s][last].has(i)) {
          throw new UserInputError(
            `method.adapters: at layer ${i} (${SUBLAYERS[s].sublayer}) ${names[present[0]]} has an adapter but the last fused adapter, ${names[last]}, has none; AdapterHub takes the fusion's placement from the last adapter and fails there. List an adapter that has every layer last`,
            { field: 'method.adapters' },
          );
        }
        m.set(i, present);
      }
      return m;
    });
    const params = new Map<string, tf.Variable>();
    SUBLAYERS.forEach((_, s) => {
      for (const i of presentAt[s].keys()) {
        const p = prefixOf(s, i);
        params.set(`${p}.query.weight`, initVariable([d, d], 0.02, rng));
        params.set(`${p}.query.bias`, tf.variable(tf.zeros([d]), true));
        params.set(`${p}.key.weight`, initVariable([d, d], 0.02, rng));
        params.set(`${p}.key.bias`, tf.variable(tf.zeros([d]), true));
        params.set(`${p}.value.weight`, valueInit(d));
      }
    });
    const w = (s: number, i: number, n: string) => params.get(`${prefixOf(s, i)}.${n}`) as unknown as tf.Tensor2D;
    const b = (s: number, i: number, n: string) => params.get(`${prefixOf(s, i)}.${n}`) as unknown as tf.Tensor1D;

    const state: FusionState = { adapterNames: names, sources, notes, onAttention: null, forcedAdapter: null };

    const fuseAt =
      (s: number): SublayerOutputHook =>
      (i, h, x, norm, ctx) => {
        const present = presentAt[s].get(i);
        if (!present) return norm(h, x);
        const { input, residual } = preForward(lastPlacement, h, x, norm);
        const outputs = present.map((j) => fused[s][j].get(i)!.delta(input)); // a_j, [n, d] each
        const query = linear(input, w(s, i, 'query.weight'), b(s, i, 'query.bias'));
        const keys = tf.split(linear(tf.concat(outputs, 0), w(s, i, 'key.weight'), b(s, i, 'key.bias')), outputs.length, 0) as tf.Tensor2D[];
        let scores = tf.concat(keys.map((k) => tf.sum(tf.mul(k, query), -1, true)), 1) as tf.Tensor2D; // [n, N]
        if (ctx.training && ctx.attentionDropout > 0 && ctx.rng) scores = dropout(scores, ctx.attentionDropout, ctx.rng.seed()) as tf.Tensor2D;
        let probs = tf.softmax(scores) as tf.Tensor2D;
        if (state.forcedAdapter !== null) {
          // All attention on the forced adapter; none at all at a layer where it has no adapter.
          const forced = present.map((j) => (j === state.forcedAdapter ? 1 : 0));
          probs = tf.tile(tf.tensor2d([forced]), [h.shape[0], 1]) as tf.Tensor2D;
        }
        // The attention maps analyses read are the feed-forward position's (one per layer).
        if (SUBLAYERS[s].sublayer === 'output') state.onAttention?.(i, present, probs);
        const weights = tf.split(probs, present.length, 1);
        const mixed = outputs.length === 1 ? tf.mul(weights[0], outputs[0]) : tf.addN(outputs.map((a, j) => tf.mul(weights[j], a)));
        return postForward(lastPlacement, tf.add(linear(mixed as tf.Tensor2D, w(s, i, 'value.weight'), null), residual), x, norm);
      };

    const fusionLayers = [...new Set(presentAt.flatMap((m) => [...m.keys()]))].sort((a, b2) => a - b2);
    const valueWeights = () => SUBLAYERS.flatMap((_, s) => [...presentAt[s].keys()].map((i) => w(s, i, 'value.weight')));
    return {
      type: 'fusion',
      params,
      fixedParams,
      trainedBaseParams: config.trainLayerNorm ? layerNormParams(encoder) : [],
      ...(baseValues.size > 0 ? { baseValues } : {}),
      adapterLayers: fusionLayers,
      hooks: {
        ...(presentAt[0].size > 0 ? { attentionOutput: fuseAt(0) } : {}),
        feedForwardOutput: fuseAt(1),
      },
      penalty: () => {
        const values = valueWeights();
        if (values.length === 0) return null;
        const eye = tf.eye(d);
        const terms = values.map((v) => tf.sum(tf.square(tf.sub(eye, v))));
        return tf.mul(tf.addN(terms), VALUE_REGULARIZATION) as tf.Scalar;
      },
      adapterConfig: () => ({ ...DYNAMIC_FUSION_CONFIG }),
      notes: state.notes,
      // A fusion's folder holds the fusion layers beside copies of the adapters it fuses.
      saveAdapter: (dir, parts) =>
        saveFusionFolder(dir, {
          fusionParams: parts.adapterParams,
          headParams: parts.headParams,
          fusionConfig: parts.adapterConfig,
          headConfig: parts.headConfig,
          meta: parts.meta,
          fused: state.adapterNames.map((name, i) => ({ name, dir: state.sources[i] })),
        }),
      extraResults: (model, dev, opts) => ({ [RESULT.fusionAttention]: fusionAttention(model, dev, opts) }),
      fusion: state,
    };
  },
};
