import * as tf from '@tensorflow/tfjs-core';
import { AdapterModel } from '../model/adapterModel';
import { ForwardContext } from '../model/bert';
import { Batch, EncodedExample } from '../data/types';
import { makeBatches } from '../data/batching';
import { computeMetrics, confusion, perClassScores, type ClassScores } from '../metrics/metrics';
import { EVAL_CONTEXT } from '../experiment';
import type { FrozenPrefixCache } from '../train/frozenPrefix';

export interface Predictions {
  /** Head outputs per example, in input order: logits (classification) or [value] (regression). */
  outputs: number[][];
  /** Class index (classification) or value (regression), in input order. */
  predictions: number[];
}

export interface Evaluation extends Predictions {
  metrics: Record<string, number>;
  loss: number;
  examples: number;
  /** Classification: each class's scores and the confusion matrix, by class name. */
  classes?: ClassReport;
}

/** What a classifier got right and wrong, class by class. */
export interface ClassReport {
  /** Class names, in index order: the rows and columns of `confusion`. */
  labels: string[];
  perClass: ({ label: string } & ClassScores)[];
  /** confusion[t][p]: examples of class t predicted as class p. */
  confusion: number[][];
}

export function classReport(predictions: number[], gold: number[], labels: string[]): ClassReport {
  const scores = perClassScores(predictions, gold, labels.length);
  return {
    labels,
    perClass: scores.map((s, i) => ({ label: labels[i], ...s })),
    confusion: confusion(predictions, gold, labels.length),
  };
}

/** One batch's head outputs ([batchSize][outputs], batch order) and mean loss, without recording gradients. */
export function predictBatch(model: AdapterModel, batch: Batch, ctx: ForwardContext, cache?: FrozenPrefixCache): { outputs: number[][]; loss: number } {
  const [outputs, loss] = tf.tidy(() => {
    const o = cache ? model.outputsFrom(cache.hiddenFor(batch), cache.depth, batch, ctx) : model.outputs(batch, ctx);
    const l = model.head.loss(o, batch.labels);
    return [o.arraySync() as number[][], l.dataSync()[0]];
  }) as [number[][], number];
  return { outputs, loss };
}

/** The evaluation batches of examples (length-sorted, carrying their examples' indices). */
export function evaluationBatches(model: AdapterModel, examples: EncodedExample[], batchSize: number): Batch[] {
  return makeBatches(examples, batchSize, { shuffle: false, padId: 0, taskType: model.head.taskType });
}

/** Outputs put back in input order, the predictions, and the loss summed over examples in batch order. */
export function gatherPredictions(model: AdapterModel, count: number, batches: Batch[], results: { outputs: number[][]; loss: number }[]): Predictions & { lossSum: number } {
  const outputs: number[][] = new Array(count);
  let lossSum = 0;
  batches.forEach((batch, i) => {
    lossSum += results[i].loss * batch.batchSize;
    batch.indices.forEach((idx, r) => (outputs[idx] = results[i].outputs[r]));
  });
  const regression = model.head.taskType === 'regression';
  const predictions = outputs.map((o) => (regression ? o[0] : argmax(o)));
  return { outputs, predictions, lossSum };
}

/**
 * Runs the model over examples without recording gradients (tf.tidy, no variableGrads), in length-sorted
 * batches, and puts the outputs back in input order.
 */
export function predict(
  model: AdapterModel,
  examples: EncodedExample[],
  batchSize: number,
  ctx: ForwardContext = EVAL_CONTEXT,
  /** Cached states of the frozen lowest layers of these examples, when the caller has them. */
  cache?: FrozenPrefixCache,
): Predictions & { lossSum: number } {
  const batches = evaluationBatches(model, examples, batchSize);
  return gatherPredictions(model, examples.length, batches, batches.map((b) => predictBatch(model, b, ctx, cache)));
}

/** Metrics, loss and the class report of predictions over examples. */
export function scorePredictions(model: AdapterModel, examples: EncodedExample[], { outputs, predictions, lossSum }: Predictions & { lossSum: number }): Evaluation {
  const labels = examples.map((e) => e.label);
  const metrics = computeMetrics(model.head.taskType, predictions, labels, model.head.labels?.length);
  const loss = lossSum / Math.max(1, examples.length);
  const classNames = model.head.labels;
  const classes = classNames ? classReport(predictions, labels, classNames) : undefined;
  return { outputs, predictions, metrics: { ...metrics, loss }, loss, examples: examples.length, ...(classes ? { classes } : {}) };
}

export function evaluate(model: AdapterModel, examples: EncodedExample[], batchSize: number, ctx: ForwardContext = EVAL_CONTEXT, cache?: FrozenPrefixCache): Evaluation {
  return scorePredictions(model, examples, predict(model, examples, batchSize, ctx, cache));
}

export function argmax(values: number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
