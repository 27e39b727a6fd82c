import { AdapterModel } from '../model/adapterModel';
import { EncodedExample } from '../data/types';
import { EVAL_CONTEXT } from '../experiment';
import { evaluate } from './evaluate';

/**
 * The layer-removal ablation of Houlsby et al. 2019 (section 3.6): the dev metric with the adapters of every
 * contiguous span of layers i..j removed and the rest kept. matrix[i][j] (i <= j) is that metric; entries
 * below the diagonal are null. The diagonal is single-layer removal; [0][L-1] removes every adapter.
 */
export interface AblationResult {
  metric: string;
  /** The metric with every adapter in place. */
  baseline: number;
  /** L x L, upper triangular. */
  matrix: (number | null)[][];
  /** Layers that carry the method's modules; removing a span with none of them changes nothing. */
  adapterLayers: number[];
  numLayers: number;
  split: string;
  examples: number;
}

export function layerAblation(
  model: AdapterModel,
  examples: EncodedExample[],
  opts: { metric: string; batchSize: number; split?: string; onSpan?: (i: number, j: number, value: number) => void },
): AblationResult {
  const L = model.encoder.config.numLayers;
  const value = (disabled: Set<number>) => {
    const m = evaluate(model, examples, opts.batchSize, { ...EVAL_CONTEXT, disabledAdapterLayers: disabled }).metrics[opts.metric];
    if (m === undefined) throw new Error(`metric "${opts.metric}" is not computed for this task`);
    return m;
  };
  const baseline = value(new Set());
  const matrix: (number | null)[][] = Array.from({ length: L }, () => new Array<number | null>(L).fill(null));
  for (let i = 0; i < L; i++) {
    for (let j = i; j < L; j++) {
      const span = new Set(Array.from({ length: j - i + 1 }, (_, k) => i + k));
      matrix[i][j] = value(span);
      opts.onSpan?.(i, j, matrix[i][j]!);
    }
  }
  return { metric: opts.metric, baseline, matrix, adapterLayers: model.method.adapterLayers, numLayers: L, split: opts.split ?? 'dev', examples: examples.length };
}
