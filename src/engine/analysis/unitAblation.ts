import type { FamilyEvaluation, TrainableFamilyModel } from '../model/family';
import type { AblationResult } from './ablation';

/**
 * The removal ablation of Houlsby et al. 2019 (section 3.6) for any model family, through the family interface:
 * the metric with the method's modules switched off in every contiguous span of its ablation units (a ResNet's
 * blocks, an encoder's layers), one full evaluation per span. matrix[i][j] (i <= j) removes units i..j; the
 * result has the layer ablation's shape (analysis/ablation.ts), so the same heatmap shows it. The encoder's own
 * layer ablation shares work between spans; this one is for families whose units are few.
 */

export interface UnitAblationOptions {
  metric: string;
  batchSize: number;
  split?: string;
  onSpan?: (done: number, total: number) => void;
}

/** The units switched off per evaluation, in the ablation's order: none (the baseline), then units i..j for i <= j. */
export function unitAblationSpans<E>(model: TrainableFamilyModel<E>): number[][] {
  const units = [...model.ablationUnits].sort((a, b) => a - b);
  const spans: number[][] = [[]];
  for (let i = 0; i < units.length; i++) for (let j = i; j < units.length; j++) spans.push(units.slice(i, j + 1));
  return spans;
}

/** The metric of an evaluation (an error naming it when the task does not compute it). */
export function ablationMetricOf(evaluation: FamilyEvaluation, metric: string): number {
  const value = evaluation.metrics[metric];
  if (value === undefined) throw new Error(`metric "${metric}" is not computed for this task`);
  return value;
}

/** The ablation's result from the metric of each span of unitAblationSpans (in its order). */
export function unitAblationResult<E>(model: TrainableFamilyModel<E>, examples: E[], values: number[], opts: UnitAblationOptions): AblationResult {
  const units = [...model.ablationUnits].sort((a, b) => a - b);
  const n = units.length;
  const matrix: (number | null)[][] = Array.from({ length: n }, () => new Array<number | null>(n).fill(null));
  let k = 1;
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) matrix[i][j] = values[k++];
  return { metric: opts.metric, baseline: values[0], matrix, adapterLayers: units, numLayers: n, split: opts.split ?? 'dev', examples: examples.length };
}

/** The ablation on this thread (parallel/familyParallel.ts spreads it over workers). */
export function unitAblation<E>(model: TrainableFamilyModel<E>, examples: E[], opts: UnitAblationOptions): AblationResult {
  const spans = unitAblationSpans(model);
  const values: number[] = [];
  try {
    for (const span of spans) {
      model.setDisabledUnits(new Set(span));
      values.push(ablationMetricOf(model.evaluate(examples, opts.batchSize), opts.metric));
      if (values.length > 1) opts.onSpan?.(values.length - 1, spans.length - 1);
    }
    return unitAblationResult(model, examples, values, opts);
  } finally {
    model.setDisabledUnits(new Set());
  }
}
