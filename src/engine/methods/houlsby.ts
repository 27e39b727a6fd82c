import { adapterLayerIndices, layerNormParams, MethodDefinition } from './method';
import { bnConfig, buildAdapters, collectParams } from './bottleneck';

/**
 * Houlsby et al. 2019: two bottleneck adapters per layer, after the attention output projection and after the
 * feed-forward output, each before the residual add and LayerNorm; LayerNorms trained too (trainLayerNorm).
 */
export const houlsby: MethodDefinition = {
  type: 'houlsby',
  create(encoder, { adapterName, config, rng }) {
    const layers = adapterLayerIndices(encoder, config.leaveOut);
    const adapters = buildAdapters(encoder, config, layers, [{ sublayer: 'attention.output' }, { sublayer: 'output' }], adapterName, rng);
    return {
      type: 'houlsby',
      params: collectParams(adapters.values()),
      trainedBaseParams: config.trainLayerNorm ? layerNormParams(encoder) : [],
      adapterLayers: layers,
      hooks: {
        afterAttention: (i, out) => adapters.get(`${i}:attention.output`)?.apply(out) ?? out,
        afterFeedForward: (i, out) => adapters.get(`${i}:output`)?.apply(out) ?? out,
      },
      penalty: () => null,
      adapterConfig: () => bnConfig(config, encoder.config.hiddenSize, true),
    };
  },
};
