import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../engine/config/load';
import { ResolvedConfig } from '../engine/config/types';
import { createRun, evalResultName, isProcessAlive, openRun, RESULT, RunHandle } from '../engine/runs';
import { activeBackend, BackendRequest, initBackend } from '../engine/tf/backend';
import { adapterPool, defaultWorkers, tasksPool } from '../engine/parallel/pool';
import { trainRun } from '../engine/train/trainer';
import { UserInputError } from '../engine/errors';
import { buildModel, loadAdapterModel, modelDirOf, prepareData } from '../engine/experiment';
import { loadTokenizer, encodeExamples } from '../engine/data/tokenizer';
import { readRows } from '../engine/data/readers';
import { DataError } from '../engine/data/load';
import { evaluate, predict, scorePredictions } from '../engine/analysis/evaluate';
import { layerAblation } from '../engine/analysis/ablation';
import { encodeFirstToken } from '../engine/analysis/encode';
import { initEncoderArrays, loadEncoder, readConfig, resolveModelDir, saveEncoderHf } from '../engine/model/checkpoint';
import { maxSequenceLength } from '../engine/model/config';
import { Rng } from '../engine/util/random';
import { Example, SkippedRow } from '../engine/data/types';
import { primaryMetricFor } from '../engine/metrics/metrics';
import { Reporter, finishEval, formatNumber } from './reporter';
import { resolveTarget, Target } from './targets';
import { compareCommand, listCommand } from './list';
import { pretrainCommand } from '../engine/pretrain/command';
import { adapterDropTradeoff } from '../engine/analysis/drop';
import { loadTaskModels, predictMultiTaskOn } from '../engine/analysis/multiTask';
import { Predictions } from '../engine/analysis/evaluate';
import { isAdapterFolder, isFusionFolder } from '../engine/model/fusionIo';
import { mergeAdapter } from '../engine/model/merge';
import { newSweepId, RunOverrides, runSweep, sweepPoints, withOverrides } from './sweep';
import { assertNoLinksInTree, copyTreeRefusingLinks } from '../engine/runs/confined';
import { describeIoError } from '../engine/util/atomicFile';
import { parseSafetensors } from '../engine/model/safetensors';
import { checkWeightTwins } from '../engine/model/adapterIo';
import { readTaskFields, TASK_FIELDS_FILE, writeTaskFields } from '../engine/model/taskFields';
import { resumeOnSlurm, slurmCommand, submitToSlurm } from './slurm';
import { familyFor } from '../engine/families';
import type { FamilyRunConfig } from '../engine/model/family';
import { ablateFamilyRun, evalFamilyRun, familyConfigCounts, familyTrainedCounts, genericFamilyOf, predictFamilyRun } from './familyCommands';

const USAGE = `adapter-lab: adapter-tuning experiments on BERT encoders and ResNets for small images (TensorFlow.js)

Usage:
  adapter-lab train <config.adapter.json> [--runs-dir DIR] [--max-steps N] [--model DIR|builtin:NAME]
  adapter-lab train --resume <run folder> [--slurm [--wait] [Slurm options as below]]
  adapter-lab sweep <config.adapter.json> [--jobs N] [--runs-dir DIR] [--max-steps N] [--model DIR|builtin:NAME]
  adapter-lab train|sweep <config.adapter.json> --slurm [--wait] [--partition P] [--time T] [--cpus N] [--mem M]
      [--gres G] [--max-concurrent K] [--signal-lead SECONDS] [--sbatch-arg=ARG]... [--node PATH] [--cli-path PATH]
  adapter-lab slurm status [run folder|runs folder]
  adapter-lab slurm cancel <run folder> [--whole-array]
  adapter-lab eval <config|run|adapter> [--split dev|test] [--config CFG]
  adapter-lab predict <run|adapter> --input FILE [--logits] [--text-field F] [--pair-field F]
  adapter-lab predict <image run> --input IDX-FILE|IMAGE|FOLDER [--logits]
  adapter-lab predict --runs RUN,RUN,... --input FILE [--logits] [--text-field F] [--pair-field F]
  adapter-lab encode --model <dir|builtin:NAME|hub id> --input FILE [--text-field F] [--pair-field F] [--max-length N]
  adapter-lab ablate <config|run> [--split dev|test]
  adapter-lab drop <config|run> [--split dev|test] [--repeats N]
  adapter-lab info <config|run|adapter>
  adapter-lab list [<runs folder>] [--runs-dir DIR]
  adapter-lab compare <run|config> [<run|config> ...]
  adapter-lab export <run> <dir>
  adapter-lab merge <run|adapter> <dir>
  adapter-lab random-init --model <dir|builtin:NAME> --out DIR [--seed N]
  adapter-lab pretrain <pretrain.json> | --resume <pretrain.json> [--max-steps N]

Options on every command:
  --json             JSON lines on stdout (the protocol the VS Code extension reads)
  --backend NAME     auto (default), node, wasm or cpu
  --workers N        threads for training, pretraining, evaluation and prediction (default: training.workers,
                     else the machine's cores; one on tfjs-node; a sweep with --jobs J gives each run at most cores / J)
  -h, --help

Exit codes: 0 success, 1 a failed or cancelled run (or results that could not be saved), 2 bad input
(including a run another live process is training, and a broken run or adapter folder).`;

