import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunRecord } from '../runs';
import { REQUEUE_ANNOUNCEMENT, SLURM_LOG_FILE } from './batchScript';
import { queryArray, type SlurmTaskRecord } from './scheduler';
import { ENDED_PHASES, phaseOfState, reconcileRun, taskStatus, type SlurmTaskStatus } from './taskState';

/**
 * How long an ended state other than COMPLETED must hold before it is believed. A task that requeues itself (or
 * is requeued) can show an ended state for a moment on its way back to PENDING: CI once saw FAILED, exit code 1
 * (the stopped training's), Restarts=1, and `train --slurm --wait` took that for the task's end. A state seen
 * twice this far apart, with the same restart count, is Slurm's word.
 */
const settleMs = (): number => Number(process.env.ADAPTER_LAB_SLURM_SETTLE_MS) || 2000;
/**
 * A task whose log's last word is that it requeued itself is shown pending, whatever end Slurm shows, until its
 * log is this old: Slurm can show such a task FAILED (the stopped training's exit code 1, Restarts already counted)
 * for over a minute before PENDING (a CI run saw more than 60 s). A requeue that scontrol refused is said in the
 * log after the announcement (batchScript.ts), so that end is believed at once; a requeue Slurm accepted and then
 * lost (CI saw one stay FAILED for over nine minutes) is believed after this long, not waited on for ever.
 */
const REQUEUE_SETTLE_MS = 5 * 60_000;

/**
 * Slurm's state of each Slurm run (by run folder), one scontrol (or sacct) per job array; the run.json of a task
 * that ended without ending its run gets the end Slurm saw (reconcileRun). Runs without a `slurm` field are left out.
 */
export async function slurmStatuses(runs: { dir: string; slurm?: RunRecord['slurm'] }[]): Promise<Map<string, SlurmTaskStatus>> {
  const out = new Map<string, SlurmTaskStatus>();
  const jobs = new Map<string, typeof runs>();
  for (const r of runs) if (r.slurm) jobs.set(r.slurm.jobId, [...(jobs.get(r.slurm.jobId) ?? []), r]);
  for (const [jobId, members] of jobs) {
    const tasks = await settledTasks(jobId, members);
    for (const r of members) {
      const s = taskStatus(r.slurm!, tasks.find((t) => t.arrayTaskId === r.slurm!.arrayTaskId));
      reconcileRun(r.dir, s);
      out.set(r.dir, s);
    }
  }
  return out;
}

/**
 * The job's tasks, asked again while one of the members shows an end that has not held (see settleMs); a member
 * whose end held but whose log says it requeued itself is reported pending (see REQUEUE_SETTLE_MS).
 */
async function settledTasks(jobId: string, members: { dir: string; slurm?: RunRecord['slurm'] }[]): Promise<SlurmTaskRecord[]> {
  let tasks = await queryArray(jobId);
  for (;;) {
    const ended = endedUnsuccessfully(tasks, members);
    if (!ended.length) return tasks;
    await new Promise((resolve) => setTimeout(resolve, settleMs()));
    const again = await queryArray(jobId);
    const held = ended.every((t) => {
      const now = again.find((a) => a.arrayTaskId === t.arrayTaskId);
      return now !== undefined && now.state === t.state && (now.restarts ?? 0) === (t.restarts ?? 0);
    });
    if (held) {
      const requeueing = new Set(endedUnsuccessfully(again, members).filter((t) => requeuedItself(members.find((m) => m.slurm!.arrayTaskId === t.arrayTaskId)!.dir)));
      return again.map((t) => (requeueing.has(t) ? { jobId: t.jobId, arrayTaskId: t.arrayTaskId, state: 'PENDING', reason: 'Requeued', restarts: t.restarts } : t));
    }
    tasks = again;
  }
}

/** The members' tasks in an ended state other than COMPLETED. */
function endedUnsuccessfully(tasks: SlurmTaskRecord[], members: { slurm?: RunRecord['slurm'] }[]): SlurmTaskRecord[] {
  return tasks.filter((t) => {
    const phase = phaseOfState(t.state);
    return phase !== 'done' && ENDED_PHASES.includes(phase) && members.some((m) => m.slurm!.arrayTaskId === t.arrayTaskId);
  });
}

/** The task's last word in its log, written less than REQUEUE_SETTLE_MS ago, is that it requeued itself. */
function requeuedItself(runDir: string): boolean {
  let tail: string;
  try {
    const fd = fs.openSync(path.join(runDir, SLURM_LOG_FILE), 'r');
    try {
      const { size, mtimeMs } = fs.fstatSync(fd);
      if (Date.now() - mtimeMs > REQUEUE_SETTLE_MS) return false;
      const buf = Buffer.alloc(Math.min(size, 4096));
      fs.readSync(fd, buf, 0, buf.length, size - buf.length);
      tail = buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
  const marks = tail.split('\n').filter((l) => l.startsWith('== '));
  return marks.length > 0 && marks[marks.length - 1].startsWith(REQUEUE_ANNOUNCEMENT);
}
