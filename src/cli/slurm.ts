/**
 * `adapter-lab sweep|train <config> --slurm [options] [--wait]` and `adapter-lab slurm status|cancel`: the grid
 * (or the one run) becomes one Slurm job array, each task training its point into its run folder, created up
 * front as for a local sweep (src/engine/slurm). Without --wait the command ends once Slurm has the job; with
 * --wait it follows the tasks until every one has ended, with a `sweepPoint` line whenever a point changes
 * (SIGINT/SIGTERM then cancels the whole array, and a `cancel-requested` file in a point's folder cancels that
 * task, as for a local sweep). `slurm status` says what Slurm says of each Slurm run and writes the end Slurm saw
 * into the run.json of tasks that ended without ending their run (lost, killed at the time limit, ...).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SweepPoint } from '../engine/config/sweep';
import type { ResolvedConfig } from '../engine/config/types';
import { UserInputError } from '../engine/errors';
import { clearPointCancelRequest, createRun, isPointCancelRequested, listRuns, openRun, RUN_FILE, type RunHandle, type RunRecord, type RunSummary } from '../engine/runs';
import {
  cancel,
  checkSlurmOptions,
  describeTask,
  ENDED_PHASES,
  mergeSlurmOptions,
  slurmStatuses,
  submitRuns,
  type SlurmOptions,
  type SlurmTaskStatus,
} from '../engine/slurm';
import type { SweepPointMessage } from '../protocol/messages';
import { formatNumber, type Reporter } from './reporter';
import { createSweepRuns, newSweepId } from './sweep';

/** The command-line flags this file reads (main.ts declares them). */
export interface SlurmFlagValues {
  partition?: string;
  time?: string;
  cpus?: string;
  mem?: string;
  gres?: string;
  'max-concurrent'?: string;
  'signal-lead'?: string;
  'sbatch-arg'?: string[];
  node?: string;
  'cli-path'?: string;
  wait?: boolean;
  'whole-array'?: boolean;
  backend?: string;
  'runs-dir'?: string;
}

/** How often --wait asks Slurm (ADAPTER_LAB_SLURM_POLL_MS overrides, for tests). */
const POLL_MS = Number(process.env.ADAPTER_LAB_SLURM_POLL_MS) || 5000;

function intFlag(v: string | undefined, name: string, min = 1): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UserInputError(`--${name} must be ${min === 0 ? 'a non-negative' : 'a positive'} integer, got "${v}"`);
  return n;
}

/** The flags' options; a bad value is a UserInputError naming the flag. */
export function slurmFlags(v: SlurmFlagValues): SlurmOptions {
  const o: SlurmOptions = {
    partition: v.partition,
    time: v.time,
    cpusPerTask: intFlag(v.cpus, 'cpus'),
    mem: v.mem,
    gres: v.gres,
    maxConcurrent: intFlag(v['max-concurrent'], 'max-concurrent'),
    signalLeadSeconds: intFlag(v['signal-lead'], 'signal-lead', 0),
    extraArgs: v['sbatch-arg']?.length ? v['sbatch-arg'] : undefined,
    node: v.node,
    cli: v['cli-path'] ? path.resolve(v['cli-path']) : undefined,
  };
  try {
    checkSlurmOptions(o, 'flag');
  } catch (err) {
    // Name the flag the user typed, not the option's field.
    const flag: Record<string, string> = { time: '--time', extraArgs: '--sbatch-arg', partition: '--partition', mem: '--mem', gres: '--gres', node: '--node', cli: '--cli-path' };
    if (!(err instanceof UserInputError)) throw err;
    const field = (err.location?.field ?? '').replace(/^flag\.(\w+)(\[\d+\])?$/, (_, f: string) => flag[f] ?? f);
    throw new UserInputError(field ? `${field}: ${err.detail}` : err.detail);
  }
  return o;
}

/** The point's status in a sweepPoint line: Slurm's while the task lives, then the run's own end. */
function pointStatus(s: SlurmTaskStatus, record: RunRecord | undefined): SweepPointMessage['status'] {
  if (s.phase === 'pending') return 'queued';
  if (s.phase === 'running') return 'running';
  if (record?.status === 'done') return 'done';
  return s.phase === 'cancelled' || record?.status === 'cancelled' ? 'cancelled' : 'failed';
}

function readRecord(dir: string): RunRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, RUN_FILE), 'utf8')) as RunRecord;
  } catch {
    return undefined;
  }
}

/** The config's `slurm` block, its `cli` (like the config's other paths) resolved from the config file's folder. */
function configSlurmOptions(config: ResolvedConfig): SlurmOptions | null | undefined {
  return config.slurm?.cli && config.configFile ? { ...config.slurm, cli: path.resolve(path.dirname(config.configFile), config.slurm.cli) } : config.slurm;
}

/**
 * `train --resume <run folder> --slurm`: the run (interrupted, cancelled or failed; trained here or on Slurm
 * before) goes to Slurm as a one-task array that resumes it from its checkpoint, with the options its config's
 * `slurm` block gives and the flags over them, like a new run's. Its run.json says `queued` until the task starts,
 * and its `slurm` field names the new job.
 */
