import { bottleneckMethod, HOULSBY_PLACEMENT } from './bottleneck';

/**
 * Houlsby et al. 2019 (AdapterHub's DoubleSeqBnConfig): two bottleneck adapters per layer, after the attention
 * output projection and after the feed-forward output, each before the residual add and LayerNorm:
 * LN(x + h + A(h)). LayerNorms trained too (trainLayerNorm).
 */
export const houlsby = bottleneckMethod('houlsby', HOULSBY_PLACEMENT);
