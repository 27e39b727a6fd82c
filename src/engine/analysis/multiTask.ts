import * as tf from '@tensorflow/tfjs-core';
import { AdapterModel } from '../model/adapterModel';
import { embeddingParamNames, layerParamNames } from '../model/bert';
import { Batch, EncodedExample } from '../data/types';
import type { WorkerPool } from '../parallel/pool';
import { makeBatches } from '../data/batching';
import { AdapterLabMeta } from '../model/adapterIo';
import { readTrainedAdapter } from '../model/fusionIo';
import { loadEncoder, resolveModelDir } from '../model/checkpoint';
import { baseDifferences, baseFingerprint } from '../model/fingerprint';
import { BertTokenizer, loadTokenizer } from '../data/tokenizer';
import { EVAL_CONTEXT, modelFromAdapterFolder } from '../experiment';
import { UserInputError } from '../errors';
import { argmax, Predictions } from './evaluate';

/**
 * Multi-task inference, AdapterDrop's parallel setting (Rücklé et al. 2021): several tasks' adapters on the
 * same inputs in one pass. The layers below the lowest layer that any of the tasks changes (its lowest adapter,
 * or a base parameter it trained) compute the same thing for every task, so they run once per batch; each task
 * then runs its own layers from there, and its head. With adapters left out of the lowest k layers (leaveOut),
 * T tasks cost k + T (L - k) layers instead of T L.
 *
 * The task models share one base encoder: its frozen parameters are the same variables in every task's encoder
 * (a base parameter a task trained, such as its LayerNorms, is a variable of that task's own, and a task that
 * trained the embeddings' shares nothing).
 */

/** A set of models that compute their lowest `depth` layers (and the embeddings) identically, once for all. */
export interface SharedGroup {
  /** Indices into the models given. */
  models: number[];
  depth: number;
}

/**
 * Groups models by the base they share: models whose embeddings are the same variables share them, and the
 * layers below the lowest layer any of them changes (AdapterModel.frozenDepth), whose variables must be the same
 * too. A model that trained the embeddings (full fine-tuning, LayerNorms with houlsby) is a group of its own.
 */
export function sharedGroups(models: AdapterModel[]): SharedGroup[] {
  const keyOf = (m: AdapterModel) => embeddingParamNames(m.encoder.config).map((n) => m.encoder.params.get(n)!.id).join(',');
  const byKey = new Map<string, number[]>();
  models.forEach((m, k) => byKey.set(keyOf(m), [...(byKey.get(keyOf(m)) ?? []), k]));
  return [...byKey.values()].map((members) => {
    const depth = Math.min(...members.map((k) => models[k].frozenDepth()));
    const first = models[members[0]].encoder.params;
    for (const k of members.slice(1)) {
      for (let i = 0; i < depth; i++) {
        for (const n of layerParamNames(i)) {
          if (models[k].encoder.params.get(n) !== first.get(n)) throw new Error(`multi-task inference: the task models do not share the base parameter ${n}`);
        }
      }
    }
    return { models: members, depth };
  });
}

/** The batches of multi-task prediction: made as `predict` makes them, so each model's outputs equal its single-task predictions. */
export function multiTaskBatches(examples: EncodedExample[], batchSize: number): Batch[] {
  // Batches depend on the examples' lengths only ('regression' skips the check of class labels, unused here).
  return makeBatches(examples, batchSize, { shuffle: false, padId: 0, taskType: 'regression' });
}

/** One batch for every model: each group's embeddings and shared lowest layers once, then each model's own layers and head. Per model, its rows' outputs. */
export function multiTaskBatchOutputs(models: AdapterModel[], groups: SharedGroup[], batch: Batch): number[][][] {
  const out: number[][][] = new Array(models.length);
  for (const group of groups) {
    const enc = models[group.models[0]].encoder;
    const prefix = tf.keep(tf.tidy(() => enc.layers(enc.embed(batch, EVAL_CONTEXT), batch, EVAL_CONTEXT, 0, group.depth)));
    try {
      for (const k of group.models) out[k] = tf.tidy(() => models[k].outputsFrom(prefix, group.depth, batch, EVAL_CONTEXT).arraySync() as number[][]);
    } finally {
      prefix.dispose();
    }
  }
  return out;
}

