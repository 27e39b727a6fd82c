import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ResolvedConfig } from '../config/types';
import { RunHandle } from '../runs/runFolder';
import { ADAPTER_DIR, evalResultName } from '../runs/files';
import { assertNoLinksInTree } from '../runs/confined';
import { activeBackend } from '../tf/backend';
import { derivedRng } from '../parallel/shard';
import { defaultWorkers, WorkerPool } from '../parallel/pool';
import { evaluateFamily, startFamilyPool } from '../parallel/familyParallel';
import { FamilyBatch, FamilyRunConfig, ModelFamily } from '../model/family';
import { writePredictionGrid } from '../analysis/predictionGrid';
import { AdamW, applyGradients } from './adamw';
import type { TrainCallbacks, TrainOutcome } from './trainer';
import { engineVersion } from './trainer';
import { runEpochs } from './epochLoop';
import { RunCheckpoints, trainingPlan } from './runCheckpoints';

/**
 * The training loop on the model-family interface (model/family.ts), for the families without a trainer of their
 * own: the same schedule, checkpoints, resume, cancel, dev evaluation and run-folder files as the text trainer
 * (train/trainer.ts), data-parallel over worker threads where the model offers it (model.parallel; see
 * parallel/familyParallel.ts): each step's batch cut into shards, BatchNorm synchronised over them, the shards'
 * gradients summed in worker order and one optimizer step here, so that a run computes the same whatever the
 * number of workers (up to float summation order) and resumes with any number.
 *
 * Reproducibility as there: the batch order (and augmentation) of epoch e comes from derivedRng(seed, 1, e), a
 * step's other draws from derivedRng(seed, 2, step); the checkpoint holds the trained parameters, the optimizer
 * and the state training changes besides them (BatchNorm running statistics), so a resumed run computes exactly
 * what an uninterrupted one would.
 */
export async function trainFamilyRun(
  family: ModelFamily,
  cfg: ResolvedConfig,
  run: RunHandle,
  resume: boolean,
  signal: AbortSignal | undefined,
  callbacks: TrainCallbacks,
  log: (m: string, level?: 'info' | 'warn') => void,
  workersRequested: number | undefined,
): Promise<TrainOutcome> {
  const stale = run.removeStaleTempFiles();
  if (stale.length) log(`removed ${stale.length} temp file${stale.length > 1 ? 's' : ''} a killed process left half written (${stale.map((f) => path.relative(run.dir, f)).join(', ')})`, 'warn');
  const t = cfg.training;
  const familyConfig = cfg as unknown as FamilyRunConfig;
  const data = await family.readData(familyConfig);
  for (const warning of data.warnings) log(warning, 'warn');
  if (data.train.length === 0) throw new Error('the training set is empty');
  if (data.dev.length === 0) throw new Error('the dev set is empty');

  const model = await family.buildModel(familyConfig, data.labels, data.train);
  let pool: WorkerPool | null = null;
  try {
    // Before training changes anything: the pretrained network's identity.
    const fingerprint = model.fingerprint();
    for (const note of model.notes ?? []) log(note, 'warn');
    const params = model.trainableParams();
    // What a checkpoint holds besides the optimizer: the parameters and the state training changes beside them.
    const checkpointed = new Map([...params, ...(model.trainingState?.() ?? new Map<string, tf.Variable>())]);
    const optimizer = new AdamW(params, { weightDecay: t.weightDecay });

    const plan = trainingPlan(t, data.train.length);
    const { totalSteps } = plan;
    const counts = model.parameterCounts();
    const backend = activeBackend();

    const checkpoints = new RunCheckpoints(run, checkpointed, optimizer, resume, log);
    const start = checkpoints.state;

    const warnings = [...data.warnings];
    // No more workers than a batch has rows (each shard is at least one).
    let workers = Math.max(1, Math.min(workersRequested ?? family.defaultTrainingWorkers ?? defaultWorkers(backend?.name), t.batchSize));
    if (workers > 1 && !model.parallel) {
      const note = `the ${family.name} family trains on one thread: ${workers} workers were asked for, 1 is used`;
      log(note, 'warn');
      warnings.push(note);
      workers = 1;
    }
    run.update({
      status: 'running',
      backend: backend?.tfjsName,
      versions: { ...backend?.versions, 'adapter-lab': engineVersion() },
      params: counts,
      skippedRows: 0,
      warnings: warnings.length ? warnings : undefined,
      resumable: true,
      best: start.best ?? undefined,
    });
    if (resume) run.trimMetrics(start.step);
    if (!checkpoints.restored) checkpoints.save(0, 0, 0);
    log(
      `${cfg.method.type} on ${cfg.task.name} (${family.name}): ${counts.trainable.toLocaleString('en-US')} trainable of ${counts.base.toLocaleString('en-US')} base parameters ` +
        `(${counts.trainablePercent.toFixed(2)}%), ${data.train.length} train / ${data.dev.length} dev examples, ${totalSteps} steps, backend ${backend?.name ?? '?'}, ${workers} worker${workers > 1 ? 's' : ''}`,
    );
    if (workers > 1) {
      // After the checkpoint is restored: the workers start from the coordinator's values.
      const poolStart = Date.now();
      pool = await startFamilyPool(family, model, workers);
      log(`started ${workers - 1} worker thread${workers > 2 ? 's' : ''} in ${((Date.now() - poolStart) / 1000).toFixed(1)} s`);
    }

    const outcome = await runEpochs<FamilyBatch>({
      run,
      training: t,
      checkpoints,
      plan,
      headNames: model.headParamNames(),
      signal,
      callbacks,
      log,
      batchesOf: (epoch) => model.batches(data.train, t.batchSize, { training: true, rng: derivedRng(t.seed, 1, epoch) }),
      step: async (batch, step, lrFor) => {
        const { loss, grads } = pool ? await pool.familyStep(model, batch, t.seed, step) : model.lossAndGradients(batch, derivedRng(t.seed, 2, step));
        applyGradients(loss, grads, t.maxGradNorm, optimizer, lrFor);
        pool?.publishWeights();
        return loss;
      },
      unitsOf: (batch) => batch.units,
      rate: family.throughputUnit === 'images' ? 'imagesPerSecond' : 'tokensPerSecond',
      evaluateDev: async () => (await evaluateFamily(pool, model, data.dev, t.evalBatchSize)).metrics,
    });
    if (outcome.status === 'cancelled') return { status: 'cancelled', best: checkpoints.best, steps: outcome.steps };

    // The trained model a run hands out is its best checkpoint.
    checkpoints.restoreBest();
    pool?.publishWeights();
    const best = checkpoints.best;
    run.ensureDir(ADAPTER_DIR);
    assertNoLinksInTree(run.adapterDir, run.dir);
    model.saveTrained(run.adapterDir);
    const final = await evaluateFamily(pool, model, data.dev, t.evalBatchSize);
    writePredictionGrid(run, 'dev', data.dev, final, model);
    run.writeResult(evalResultName('dev'), { split: 'dev', examples: final.examples, metrics: final.metrics, ...(final.classes ? { classes: final.classes } : {}), best, fingerprint });
    run.update({ status: 'done', best: best ?? undefined, resumable: false });
    optimizer.dispose();
    return { status: 'done', best, steps: outcome.steps };
  } finally {
    await pool?.close();
    model.dispose();
  }
}
