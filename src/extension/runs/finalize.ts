/**
 * Ends a run whose process could not end it: the child died (crash, out of memory, SIGKILL after the cancel
 * grace period) and left run.json saying "running". SPEC 6: such a run is marked failed with the reason, never
 * left "running" forever.
 *
 * Why not RunHandle.update(): openRun() presents a running record with a dead pid as "interrupted", and the
 * store allows interrupted -> running only (a resume). This is the one other legitimate exit from that state,
 * so it is written here, with the store's own atomic writer and the store's timing rules.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CHECKPOINT_DIR, CHECKPOINT_STATE_FILE, isProcessAlive, RUN_FILE } from '../../engine/runs';
import type { RunRecord } from '../../engine/runs';
import { writeJsonAtomic } from '../../engine/util/atomicFile';

export interface DeadRunOutcome {
  status: 'failed' | 'cancelled';
  error?: { message: string; exitCode?: number; stderrTail?: string };
}

/** True when a checkpoint to resume from exists (the trainer writes checkpoint/state.json). */
export function hasCheckpoint(runDir: string): boolean {
  return fs.existsSync(path.join(runDir, CHECKPOINT_DIR, CHECKPOINT_STATE_FILE));
}

/**
 * Marks the run in `runDir` as `outcome.status` if run.json still says running or queued and no live process
 * owns it (`deadPid`, the child that just ended, counts as dead). Returns whether it wrote anything.
 */
export function finalizeDeadRun(runDir: string, outcome: DeadRunOutcome, deadPid?: number): boolean {
  const file = path.join(runDir, RUN_FILE);
  let record: RunRecord;
  try {
    record = JSON.parse(fs.readFileSync(file, 'utf8')) as RunRecord;
  } catch {
    return false; // half-written or corrupt: the tree lists it as a problem; nothing safe to write
  }
  if (record.status !== 'running' && record.status !== 'queued') return false;
  if (typeof record.pid === 'number' && record.pid !== deadPid && isProcessAlive(record.pid)) return false;
  const endedAt = new Date().toISOString();
  const next: RunRecord = { ...record, status: outcome.status, endedAt, resumable: hasCheckpoint(runDir) };
  if (record.status === 'running') {
    const segStart = record.resumedAt ?? record.startedAt;
    if (segStart) {
      const before = record.resumedAt !== undefined ? (record.durationMs ?? 0) : 0;
      next.durationMs = before + Math.max(0, Date.parse(endedAt) - Date.parse(segStart));
    }
  }
  if (outcome.error) next.error = outcome.error;
  else delete next.error;
  writeJsonAtomic(file, next);
  return true;
}
