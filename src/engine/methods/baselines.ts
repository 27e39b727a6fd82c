import { baseOnlyMethod, layerNormParams, MethodDefinition } from './method';
import { layerParamNames } from '../model/bert';

/**
 * The baselines adapters are measured against. Each trains a subset of the encoder's own parameters (and the
 * head, which every method trains).
 */

/** BitFit (Ben Zaken et al. 2022): every bias term, LayerNorm biases included. */
export const bitfit: MethodDefinition = {
  type: 'bitfit',
  create: (encoder) => baseOnlyMethod('bitfit', [...encoder.params.keys()].filter((n) => n.endsWith('.bias'))),
};

/** LayerNorm-only: every LayerNorm gain and bias. */
export const layernorm: MethodDefinition = {
  type: 'layernorm',
  create: (encoder) => baseOnlyMethod('layernorm', layerNormParams(encoder)),
};

/** Houlsby et al.'s "fine-tune the top k layers" baseline. */
export const topK: MethodDefinition = {
  type: 'top-k',
  create(encoder, { config }) {
    const L = encoder.config.numLayers;
    const k = config.k ?? 1;
    if (!Number.isInteger(k) || k < 1 || k > L) throw new Error(`method.k must be an integer in 1..${L} (the model has ${L} layers), got ${k}`);
    const names = [];
    for (let i = L - k; i < L; i++) names.push(...layerParamNames(i));
    return { ...baseOnlyMethod('top-k', names, { k }), adapterLayers: [] };
  },
};

/** Full fine-tuning: everything. */
export const full: MethodDefinition = {
  type: 'full',
  create: (encoder) => baseOnlyMethod('full', [...encoder.params.keys()]),
};

/** Head only: a probe on frozen features. */
export const head: MethodDefinition = {
  type: 'head',
  create: () => baseOnlyMethod('head', []),
};
