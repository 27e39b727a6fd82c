import { bottleneckMethod, PARALLEL_PLACEMENT } from './bottleneck';

/**
 * Parallel adapters (He et al. 2022; AdapterHub's ParBnConfig): one bottleneck adapter per layer beside the
 * feed-forward sublayer. It reads the sublayer's input x, and its output, scaled by s (4 by default), is added to
 * the sublayer's output h before the residual add and LayerNorm: LN(x + h + s A(x)). The up projection starts at
 * zero (AdapterHub's "mam_adapter" init), so a fresh adapter leaves the model exactly as it was.
 */
export const parallel = bottleneckMethod('parallel', PARALLEL_PLACEMENT);
