/**
 * One live process owns a run: `run.lock` in the run folder says which (pid, the process's start time as the
 * kernel counts it, host). It is created atomically with its content (written to a temp file, then hard-linked
 * to the lock's name, which fails when the name exists), so a reader never sees a half-written lock. A lock
 * whose process is gone (or whose pid now belongs to another process: the start time differs) is stale and
 * taken over; a live one makes the second trainer stop before it touches anything.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserInputError } from '../errors';
import { ConfinedIoError, LinkRefusedError } from './confined';

import { LOCK_FILE } from './files';

export { LOCK_FILE };

export interface LockOwner {
  pid: number;
  hostname: string;
  /** When the lock was taken (ISO 8601). */
  since: string;
  /** The process's start time in clock ticks since boot (Linux /proc/<pid>/stat field 22), to tell a reused pid. */
  processStart?: string;
}

/** A second process asked for a run that a live process owns. */
export class RunLockedError extends UserInputError {
  constructor(
    readonly runDir: string,
    readonly owner: LockOwner,
    unsure = false,
  ) {
    super(
      unsure
        ? `run ${runDir} is locked by process ${owner.pid} on host ${owner.hostname} (since ${owner.since}), which cannot be checked from here; ` +
            `if that process is gone, delete ${path.join(runDir, LOCK_FILE)} and try again`
        : `run ${runDir} is in use by process ${owner.pid} (since ${owner.since}); wait for it to end or cancel it first (two processes must not train one run)`,
      { file: path.join(runDir, LOCK_FILE) },
    );
    this.name = 'RunLockedError';
  }
}

/** The kernel's start time of a process, or undefined where it cannot be read (not Linux, gone). */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (the command) is in parentheses and may hold spaces: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

function processExists(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** 'alive', 'dead', or 'unknown' (another host's process). */
export function ownerState(owner: LockOwner): 'alive' | 'dead' | 'unknown' {
  if (owner.hostname !== os.hostname()) return 'unknown';
  if (!processExists(owner.pid)) return 'dead';
  if (owner.processStart !== undefined) {
    const now = processStartTime(owner.pid);
    if (now !== undefined && now !== owner.processStart) return 'dead'; // the pid was reused
  }
  return 'alive';
}

/** The lock's owner, or null when there is no lock (or an unreadable one, which no live writer leaves). */
export function readLock(runDir: string): LockOwner | null {
  const file = path.join(runDir, LOCK_FILE);
  let text: string;
  try {
    if (fs.lstatSync(file).isSymbolicLink()) throw new LinkRefusedError(file, runDir);
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof LinkRefusedError) throw err;
    return null;
  }
  try {
    const v = JSON.parse(text) as LockOwner;
    if (typeof v?.pid === 'number' && typeof v.hostname === 'string') return v;
  } catch {
    /* torn or foreign: stale */
  }
  return { pid: -1, hostname: os.hostname(), since: 'unknown' };
}

/** Whether the run's lock is held by a live process (for listings: a 'running' run without one is interrupted). */
export function isLockHeld(runDir: string): boolean | null {
  const owner = readLock(runDir);
  if (!owner) return null;
  return ownerState(owner) !== 'dead';
}

export interface RunLock {
  /** The stale owner this lock was taken over from, if any. */
  readonly tookOverFrom: LockOwner | null;
  release(): void;
}

/**
 * Takes the run's lock for this process. Throws RunLockedError when a live process holds it; takes over a
 * stale one. Release it when the run is no longer written to (a killed process leaves it: that is the stale case).
 */
export function acquireRunLock(runDir: string): RunLock {
  const file = path.join(runDir, LOCK_FILE);
  const me: LockOwner = { pid: process.pid, hostname: os.hostname(), since: new Date().toISOString(), processStart: processStartTime(process.pid) };
  const tmp = path.join(runDir, `.${LOCK_FILE}.${process.pid}.${Date.now()}.tmp`);
  try {
    fs.writeFileSync(tmp, JSON.stringify(me) + '\n', { flag: 'wx' });
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new ConfinedIoError('create', file, runDir, err);
  }
  let tookOverFrom: LockOwner | null = null;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        fs.linkSync(tmp, file); // atomic: fails with EEXIST when a lock exists
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw err;
      }
      const owner = readLock(runDir);
      if (owner === null) continue; // released meanwhile
      const state = ownerState(owner);
      if (state !== 'dead') throw new RunLockedError(runDir, owner, state === 'unknown');
      // Stale: move it aside under a name of our own, and check that what we moved is the lock we judged
      // (another process may have taken it over in between; then put it back and give up).
      const aside = path.join(runDir, `.${LOCK_FILE}.${process.pid}.stale`);
      try {
        fs.renameSync(file, aside);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      const moved = readLockFile(aside);
      if (moved && (moved.pid !== owner.pid || moved.since !== owner.since)) {
        try {
          fs.linkSync(aside, file);
        } catch {
          /* the lock name is taken again: that owner wins */
        }
        fs.rmSync(aside, { force: true });
        throw new RunLockedError(runDir, moved);
      }
      fs.rmSync(aside, { force: true });
      tookOverFrom = owner;
    }
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  let held = true;
  return {
    tookOverFrom,
    release() {
      if (!held) return;
      held = false;
      // Only our own lock: never remove one another process took over.
      const owner = readLockFile(file);
      if (owner && owner.pid === me.pid && owner.since === me.since) fs.rmSync(file, { force: true });
    },
  };
}

function readLockFile(file: string): LockOwner | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as LockOwner;
  } catch {
    return null;
  }
}