const options = {
  json: { type: 'boolean' },
  backend: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  resume: { type: 'string' },
  'runs-dir': { type: 'string' },
  'max-steps': { type: 'string' },
  split: { type: 'string' },
  config: { type: 'string' },
  input: { type: 'string' },
  logits: { type: 'boolean' },
  'text-field': { type: 'string' },
  'pair-field': { type: 'string' },
  model: { type: 'string' },
  'max-length': { type: 'string' },
  'batch-size': { type: 'string' },
  out: { type: 'string' },
  seed: { type: 'string' },
  runs: { type: 'string' },
  jobs: { type: 'string' },
  repeats: { type: 'string' },
  workers: { type: 'string' },
  // Slurm (src/cli/slurm.ts)
  slurm: { type: 'boolean' },
  wait: { type: 'boolean' },
  partition: { type: 'string' },
  time: { type: 'string' },
  cpus: { type: 'string' },
  mem: { type: 'string' },
  gres: { type: 'string' },
  'max-concurrent': { type: 'string' },
  'signal-lead': { type: 'string' },
  'sbatch-arg': { type: 'string', multiple: true },
  node: { type: 'string' },
  'cli-path': { type: 'string' },
  'whole-array': { type: 'boolean' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>['values'];

interface Ctx {
  values: Values;
  args: string[];
  out: Reporter;
}

export async function main(argv: string[]): Promise<number> {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, ...args] = positionals;
  const out = new Reporter(values.json === true);
  if (values.help || !command) {
    process.stdout.write(USAGE + '\n');
    return command || values.help ? 0 : 2;
  }
  const handler = commands[command];
  if (!handler) {
    out.emit({ type: 'error', message: `unknown command "${command}"\n\n${USAGE}`, exitCode: 2 });
    return 2;
  }
  try {
    requestedWorkers = intOption(values.workers, 'workers');
    const backend = await initBackend(parseBackend(values.backend));
    if (!values.json) {
      process.stderr.write(`backend: ${backend.name}${backend.notes.length ? ` (${backend.notes.join('; ')})` : ''}\n`);
    }
    return await handler({ values, args, out });
  } catch (err) {
    return reportError(err, out, command);
  }
}

/** --workers, when given (data-parallel threads: src/engine/parallel). */
let requestedWorkers: number | undefined;

/** Workers for evaluation, the ablation and prediction: --workers, else the config's, else every core. */
function workersFor(config?: ResolvedConfig): number {
  return requestedWorkers ?? config?.training.workers ?? defaultWorkers(activeBackend()?.name);
}

function reportError(err: unknown, out: Reporter, command: string): number {
  const bad = err instanceof UserInputError;
  const exitCode = bad ? 2 : 1;
  const e = err as Error;
  // A UserInputError's message already names its file and line (errors.ts); adding them here printed them twice.
  const message = e.message;
  const rows = err instanceof DataError ? err.rowsAsData() : {};
  out.emit({ type: 'error', message, exitCode, ...(bad ? (err as UserInputError).location : {}), ...rows });
  if (!bad && !(e.name === 'DivergenceError') && process.env.ADAPTER_LAB_DEBUG) process.stderr.write(`${e.stack}\n`);
  out.emit({ type: 'done', command, status: 'failed', exitCode });
  return exitCode;
}

function parseBackend(v: string | undefined): BackendRequest {
  const b = v ?? process.env.ADAPTER_LAB_BACKEND ?? 'auto';
  if (!['auto', 'node', 'wasm', 'cpu'].includes(b)) throw new UserInputError(`--backend must be auto, node, wasm or cpu, got "${b}"`);
  return b as BackendRequest;
}

function intOption(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UserInputError(`--${name} must be a positive integer, got "${v}"`);
  return n;
}

function need(args: string[], count: number, what: string): void {
  if (args.length < count) throw new UserInputError(`missing ${what}\n\n${USAGE}`);
}

const commands: Record<string, (ctx: Ctx) => Promise<number>> = {
  train,
  eval: evalCommand,
  predict: predictCommand,
  encode: encodeCommand,
  ablate,
  drop,
  sweep: sweepCommand,
  info,
  list: listCommand,
  compare: compareCommand,
  export: exportCommand,
  merge: mergeCommand,
  'random-init': randomInitCommand,
  pretrain: pretrainCommand,
  slurm: ({ values, args, out }) => slurmCommand(args, values, out),
};

// ---------------------------------------------------------------------------------------------
// train

async function train({ values, args, out }: Ctx): Promise<number> {
  if (values.resume) return values.slurm ? resumeOnSlurm(path.resolve(values.resume), values, out) : runTraining(openRun(path.resolve(values.resume)), true, out);
  need(args, 1, 'the config file');
  const config = loadConfig(path.resolve(args[0]));
  const overrides = runOverrides(values);
  // A sweep's points train one after another here; `adapter-lab sweep` trains them side by side.
  const sweepId = config.sweep && Object.keys(config.sweep).length ? newSweepId() : null;
  const points = sweepId ? sweepPoints(config, overrides) : [{ config: withOverrides(config, overrides), name: config.name, assignment: {} }];
  await checkBeforeRunFolders(points);
  if (values.slurm) return submitToSlurm(config, points, sweepId !== null, values, out);
  let exitCode = 0;
  for (const [index, point] of points.entries()) {
    const run = createRun(point.config.runsDir, point.config, {
      name: point.name,
      sweep: sweepId ? { group: config.name, assignment: point.assignment, id: sweepId, index, size: points.length } : undefined,
    });
    const code = await runTraining(run, false, out, cancel.signal);
    exitCode = Math.max(exitCode, code);
    // A cancel (SIGINT/SIGTERM) ends the whole sweep, not just the point that was running.
    if (cancel.signal.aborted || (code !== 0 && code !== 1)) break;
  }
  return exitCode;
}

/**
 * The checks that need the model, before any run folder exists: a config error leaves no `failed` run behind.
 * In a sweep where only some points fail them, those are bad points of the grid rather than a bad config:
 * they get their folder and fail there with the reason, and the other points train.
 */
async function checkBeforeRunFolders(points: { config: ResolvedConfig }[]): Promise<void> {
  let first: unknown = null;
  let failed = 0;
  for (const point of points) {
    try {
      await familyFor(point.config.task.type).checkConfig(point.config as unknown as FamilyRunConfig);
    } catch (err) {
      if (!(err instanceof UserInputError)) throw err;
      first ??= err;
      failed++;
    }
  }
  if (failed === points.length && first) throw first;
}

function runOverrides(values: Values): RunOverrides {
  return { maxSteps: intOption(values['max-steps'], 'max-steps'), runsDir: values['runs-dir'], model: values.model };
}

async function sweepCommand({ values, args, out }: Ctx): Promise<number> {
  need(args, 1, 'the config file');
  const config = loadConfig(path.resolve(args[0]));
  const points = sweepPoints(config, runOverrides(values));
  const jobs = intOption(values.jobs, 'jobs') ?? 1;
  await checkBeforeRunFolders(points);
  if (values.slurm) return submitToSlurm(config, points, true, values, out);
  out.emit({ type: 'start', command: 'sweep' });
  if (!out.json) out.info(`${config.name}: ${points.length} run${points.length > 1 ? 's' : ''}, ${Math.min(jobs, points.length)} at a time`);
  return runSweep(config.name, points, {
    jobs,
    cli: { command: process.execPath, args: [process.argv[1]] },
    childArgs: [...(values.backend ? ['--backend', values.backend] : []), '--workers', String(sweepRunWorkers(config, jobs, points.length))],
    out,
  });
}

/**
 * Each sweep run's workers: --workers, else what one run would take (training.workers, else its family's
 * default, else every core) but no more than its share of the cores, so that concurrent runs never make more busy
 * threads than cores unless --workers says so.
 */
function sweepRunWorkers(config: ResolvedConfig, jobs: number, points: number): number {
  if (requestedWorkers !== undefined) return requestedWorkers;
  const share = Math.max(1, Math.floor(defaultWorkers(activeBackend()?.name) / Math.min(jobs, points)));
  return Math.min(share, config.training.workers ?? familyFor(config.task.type).defaultTrainingWorkers ?? share);
}

/** Aborted by SIGINT or SIGTERM, for the whole process: a cancelled run saves its checkpoint and ends. */
const cancel = new AbortController();
let cancelListening = false;
function listenForCancel(): void {
  if (cancelListening) return;
  cancelListening = true;
  const onSignal = () => cancel.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

async function runTraining(run: RunHandle, resume: boolean, out: Reporter, signal: AbortSignal = cancel.signal): Promise<number> {
  const config: ResolvedConfig = run.record.config;
  // A run that never started (a queued sweep point) has nothing to resume: it starts from the beginning.
  resume = resume && run.record.startedAt !== undefined;
  // One live process per run: a second trainer stops here, before it writes anything (run.json included).
  try {
    run.lock();
  } catch (err) {
    return reportError(err, out, 'train');
  }
  listenForCancel();
  out.emit({ type: 'start', command: 'train', runDir: run.dir });
  try {
    const outcome = await trainRun({
      config,
      run,
      resume,
      signal,
      workers: requestedWorkers,
      callbacks: {
        log: (message, level = 'info', rows) => out.emit({ type: 'log', level, message, ...(rows ? { rows } : {}) }),
        progress: (p) => out.emit({ type: 'progress', runDir: run.dir, ...p }),
        evaluated: (e) => out.emit({ type: 'eval', runDir: run.dir, split: 'dev', ...e }),
      },
    });
    const record = run.reload();
    if (outcome.status === 'done') {
      out.emit({
        type: 'result',
        command: 'train',
        runDir: run.dir,
        best: record.best,
        params: record.params,
        durationMs: record.durationMs,
      });
      if (!out.json) {
        const b = record.best;
        out.info(`best dev ${b?.metric} ${b ? formatNumber(b.value) : '?'} (epoch ${b ? b.epoch + 1 : '?'})`);
        out.info(`trainable ${record.params?.trainable.toLocaleString('en-US')} of ${record.params?.base.toLocaleString('en-US')} base parameters (${record.params?.trainablePercent.toFixed(2)}%)`);
        out.info(`run folder: ${run.dir}`);
      }
    } else if (!out.json) {
      out.info(`run folder: ${run.dir}`);
    }
    const exitCode = outcome.status === 'done' ? 0 : 1;
    out.emit({ type: 'done', command: 'train', status: outcome.status, runDir: run.dir, exitCode });
    return exitCode;
  } catch (err) {
    const bad = err instanceof UserInputError;
    let unrecorded: string | null = null;
    try {
      run.reload();
      const rows = err instanceof DataError ? err.rowsAsData() : {};
      const error = { message: (err as Error).message, exitCode: bad ? 2 : 1, ...rows };
      if (run.record.status === 'running' || run.record.status === 'queued') run.update({ status: 'failed', error });
      else if (run.record.status === 'failed') run.update({ error }); // a failed resume of a failed run: the latest reason
    } catch (recordErr) {
      // A full or read-only disk: run.json keeps its last state, and the user is told so below.
      unrecorded = (recordErr as Error).message;
    }
    const code = reportError(err, out, 'train');
    if (unrecorded) out.emit({ type: 'log', level: 'warn', message: `the failure could not be recorded in run.json: ${unrecorded}` });
    if (!out.json) process.stderr.write(`run folder: ${run.dir}\n`);
    return code;
  } finally {
    run.lock().release();
  }
}

// ---------------------------------------------------------------------------------------------
// eval, ablate

async function loadForEval(target: Target, values: Values) {
  const loaded = await loadAdapterModel(target.adapterDir);
  let config: ResolvedConfig;
  if (target.kind === 'run') config = target.config;
  else if (values.config) config = loadConfig(path.resolve(values.config));
  else throw new UserInputError(`${target.adapterDir} is an adapter folder without data: give --config <config.adapter.json> for the task's files`);
  const prepared = await prepareData({ ...config, training: { ...config.training, maxSeqLength: loaded.meta.maxSeqLength } }, loaded.tokenizer);
  if (prepared.data.labels && loaded.meta.task.labels && prepared.data.labels.join('\n') !== loaded.meta.task.labels.join('\n')) {
    throw new UserInputError(`the data's classes (${prepared.data.labels.join(', ')}) differ from the adapter's (${loaded.meta.task.labels.join(', ')})`);
  }
  return { ...loaded, config, prepared };
}

function splitOf(values: Values): 'dev' | 'test' {
  const s = values.split ?? 'dev';
  if (s !== 'dev' && s !== 'test') throw new UserInputError(`--split must be dev or test, got "${s}"`);
  return s;
}

async function evalCommand({ values, args, out }: Ctx): Promise<number> {
  need(args, 1, 'a config, run folder or adapter folder');
  const target = resolveTarget(args[0], values['runs-dir']);
  const split = splitOf(values);
  const family = genericFamilyOf(target.kind === 'run' ? target.config : null);
  if (family && target.kind === 'run') return evalFamilyRun(family, target, split, out, workersFor(target.config));
  const { model, config, prepared } = await loadForEval(target, values);
  try {
    const examples = prepared[split];
    if (!examples.length) throw new UserInputError(`the task has no ${split} set`);
    out.emit({ type: 'start', command: 'eval', runDir: target.kind === 'run' ? target.run.dir : undefined });
    const batchSize = config.training.evalBatchSize;
    const pool = await adapterPool(target.adapterDir, workersFor(config), Math.ceil(examples.length / batchSize));
    let result;
    try {
      result = pool ? scorePredictions(model, examples, await pool.predict(model, examples, batchSize)) : evaluate(model, examples, batchSize);
    } finally {
      await pool?.close();
    }
    // Classification: the payload carries each class's precision, recall, F1 and support, and the confusion matrix.
    const runDir = target.kind === 'run' ? target.run.dir : undefined;
    return finishEval(out, { split, ...result }, runDir, target.kind === 'run' ? (payload) => target.run.writeResult(evalResultName(split), { ...payload, time: new Date().toISOString() }) : null);
  } finally {
    model.dispose();
  }
}

async function ablate({ values, args, out }: Ctx): Promise<number> {
  need(args, 1, 'a config or run folder');
  const target = resolveTarget(args[0], values['runs-dir']);
  if (target.kind !== 'run') throw new UserInputError('ablate needs a run folder (or a config with a finished run)');
  const split = splitOf(values);
  const family = genericFamilyOf(target.config);
  if (family) return ablateFamilyRun(family, target, split, out, workersFor(target.config));
  const loaded = await loadForEval(target, values);
  const { model, config, prepared } = loaded;
  try {
    if (!model.method.adapterLayers.length) throw new UserInputError(`method ${model.method.type} has no per-layer adapters to remove`);
    const L = model.encoder.config.numLayers;
    const started = Date.now();
    out.emit({ type: 'start', command: 'ablate', runDir: target.run.dir });
    // Loss is not a per-example metric; ablate by the task's primary metric then.
    const metric = config.training.metric === 'loss' ? primaryMetricFor(config.task.type) : config.training.metric;
    const ablationOptions = {
      metric,
      batchSize: config.training.evalBatchSize,
      split,
      padId: loaded.tokenizer.padId,
      onSpan: (step: number, totalSteps: number) => out.emit({ type: 'progress', runDir: target.run.dir, epoch: 0, epochs: 1, step, totalSteps, elapsedMs: Date.now() - started }),
    };
    const pool = await adapterPool(target.adapterDir, workersFor(config), Math.ceil(prepared[split].length / ablationOptions.batchSize));
    let result;
    try {
      result = pool ? await pool.ablate(model, prepared[split], ablationOptions) : layerAblation(model, prepared[split], ablationOptions);
    } finally {
      await pool?.close();
    }
    const file = target.run.writeResult(RESULT.ablation, { ...result, time: new Date().toISOString() });
    out.emit({ type: 'result', command: 'ablate', runDir: target.run.dir, file, baseline: result.baseline, matrix: result.matrix, metric: result.metric });
    if (!out.json) {
      out.info(`${result.metric} with every adapter: ${formatNumber(result.baseline)}; rows: first removed layer, columns: last removed layer`);
      for (let i = 0; i < L; i++) out.info(result.matrix[i].map((v) => (v === null ? '     -' : v.toFixed(4).padStart(6))).join(' '));
      out.info(`written to ${file}`);
    }
    out.emit({ type: 'done', command: 'ablate', status: 'done', runDir: target.run.dir, exitCode: 0 });
    return 0;
  } finally {
    model.dispose();
  }
}

/** The AdapterDrop trade-off: the metric and throughput with the lowest n layers' adapters dropped -> drop.json. */
async function drop({ values, args, out }: Ctx): Promise<number> {
  need(args, 1, 'a config or run folder');
  const target = resolveTarget(args[0], values['runs-dir']);
  if (target.kind !== 'run') throw new UserInputError('drop needs a run folder (or a config with a finished run)');
  const family = genericFamilyOf(target.config);
  if (family) throw new UserInputError(`the AdapterDrop trade-off is measured on the text family's layers; the ${family.name} family has no such measurement yet`);
  const split = splitOf(values);
  const repeats = intOption(values.repeats, 'repeats') ?? 3;
  const loaded = await loadForEval(target, values);
  const { model, config, prepared } = loaded;
  try {
    if (!model.method.adapterLayers.length) throw new UserInputError(`method ${model.method.type} has no per-layer adapters to drop`);
    const examples = prepared[split];
    if (!examples.length) throw new UserInputError(`the task has no ${split} set`);
    const started = Date.now();
    const runDir = target.run.dir;
    out.emit({ type: 'start', command: 'drop', runDir });
    // Loss is not a per-example metric; drop by the task's primary metric then (as ablate does).
    const metric = config.training.metric === 'loss' ? primaryMetricFor(config.task.type) : config.training.metric;
    const dropOptions = {
      metric,
      batchSize: intOption(values['batch-size'], 'batch-size') ?? config.training.evalBatchSize,
      split,
      padId: loaded.tokenizer.padId,
      repeats,
      onProgress: (step: number, totalSteps: number) => out.emit({ type: 'progress', runDir, epoch: 0, epochs: 1, step, totalSteps, elapsedMs: Date.now() - started }),
    };
    // The throughput is the workers' together: what a deployment on this machine with as many gets.
    const pool = await adapterPool(target.adapterDir, workersFor(config), Math.ceil(examples.length / dropOptions.batchSize));
    let result;
    try {
      result = pool ? await pool.adapterDrop(model, examples, dropOptions) : adapterDropTradeoff(model, examples, dropOptions);
    } finally {
      await pool?.close();
    }
    const file = target.run.writeResult(RESULT.drop, { ...result, backend: activeBackend()?.name, workers: pool?.size ?? 1, time: new Date().toISOString() });
    out.emit({ type: 'result', command: 'drop', runDir, file, metric: result.metric, baseline: result.baseline, points: result.points });
    if (!out.json) {
      out.info(`adapters of the lowest n layers dropped: ${result.metric} on ${split}, throughput on ${result.timing.examples} examples (median of ${repeats} runs)`);
      for (const p of result.points) out.info(`n=${String(p.n).padEnd(3)} ${formatNumber(p.value).padStart(8)}  ${Math.round(p.tokensPerSecond).toLocaleString('en-US').padStart(9)} tokens/s`);
      out.info(`written to ${file}`);
    }
    out.emit({ type: 'done', command: 'drop', status: 'done', runDir, exitCode: 0 });
    return 0;
  } finally {
    model.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// predict, encode

function readInputExamples(file: string, textField: string, pairField: string | undefined): Example[] {
  const { rows, columns } = readRows(path.resolve(file), { displayName: file });
  if (columns && !columns.includes(textField)) throw new UserInputError(`no column "${textField}" (columns: ${columns.join(', ')})`, { file });
  // Every bad row at once (DataError lists them), not the first per attempt.
  const bad: SkippedRow[] = [];
  const examples: Example[] = [];
  for (const row of rows) {
    const text = row.fields[textField];
    const pair = pairField ? row.fields[pairField] : undefined;
    const reason = row.error
      ? row.error
      : typeof text !== 'string' || !text.trim()
        ? `missing or empty text in field "${textField}"`
        : pairField && (typeof pair !== 'string' || !pair.trim())
          ? `missing or empty text in field "${pairField}"`
          : null;
    if (reason) bad.push({ file, line: row.line, reason, kind: 'bad row' });
    else examples.push({ text: text as string, textPair: pair as string | undefined, label: 0, source: { file, line: row.line } });
  }
  if (bad.length) throw new DataError(bad);
  return examples;
}

async function predictCommand(ctx: Ctx): Promise<number> {
  if (ctx.values.runs !== undefined) return predictTasks(ctx);
  const { values, args, out } = ctx;
  need(args, 1, 'a run or adapter folder');
  const target = resolveTarget(args[0], values['runs-dir']);
  const family = genericFamilyOf(target.kind === 'run' ? target.config : null);
  if (family && target.kind === 'run') {
    if (!values.input) throw new UserInputError('predict needs --input (an IDX images file, an image, or a folder of images)');
    return predictFamilyRun(family, target, values.input, out, { workers: workersFor(target.config), batchSize: intOption(values['batch-size'], 'batch-size') ?? 64, logits: !!values.logits });
  }
  if (!values.input) throw new UserInputError('predict needs --input FILE (JSONL, CSV or TSV)');
  const { model, meta, tokenizer } = await loadAdapterModel(target.adapterDir);
  try {
    const [defaultText, defaultPair] = fieldsOf(target);
    const textField = values['text-field'] ?? defaultText;
    const pairField = values['pair-field'] ?? defaultPair;
    const examples = readInputExamples(values.input, textField, pairField);
    const encoded = await encodeExamples(tokenizer, examples, meta.maxSeqLength);
    const batchSize = intOption(values['batch-size'], 'batch-size') ?? 64;
    const pool = await adapterPool(target.adapterDir, workersFor(), Math.ceil(encoded.length / batchSize));
    let predicted;
    try {
      predicted = pool ? await pool.predict(model, encoded, batchSize) : predict(model, encoded, batchSize);
    } finally {
      await pool?.close();
    }
    const { outputs, predictions } = predicted;
    const labels = model.head.labels;
    predictions.forEach((p, i) => {
      const logits = outputs[i];
      const probabilities = labels ? softmax(logits) : undefined;
      out.emit({
        type: 'prediction',
        index: i,
        source: examples[i].source,
        prediction: labels ? labels[p] : p,
        // The class names, in the order of probabilities and logits.
        ...(labels ? { labels, probabilities } : {}),
        ...(values.logits ? { logits } : {}),
      });
    });
    out.emit({ type: 'done', command: 'predict', status: 'done', exitCode: 0 });
    return 0;
  } finally {
    model.dispose();
  }
}

/**
 * Multi-task inference: several runs' (or adapter folders') tasks on the same inputs, the frozen layers below
 * the lowest adapter of all of them computed once (src/engine/analysis/multiTask.ts). One prediction line per
 * example and task, with the task's name and the run as given.
 */
async function predictTasks({ values, out }: Ctx): Promise<number> {
  if (!values.input) throw new UserInputError('predict needs --input FILE (JSONL, CSV or TSV)');
  const runs = values.runs!.split(',').map((r) => r.trim()).filter(Boolean);
  if (runs.length === 0) throw new UserInputError('--runs needs run or adapter folders, separated by commas');
  const targets = runs.map((r) => resolveTarget(r, values['runs-dir']));
  const distinct = new Set(targets.map((t) => fieldsOf(t).filter(Boolean).join('+')));
  if (values['text-field'] === undefined && distinct.size > 1) {
    throw new UserInputError(`the runs read different fields (${[...distinct].join(' / ')}); give --text-field (and --pair-field)`);
  }
  const [textField, pairField] = fieldsOf(targets[0]);
  const tasks = await loadTaskModels(targets.map((t) => t.adapterDir));
  try {
    const examples = readInputExamples(values.input, values['text-field'] ?? textField!, values['pair-field'] ?? pairField);
    const batchSize = intOption(values['batch-size'], 'batch-size') ?? 64;
    // Tasks trained with different maximum lengths see different token sequences: one shared pass per length.
    const byLength = new Map<number, number[]>();
    tasks.metas.forEach((m, k) => byLength.set(m.maxSeqLength, [...(byLength.get(m.maxSeqLength) ?? []), k]));
    const results: Predictions[] = new Array(runs.length);
    const sharedLayers: (number | null)[] = new Array(runs.length);
    // Whole batches over the workers (each computed by one of them): the same outputs, bit for bit, with any number.
    const pool = await tasksPool(targets.map((t) => t.adapterDir), workersFor(), Math.ceil(examples.length / batchSize));
    try {
      for (const [maxLength, ks] of byLength) {
        const encoded = await encodeExamples(tasks.tokenizer, examples, maxLength);
        const { groups, results: byTask } = await predictMultiTaskOn(pool, ks.map((k) => tasks.models[k]), ks, encoded, batchSize);
        ks.forEach((k, j) => (results[k] = byTask[j]));
        // Layers each task computed once with others (0: the embeddings only; null: nothing shared).
        for (const g of groups) for (const j of g.models) sharedLayers[ks[j]] = g.models.length > 1 ? g.depth : null;
      }
    } finally {
      await pool?.close();
    }
    examples.forEach((example, i) => {
      tasks.models.forEach((model, k) => {
        const labels = model.head.labels;
        const logits = results[k].outputs[i];
        const p = results[k].predictions[i];
        out.emit({
          type: 'prediction',
          index: i,
          task: tasks.metas[k].task.name,
          run: runs[k],
          source: example.source,
          prediction: labels ? labels[p] : p,
          ...(labels ? { labels, probabilities: softmax(logits) } : {}),
          ...(values.logits ? { logits } : {}),
        });
      });
    });
    out.emit({ type: 'result', command: 'predict', runs, tasks: tasks.metas.map((m) => m.task.name), examples: examples.length, sharedLayers });
    out.emit({ type: 'done', command: 'predict', status: 'done', exitCode: 0 });
    return 0;
  } finally {
    tasks.dispose();
  }
}

/** The input fields a run's or adapter's task reads: the run's config, the fields saved with an adapter, or "text". */
function fieldsOf(t: Target): [string, string | undefined] {
  if (t.kind === 'run') return [t.config.task.textField, t.config.task.textPairField ?? undefined];
  const saved = readTaskFields(t.adapterDir);
  return saved ? [saved.textField, saved.textPairField ?? undefined] : ['text', undefined];
}

function softmax(x: number[]): number[] {
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

async function encodeCommand({ values, out }: Ctx): Promise<number> {
  if (!values.model) throw new UserInputError('encode needs --model <dir|builtin:NAME>');
  if (!values.input) throw new UserInputError('encode needs --input FILE (JSONL, CSV or TSV)');
  const modelDir = resolveModelDir(values.model);
  const tokenizer = await loadTokenizer(modelDir);
  const { encoder } = loadEncoder(modelDir);
  try {
    const examples = readInputExamples(values.input, values['text-field'] ?? 'text', values['pair-field']);
    const maxLength = intOption(values['max-length'], 'max-length') ?? Math.min(512, maxSequenceLength(encoder.config));
    const encoded = await encodeExamples(tokenizer, examples, maxLength);
    const rows = encodeFirstToken(encoder, encoded, intOption(values['batch-size'], 'batch-size') ?? 32, tokenizer.padId);
    rows.forEach((embedding, index) => process.stdout.write(JSON.stringify(out.json ? { type: 'embedding', index, embedding } : { index, embedding }) + '\n'));
    out.emit({ type: 'done', command: 'encode', status: 'done', exitCode: 0 });
    return 0;
  } finally {
    encoder.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// info, export

async function info({ values, args, out }: Ctx): Promise<number> {
  need(args, 1, 'a config, run folder or adapter folder');
  const abs = path.resolve(args[0]);
  let counts: { trainable: number; base: number; trainablePercent: number };
  let resolved: unknown;
  let method: string;
  let status: string | undefined;
  const countsOfConfig = async (config: ResolvedConfig) => {
    const family = genericFamilyOf(config);
    if (family) return familyConfigCounts(family, config);
    const modelDir = modelDirOf(config);
    // The head's size depends on the classes, so read the training file's labels (cheap) unless given.
    const labels = config.task.type === 'regression' ? null : (config.task.labels ?? (await prepareData(config, await loadTokenizer(modelDir))).data.labels);
    const model = buildModel(config, modelDir, labels);
    const c = model.parameterCounts();
    model.dispose();
    return c;
  };
  if (fs.existsSync(abs) && fs.statSync(abs).isDirectory()) {
    const target = resolveTarget(args[0], values['runs-dir']);
    const family = genericFamilyOf(target.kind === 'run' ? target.config : null);
    if (family && target.kind === 'run') {
      status = target.run.record.status;
      counts = status === 'done' ? await familyTrainedCounts(family, target.adapterDir) : (target.run.record.params ?? (await countsOfConfig(target.config)));
      resolved = target.config;
      method = target.config.method.type;
    } else if (target.kind === 'run' && !isAdapterFolder(target.adapterDir)) {
      // An unfinished run (queued, running, interrupted, failed): what its config trains, as the trainer counted it.
      status = target.run.record.status;
      counts = target.run.record.params ?? (await countsOfConfig(target.config));
      resolved = target.config;
      method = target.config.method.type;
    } else {
      const { model, meta } = await loadAdapterModel(target.adapterDir);
      counts = model.parameterCounts();
      resolved = target.kind === 'run' ? target.config : meta;
      method = model.method.type;
      model.dispose();
      if (target.kind === 'run') status = target.run.record.status;
    }
  } else {
    const config = loadConfig(abs);
    counts = await countsOfConfig(config);
    resolved = config;
    method = config.method.type;
  }
  out.emit({ type: 'result', command: 'info', method, ...(status ? { status } : {}), trainableParams: counts.trainable, baseParams: counts.base, trainablePercent: counts.trainablePercent, config: resolved });
  if (!out.json) {
    if (status) out.info(`run status: ${status}`);
    out.info(`method: ${method}`);
    out.info(`trainable parameters: ${counts.trainable.toLocaleString('en-US')}`);
    out.info(`base parameters:      ${counts.base.toLocaleString('en-US')}`);
    out.info(`trainable / base:     ${counts.trainablePercent.toFixed(3)}%`);
    out.info(`resolved config:\n${JSON.stringify(resolved, null, 2)}`);
  }
  return 0;
}

/**
 * Exports a run's adapter folder: refused unless every file reads back whole and rebuilds the model (what
 * `predict <export>` will do), and unless it holds regular files and folders only (no symbolic link is copied).
 * The copy is made under a temp name beside the destination, checked byte for byte, then renamed into place,
 * so an interrupted export leaves no half folder under the destination's name.
 */
/**
 * Folds a LoRA-family adapter into its base model: a Hugging Face model folder, with the task head as an adapter
 * folder of method `head` in <dir>/head (model/merge.ts).
 */
async function mergeCommand({ args, values, out }: Ctx): Promise<number> {
  need(args, 2, 'a run or adapter folder and a destination folder');
  const target = resolveTarget(args[0], values['runs-dir']);
  if (!isAdapterFolder(target.adapterDir)) throw new UserInputError(`${args[0]} has no trained adapter (has the run finished?)`);
  const result = await mergeAdapter(target.adapterDir, path.resolve(args[1]));
  out.emit({ type: 'result', command: 'merge', from: target.adapterDir, to: result.modelDir, head: result.headDir, changed: result.changed.length });
  if (!out.json) out.info(`merged model written to ${result.modelDir} (config.json, model.safetensors, tokenizer files; ${result.changed.length} weights changed); the task head in ${result.headDir}: predict with it as with any adapter folder`);
  return 0;
}

async function exportCommand({ values, args, out }: Ctx): Promise<number> {
  need(args, 2, 'a run folder and a destination folder');
  const target = resolveTarget(args[0], values['runs-dir']);
  const dest = path.resolve(args[1]);
  const from = target.adapterDir;
  if (!isAdapterFolder(from)) throw new UserInputError(`${args[0]} has no trained adapter (has the run finished?)`);
  if (fs.existsSync(dest) && (!fs.statSync(dest).isDirectory() || fs.readdirSync(dest).length)) throw new UserInputError(`${args[1]} exists and is not empty`);
  assertNoLinksInTree(from);
  try {
    checkFilesParse(from);
    checkWeightTwins(from);
    const { model } = await loadAdapterModel(from);
    model.dispose();
  } catch (err) {
    if (!(err instanceof UserInputError)) throw err;
    throw new UserInputError(`not exported: the adapter in ${from} is broken: ${err.message}`, err.location, { locatedInDetail: true });
  }
  const parent = path.dirname(dest);
  removeDeadExportTemps(parent, path.basename(dest));
  const staging = path.join(parent, `.${path.basename(dest)}.${process.pid}.${Date.now()}.export.tmp`);
  try {
    fs.mkdirSync(parent, { recursive: true });
    copyTreeRefusingLinks(from, staging);
    assertSameFiles(from, staging);
    if (target.kind === 'run' && !fs.existsSync(path.join(staging, TASK_FIELDS_FILE))) writeTaskFields(staging, target.config.task);
    // A run trained before .bin files were written gets them here: Python's load_adapter(dir) reads the .bin.
    checkWeightTwins(staging, { completeBin: true });
    if (fs.existsSync(dest)) fs.rmdirSync(dest);
    fs.renameSync(staging, dest);
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    if (err instanceof UserInputError) throw err;
    throw new Error(`not exported to ${dest}: ${describeIoError(err)}`);
  }
  out.emit({ type: 'result', command: 'export', from, to: dest });
  const layout = isFusionFolder(dest)
    ? 'adapter_fusion_config.json, pytorch_model_adapter_fusion.bin and .safetensors, head_config.json, pytorch_model_head.bin and .safetensors, and a folder per fused adapter'
    : 'adapter_config.json, pytorch_adapter.bin and adapter.safetensors, head_config.json, pytorch_model_head.bin and model_head.safetensors';
  if (!out.json) out.info(`adapter exported to ${dest} (AdapterHub layout: ${layout})`);
  return 0;
}

/** Every .json file of the tree parses and every .safetensors file reads whole (UserInputError naming the file). */
function checkFilesParse(dir: string): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, e.name);
    if (e.isDirectory()) checkFilesParse(file);
    else if (e.name.endsWith('.safetensors')) parseSafetensors(fs.readFileSync(file), file);
    else if (e.name.endsWith('.json')) {
      try {
        JSON.parse(fs.readFileSync(file, 'utf8'));
      } catch (err) {
        throw new UserInputError(`cannot parse: ${(err as Error).message}`, { file });
      }
    }
  }
}

/** Every file of `from` is in `to` with the same bytes (the copy read back, not trusted). */
function assertSameFiles(from: string, to: string): void {
  for (const e of fs.readdirSync(from, { withFileTypes: true })) {
    const a = path.join(from, e.name);
    const b = path.join(to, e.name);
    if (e.isDirectory()) assertSameFiles(a, b);
    else if (!fs.readFileSync(a).equals(fs.readFileSync(b))) throw new Error(`the copy of ${a} reads back different`);
  }
}

/** Temp folders of exports to `<parent>/<name>` whose process was killed (`.<name>.<pid>.<ms>.export.tmp`). */
function removeDeadExportTemps(parent: string, name: string): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(parent);
  } catch {
    return;
  }
  for (const e of entries) {
    if (!e.startsWith(`.${name}.`) || !e.endsWith('.export.tmp')) continue;
    const pid = Number(e.slice(name.length + 2).split('.')[0]);
    if (!isProcessAlive(pid)) fs.rmSync(path.join(parent, e), { recursive: true, force: true });
  }
}

/**
 * A randomly initialised encoder of the same shape as a model, with its tokenizer: the baseline that shows what
 * pretraining buys (the same method and budget on both).
 */
async function randomInitCommand({ values, out }: Ctx): Promise<number> {
  if (!values.model || !values.out) throw new UserInputError('random-init needs --model <dir|builtin:NAME> and --out DIR');
  const from = resolveModelDir(values.model);
  const dest = path.resolve(values.out);
  if (fs.existsSync(dest) && fs.readdirSync(dest).length) throw new UserInputError(`${values.out} exists and is not empty`);
  const seed = values.seed === undefined ? 0 : Number(values.seed);
  if (!Number.isInteger(seed)) throw new UserInputError(`--seed must be an integer, got "${values.seed}"`);
  const cfg = readConfig(from);
  saveEncoderHf(dest, cfg, initEncoderArrays(cfg, new Rng(seed)), { metadata: { source: `random init (seed ${seed}) in the shape of ${values.model}` } });
  for (const f of ['tokenizer.json', 'vocab.txt', 'tokenizer_config.json', 'special_tokens_map.json']) {
    if (fs.existsSync(path.join(from, f))) fs.copyFileSync(path.join(from, f), path.join(dest, f));
  }
  out.emit({ type: 'result', command: 'random-init', model: dest, like: values.model, seed });
  if (!out.json) out.info(`randomly initialised encoder in the shape of ${values.model} written to ${dest}`);
  return 0;
}
