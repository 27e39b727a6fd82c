/**
 * The per-class view's numbers, with no DOM (test/extension/classReport.test.ts tests them on real evaluations):
 * the macro and support-weighted averages of the per-class scores (scikit-learn's classification_report), the
 * confusion matrix normalised by row (each true class's share of predictions: recall on the diagonal), the
 * heatmap's cells and the most frequent confusions.
 */
import type { SplitClassReport } from '../../src/protocol/webview';

export interface ScoreAverage {
  precision: number;
  recall: number;
  f1: number;
  /** Examples counted (the sum of the classes' support). */
  support: number;
}

export interface ClassAverages {
  /**
   * Unweighted mean over the classes that occur in the labels or the predictions, as the engine's macroF1 (and
   * scikit-learn by default) counts them: a class absent from both is left out, one only predicted counts as 0.
   */
  macro: ScoreAverage;
  /** Mean weighted by each class's support. */
  weighted: ScoreAverage;
  /** Correct predictions (the confusion matrix's trace) over all examples. */
  accuracy: number;
  /** Classes the macro average counts. */
  macroClasses: number;
}

type Scores = SplitClassReport['perClass'][number];

export function classAverages(report: Pick<SplitClassReport, 'perClass' | 'confusion'>): ClassAverages {
  const present = report.perClass.filter((c) => c.support > 0 || c.predicted > 0);
  const total = report.perClass.reduce((n, c) => n + c.support, 0);
  const mean = (f: (c: Scores) => number) => (present.length ? present.reduce((s, c) => s + f(c), 0) / present.length : 0);
  const weighted = (f: (c: Scores) => number) => (total ? report.perClass.reduce((s, c) => s + f(c) * c.support, 0) / total : 0);
  const correct = report.confusion.reduce((n, row, i) => n + (row[i] ?? 0), 0);
  return {
    macro: { precision: mean((c) => c.precision), recall: mean((c) => c.recall), f1: mean((c) => c.f1), support: total },
    weighted: { precision: weighted((c) => c.precision), recall: weighted((c) => c.recall), f1: weighted((c) => c.f1), support: total },
    accuracy: total ? correct / total : 0,
    macroClasses: present.length,
  };
}

/** Each row divided by its sum (the true class's examples); a class without examples has a row of nulls. */
export function normaliseRows(confusion: number[][]): (number | null)[][] {
  return confusion.map((row) => {
    const sum = row.reduce((a, b) => a + b, 0);
    return row.map((v) => (sum ? v / sum : null));
  });
}

/** A cell of the confusion heatmap: x the predicted class, y the true class. */
export interface ConfusionCell {
  x: number;
  y: number;
  /** What the colour shows: the count, or the row share when normalised. */
  v: number;
  count: number;
  /** The count over its row's sum (null for a class without examples). */
  rowShare: number | null;
}

export function confusionCells(confusion: number[][], normalised: boolean): ConfusionCell[] {
  const shares = normaliseRows(confusion);
  const cells: ConfusionCell[] = [];
  confusion.forEach((row, y) =>
    row.forEach((count, x) => {
      const rowShare = shares[y][x];
      cells.push({ x, y, v: normalised ? (rowShare ?? 0) : count, count, rowShare });
    }),
  );
  return cells;
}

export interface Confusion {
  trueLabel: string;
  predictedLabel: string;
  count: number;
  /** Share of the true class's examples. */
  rowShare: number;
}

/** The off-diagonal cells with the most examples, most first (ties by class order), at most `n`. */
export function topConfusions(report: Pick<SplitClassReport, 'labels' | 'confusion'>, n: number): Confusion[] {
  const shares = normaliseRows(report.confusion);
  const out: Confusion[] = [];
  report.confusion.forEach((row, t) =>
    row.forEach((count, p) => {
      if (t !== p && count > 0) out.push({ trueLabel: report.labels[t], predictedLabel: report.labels[p], count, rowShare: shares[t][p] ?? 0 });
    }),
  );
  return out.sort((a, b) => b.count - a.count).slice(0, n);
}

/** The per-class table as CSV rows (class, precision, recall, f1, support, predicted), then the two averages. */
export function scoreCsvRows(report: SplitClassReport): unknown[][] {
  const avg = classAverages(report);
  return [
    ...report.perClass.map((c) => [c.label, c.precision, c.recall, c.f1, c.support, c.predicted]),
    ['macro avg', avg.macro.precision, avg.macro.recall, avg.macro.f1, avg.macro.support, null],
    ['weighted avg', avg.weighted.precision, avg.weighted.recall, avg.weighted.f1, avg.weighted.support, null],
  ];
}

/** The confusion matrix as CSV rows: one per (true, predicted) pair, with its count and row share. */
export function confusionCsvRows(report: SplitClassReport): unknown[][] {
  return confusionCells(report.confusion, false).map((c) => [report.labels[c.y], report.labels[c.x], c.count, c.rowShare]);
}
