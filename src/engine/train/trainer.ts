import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ResolvedConfig } from '../config/types';
import { RunHandle } from '../runs/runFolder';
import { ADAPTER_DIR, evalResultName } from '../runs/files';
import { assertNoLinksInTree } from '../runs/confined';
import { RunRecord } from '../runs/types';
import { loadTokenizer } from '../data/tokenizer';
import { makeBatches, paddingStats } from '../data/batching';
import { Batch, SkippedRow } from '../data/types';
import { SKIPPED_ROWS_KEPT, skippedReport } from '../data/load';
import { methodSizeWarnings } from '../config/load';
import { AdapterModel } from '../model/adapterModel';
import { saveAdapterFolder } from '../model/adapterIo';
import { packageRoot } from '../model/checkpoint';
import { evaluate, scorePredictions } from '../analysis/evaluate';
import { defaultWorkers, WorkerPool } from '../parallel/pool';
import { adapterMeta, buildModel, EVAL_CONTEXT, modelDirOf, prepareData } from '../experiment';
import { AdamW, applyGradients } from './adamw';
import { RunCheckpoints, trainingPlan } from './runCheckpoints';
import { runEpochs } from './epochLoop';
import { FrozenPrefixCache } from './frozenPrefix';
import { activeBackend } from '../tf/backend';
import { baseFingerprint } from '../model/fingerprint';
import { derivedRng, shardLossAndGradients } from '../parallel/shard';
import { writeTaskFields } from '../model/taskFields';
import { familyFor } from '../families';
import { trainFamilyRun } from './familyTrainer';

/**
 * The training loop (SPEC section 3): AdamW with linear warm-up and decay, gradient clipping, dropout,
 * length-bucketed batches, dev evaluation each epoch (and every N steps if asked), the best checkpoint kept,
 * NaN/inf stop, cancel with a checkpoint, and resume.
 *
 * Reproducibility: batch order of epoch e comes from Rng(seed, e) and dropout masks of step s from
 * Rng(seed, s), never from state carried between steps, so a resumed run computes exactly what an
 * uninterrupted one would.
 *
 * Crash safety: the run's lock is held throughout (one live trainer per run); a checkpoint is written before
 * the first step, so a run killed at any moment can be resumed; a resume trims metrics.jsonl back to the
 * checkpoint's step, so the curve has one point per step, as if the run had never stopped.
 */

export interface TrainProgress {
  epoch: number;
  epochs: number;
  step: number;
  totalSteps: number;
  loss: number;
  learningRate: number;
  /** The training rate: text counts real tokens, images count images (`imagesPerSecond` instead). */
  tokensPerSecond?: number;
  imagesPerSecond?: number;
  elapsedMs: number;
}

export interface TrainCallbacks {
  /** `rows`: the rows a message is about (skipped rows), for readers that want them as data. */
  log?(message: string, level?: 'info' | 'warn', rows?: SkippedRow[]): void;
  progress?(p: TrainProgress): void;
  evaluated?(e: { epoch: number; step: number; metrics: Record<string, number>; isBest: boolean }): void;
}

export interface TrainOptions {
  config: ResolvedConfig;
  run: RunHandle;
  resume?: boolean;
  signal?: AbortSignal;
  callbacks?: TrainCallbacks;
  /** Workers (threads) for data parallelism; overrides training.workers (the CLI's --workers). */
  workers?: number;
}

type Best = NonNullable<RunRecord['best']>;

export interface TrainOutcome {
  status: 'done' | 'cancelled';
  best: Best | null;
  steps: number;
}

export async function trainRun({ config: cfg, run, resume = false, signal, callbacks = {}, workers }: TrainOptions): Promise<TrainOutcome> {
  const log = (m: string, level: 'info' | 'warn' = 'info', rows?: SkippedRow[]) => callbacks.log?.(m, level, rows);
  // The caller (the CLI) may hold the lock already, to keep it while it records a failure.
  const ownLock = run.locked ? null : run.lock();
  try {
    // A family with a trainer of its own (the text family: worker threads, the frozen-prefix cache, AdapterDrop)
    // trains here; the others on the family interface (train/familyTrainer.ts).
    const family = familyFor(cfg.task.type);
    if (!family.ownTrainer) return await trainFamilyRun(family, cfg, run, resume, signal, callbacks, log, workers ?? cfg.training.workers ?? undefined);
    return await trainLocked(cfg, run, resume, signal, callbacks, log, workers);
  } finally {
    ownLock?.release();
  }
}