/** Each model's predictions in input order, from the per-batch outputs of multiTaskBatchOutputs. */
export function gatherMultiTask(models: AdapterModel[], examples: number, batches: Batch[], perBatch: number[][][][]): Predictions[] {
  const outputs = models.map(() => new Array<number[]>(examples));
  batches.forEach((batch, b) => models.forEach((_, k) => batch.indices.forEach((idx, r) => (outputs[k][idx] = perBatch[b][k][r]))));
  return models.map((m, k) => ({
    outputs: outputs[k],
    predictions: outputs[k].map((o) => (m.head.taskType === 'regression' ? o[0] : argmax(o))),
  }));
}

/**
 * Predictions of every model on the same examples, in input order: per batch, each group's embeddings and shared
 * lowest layers once, then each model's own layers and head. Batches are made as `predict` makes them, so each
 * model's outputs equal its single-task predictions.
 */
export function predictMultiTask(models: AdapterModel[], examples: EncodedExample[], batchSize: number): { groups: SharedGroup[]; results: Predictions[] } {
  const groups = sharedGroups(models);
  const batches = multiTaskBatches(examples, batchSize);
  return { groups, results: gatherMultiTask(models, examples.length, batches, batches.map((batch) => multiTaskBatchOutputs(models, groups, batch))) };
}

/**
 * predictMultiTask over workers (tasksPool, started on every task's adapter folder): each batch computed whole
 * by one worker, so the outputs are the same, bit for bit, whatever the number of workers. `indices` are the
 * models' places among the pool's adapter folders.
 */
export async function predictMultiTaskOn(pool: WorkerPool | null, models: AdapterModel[], indices: number[], examples: EncodedExample[], batchSize: number): Promise<{ groups: SharedGroup[]; results: Predictions[] }> {
  if (!pool) return predictMultiTask(models, examples, batchSize);
  const groups = sharedGroups(models);
  const batches = multiTaskBatches(examples, batchSize);
  return { groups, results: gatherMultiTask(models, examples.length, batches, await pool.multiTask(models, indices, batches)) };
}

export interface TaskModels {
  models: AdapterModel[];
  metas: AdapterLabMeta[];
  modelDir: string;
  tokenizer: BertTokenizer;
  /** Frees every model and the shared encoder. */
  dispose(): void;
}

/**
 * Loads several trained adapter folders (single adapters or fusions) onto one base encoder, the one the first
 * names. Every other must have been trained on the same base (shape and fingerprint); a UserInputError names
 * the one that was not.
 */
export async function loadTaskModels(adapterDirs: string[]): Promise<TaskModels> {
  if (adapterDirs.length === 0) throw new UserInputError('no adapters given');
  const folders = adapterDirs.map((dir) => readTrainedAdapter(dir));
  const modelDir = resolveModelDir(folders[0].meta.model, adapterDirs[0]);
  const { encoder } = loadEncoder(modelDir);
  let fp: string | undefined;
  const fingerprint = () => (fp ??= baseFingerprint(encoder));
  const models: AdapterModel[] = [];
  const dispose = () => {
    for (const m of models) {
      for (const [n, v] of m.encoder.params) if (encoder.params.get(n) !== v) v.dispose();
      for (const v of [...m.method.params.values(), ...(m.method.fixedParams?.values() ?? []), ...m.head.params.values()]) v.dispose();
    }
    encoder.dispose();
  };
  try {
    folders.forEach((folder, k) => {
      const differences = baseDifferences(folder.meta.base, encoder, fingerprint);
      if (differences.length) {
        throw new UserInputError(`${adapterDirs[k]}: trained on another base model (${folder.meta.model}: ${differences.join(', ')}) than ${adapterDirs[0]} (${folders[0].meta.model}); multi-task inference needs one base model`);
      }
      models.push(modelFromAdapterFolder(encoder, folder, `adapter ${adapterDirs[k]}`, folders[0].meta.model, true));
    });
  } catch (err) {
    dispose();
    throw err;
  }
  return { models, metas: folders.map((f) => f.meta), modelDir, tokenizer: await loadTokenizer(modelDir), dispose };
}
