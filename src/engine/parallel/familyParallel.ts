import { activeBackend } from '../tf/backend';
import type { FamilyBatch, FamilyEvaluation, ModelFamily, TrainableFamilyModel } from '../model/family';
import type { AblationResult } from '../analysis/ablation';
import { ablationMetricOf, unitAblation, unitAblationResult, unitAblationSpans, UnitAblationOptions } from '../analysis/unitAblation';
import { WorkerPool } from './pool';

/**
 * Data parallelism for the model families without a trainer of their own (model/family.ts, FamilyParallelism):
 * the generic trainer's steps (WorkerPool.familyStep: shards of each batch, BatchNorm synchronised over them,
 * one optimizer step on the summed gradients), and evaluation and the unit ablation with whole batches spread
 * over the workers (each computed by one of them, so the results do not depend on the number of workers).
 */

/**
 * Workers for a family model: `workers` in all (the coordinator's thread included), each with the model's replica
 * and the coordinator's trained values and training state; null where that is one, or the model or family has
 * no parallel support.
 */
export async function startFamilyPool(family: ModelFamily, model: TrainableFamilyModel<unknown>, workers: number): Promise<WorkerPool | null> {
  if (workers <= 1 || !model.parallel || !family.buildReplica) return null;
  const params = new Map([...model.trainableParams(), ...(model.trainingState?.() ?? new Map())]);
  return WorkerPool.start({
    workers,
    backend: activeBackend()?.name ?? 'wasm',
    source: { kind: 'family', taskType: family.taskTypes[0], replica: model.parallel.replica() },
    params,
    shardSync: true,
  });
}

const unitsOf = (batch: unknown) => (batch as FamilyBatch).units;

/** model.evaluate over the pool's workers (on this thread without one): the same result. */
export async function evaluateFamily<E>(pool: WorkerPool | null, model: TrainableFamilyModel<E>, examples: E[], batchSize: number): Promise<FamilyEvaluation> {
  if (!pool || !model.parallel) return model.evaluate(examples, batchSize);
  const batches = model.batches(examples, batchSize, { training: false, rng: null });
  const outputs = await pool.familyOutputs(model as TrainableFamilyModel<unknown>, batches.map((batch) => ({ batch, disabledUnits: [] })), unitsOf);
  return model.parallel.evaluation(examples, outputs);
}

/** The unit ablation (analysis/unitAblation.ts) over the pool's workers: every span's batches at once, the same result. */
export async function unitAblationOn<E>(pool: WorkerPool | null, model: TrainableFamilyModel<E>, examples: E[], opts: UnitAblationOptions): Promise<AblationResult> {
  if (!pool || !model.parallel) return unitAblation(model, examples, opts);
  const parallel = model.parallel;
  const spans = unitAblationSpans(model);
  const batches = model.batches(examples, opts.batchSize, { training: false, rng: null });
  const items = spans.flatMap((span) => batches.map((batch) => ({ batch, disabledUnits: span })));
  const outputs = await pool.familyOutputs(model as TrainableFamilyModel<unknown>, items, unitsOf);
  const values = spans.map((_, s) => ablationMetricOf(parallel.evaluation(examples, outputs.slice(s * batches.length, (s + 1) * batches.length)), opts.metric));
  for (let done = 1; done < spans.length; done++) opts.onSpan?.(done, spans.length - 1);
  return unitAblationResult(model, examples, values, opts);
}
