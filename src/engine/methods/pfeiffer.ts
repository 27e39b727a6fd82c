import { bottleneckMethod, PFEIFFER_PLACEMENT } from './bottleneck';

/**
 * The Pfeiffer adapter (Pfeiffer et al. 2021; AdapterHub's SeqBnConfig): one bottleneck adapter per layer, at
 * the feed-forward sublayer only, after the sublayer's residual add and LayerNorm, with its residual from the
 * sublayer output and the LayerNorm applied again after it: LN(x + h + A(LN(x + h))). Half the adapter
 * parameters of `houlsby`.
 */
export const pfeiffer = bottleneckMethod('pfeiffer', PFEIFFER_PLACEMENT);
