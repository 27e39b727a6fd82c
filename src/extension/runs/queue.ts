/**
 * The run queue of the extension host: engine jobs (train, resume, eval, ablate, export) run as child
 * processes of the CLI, at most `maxConcurrent` at once, in the order they were queued. No vscode import.
 *
 * How a job ends:
 * - the CLI's `done` message says done / failed / cancelled (and the exit code agrees);
 * - cancel of a queued job drops it; cancel of a running one kills its process tree (SIGTERM, then SIGKILL
 *   after the grace period): the CLI saves a checkpoint and ends its run as cancelled;
 * - a process that dies without `done` fails the job with its exit code (or signal) and the last stderr lines,
 *   and a train run it left "running" in run.json is marked failed (or cancelled, if a cancel killed it hard).
 */
import type { EngineMessage, ErrorMessage, EvalMessage, ProgressMessage } from '../../protocol/messages';
import { EngineProcess, type EngineExit, type EngineLauncher } from './engineProcess';
import { finalizeDeadRun } from './finalize';
import type { JobSpec } from './jobs';

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface JobError {
  message: string;
  exitCode: number | null;
  signal?: string | null;
  stderrTail: string[];
  file?: string;
  line?: number;
  field?: string;
}

export interface Job {
  readonly id: number;
  readonly spec: JobSpec;
  state: JobState;
  pid?: number;
  /** Run folders the job works on: spec.runDir and every run a `start` message announced. */
  runDirs: string[];
  progress?: ProgressMessage;
  lastEval?: EvalMessage;
  /** The CLI's `result` message (eval metrics, ablation matrix, ...). */
  result?: Record<string, unknown>;
  error?: JobError;
  exitCode?: number | null;
  cancelRequested: boolean;
  queuedAt: number;
  startedAt?: number;
  endedAt?: number;
}

export type JobEvent = 'queued' | 'started' | 'progress' | 'ended';

export interface QueueListener {
  onJob?(job: Job, event: JobEvent): void;
  onMessage?(job: Job, msg: EngineMessage): void;
  onText?(job: Job, line: string, stream: 'stdout' | 'stderr'): void;
}

export interface QueueOptions {
  launcher: EngineLauncher;
  maxConcurrent: number;
  /** Time a cancelled process gets to save its checkpoint before SIGKILL (default 10 s). */
  killGraceMs?: number;
}

const TERMINAL: readonly JobState[] = ['done', 'failed', 'cancelled'];

export function isTerminal(state: JobState): boolean {
  return TERMINAL.includes(state);
}

export class RunQueue {
  private readonly all: Job[] = [];
  private readonly processes = new Map<number, EngineProcess>();
  private readonly waiters = new Map<number, ((job: Job) => void)[]>();
  private readonly listeners = new Set<QueueListener>();
  private nextId = 1;
  private maxConcurrent: number;
  private disposed = false;

  constructor(private readonly options: QueueOptions) {
    this.maxConcurrent = Math.max(1, Math.floor(options.maxConcurrent));
  }

  listen(listener: QueueListener): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** Queued and running jobs, and the ended ones (newest last). */
  get jobs(): readonly Job[] {
    return this.all;
  }

  get active(): Job[] {
    return this.all.filter((j) => j.state === 'running' || j.state === 'queued');
  }

  get concurrency(): number {
    return this.maxConcurrent;
  }

  setMaxConcurrent(n: number): void {
    this.maxConcurrent = Math.max(1, Math.floor(n));
    this.pump();
  }

  enqueue(spec: JobSpec): Job {
    if (this.disposed) throw new Error('the run queue is closed');
    const job: Job = {
      id: this.nextId++,
      spec,
      state: 'queued',
      runDirs: spec.runDir ? [spec.runDir] : [],
      cancelRequested: false,
      queuedAt: Date.now(),
    };
    this.all.push(job);
    // Ended jobs are kept for the status bar and tests; a long session should not grow without bound.
    while (this.all.length > 200 && isTerminal(this.all[0].state)) this.all.shift();
    this.emit(job, 'queued');
    this.pump();
    return job;
  }

  /** Resolves when the job has ended (at once for an ended job). */
  whenEnded(job: Job): Promise<Job> {
    if (isTerminal(job.state)) return Promise.resolve(job);
    return new Promise((resolve) => {
      const list = this.waiters.get(job.id) ?? [];
      list.push(resolve);
      this.waiters.set(job.id, list);
    });
  }

  /** The active job working on a run folder, if any. */
  jobForRun(runDir: string): Job | undefined {
    return this.active.find((j) => j.runDirs.includes(runDir));
  }

  /** Cancels a job: a queued one is dropped, a running one's process tree is stopped. False if already ended. */
  cancel(job: Job): boolean {
    if (isTerminal(job.state)) return false;
    job.cancelRequested = true;
    if (job.state === 'queued') {
      this.finish(job, 'cancelled');
      this.pump();
      return true;
    }
    this.processes.get(job.id)?.kill(this.options.killGraceMs ?? 10_000);
    return true;
  }

  /** Cancels everything (queued first, so nothing new starts) and waits for the processes to end. */
  async dispose(): Promise<void> {
    this.disposed = true;
    const active = this.active;
    for (const j of active.filter((j) => j.state === 'queued')) this.cancel(j);
    for (const j of active.filter((j) => j.state === 'running')) this.cancel(j);
    await Promise.all(active.map((j) => this.whenEnded(j)));
  }

