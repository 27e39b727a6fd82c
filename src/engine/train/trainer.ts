import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ResolvedConfig } from '../config/types';
import { RunHandle } from '../runs/runFolder';
import { RunRecord } from '../runs/types';
import { loadTokenizer } from '../data/tokenizer';
import { makeBatches, paddingStats } from '../data/batching';
import { Batch, SkippedRow } from '../data/types';
import { SKIPPED_ROWS_KEPT, skippedReport } from '../data/load';
import { methodSizeWarnings } from '../config/load';
import { AdapterModel } from '../model/adapterModel';
import { assignParams, saveAdapterFolder, snapshot } from '../model/adapterIo';
import { readSafetensors, writeSafetensors } from '../model/safetensors';
import { packageRoot } from '../model/checkpoint';
import { evaluate } from '../analysis/evaluate';
import { metricHigherIsBetter } from '../metrics/metrics';
import { adapterMeta, buildModel, modelDirOf, prepareData, trainingContext } from '../experiment';
import { AdamW, clipByGlobalNorm, linearScheduleFactor } from './adamw';
import { FrozenPrefixCache } from './frozenPrefix';
import { activeBackend } from '../tf/backend';
import { baseFingerprint } from '../model/fingerprint';
import { saveFusionFolder } from '../model/fusionIo';
import { isFusion } from '../methods/fusion';
import { fusionAttention } from '../analysis/fusionAttention';
import { Rng } from '../util/random';
import { writeJsonAtomic } from '../util/atomicFile';

/**
 * The training loop (SPEC section 3): AdamW with linear warm-up and decay, gradient clipping, dropout,
 * length-bucketed batches, dev evaluation each epoch (and every N steps if asked), the best checkpoint kept,
 * NaN/inf stop, cancel with a checkpoint, and resume.
 *
 * Reproducibility: batch order of epoch e comes from Rng(seed, e) and dropout masks of step s from
 * Rng(seed, s), never from state carried between steps, so a resumed run computes exactly what an
 * uninterrupted one would.
 */

export interface TrainProgress {
  epoch: number;
  epochs: number;
  step: number;
  totalSteps: number;
  loss: number;
  learningRate: number;
  tokensPerSecond: number;
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
}

type Best = NonNullable<RunRecord['best']>;

export interface TrainOutcome {
  status: 'done' | 'cancelled';
  best: Best | null;
  steps: number;
}

/** The loss became NaN or infinite. */
export class DivergenceError extends Error {
  constructor(step: number, learningRate: number) {
    super(
      `training diverged: the loss became NaN or infinite at step ${step}. ` +
        `Try a lower learning rate (this run used ${learningRate}), or a stronger gradient clip (training.maxGradNorm).`,
    );
    this.name = 'DivergenceError';
  }
}

interface CheckpointState {
  /** Steps done. */
  step: number;
  /** Where the next step starts. */
  epoch: number;
  batchInEpoch: number;
  best: Best | null;
  files: { trainable: string; optimizer: string; best: string | null };
}

const STATE_FILE = 'state.json';

/** Seeds derived from the run's seed and a counter (epoch or step), independent of earlier draws. */
function derivedRng(seed: number, salt: number, counter: number): Rng {
  return new Rng(((seed * 1000003) ^ (salt * 7919 + counter * 2654435761)) >>> 0);
}