export async function resumeOnSlurm(runDir: string, values: SlurmFlagValues, out: Reporter): Promise<number> {
  const run = openRun(runDir);
  if (run.record.status === 'done' || run.record.status === 'running' || run.record.status === 'queued') {
    throw new UserInputError(`${run.dir} is ${run.record.status}: only an interrupted, cancelled or failed run can be resumed`);
  }
  const config: ResolvedConfig = run.record.config;
  const options = mergeSlurmOptions(configSlurmOptions(config), slurmFlags(values));
  run.update({ status: 'queued' });
  const submission = await submitRuns({
    runs: [run],
    group: config.name,
    // A folder of its own beside the first submission's (which keeps that job's script and output).
    submissionId: `${run.record.id}-resumed-${Date.now().toString(36)}`,
    runsDir: path.dirname(run.dir),
    options,
    node: options.node ?? 'node',
    cli: options.cli ?? path.resolve(process.argv[1]),
    trainArgs: values.backend ? ['--backend', values.backend] : [],
  });
  out.emit({ type: 'start', command: 'train', runDir: run.dir });
  out.emit({ type: 'log', level: 'info', message: `submitted Slurm job ${submission.jobId} to resume ${run.record.name}; script ${submission.script}` });
  if (!values.wait) {
    if (!out.json) out.info(`follow it with: squeue -j ${submission.jobId}   or   adapter-lab slurm status ${run.dir}`);
    out.emit({ type: 'result', command: 'train', slurm: { jobId: submission.jobId, script: submission.script }, runDirs: [run.dir] });
    out.emit({ type: 'done', command: 'train', status: 'done', exitCode: 0 });
    return 0;
  }
  return follow('train', [run], submission.jobId, () => undefined, out);
}

/** `train|sweep <config> --slurm`: creates the runs, submits them as one job array, and with --wait follows it. */
export async function submitToSlurm(config: ResolvedConfig, points: SweepPoint[], isSweep: boolean, values: SlurmFlagValues, out: Reporter): Promise<number> {
  const options = mergeSlurmOptions(configSlurmOptions(config), slurmFlags(values));
  const command = isSweep ? 'sweep' : 'train';
  const sweepId = newSweepId();
  const runs: RunHandle[] = isSweep ? createSweepRuns(config.name, points, sweepId).runs : [createRun(points[0].config.runsDir, points[0].config, { name: points[0].name })];
  const runsDir = path.dirname(runs[0].dir);
  const submission = await submitRuns({
    runs,
    group: config.name,
    submissionId: isSweep ? sweepId : runs[0].record.id,
    runsDir,
    options,
    node: options.node ?? 'node',
    cli: options.cli ?? path.resolve(process.argv[1]),
    trainArgs: values.backend ? ['--backend', values.backend] : [],
  });
  const total = runs.length;
  const emitPoint = (i: number, status: SweepPointMessage['status'], extra: Partial<SweepPointMessage> = {}) => {
    if (isSweep) out.emit({ type: 'sweepPoint', sweepId, group: config.name, index: i, total, name: points[i].name, runDir: runs[i].dir, assignment: points[i].assignment, status, ...extra });
  };
  if (!isSweep) out.emit({ type: 'start', command: 'train', runDir: runs[0].dir });
  runs.forEach((_, i) => emitPoint(i, 'queued', { slurm: { id: `${submission.jobId}_${i}`, phase: 'pending' } }));
  out.emit({ type: 'log', level: 'info', message: `submitted Slurm job ${submission.jobId} (${total} array task${total === 1 ? '' : 's'}); script ${submission.script}` });
  if (!values.wait) {
    if (!out.json) out.info(`follow it with: squeue -j ${submission.jobId}   or   adapter-lab slurm status ${runsDir}`);
    out.emit({ type: 'result', command, slurm: { jobId: submission.jobId, script: submission.script }, runDirs: runs.map((r) => r.dir) });
    out.emit({ type: 'done', command, status: 'done', exitCode: 0 });
    return 0;
  }
  return follow(command, runs, submission.jobId, emitPoint, out);
}

