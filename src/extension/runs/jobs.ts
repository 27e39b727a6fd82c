/**
 * What the extension asks the engine to do, as CLI invocations (`adapter-lab <command> ... --json`). One
 * place that knows the CLI's arguments; the queue runs what these return.
 */
import * as path from 'node:path';

/** `slurm`: a submission to Slurm (`train|sweep <config> --slurm`, src/extension/runs/slurm.ts). */
export type JobKind = 'train' | 'resume' | 'eval' | 'ablate' | 'export' | 'drop' | 'sweep' | 'slurm';

export type Backend = 'auto' | 'node' | 'wasm' | 'cpu';

export interface JobSpec {
  kind: JobKind;
  /** What people see: "Train spam-houlsby-64", "Evaluate <run> on test". */
  label: string;
  /** The CLI's arguments after the bundle, without --json (the queue adds it). */
  args: string[];
  cwd: string;
  /** The run folder the job works on, when known before it starts (resume, eval, ablate, export). */
  runDir?: string;
  /** The config a train job trains (groups its pending row under the config in the tree). */
  configFile?: string;
  /**
   * How many of the queue's slots (adapterLab.maxConcurrentRuns) the job takes (default 1): a sweep trains
   * `--jobs N` points at once in N child processes, so it takes N slots.
   */
  slots?: number;
}

export interface EngineOptions {
  backend: Backend;
  /** Absolute runs folder: where train jobs create their runs. */
  runsDir: string;
  /** Worker threads per job (--workers); absent: the engine's default (every core, one on tfjs-node). */
  workers?: number;
}

/** The engine options every local job passes: the backend and the worker threads. */
export function backendArgs(o: EngineOptions): string[] {
  return [...(o.backend === 'auto' ? [] : ['--backend', o.backend]), ...(o.workers ? ['--workers', String(o.workers)] : [])];
}

/**
 * Worker threads per engine job (adapterLab.workers): the setting when it is set (> 0); else, with several
 * jobs at once (adapterLab.maxConcurrentRuns), the cores shared between them, so that the busy threads never
 * outnumber the cores; else the engine's default (every core; one on tfjs-node).
 */
export function workersPerJob(setting: number, maxConcurrentRuns: number, cores: number): number | undefined {
  if (setting > 0) return Math.floor(setting);
  if (maxConcurrentRuns <= 1) return undefined;
  return Math.max(1, Math.floor(cores / maxConcurrentRuns));
}

export function trainJob(configFile: string, name: string, o: EngineOptions): JobSpec {
  return {
    kind: 'train',
    label: `Train ${name}`,
    args: ['train', configFile, '--runs-dir', o.runsDir, ...backendArgs(o)],
    cwd: path.dirname(configFile),
    configFile,
  };
}

export function resumeJob(runDir: string, name: string, o: EngineOptions): JobSpec {
  return { kind: 'resume', label: `Resume ${name}`, args: ['train', '--resume', runDir, ...backendArgs(o)], cwd: runDir, runDir };
}

export function evalJob(runDir: string, name: string, split: 'dev' | 'test', o: EngineOptions): JobSpec {
  return { kind: 'eval', label: `Evaluate ${name} on ${split}`, args: ['eval', runDir, '--split', split, ...backendArgs(o)], cwd: runDir, runDir };
}

export function ablateJob(runDir: string, name: string, o: EngineOptions): JobSpec {
  return { kind: 'ablate', label: `Layer ablation of ${name}`, args: ['ablate', runDir, ...backendArgs(o)], cwd: runDir, runDir };
}

export function exportJob(runDir: string, name: string, dest: string, o: EngineOptions): JobSpec {
  return { kind: 'export', label: `Export adapter of ${name}`, args: ['export', runDir, dest, ...backendArgs(o)], cwd: runDir, runDir };
}

export function dropJob(runDir: string, name: string, o: EngineOptions): JobSpec {
  return { kind: 'drop', label: `AdapterDrop trade-off of ${name}`, args: ['drop', runDir, ...backendArgs(o)], cwd: runDir, runDir };
}

/**
 * A sweep: one CLI process (`adapter-lab sweep <config> --jobs N`) that creates every point's run folder up front
 * and trains N points at a time, each in its own child process. N is the queue's concurrency
 * (adapterLab.maxConcurrentRuns), at most the number of points; the job takes N of the queue's slots, so the
 * sweep and other jobs together never run more engine processes than the setting allows.
 */
export function sweepJob(configFile: string, name: string, points: number, concurrency: number, o: EngineOptions): JobSpec {
  const jobs = Math.max(1, Math.min(Math.floor(concurrency), points));
  return {
    kind: 'sweep',
    label: `Sweep ${name} (${points} run${points === 1 ? '' : 's'}, ${jobs} at a time)`,
    args: ['sweep', configFile, '--jobs', String(jobs), '--runs-dir', o.runsDir, ...backendArgs(o)],
    cwd: path.dirname(configFile),
    configFile,
    slots: jobs,
  };
}
