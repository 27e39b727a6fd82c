/**
 * Evaluation metrics fitting the task (SPEC section 3): accuracy, macro-F1 and Matthews correlation for
 * classification, Pearson and Spearman for regression. Definitions follow scikit-learn / SciPy so that
 * numbers can be compared with published results. Where a metric is undefined (a constant prediction),
 * it is 0 rather than NaN, so that picking the best checkpoint never meets a NaN.
 */
import type { MetricName, TaskType } from '../config/types';

function checkLengths(a: number[], b: number[]): void {
  if (a.length !== b.length) throw new Error(`metrics: ${a.length} predictions for ${b.length} labels`);
}

export function accuracy(predictions: number[], labels: number[]): number {
  checkLengths(predictions, labels);
  if (labels.length === 0) return 0;
  let hits = 0;
  for (let i = 0; i < labels.length; i++) if (predictions[i] === labels[i]) hits++;
  return hits / labels.length;
}

/** Confusion counts [true][pred] over classes 0..k-1. */
export function confusion(predictions: number[], labels: number[], k: number): number[][] {
  const m = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  for (let i = 0; i < labels.length; i++) m[labels[i]][predictions[i]]++;
  return m;
}

function classCount(predictions: number[], labels: number[], numClasses?: number): number {
  let k = numClasses ?? 0;
  for (const v of [...predictions, ...labels]) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`metrics: ${v} is not a class index`);
    k = Math.max(k, v + 1);
  }
  return k;
}

/**
 * Unweighted mean of per-class F1, over the classes that occur in the labels or the predictions
 * (scikit-learn's default): a class absent from both is left out, a class only predicted counts as F1 0.
 */
export function macroF1(predictions: number[], labels: number[], numClasses?: number): number {
  checkLengths(predictions, labels);
  const k = classCount(predictions, labels, numClasses);
  const m = confusion(predictions, labels, k);
  let sum = 0;
  let present = 0;
  for (let c = 0; c < k; c++) {
    const tp = m[c][c];
    let trueC = 0;
    let predC = 0;
    for (let j = 0; j < k; j++) {
      trueC += m[c][j];
      predC += m[j][c];
    }
    if (trueC === 0 && predC === 0) continue;
    present++;
    // F1 = 2TP / (2TP + FP + FN) = 2TP / (pred + true); 0 when the class is never right.
    sum += (2 * tp) / (trueC + predC);
  }
  return present === 0 ? 0 : sum / present;
}

/** One class's scores: of the examples predicted as it, how many are (precision); of those that are, how many were found (recall). */
export interface ClassScores {
  precision: number;
  recall: number;
  f1: number;
  /** Examples whose true class it is. */
  support: number;
  /** Examples predicted as it. */
  predicted: number;
}

/**
 * Precision, recall and F1 of each class 0..k-1 from the confusion counts, as scikit-learn's
 * precision_recall_fscore_support with zero_division=0: a score whose denominator is 0 is 0.
 */
export function perClassScores(predictions: number[], labels: number[], numClasses?: number): ClassScores[] {
  checkLengths(predictions, labels);
  const k = classCount(predictions, labels, numClasses);
  const m = confusion(predictions, labels, k);
  return Array.from({ length: k }, (_, c) => {
    const tp = m[c][c];
    let support = 0;
    let predicted = 0;
    for (let j = 0; j < k; j++) {
      support += m[c][j];
      predicted += m[j][c];
    }
    return {
      precision: predicted === 0 ? 0 : tp / predicted,
      recall: support === 0 ? 0 : tp / support,
      f1: support + predicted === 0 ? 0 : (2 * tp) / (support + predicted),
      support,
      predicted,
    };
  });
}

/**
 * Matthews correlation, multi-class (Gorodkin's R_K, as scikit-learn computes it):
 * (c·s − Σ p_k t_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²)), c correct, s samples, p_k/t_k predicted/true counts.
 * 0 when undefined (all predictions or all labels one class).
 */
export function matthewsCorrelation(predictions: number[], labels: number[], numClasses?: number): number {
  checkLengths(predictions, labels);
  const k = classCount(predictions, labels, numClasses);
  const t = new Array<number>(k).fill(0);
  const p = new Array<number>(k).fill(0);
  let c = 0;
  for (let i = 0; i < labels.length; i++) {
    t[labels[i]]++;
    p[predictions[i]]++;
    if (labels[i] === predictions[i]) c++;
  }
  const s = labels.length;
  let pt = 0;
  let pp = 0;
  let tt = 0;
  for (let j = 0; j < k; j++) {
    pt += p[j] * t[j];
    pp += p[j] * p[j];
    tt += t[j] * t[j];
  }
  const denom = Math.sqrt((s * s - pp) * (s * s - tt));
  return denom === 0 ? 0 : (c * s - pt) / denom;
}

/** Pearson correlation; 0 when undefined (either side constant, or fewer than two points). */
export function pearson(x: number[], y: number[]): number {
  checkLengths(x, y);
  const n = x.length;
  if (n < 2) return 0;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i] - mx;
    const dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  const denom = Math.sqrt(sxx * syy);
  if (denom === 0) return 0;
  // Rounding can push a perfect correlation a hair past 1.
  return Math.max(-1, Math.min(1, sxy / denom));
}

/** 1-based ranks, ties sharing the average of the ranks they span (SciPy's rankdata 'average'). */
export function averageRanks(values: number[]): number[] {
  const order = values.map((_, i) => i).sort((a, b) => values[a] - values[b]);
  const ranks = new Array<number>(values.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && values[order[j + 1]] === values[order[i]]) j++;
    const rank = (i + j) / 2 + 1;
    for (let q = i; q <= j; q++) ranks[order[q]] = rank;
    i = j + 1;
  }
  return ranks;
}

/** Spearman rank correlation: Pearson of average ranks (correct with ties). */
export function spearman(x: number[], y: number[]): number {
  checkLengths(x, y);
  return pearson(averageRanks(x), averageRanks(y));
}

export function meanSquaredError(predictions: number[], targets: number[]): number {
  checkLengths(predictions, targets);
  if (targets.length === 0) return 0;
  let s = 0;
  for (let i = 0; i < targets.length; i++) s += (predictions[i] - targets[i]) ** 2;
  return s / targets.length;
}

/**
 * The metrics a task reports: accuracy, macroF1, matthews (classification; predictions are class
 * indices) or pearson, spearman, mse (regression; predictions are values).
 */
export function computeMetrics(
  taskType: TaskType,
  predictions: number[],
  labels: number[],
  numClasses?: number,
): Record<string, number> {
  if (taskType === 'classification') {
    return {
      accuracy: accuracy(predictions, labels),
      macroF1: macroF1(predictions, labels, numClasses),
      matthews: matthewsCorrelation(predictions, labels, numClasses),
    };
  }
  return { pearson: pearson(predictions, labels), spearman: spearman(predictions, labels), mse: meanSquaredError(predictions, labels) };
}

/** Which way is better when picking the best checkpoint: errors go down, scores go up. */
export function metricHigherIsBetter(name: MetricName | 'mse'): boolean {
  return name !== 'loss' && name !== 'mse';
}

/** The default dev metric for choosing the best checkpoint. */
export function primaryMetricFor(taskType: TaskType): MetricName {
  return taskType === 'classification' ? 'accuracy' : 'pearson';
}