async function follow(
  command: 'sweep' | 'train',
  runs: RunHandle[],
  jobId: string,
  emitPoint: (i: number, status: SweepPointMessage['status'], extra?: Partial<SweepPointMessage>) => void,
  out: Reporter,
): Promise<number> {
  let cancelled = false;
  const onSignal = () => {
    if (cancelled) return;
    cancelled = true;
    void cancel(jobId).catch((err: Error) => out.emit({ type: 'log', level: 'warn', message: err.message }));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const shown = new Map<number, string>();
  let statuses: SlurmTaskStatus[] = [];
  try {
    for (;;) {
      // One point cancelled on its own (the extension's Cancel Run on a point): scancel that task.
      for (const [i, r] of runs.entries()) {
        if (!isPointCancelRequested(r.dir)) continue;
        clearPointCancelRequest(r.dir);
        await cancel(jobId, i).catch((err: Error) => out.emit({ type: 'log', level: 'warn', message: err.message }));
      }
      const byDir = await slurmStatuses(runs.map((r) => ({ dir: r.dir, slurm: r.reload().slurm })));
      statuses = runs.map((r) => byDir.get(r.dir)!);
      statuses.forEach((s, i) => {
        const record = readRecord(runs[i].dir);
        const status = pointStatus(s, record);
        const key = `${status} ${describeTask(s)}`;
        if (shown.get(i) === key) return;
        shown.set(i, key);
        emitPoint(i, status, { slurm: s, ...(record?.best ? { best: record.best } : {}), ...(s.exitCode !== undefined ? { exitCode: s.exitCode } : {}) });
        if (!out.json) out.info(`${describeTask(s)}: ${runs[i].record.name}`);
      });
      if (statuses.every((s) => ENDED_PHASES.includes(s.phase))) break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const records = runs.map((r) => readRecord(r.dir));
  const summary = runs.map((r, i) => ({ runDir: r.dir, name: r.record.name, status: records[i]?.status ?? 'failed', slurm: statuses[i], best: records[i]?.best ?? null, error: records[i]?.error }));
  out.emit({ type: 'result', command, slurm: { jobId }, points: summary });
  const allDone = summary.every((p) => p.status === 'done');
  const failed = summary.some((p) => p.status === 'failed');
  if (!out.json) {
    for (const p of summary) out.info(`${p.status.padEnd(9)} ${p.best ? `${p.best.metric} ${formatNumber(p.best.value)}` : '-'.padEnd(15)}  ${p.name}${p.error ? `: ${p.error.message}` : ''}`);
  }
  const exitCode = allDone ? 0 : 1;
  out.emit({ type: 'done', command, status: allDone ? 'done' : failed ? 'failed' : 'cancelled', exitCode });
  return exitCode;
}

function slurmRunsAt(target: string): RunSummary[] {
  const abs = path.resolve(target);
  if (fs.existsSync(path.join(abs, RUN_FILE))) {
    const run = openRun(abs);
    return [{ ...run.record, dir: abs, statusOnDisk: run.record.status }];
  }
  if (!fs.existsSync(abs)) throw new UserInputError(`${target}: no such run folder or runs folder`);
  return listRuns(abs).runs;
}

/**
 * `adapter-lab slurm status [run folder|runs folder]`: each Slurm run with what Slurm says of its task.
 * `adapter-lab slurm cancel <run folder> [--whole-array]`: scancel of the run's task, or of its whole array.
 */
export async function slurmCommand(args: string[], values: SlurmFlagValues, out: Reporter): Promise<number> {
  const [sub, target] = args;
  if (sub === 'status') {
    const runs = slurmRunsAt(target ?? values['runs-dir'] ?? path.join('.adapter-lab', 'runs')).filter((r) => r.slurm);
    const statuses = await slurmStatuses(runs);
    const points = runs.map((r) => {
      const record = readRecord(r.dir);
      return { runDir: r.dir, name: r.name, status: record?.status ?? r.status, slurm: statuses.get(r.dir)!, best: record?.best ?? null, error: record?.error };
    });
    out.emit({ type: 'result', command: 'slurm-status', points });
    if (!out.json) {
      if (!points.length) out.info('no Slurm runs here');
      for (const p of points) {
        out.info(`${describeTask(p.slurm).padEnd(40)} ${p.best ? `${p.best.metric} ${formatNumber(p.best.value)}` : '-'.padEnd(15)}  ${p.name}`);
        if (p.status === 'failed' && p.error) out.info(`    ${p.error.message}${p.error.stderrTail ? `\n    ${p.error.stderrTail.split('\n').slice(-5).join('\n    ')}` : ''}`);
      }
    }
    return 0;
  }
  if (sub === 'cancel') {
    if (!target) throw new UserInputError('slurm cancel needs a run folder (with --whole-array: every task of its job)');
    const run = openRun(path.resolve(target));
    const slurm = run.record.slurm;
    if (!slurm) throw new UserInputError(`${target} is not a Slurm run (its run.json has no slurm field)`);
    await cancel(slurm.jobId, values['whole-array'] ? undefined : slurm.arrayTaskId);
    const what = values['whole-array'] ? `job ${slurm.jobId} (every task)` : `task ${slurm.jobId}_${slurm.arrayTaskId}`;
    out.emit({ type: 'result', command: 'slurm-cancel', jobId: slurm.jobId, ...(values['whole-array'] ? {} : { arrayTaskId: slurm.arrayTaskId }) });
    if (!out.json) out.info(`cancelled Slurm ${what}; a running task saves a checkpoint first`);
    return 0;
  }
  throw new UserInputError(`slurm needs "status" or "cancel", got ${sub === undefined ? 'nothing' : `"${sub}"`}`);
}