  /**
   * Starts queued jobs in order while slots are free. A job takes spec.slots slots (a sweep: its --jobs); one
   * that needs more than are free waits, and the jobs behind it wait too (first in, first out), unless nothing
   * runs (a job wider than the whole queue still starts, alone).
   */
  private pump(): void {
    if (this.disposed) return;
    let used = this.all.filter((j) => j.state === 'running').reduce((n, j) => n + slotsOf(j), 0);
    for (const job of this.all) {
      if (job.state !== 'queued') continue;
      if (used > 0 && used + slotsOf(job) > this.maxConcurrent) break;
      this.start(job);
      used += slotsOf(job);
    }
  }

  private start(job: Job): void {
    job.state = 'running';
    job.startedAt = Date.now();
    let doneMsg: Extract<EngineMessage, { type: 'done' }> | undefined;
    let errorMsg: ErrorMessage | undefined;
    const proc = new EngineProcess(
      this.options.launcher,
      [...job.spec.args, '--json'],
      { cwd: job.spec.cwd },
      {
        onMessage: (msg) => {
          switch (msg.type) {
            case 'start':
            case 'sweepPoint':
              if (msg.runDir && !job.runDirs.includes(msg.runDir)) job.runDirs.push(msg.runDir);
              break;
            case 'progress':
              job.progress = msg;
              break;
            case 'eval':
              job.lastEval = msg;
              break;
            case 'result':
              job.result = msg;
              break;
            case 'error':
              errorMsg = msg;
              break;
            case 'done':
              doneMsg = msg;
              break;
          }
          for (const l of this.listeners) l.onMessage?.(job, msg);
          if (msg.type === 'start' || msg.type === 'progress' || msg.type === 'eval' || msg.type === 'sweepPoint') this.emit(job, 'progress');
        },
        onText: (line, stream) => {
          for (const l of this.listeners) l.onText?.(job, line, stream);
        },
      },
    );
    job.pid = proc.pid;
    this.processes.set(job.id, proc);
    this.emit(job, 'started');
    void proc.exited.then((exit) => {
      this.processes.delete(job.id);
      const outcome = jobOutcome(exit, doneMsg, errorMsg, job.cancelRequested);
      job.exitCode = exit.code;
      if (outcome.error) job.error = outcome.error;
      if (job.spec.kind === 'train' || job.spec.kind === 'resume') {
        for (const dir of job.runDirs) {
          finalizeDeadRun(
            dir,
            {
              status: outcome.state === 'cancelled' ? 'cancelled' : 'failed',
              error: outcome.state === 'cancelled' ? undefined : deadRunError(outcome.error, exit),
            },
            proc.pid,
          );
        }
      }
      this.finish(job, outcome.state);
      this.pump();
    });
  }

  private finish(job: Job, state: JobState): void {
    job.state = state;
    job.endedAt = Date.now();
    this.emit(job, 'ended');
    for (const resolve of this.waiters.get(job.id) ?? []) resolve(job);
    this.waiters.delete(job.id);
  }

  private emit(job: Job, event: JobEvent): void {
    for (const l of this.listeners) {
      try {
        l.onJob?.(job, event);
      } catch {
        // a listener's bug must not stop the queue
      }
    }
  }
}

function slotsOf(job: Job): number {
  return Math.max(1, Math.floor(job.spec.slots ?? 1));
}

function deadRunError(error: JobError | undefined, exit: EngineExit): { message: string; exitCode?: number; stderrTail?: string } {
  return {
    message: error?.message ?? 'the engine process ended without finishing the run',
    ...(exit.code !== null ? { exitCode: exit.code } : {}),
    ...(exit.stderrTail.length ? { stderrTail: exit.stderrTail.join('\n') } : {}),
  };
}

/**
 * How a job ended, from what its process said and how it exited. Pure: the status-transition rules of the
 * queue, tested on their own.
 */
export function jobOutcome(
  exit: EngineExit,
  done: { status: 'done' | 'failed' | 'cancelled'; exitCode: number } | undefined,
  error: ErrorMessage | undefined,
  cancelRequested: boolean,
): { state: 'done' | 'failed' | 'cancelled'; error?: JobError } {
  const located = error ? { file: error.file, line: error.line, field: error.field } : {};
  if (exit.spawnError) {
    return { state: 'failed', error: { message: `could not start the engine: ${exit.spawnError}`, exitCode: null, stderrTail: exit.stderrTail } };
  }
  if (done && (done.status !== 'done' || exit.code === 0)) {
    if (done.status === 'done') return { state: 'done' };
    if (done.status === 'cancelled') return { state: 'cancelled' };
    return {
      state: 'failed',
      error: { message: error?.message ?? `the engine reported a failure (exit code ${exit.code})`, exitCode: exit.code, stderrTail: exit.stderrTail, ...located },
    };
  }
  // Commands without a run (export, info) end with exit code 0 and no `done` message.
  if (!done && exit.code === 0 && !error) return { state: 'done' };
  if (cancelRequested) return { state: 'cancelled' };
  const how = exit.code !== null ? `exited with code ${exit.code}` : `was killed by ${exit.signal ?? 'a signal'}`;
  const last = exit.stderrTail.length ? `: ${exit.stderrTail[exit.stderrTail.length - 1]}` : '';
  return {
    state: 'failed',
    error: {
      message: error?.message ?? `the engine process ${how}${last}`,
      exitCode: exit.code,
      signal: exit.signal,
      stderrTail: exit.stderrTail,
      ...located,
    },
  };
}
