/**
 * A Slurm run's state: what Slurm says of its array task, set beside its run.json. And the one write the
 * submitting side makes to run.json after submission: when Slurm has ended a task whose run.json still says
 * queued or running (killed at the time limit, cancelled while pending, out of memory, a node failure, a job
 * Slurm lost), run.json gets the end Slurm saw, so no run is left "running" for ever. Nothing runs the task any
 * more at that point, so this write cannot race the trainer's.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CHECKPOINT_DIR, RUN_FILE, type RunRecord } from '../runs';
import { writeJsonAtomic } from '../util/atomicFile';
import { SLURM_LOG_FILE } from './batchScript';
import type { SlurmTaskRecord } from './scheduler';

/** Slurm's states, in the words the Runs tree and `adapter-lab slurm status` use. */
export type SlurmPhase = 'pending' | 'running' | 'done' | 'failed' | 'cancelled' | 'timeout' | 'lost';

export const ENDED_PHASES: readonly SlurmPhase[] = ['done', 'failed', 'cancelled', 'timeout', 'lost'];

const PHASE_OF_STATE: Record<string, SlurmPhase> = {
  PENDING: 'pending',
  REQUEUED: 'pending',
  REQUEUE_HOLD: 'pending',
  REQUEUE_FED: 'pending',
  RESV_DEL_HOLD: 'pending',
  CONFIGURING: 'pending',
  RUNNING: 'running',
  COMPLETING: 'running',
  SIGNALING: 'running',
  STAGE_OUT: 'running',
  SUSPENDED: 'running',
  STOPPED: 'running',
  RESIZING: 'running',
  COMPLETED: 'done',
  FAILED: 'failed',
  OUT_OF_MEMORY: 'failed',
  BOOT_FAIL: 'failed',
  SPECIAL_EXIT: 'failed',
  CANCELLED: 'cancelled',
  PREEMPTED: 'cancelled',
  REVOKED: 'cancelled',
  TIMEOUT: 'timeout',
  DEADLINE: 'timeout',
  NODE_FAIL: 'lost',
};

export interface SlurmTaskStatus {
  /** `<job>_<task>`. */
  id: string;
  phase: SlurmPhase;
  /** Slurm's state word, absent when Slurm has no record. */
  state?: string;
  /** Why it is pending, as Slurm says (Priority, Resources, BeginTime, JobHeldUser, ...). */
  reason?: string;
  exitCode?: number;
  restarts?: number;
}

export function phaseOfState(state: string): SlurmPhase {
  return PHASE_OF_STATE[state.toUpperCase()] ?? 'running';
}

/** The state of a run's task from Slurm's records of its job (undefined record: Slurm has none: lost). */
export function taskStatus(slurm: NonNullable<RunRecord['slurm']>, record: SlurmTaskRecord | undefined): SlurmTaskStatus {
  const id = `${slurm.jobId}_${slurm.arrayTaskId}`;
  if (!record) return { id, phase: 'lost' };
  const phase = phaseOfState(record.state);
  return {
    id,
    phase,
    state: record.state,
    ...(phase === 'pending' && record.reason && record.reason !== 'None' ? { reason: record.reason } : {}),
    ...(record.exitCode !== undefined && ENDED_PHASES.includes(phase) ? { exitCode: record.exitCode } : {}),
    ...(record.restarts ? { restarts: record.restarts } : {}),
  };
}

/** One line for people: "slurm 12_3 pending (Priority)", "slurm 12_3 failed (exit code 2)". */
export function describeTask(s: SlurmTaskStatus): string {
  const detail = s.phase === 'pending' && s.reason ? ` (${s.reason})` : s.phase === 'lost' ? ` (${s.state ?? 'Slurm has no record of it'})` : s.exitCode ? ` (exit code ${s.exitCode})` : '';
  return `slurm ${s.id} ${s.phase === 'timeout' ? 'timed out' : s.phase}${detail}`;
}

/** The last lines of a run's task output: its slurm.log, then Slurm's own messages for the task (time limit, ...). */
export function taskLogTail(runDir: string, slurm: NonNullable<RunRecord['slurm']> | undefined, lines = 20): string {
  const read = (f: string | undefined): string[] => {
    if (!f) return [];
    try {
      return fs.readFileSync(f, 'utf8').split('\n').filter((l) => l.trim());
    } catch {
      return [];
    }
  };
  return [...read(path.join(runDir, SLURM_LOG_FILE)), ...read(slurm?.output)].slice(-lines).join('\n');
}

/**
 * Writes the end Slurm saw into run.json when the task has ended and run.json has not (see the file comment);
 * adds the log's last lines to a failed run's error when it has none. Returns the record written, or null when
 * nothing needed writing (or run.json cannot be read).
 */
export function reconcileRun(runDir: string, status: SlurmTaskStatus): RunRecord | null {
  if (!ENDED_PHASES.includes(status.phase)) return null;
  const file = path.join(runDir, RUN_FILE);
  let record: RunRecord;
  try {
    record = JSON.parse(fs.readFileSync(file, 'utf8')) as RunRecord;
  } catch {
    return null;
  }
  const tail = taskLogTail(runDir, record.slurm);
  if (record.status === 'failed' && !record.error?.stderrTail && tail) {
    const next = { ...record, error: { message: record.error?.message ?? `Slurm task ${status.id} failed`, ...record.error, stderrTail: tail } };
    writeJsonAtomic(file, next);
    return next;
  }
  if (record.status !== 'queued' && record.status !== 'running') return null;
  const endedAt = new Date().toISOString();
  const resumable = fs.existsSync(path.join(runDir, CHECKPOINT_DIR, 'state.json'));
  const next: RunRecord = { ...record, endedAt, resumable };
  const code = status.exitCode !== undefined ? { exitCode: status.exitCode } : {};
  if (status.phase === 'cancelled') {
    next.status = 'cancelled';
    delete next.error;
  } else {
    next.status = 'failed';
    const why: Record<Exclude<SlurmPhase, 'pending' | 'running' | 'cancelled'>, string> = {
      done: `Slurm task ${status.id} ended (COMPLETED) without finishing the run`,
      failed: `Slurm task ${status.id} ${status.state === 'OUT_OF_MEMORY' ? 'ran out of memory' : `failed (${status.state})`}${status.exitCode !== undefined ? ` with exit code ${status.exitCode}` : ''}`,
      timeout: `Slurm task ${status.id} reached its time limit (${status.state}) before it could save a checkpoint and requeue`,
      lost: status.state ? `Slurm lost task ${status.id} (${status.state})` : `Slurm lost task ${status.id}: it has no record of the job, and the run never ended`,
    };
    next.error = { message: why[status.phase as keyof typeof why], ...code, ...(tail ? { stderrTail: tail } : {}) };
  }
  if (record.status === 'running') {
    const segStart = record.resumedAt ?? record.startedAt;
    if (segStart) next.durationMs = (record.resumedAt !== undefined ? (record.durationMs ?? 0) : 0) + Math.max(0, Date.parse(endedAt) - Date.parse(segStart));
  }
  writeJsonAtomic(file, next);
  return next;
}
