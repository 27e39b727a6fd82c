import { describe, expect, it } from 'vitest';
import { classReport } from '../../../src/engine/analysis/evaluate';
import {
  confusion,
  perClassScores,
  accuracy,
  averageRanks,
  computeMetrics,
  macroF1,
  matthewsCorrelation,
  meanSquaredError,
  metricHigherIsBetter,
  pearson,
  primaryMetricFor,
  spearman,
} from '../../../src/engine/metrics/metrics';

describe('classification metrics', () => {
  it('accuracy', () => {
    expect(accuracy([0, 1, 1, 0], [0, 1, 0, 0])).toBe(0.75);
    expect(accuracy([], [])).toBe(0);
    expect(() => accuracy([0], [0, 1])).toThrow();
  });

  it('MCC of a 2x2 confusion (scikit-learn docs example: -1/3)', () => {
    // y_true [+1,+1,+1,-1], y_pred [+1,-1,+1,+1]: TP 2, FN 1, FP 1, TN 0 -> (0 - 1)/sqrt(3*3*1*1).
    expect(matthewsCorrelation([1, 0, 1, 1], [1, 1, 1, 0])).toBeCloseTo(-1 / 3, 12);
    // TP 3, TN 4, FP 1, FN 2: (12 - 2)/sqrt(4*5*5*6) = 10/sqrt(600).
    const labels = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
    const preds = [1, 1, 1, 0, 0, 0, 0, 0, 0, 1];
    expect(matthewsCorrelation(preds, labels)).toBeCloseTo(10 / Math.sqrt(600), 12);
    expect(matthewsCorrelation(labels, labels)).toBe(1);
    expect(matthewsCorrelation(labels.map((l) => 1 - l), labels)).toBe(-1);
  });

  it('multi-class MCC (Gorodkin R_K)', () => {
    // c=3, s=6, t=p=[2,2,2]: (18 - 12)/sqrt((36-12)(36-12)) = 0.25.
    expect(matthewsCorrelation([0, 1, 1, 2, 2, 0], [0, 0, 1, 1, 2, 2])).toBeCloseTo(0.25, 12);
  });

  it('MCC is 0 when undefined', () => {
    expect(matthewsCorrelation([1, 1, 1], [0, 1, 0])).toBe(0);
    expect(matthewsCorrelation([0, 1, 0], [1, 1, 1])).toBe(0);
  });

  it('macro-F1, with a class only predicted and one absent from both', () => {
    // class 0: TP1, true 2, pred 1 -> 2/3; class 1: 1; class 2 (only predicted): 0; class 3 absent: left out.
    expect(macroF1([0, 2, 1, 1], [0, 0, 1, 1], 4)).toBeCloseTo(5 / 9, 12);
    // Binary: class 1 P=3/4 R=3/5 F1=2/3; class 0 P=4/6 R=4/5 F1=8/11.
    const labels = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
    const preds = [1, 1, 1, 0, 0, 0, 0, 0, 0, 1];
    expect(macroF1(preds, labels)).toBeCloseTo((2 / 3 + 8 / 11) / 2, 12);
    expect(macroF1([], [])).toBe(0);
  });
});

describe('regression metrics', () => {
  it('pearson', () => {
    // Centered: dx = [-2,-1,0,1,2], dy = [-2,0,1,0,1]: 6 / sqrt(10 * 6).
    expect(pearson([1, 2, 3, 4, 5], [2, 4, 5, 4, 5])).toBeCloseTo(Math.sqrt(0.6), 12);
    expect(pearson([1, 2, 3], [3, 2, 1])).toBeCloseTo(-1, 12);
    expect(pearson([1, 1, 1], [1, 2, 3])).toBe(0);
    expect(pearson([1], [2])).toBe(0);
  });

  it('average ranks for ties', () => {
    expect(averageRanks([10, 20, 20, 5, 20])).toEqual([2, 4, 4, 1, 4]);
  });

  it('spearman with ties', () => {
    // ranks x = [1, 2.5, 2.5, 4], y = [1, 3, 2, 4]: 4.5 / sqrt(4.5 * 5) = 3/sqrt(10).
    expect(spearman([1, 2, 2, 3], [1, 3, 2, 4])).toBeCloseTo(3 / Math.sqrt(10), 12);
    // Monotone but not linear: 1.
    expect(spearman([1, 2, 3, 4], [1, 8, 27, 64])).toBeCloseTo(1, 12);
  });

  it('mse', () => {
    expect(meanSquaredError([1, 2, 3], [1, 0, 6])).toBeCloseTo(13 / 3, 12);
  });
});

