import type { TrainableFamilyModel } from '../model/family';
import type { AblationResult } from './ablation';

/**
 * The removal ablation of Houlsby et al. 2019 (section 3.6) for any model family, through the family interface:
 * the metric with the method's modules switched off in every contiguous span of its ablation units (a ResNet's
 * blocks, an encoder's layers), one full evaluation per span. matrix[i][j] (i <= j) removes units i..j; the
 * result has the layer ablation's shape (analysis/ablation.ts), so the same heatmap shows it. The encoder's own
 * layer ablation shares work between spans; this one is for families whose units are few.
 */
export function unitAblation<E>(
  model: TrainableFamilyModel<E>,
  examples: E[],
  opts: { metric: string; batchSize: number; split?: string; onSpan?: (done: number, total: number) => void },
): AblationResult {
  const units = [...model.ablationUnits].sort((a, b) => a - b);
  const n = units.length;
  const metricOf = () => {
    const value = model.evaluate(examples, opts.batchSize).metrics[opts.metric];
    if (value === undefined) throw new Error(`metric "${opts.metric}" is not computed for this task`);
    return value;
  };
  const matrix: (number | null)[][] = Array.from({ length: n }, () => new Array<number | null>(n).fill(null));
  const total = (n * (n + 1)) / 2;
  let done = 0;
  try {
    model.setDisabledUnits(new Set());
    const baseline = metricOf();
    for (let i = 0; i < n; i++) {
      for (let j = i; j < n; j++) {
        model.setDisabledUnits(new Set(units.slice(i, j + 1)));
        matrix[i][j] = metricOf();
        opts.onSpan?.(++done, total);
      }
    }
    return { metric: opts.metric, baseline, matrix, adapterLayers: units, numLayers: n, split: opts.split ?? 'dev', examples: examples.length };
  } finally {
    model.setDisabledUnits(new Set());
  }
}
