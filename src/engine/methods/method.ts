import * as tf from '@tensorflow/tfjs-core';
import { BertEncoder, ForwardContext, LayerHooks } from '../model/bert';
import { MethodConfig, MethodType } from '../config/types';
import { Rng } from '../util/random';
import { TensorMap } from '../model/safetensors';
import type { AdapterModel } from '../model/adapterModel';
import type { AdapterFolderParts } from '../model/adapterIo';
import type { EncodedExample } from '../data/types';

/**
 * One interface for every parameter-efficient method (as AdapterHub's `adapters` does it): which parameters
 * it adds, where in the layer it hooks, which base parameters it unfreezes. A new method is its entry in
 * `catalog.ts` (what it is: options, defaults, sizes, AdapterHub's config), its file here (what it computes)
 * and one line in `registry.ts`; the trainer and the CLI know no method by name.
 */
export interface MethodInstance {
  readonly type: MethodType;
  /** Parameters the method adds, by name relative to the encoder (AdapterHub names where they exist). */
  readonly params: Map<string, tf.Variable>;
  /** Parameters the method computes with but never trains (the adapters AdapterFusion fuses); absent for most. */
  readonly fixedParams?: Map<string, tf.Variable>;
  /** Names of the encoder's own parameters the method trains. */
  readonly trainedBaseParams: string[];
  /**
   * Values the method puts into base parameters it does not train (a fusion's fused adapters' trained
   * LayerNorms, as loading them in Python puts them into the model); saved with the method's parameters.
   */
  readonly baseValues?: TensorMap;
  readonly hooks?: LayerHooks;
  /**
   * Layers that carry the method's modules (what the layer-removal ablation can remove): every layer where one of
   * its hooks changes anything. The frozen-prefix cache (model.frozenDepth()) computes the layers below the lowest
   * of them without hooks.
   */
  readonly adapterLayers: number[];
  /** Things worth a warning when training starts (a fusion's fused adapters whose LayerNorms are not used). */
  readonly notes?: string[];
  /** Writes the trained adapter folder; absent: `saveAdapterFolder` (AdapterHub's layout for one adapter). */
  saveAdapter?(dir: string, parts: AdapterFolderParts): void;
  /**
   * The base weights (and biases) with the method folded in, by encoder parameter name: present for methods that
   * reparametrise the weights (LoRA, (IA)³), what `adapter-lab merge` writes.
   */
  mergedBaseValues?(): TensorMap;
  /** Result files written after training beside eval-dev.json, by name (without `.json`): a fusion's attention. */
  extraResults?(model: AdapterModel, dev: EncodedExample[], opts: { batchSize: number; padId: number }): Record<string, unknown>;
  /** An extra loss term (AdapterBias's L0 penalty); null when the method has none. */
  penalty(ctx: ForwardContext): tf.Scalar | null;
  /** The `config` object of AdapterHub's adapter_config.json. */
  adapterConfig(): Record<string, unknown>;
}

export interface MethodOptions {
  /** The adapter's name in parameter names (AdapterHub names adapters after their task). */
  adapterName: string;
  config: MethodConfig & {
    nonLinearity: string;
    initStd: number;
    trainLayerNorm: boolean;
    leaveOut: number[];
    dropLowest: number;
    /** A loaded bottleneck adapter's AdapterHub config (adapter_config.json's `config`): its placement. */
    bnConfig?: Record<string, unknown>;
  };
  rng: Rng;
  /** The base model's reference (the config's `model`), for messages about other models. */
  baseModel?: string;
}

export interface MethodDefinition {
  readonly type: MethodType;
  create(encoder: BertEncoder, options: MethodOptions): MethodInstance;
}

/** All LayerNorm parameters of the encoder (Houlsby et al. train them with the adapters). */
export function layerNormParams(encoder: BertEncoder): string[] {
  return [...encoder.params.keys()].filter((n) => n.includes('LayerNorm.'));
}

/** A truncated-normal variable (cut at two std, as the adapter papers initialise), trainable. */
export function initVariable(shape: number[], std: number, rng: Rng): tf.Variable {
  return tf.variable(std > 0 ? tf.truncatedNormal(shape, 0, std, 'float32', rng.seed()) : tf.zeros(shape), true);
}

export function zerosVariable(shape: number[]): tf.Variable {
  return tf.variable(tf.zeros(shape), true);
}

/** Layers 0..L-1 minus `leaveOut`, checked against the model. */
export function adapterLayerIndices(encoder: BertEncoder, leaveOut: number[]): number[] {
  const L = encoder.config.numLayers;
  for (const i of leaveOut) {
    if (!Number.isInteger(i) || i < 0 || i >= L) throw new Error(`method.leaveOut: layer ${i} does not exist (the model has layers 0..${L - 1})`);
  }
  return [...Array(L).keys()].filter((i) => !leaveOut.includes(i));
}

/** A method that adds nothing and trains only base parameters (the baselines). */
export function baseOnlyMethod(type: MethodType, trainedBaseParams: string[], config: Record<string, unknown> = {}): MethodInstance {
  return {
    type,
    params: new Map(),
    trainedBaseParams,
    adapterLayers: [],
    penalty: () => null,
    adapterConfig: () => ({ architecture: type, ...config }),
  };
}