describe('computeMetrics and metric helpers', () => {
  it('gives the task-type metrics', () => {
    const c = computeMetrics('classification', [1, 0, 1, 1], [1, 1, 1, 0], 2);
    expect(Object.keys(c).sort()).toEqual(['accuracy', 'macroF1', 'matthews']);
    expect(c.accuracy).toBe(0.5);
    expect(c.matthews).toBeCloseTo(-1 / 3, 12);
    const r = computeMetrics('regression', [1, 2, 2, 3], [1, 3, 2, 4]);
    expect(Object.keys(r).sort()).toEqual(['mse', 'pearson', 'spearman']);
    expect(r.spearman).toBeCloseTo(3 / Math.sqrt(10), 12);
    expect(r.mse).toBeCloseTo(0.5, 12);
  });

  it('direction and primary metric', () => {
    expect(metricHigherIsBetter('loss')).toBe(false);
    expect(metricHigherIsBetter('mse')).toBe(false);
    for (const m of ['accuracy', 'macroF1', 'matthews', 'pearson', 'spearman'] as const) expect(metricHigherIsBetter(m)).toBe(true);
    expect(primaryMetricFor('classification')).toBe('accuracy');
    expect(primaryMetricFor('regression')).toBe('pearson');
  });
});

describe('per-class scores and the confusion matrix', () => {
  // gold  a a a b b c ; predicted a a b b c c ; class d never occurs. Worked by hand:
  //   a: TP 2, predicted 2, true 3 -> P 1,   R 2/3, F1 2*2/(3+2) = 0.8
  //   b: TP 1, predicted 2, true 2 -> P 1/2, R 1/2, F1 2*1/(2+2) = 0.5
  //   c: TP 1, predicted 2, true 1 -> P 1/2, R 1,   F1 2*1/(1+2) = 2/3
  //   d: nothing predicted, nothing true -> 0, 0, 0 (scikit-learn's zero_division=0)
  const gold = [0, 0, 0, 1, 1, 2];
  const predicted = [0, 0, 1, 1, 2, 2];

  it('matches the hand-worked values', () => {
    const s = perClassScores(predicted, gold, 4);
    expect(s.map((c) => [c.support, c.predicted])).toEqual([
      [3, 2],
      [2, 2],
      [1, 2],
      [0, 0],
    ]);
    expect(s[0].precision).toBe(1);
    expect(s[0].recall).toBeCloseTo(2 / 3, 12);
    expect(s[0].f1).toBeCloseTo(0.8, 12);
    expect([s[1].precision, s[1].recall, s[1].f1]).toEqual([0.5, 0.5, 0.5]);
    expect([s[2].precision, s[2].recall]).toEqual([0.5, 1]);
    expect(s[2].f1).toBeCloseTo(2 / 3, 12);
    expect([s[3].precision, s[3].recall, s[3].f1]).toEqual([0, 0, 0]);
    // macro-F1 is the mean of the F1 of the classes that occur.
    expect(macroF1(predicted, gold, 4)).toBeCloseTo((0.8 + 0.5 + 2 / 3) / 3, 12);
  });

  it('confusion[true][predicted] counts every example once', () => {
    expect(confusion(predicted, gold, 4)).toEqual([
      [2, 1, 0, 0],
      [0, 1, 1, 0],
      [0, 0, 1, 0],
      [0, 0, 0, 0],
    ]);
  });

  it('classReport names the classes', () => {
    const r = classReport(predicted, gold, ['a', 'b', 'c', 'd']);
    expect(r.labels).toEqual(['a', 'b', 'c', 'd']);
    expect(r.perClass.map((c) => c.label)).toEqual(['a', 'b', 'c', 'd']);
    expect(r.perClass[1]).toEqual({ label: 'b', precision: 0.5, recall: 0.5, f1: 0.5, support: 2, predicted: 2 });
    expect(r.confusion[0]).toEqual([2, 1, 0, 0]);
  });
});