export async function trainRun({ config: cfg, run, resume = false, signal, callbacks = {} }: TrainOptions): Promise<TrainOutcome> {
  const log = (m: string, level: 'info' | 'warn' = 'info', rows?: SkippedRow[]) => callbacks.log?.(m, level, rows);
  const t = cfg.training;
  const modelDir = modelDirOf(cfg);
  const tokenizer = await loadTokenizer(modelDir);
  const prepared = await prepareData(cfg, tokenizer);
  for (const warning of prepared.data.warnings) log(warning, 'warn');
  const skipped = prepared.data.skipped;
  if (skipped.length) log(skippedReport(skipped), 'warn', skipped.slice(0, SKIPPED_ROWS_KEPT));
  if (prepared.dev.length === 0) throw new Error('the dev set is empty');

  const model = buildModel(cfg, modelDir, prepared.data.labels);
  try {
    // Before any base parameter is trained (or restored from a checkpoint): the base model's identity.
    const fingerprint = baseFingerprint(model.encoder);
    if (isFusion(model.method)) for (const note of model.method.fusion.notes) log(note, 'warn');
    const params = model.trainableParams();
    const names = [...params.keys()];
    const vars = [...params.values()];
    const nameOfVar = new Map(vars.map((v, i) => [v.name, names[i]]));
    const optimizer = new AdamW(params, { weightDecay: t.weightDecay });
    const headNames = new Set(model.head.params.keys());
    const headLr = t.headLearningRate ?? t.learningRate;

    const batchesPerEpoch = Math.ceil(prepared.train.length / t.batchSize);
    const fullSteps = t.epochs * batchesPerEpoch;
    const totalSteps = t.maxSteps ? Math.min(t.maxSteps, fullSteps) : fullSteps;
    const warmupSteps = Math.round(t.warmupRatio * totalSteps);
    const counts = model.parameterCounts();
    const sizeWarnings = methodSizeWarnings(cfg, counts, model.encoder.config.hiddenSize);
    for (const warning of sizeWarnings) log(warning, 'warn');
    const warnings = [...prepared.data.warnings, ...sizeWarnings];
    const higherIsBetter = metricHigherIsBetter(t.metric);
    const backend = activeBackend();

    let state: CheckpointState = { step: 0, epoch: 0, batchInEpoch: 0, best: null, files: { trainable: '', optimizer: '', best: null } };
    if (resume) {
      state = loadCheckpoint(run.checkpointDir, params, optimizer);
      log(`resuming at step ${state.step} (epoch ${state.epoch + 1}, batch ${state.batchInEpoch + 1})`);
    }

    run.update({
      status: 'running',
      backend: backend?.tfjsName,
      versions: { ...backend?.versions, 'adapter-lab': engineVersion() },
      params: counts,
      skippedRows: skipped.length,
      skipped: skipped.length ? skipped.slice(0, SKIPPED_ROWS_KEPT) : undefined,
      warnings: warnings.length ? warnings : undefined,
      resumable: resume ? true : undefined,
    });
    log(
      `${cfg.method.type} on ${cfg.task.name}: ${counts.trainable.toLocaleString('en-US')} trainable of ${counts.base.toLocaleString('en-US')} base parameters ` +
        `(${counts.trainablePercent.toFixed(2)}%), ${prepared.train.length} train / ${prepared.dev.length} dev examples, ${totalSteps} steps, backend ${backend?.name ?? '?'}`,
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

    const started = Date.now();
    let tokensSeen = 0;
    let step = state.step;
    let best = state.best;

    const evaluateDev = (epoch: number): boolean => {
      const result = evaluate(model, prepared.dev, t.evalBatchSize, undefined, devCache);
      const value = result.metrics[t.metric];
      const isBest = best === null || (higherIsBetter ? value > best.value : value < best.value) || (Number.isNaN(best.value) && !Number.isNaN(value));
      run.appendMetric({ type: 'eval', split: 'dev', epoch, step, ...result.metrics });
      callbacks.evaluated?.({ epoch, step, metrics: result.metrics, isBest });
      if (isBest) {
        best = { metric: t.metric, value, epoch, step };
        state.files.best = saveTensors(run.checkpointDir, `best-${step}`, snapshot(params));
        run.update({ best });
      }
      return isBest;
    };

    const checkpoint = (epoch: number, batchInEpoch: number) => {
      state = {
        step,
        epoch,
        batchInEpoch,
        best,
        files: {
          trainable: saveTensors(run.checkpointDir, `trainable-${step}`, snapshot(params)),
          optimizer: saveTensors(run.checkpointDir, `optimizer-${step}`, optimizer.state()),
          best: state.files.best,
        },
      };
      writeJsonAtomic(path.join(run.checkpointDir, STATE_FILE), { ...state, optimizerStep: optimizer.step });
      removeStaleFiles(run.checkpointDir, state);
    };

    for (let epoch = state.epoch; epoch < t.epochs && step < totalSteps; epoch++) {
      const batches = makeBatches(prepared.train, t.batchSize, {
        shuffle: true,
        rng: derivedRng(t.seed, 1, epoch),
        padId: tokenizer.padId,
        taskType: cfg.task.type,
      });
      if (epoch === state.epoch && state.batchInEpoch === 0 && step === 0) {
        const pad = paddingStats(batches);
        log(`length buckets: ${pad.realTokens} real of ${pad.paddedTokens} padded tokens per epoch (${((100 * pad.realTokens) / pad.paddedTokens).toFixed(1)}%)`);
      }
      const firstBatch = epoch === state.epoch ? state.batchInEpoch : 0;
      for (let b = firstBatch; b < batches.length && step < totalSteps; b++) {
        if (signal?.aborted) {
          checkpoint(epoch, b);
          run.update({ status: 'cancelled', resumable: true });
          log(`cancelled at step ${step}; checkpoint saved, resume with --resume`);
          return { status: 'cancelled', best, steps: step };
        }
        const lrFactor = linearScheduleFactor(step, warmupSteps, totalSteps);
        const loss = trainStep(model, batches[b], cfg, step, vars, nameOfVar, optimizer, (n) => (headNames.has(n) ? headLr : t.learningRate) * lrFactor, trainCache);
        if (!Number.isFinite(loss)) {
          run.appendMetric({ type: 'train', epoch, step, loss: String(loss) });
          throw new DivergenceError(step, t.learningRate);
        }
        step++;
        tokensSeen += batches[b].realTokens;
        const elapsedMs = Date.now() - started;
        const progress: TrainProgress = {
          epoch,
          epochs: t.epochs,
          step,
          totalSteps,
          loss,
          learningRate: t.learningRate * lrFactor,
          tokensPerSecond: tokensSeen / Math.max(1e-3, elapsedMs / 1000),
          elapsedMs,
        };
        run.appendMetric({ type: 'train', epoch, step, loss, lr: progress.learningRate, tokensPerSecond: progress.tokensPerSecond });
        callbacks.progress?.(progress);
        if (t.evalEverySteps > 0 && step % t.evalEverySteps === 0 && b < batches.length - 1) {
          evaluateDev(epoch);
          checkpoint(epoch, b + 1);
        }
        // Let signals (cancel) and stdout drain between steps.
        await new Promise((resolve) => setImmediate(resolve));
      }
      evaluateDev(epoch);
      checkpoint(epoch + 1, 0);
      run.appendMetric({ type: 'epoch', epoch, step });
    }

    // The adapter a run hands out is its best checkpoint.
    if (state.files.best) assignParams(params, readSafetensors(path.join(run.checkpointDir, state.files.best)).tensors, 'best checkpoint');
    const adapterParams = new Map([...model.method.params, ...model.method.trainedBaseParams.map((n) => [n, model.encoder.params.get(n)!] as const)]);
    const meta = adapterMeta(cfg, model, fingerprint);
    const method = model.method;
    if (isFusion(method)) {
      const fused = method.fusion.adapterNames.map((name, i) => ({ name, dir: method.fusion.sources[i] }));
      saveFusionFolder(run.adapterDir, { fusionParams: adapterParams, headParams: model.head.params, fusionConfig: method.adapterConfig(), headConfig: model.head.headConfig(cfg.model), meta, fused });
    } else {
      saveAdapterFolder(run.adapterDir, { adapterParams, headParams: model.head.params, adapterConfig: model.method.adapterConfig(), headConfig: model.head.headConfig(cfg.model), meta });
    }
    const final = evaluate(model, prepared.dev, t.evalBatchSize, undefined, devCache);
    run.writeResult('eval-dev', { split: 'dev', examples: final.examples, metrics: final.metrics, best });
    if (isFusion(method)) run.writeResult('fusion-attention', fusionAttention(model, prepared.dev, { batchSize: t.evalBatchSize, padId: tokenizer.padId }));
    run.update({ status: 'done', best: best ?? undefined, resumable: false });
    optimizer.dispose();
    return { status: 'done', best, steps: step };
  } finally {
    model.dispose();
  }
}

/** One optimisation step; returns the loss (before the update). */
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
  const rng = derivedRng(cfg.training.seed, 2, step);
  const ctx = trainingContext(cfg, model, rng);
  const k = cfg.method.dropLowest;
  if (k > 0) {
    // Robust AdapterDrop: drop the adapters of the lowest n layers, n uniform in 0..k.
    const n = rng.int(k + 1);
    ctx.disabledAdapterLayers = new Set([...Array(n).keys()]);
  }
  const { value, grads } = tf.variableGrads(
    () => model.loss(batch, batch.labels, ctx, cache ? { hidden: cache.hiddenFor(batch), from: cache.depth } : undefined),
    vars,
  );
  const loss = value.dataSync()[0];
  value.dispose();
  const named = new Map<string, tf.Tensor>();
  for (const [varName, g] of Object.entries(grads)) named.set(nameOfVar.get(varName)!, g);
  if (Number.isFinite(loss)) {
    const { clipped } = clipByGlobalNorm(named, cfg.training.maxGradNorm);
    optimizer.apply(clipped, lrFor);
    if (clipped !== named) for (const g of clipped.values()) g.dispose();
  }
  for (const g of named.values()) g.dispose();
  return loss;
}

function saveTensors(dir: string, stem: string, tensors: ReturnType<typeof snapshot>): string {
  const file = `${stem}.safetensors`;
  writeSafetensors(path.join(dir, file), tensors);
  return file;
}

function removeStaleFiles(dir: string, state: CheckpointState): void {
  const keep = new Set([STATE_FILE, state.files.trainable, state.files.optimizer, state.files.best].filter(Boolean) as string[]);
  for (const f of fs.readdirSync(dir)) if (f.endsWith('.safetensors') && !keep.has(f)) fs.rmSync(path.join(dir, f), { force: true });
}

function loadCheckpoint(dir: string, params: Map<string, tf.Variable>, optimizer: AdamW): CheckpointState {
  const file = path.join(dir, STATE_FILE);
  if (!fs.existsSync(file)) throw new Error(`nothing to resume: no checkpoint in ${dir}`);
  const state = JSON.parse(fs.readFileSync(file, 'utf8')) as CheckpointState & { optimizerStep: number };
  assignParams(params, readSafetensors(path.join(dir, state.files.trainable)).tensors, 'checkpoint');
  optimizer.loadState(readSafetensors(path.join(dir, state.files.optimizer)).tensors, state.optimizerStep);
  return state;
}

function engineVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
