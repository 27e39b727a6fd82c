import { adapterLayerIndices, layerNormParams, MethodDefinition } from './method';
import { bnConfig, buildAdapters, collectParams } from './bottleneck';

/**
 * The single-adapter placement (Pfeiffer et al. 2021): one bottleneck adapter per layer, after the
 * feed-forward output only, placed as Houlsby places it (before the residual add and LayerNorm); half the
 * adapter parameters of `houlsby`. The exported adapter_config.json spells this placement out with
 * AdapterHub's explicit BnConfig keys (mh_adapter false, output_adapter true, original_ln_after true).
 */
export const pfeiffer: MethodDefinition = {
  type: 'pfeiffer',
  create(encoder, { adapterName, config, rng }) {
    const layers = adapterLayerIndices(encoder, config.leaveOut);
    const adapters = buildAdapters(encoder, config, layers, [{ sublayer: 'output' }], adapterName, rng);
    return {
      type: 'pfeiffer',
      params: collectParams(adapters.values()),
      trainedBaseParams: config.trainLayerNorm ? layerNormParams(encoder) : [],
      adapterLayers: layers,
      hooks: { afterFeedForward: (i, out) => adapters.get(`${i}:output`)?.apply(out) ?? out },
      penalty: () => null,
      adapterConfig: () => bnConfig(config, encoder.config.hiddenSize, false),
    };
  },
};