async function trainLocked(
  cfg: ResolvedConfig,
  run: RunHandle,
  resume: boolean,
  signal: AbortSignal | undefined,
  callbacks: TrainCallbacks,
  log: (m: string, level?: 'info' | 'warn', rows?: SkippedRow[]) => void,
  workersOverride: number | undefined,
): Promise<TrainOutcome> {
  const stale = run.removeStaleTempFiles();
  if (stale.length) log(`removed ${stale.length} temp file${stale.length > 1 ? 's' : ''} a killed process left half written (${stale.map((f) => path.relative(run.dir, f)).join(', ')})`, 'warn');
  const t = cfg.training;
  const modelDir = modelDirOf(cfg);
  const tokenizer = await loadTokenizer(modelDir);
  const prepared = await prepareData(cfg, tokenizer);
  for (const warning of prepared.data.warnings) log(warning, 'warn');
  const skipped = prepared.data.skipped;
  if (skipped.length) log(skippedReport(skipped), 'warn', skipped.slice(0, SKIPPED_ROWS_KEPT));
  if (prepared.dev.length === 0) throw new Error('the dev set is empty');

  const model = buildModel(cfg, modelDir, prepared.data.labels);
  let pool: WorkerPool | null = null;
  try {
    // Before any base parameter is trained (or restored from a checkpoint): the base model's identity.
    const fingerprint = baseFingerprint(model.encoder);
    for (const note of model.method.notes ?? []) log(note, 'warn');
    const params = model.trainableParams();
    const names = [...params.keys()];
    const vars = [...params.values()];
    const nameOfVar = new Map(vars.map((v, i) => [v.name, names[i]]));
    const optimizer = new AdamW(params, { weightDecay: t.weightDecay });
    const plan = trainingPlan(t, prepared.train.length);
    const { totalSteps } = plan;
    const counts = model.parameterCounts();
    const sizeWarnings = methodSizeWarnings(cfg, counts, model.encoder.config.hiddenSize);
    for (const warning of sizeWarnings) log(warning, 'warn');
    const warnings = [...prepared.data.warnings, ...sizeWarnings];
    const backend = activeBackend();

    const checkpoints = new RunCheckpoints(run, params, optimizer, resume, log);
    const start = checkpoints.state;

    // A started run can always be resumed: from its checkpoint, or from step 0 when killed before the first.
    run.update({
      status: 'running',
      backend: backend?.tfjsName,
      versions: { ...backend?.versions, 'adapter-lab': engineVersion() },
      params: counts,
      skippedRows: skipped.length,
      skipped: skipped.length ? skipped.slice(0, SKIPPED_ROWS_KEPT) : undefined,
      warnings: warnings.length ? warnings : undefined,
      resumable: true,
      // The checkpoint's best: one recorded after it, by the attempt that was killed, is redone.
      best: start.best ?? undefined,
    });
    if (resume) run.trimMetrics(start.step);
    // Before the first step, so that a run killed at any moment has a checkpoint the extension offers to resume.
    if (!checkpoints.restored) checkpoints.save(0, 0, 0);
    const workers = workersOverride ?? t.workers ?? defaultWorkers(backend?.name);
    log(
      `${cfg.method.type} on ${cfg.task.name}: ${counts.trainable.toLocaleString('en-US')} trainable of ${counts.base.toLocaleString('en-US')} base parameters ` +
        `(${counts.trainablePercent.toFixed(2)}%), ${prepared.train.length} train / ${prepared.dev.length} dev examples, ${totalSteps} steps, backend ${backend?.name ?? '?'}, ${workers} worker${workers > 1 ? 's' : ''}`,
    );

    // Frozen lowest layers: computed once per example, reused at every step and evaluation.
    const depth = t.cacheFrozenLayers === false ? 0 : model.frozenDepth();
    let trainCache: FrozenPrefixCache | undefined;
    let devCache: FrozenPrefixCache | undefined;
    if (depth > 0) {
      const cacheStart = Date.now();
      trainCache = new FrozenPrefixCache(model, depth);
      trainCache.build(prepared.train, t.evalBatchSize, tokenizer.padId);
      devCache = new FrozenPrefixCache(model, depth);
      devCache.build(prepared.dev, t.evalBatchSize, tokenizer.padId);
      log(`cached the outputs of the ${depth} frozen lowest layer${depth > 1 ? 's' : ''} for ${trainCache.size + devCache.size} examples in ${((Date.now() - cacheStart) / 1000).toFixed(1)} s (dropout off there)`);
    }

    if (workers > 1) {
      const poolStart = Date.now();
      pool = await WorkerPool.start({
        workers,
        backend: backend?.name ?? 'wasm',
        source: { kind: 'config', cfg, labels: prepared.data.labels },
        params,
        caches: depth > 0 ? { depth, batchSize: t.evalBatchSize, padId: tokenizer.padId, sets: { train: prepared.train, dev: prepared.dev } } : undefined,
      });
      log(`started ${workers - 1} worker thread${workers > 2 ? 's' : ''} in ${((Date.now() - poolStart) / 1000).toFixed(1)} s`);
    }
    const evaluateOnDev = async () =>
      pool ? scorePredictions(model, prepared.dev, await pool.predict(model, prepared.dev, t.evalBatchSize, EVAL_CONTEXT, devCache, 'dev')) : evaluate(model, prepared.dev, t.evalBatchSize, undefined, devCache);

    const outcome = await runEpochs({
      run,
      training: t,
      checkpoints,
      plan,
      headNames: new Set(model.head.params.keys()),
      signal,
      callbacks,
      log,
      batchesOf: (epoch) => {
        const batches = makeBatches(prepared.train, t.batchSize, { shuffle: true, rng: derivedRng(t.seed, 1, epoch), padId: tokenizer.padId, taskType: cfg.task.type });
        if (epoch === 0 && start.step === 0) {
          const pad = paddingStats(batches);
          log(`length buckets: ${pad.realTokens} real of ${pad.paddedTokens} padded tokens per epoch (${((100 * pad.realTokens) / pad.paddedTokens).toFixed(1)}%)`);
        }
        return batches;
      },
      step: (batch, step, lrFor) =>
        pool ? pool.trainStep(model, batch, cfg, step, vars, nameOfVar, optimizer, lrFor, trainCache, 'train') : trainStep(model, batch, cfg, step, vars, nameOfVar, optimizer, lrFor, trainCache),
      unitsOf: (batch) => batch.realTokens,
      rate: 'tokensPerSecond',
      evaluateDev: async () => (await evaluateOnDev()).metrics,
    });
    if (outcome.status === 'cancelled') return { status: 'cancelled', best: checkpoints.best, steps: outcome.steps };

    // The adapter a run hands out is its best checkpoint.
    if (checkpoints.restoreBest()) pool?.publishWeights();
    const best = checkpoints.best;
    const savedBase = [...model.method.trainedBaseParams, ...(model.method.baseValues?.keys() ?? [])];
    const adapterParams = new Map([...model.method.params, ...savedBase.map((n) => [n, model.encoder.params.get(n)!] as const)]);
    const meta = adapterMeta(cfg, model, fingerprint);
    const method = model.method;
    // adapter/ is written through: a link there (or inside) would send the adapter into another folder.
    run.ensureDir(ADAPTER_DIR);
    assertNoLinksInTree(run.adapterDir, run.dir);
    const parts = { adapterParams, headParams: model.head.params, adapterConfig: method.adapterConfig(), headConfig: model.head.headConfig(cfg.model), meta };
    if (method.saveAdapter) method.saveAdapter(run.adapterDir, parts);
    else saveAdapterFolder(run.adapterDir, parts);
    writeTaskFields(run.adapterDir, cfg.task);
    const final = await evaluateOnDev();
    run.writeResult(evalResultName('dev'), { split: 'dev', examples: final.examples, metrics: final.metrics, best });
    const extra = method.extraResults?.(model, prepared.dev, { batchSize: t.evalBatchSize, padId: tokenizer.padId }) ?? {};
    for (const [name, result] of Object.entries(extra)) run.writeResult(name, result);
    run.update({ status: 'done', best: best ?? undefined, resumable: false });
    optimizer.dispose();
    return { status: 'done', best, steps: outcome.steps };
  } finally {
    await pool?.close();
    model.dispose();
  }
}

/** One optimisation step in this thread; returns the loss (before the update). */
export function trainStep(
  model: AdapterModel,
  batch: Batch,
  cfg: ResolvedConfig,
  step: number,
  vars: tf.Variable[],
  nameOfVar: Map<string, string>,
  optimizer: AdamW,
  lrFor: (name: string) => number,
  cache?: FrozenPrefixCache,
): number {
  const { loss, grads } = shardLossAndGradients(model, { batch, firstRow: 0 }, batch.batchSize, cfg, step, vars, nameOfVar, cache);
  applyGradients(loss, grads, cfg.training.maxGradNorm, optimizer, lrFor);
  return loss;
}

export function engineVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
