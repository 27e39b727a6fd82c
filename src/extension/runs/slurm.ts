/**
 * Slurm from the extension (README "Sweeps on a Slurm cluster"): the adapterLab.slurm.* settings as CLI flags,
 * the submit job the queue runs (`adapter-lab train|sweep <config> --slurm ...`: it ends once Slurm has the job
 * array, so it holds a queue slot only for the moment of submission), and the monitor that follows the Slurm
 * runs on disk: it asks Slurm for their tasks' state every few seconds while any lives, writes the end Slurm saw
 * into the run.json of tasks that ended without ending their run, and passes new lines of each task's log
 * (<run folder>/slurm.log) to the output channel. No vscode import.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunSummary } from '../../engine/runs';
import { describeTask, ENDED_PHASES, SLURM_LOG_FILE, slurmStatuses, type SlurmTaskStatus } from '../../engine/slurm';
import { backendArgs, type EngineOptions, type JobSpec } from './jobs';

/** The settings adapterLab.slurm.* (empty strings and nulls: not set, the config's slurm section or Slurm decides). */
export interface SlurmSettings {
  /** Send Train and Run Sweep to Slurm. */
  enabled: boolean;
  partition: string;
  time: string;
  cpusPerTask: number | null;
  mem: string;
  gres: string;
  maxConcurrent: number | null;
  signalLeadSeconds: number | null;
  extraArgs: string[];
  node: string;
  cliPath: string;
  pollSeconds: number;
}

/** The CLI flags of the settings that are set. */
export function slurmFlags(s: SlurmSettings): string[] {
  const flags: string[] = [];
  const add = (flag: string, v: string | number | null) => {
    if (v !== null && v !== '') flags.push(flag, String(v));
  };
  add('--partition', s.partition);
  add('--time', s.time);
  add('--cpus', s.cpusPerTask);
  add('--mem', s.mem);
  add('--gres', s.gres);
  add('--max-concurrent', s.maxConcurrent);
  add('--signal-lead', s.signalLeadSeconds);
  for (const a of s.extraArgs) if (a.trim()) flags.push(`--sbatch-arg=${a.trim()}`);
  add('--node', s.node);
  add('--cli-path', s.cliPath);
  return flags;
}

/** Train (one run) or a sweep (one run per point), submitted to Slurm as one job array. */
export function slurmSubmitJob(command: 'train' | 'sweep', configFile: string, name: string, points: number, o: EngineOptions, s: SlurmSettings): JobSpec {
  const what = command === 'sweep' ? `sweep ${name} (${points} run${points === 1 ? '' : 's'})` : name;
  return {
    kind: 'slurm',
    label: `Submit ${what} to Slurm`,
    // Worker threads are for this machine's cores: a cluster's runs take the engine's default on their nodes.
    args: [command, configFile, '--slurm', '--runs-dir', o.runsDir, ...backendArgs({ ...o, workers: undefined }), ...slurmFlags(s)],
    cwd: path.dirname(configFile),
    configFile,
  };
}

/** Resume Run with Slurm on: the run goes back to the cluster (`train --resume <run> --slurm`), not to this machine. */
export function slurmResumeJob(runDir: string, name: string, o: EngineOptions, s: SlurmSettings): JobSpec {
  return {
    kind: 'slurm',
    label: `Submit ${name} to Slurm to resume it`,
    args: ['train', '--resume', runDir, '--slurm', ...backendArgs({ ...o, workers: undefined }), ...slurmFlags(s)],
    cwd: runDir,
    runDir,
  };
}

/** A run's Slurm task is pending or running (as last seen), or its run.json has not ended. */
export function isSlurmRunLive(run: Pick<RunSummary, 'slurm' | 'statusOnDisk'>, status: SlurmTaskStatus | undefined): boolean {
  if (!run.slurm) return false;
  if (status) return !ENDED_PHASES.includes(status.phase);
  return run.statusOnDisk === 'queued' || run.statusOnDisk === 'running';
}

export interface SlurmMonitorOptions {
  /** The runs as last listed (the Runs view's). */
  runs: () => RunSummary[];
  /** Some run's Slurm state changed (rebuild the tree). */
  onChange: () => void;
  /** A new line of a run's task log. */
  onLog?: (run: RunSummary, line: string) => void;
  /** Slurm could not be asked (no Slurm here): said once until it works again. */
  onError?: (message: string) => void;
  pollMs: number;
}

/**
 * Whether the monitor asks Slurm about a run: while its task lives; before the first answer, every Slurm run
 * not done or failed (run.json says cancelled between a time-limit checkpoint and the requeued task's start).
 */
export function needsSlurmLook(run: Pick<RunSummary, 'slurm' | 'statusOnDisk'>, status: SlurmTaskStatus | undefined): boolean {
  if (!run.slurm) return false;
  if (status) return !ENDED_PHASES.includes(status.phase);
  return run.statusOnDisk !== 'done' && run.statusOnDisk !== 'failed';
}

export class SlurmMonitor {
  /** Slurm's state of each Slurm run seen, by run folder. */
  readonly statuses = new Map<string, SlurmTaskStatus>();
  private readonly logOffsets = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private failing = false;

  constructor(private readonly o: SlurmMonitorOptions) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.poll(), this.o.pollMs);
  }

  setPollMs(ms: number): void {
    this.o.pollMs = ms;
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
      this.start();
    }
  }

  /** Asks Slurm about the live Slurm runs now (one poll at a time; a call during a poll waits for it). */
  poll(): Promise<void> {
    this.polling ??= this.pollOnce().finally(() => (this.polling = undefined));
    return this.polling;
  }

  private async pollOnce(): Promise<void> {
    const live = this.o.runs().filter((r) => needsSlurmLook(r, this.statuses.get(r.dir)));
    if (!live.length) return;
    let next: Map<string, SlurmTaskStatus>;
    try {
      next = await slurmStatuses(live);
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.o.onError?.(`cannot ask Slurm about ${live.length} Slurm run${live.length === 1 ? '' : 's'}: ${(err as Error).message}`);
      this.failing = true;
      return;
    }
    let changed = false;
    for (const run of live) {
      const s = next.get(run.dir);
      if (!s) continue;
      const before = this.statuses.get(run.dir);
      if (!before || describeTask(before) !== describeTask(s)) changed = true;
      this.statuses.set(run.dir, s);
      this.tailLog(run);
    }
    // Reconciled run.json files and ended tasks change the tree even when the words stay; and while tasks run, the
    // tree and the open views re-read the run folders at every poll, since file watchers miss writes made by other
    // machines on a network filesystem.
    const running = live.some((r) => this.statuses.get(r.dir)?.phase === 'running');
    if (changed || running || live.some((r) => !isSlurmRunLive(r, this.statuses.get(r.dir)))) this.o.onChange();
  }

  private tailLog(run: RunSummary): void {
    if (!this.o.onLog) return;
    const file = path.join(run.dir, SLURM_LOG_FILE);
    let buf: Buffer;
    try {
      buf = fs.readFileSync(file);
    } catch {
      return;
    }
    let offset = this.logOffsets.get(run.dir) ?? 0;
    if (offset > buf.length) offset = 0;
    const end = buf.lastIndexOf(10) + 1;
    if (end <= offset) return;
    for (const line of buf.subarray(offset, end).toString('utf8').split('\n')) if (line.trim()) this.o.onLog(run, line);
    this.logOffsets.set(run.dir, end);
  }

  dispose(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
