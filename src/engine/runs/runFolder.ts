/**
 * Run folders on disk (SPEC section 4). Used by the CLI, the trainer (in its child process) and the VS Code
 * extension, which rebuilds its tree from these folders alone; so every reader here tolerates whatever it
 * finds (half-written folders, corrupt files, torn metric lines, processes that died) and every writer
 * writes atomically. Every access to a run folder's files goes through ./confined.ts, which never follows a
 * symbolic link (a link inside a run folder is refused with an error naming it); a training process holds the
 * run's lock (./lock.ts) so that one live process at a time writes a run.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ResolvedConfig } from '../config/types';
import { UserInputError } from '../errors';
import { writeJsonAtomic } from '../util/atomicFile';
import { appendConfined, confinedPath, ensureConfinedDir, listConfined, readConfined, removeConfined, removeStaleTempFiles, writeConfined } from './confined';
import { acquireRunLock, isLockHeld, isProcessAlive, type RunLock } from './lock';

export { isProcessAlive };
import { RUN_STATUSES, type MetricEntry, type RunRecord, type RunStatus, type RunSummary } from './types';

import { ADAPTER_DIR, CANCEL_REQUEST_FILE, CHECKPOINT_DIR, METRICS_FILE, resultFileName, RUN_FILE } from './files';

export { ADAPTER_DIR, CANCEL_REQUEST_FILE, CHECKPOINT_DIR, METRICS_FILE, RUN_FILE } from './files';

// ---------------------------------------------------------------------------------------------
// Status transitions

const TRANSITIONS: Record<RunStatus, readonly RunStatus[]> = {
  queued: ['running', 'cancelled', 'failed'],
  running: ['done', 'failed', 'cancelled', 'interrupted'],
  // Back to queued: a resume handed to a scheduler (train --resume --slurm) waits there for its task to start.
  interrupted: ['running', 'queued'],
  cancelled: ['running', 'queued'],
  failed: ['running', 'queued'],
  done: [],
};

export function canTransition(from: RunStatus, to: RunStatus): boolean {
  return TRANSITIONS[from]?.includes(to) ?? false;
}

/** Checks a status change; throws a UserInputError saying why it is not possible. */
export function transition(from: RunStatus, to: RunStatus): RunStatus {
  if (canTransition(from, to)) return to;
  let why = '';
  if (from === 'done' && to === 'running') why = ': the run is done; start a new run instead of resuming it';
  else if (from === to) why = `: the run is already ${from}`;
  else if (TRANSITIONS[from]?.length) why = ` (from ${from} it can go to ${TRANSITIONS[from].join(', ')})`;
  throw new UserInputError(`a run cannot go from "${from}" to "${to}"${why}`);
}

const TERMINAL: readonly RunStatus[] = ['done', 'failed', 'cancelled', 'interrupted'];

// ---------------------------------------------------------------------------------------------
// Handles

export interface CreateRunOptions {
  /** Display name (default: the config's name); also names the folder. For a sweep point: its name. */
  name?: string;
  sweep?: RunRecord['sweep'];
  /** Creation time (default: now). */
  now?: Date;
}

export interface RunHandle {
  /** Absolute path of the run folder. */
  readonly dir: string;
  /** The current record (as last written or read). Do not mutate; use update(). */
  readonly record: Readonly<RunRecord>;
  readonly runFile: string;
  readonly metricsFile: string;
  /** `<dir>/checkpoint`: training state for resume and the best checkpoint (created on demand). */
  readonly checkpointDir: string;
  /** `<dir>/adapter`: the trained adapter in the AdapterHub layout (created on demand). */
  readonly adapterDir: string;
  /**
   * Merges `patch` into the record (shallow; a key set to undefined is removed) and writes run.json
   * atomically. A status change is checked with transition() and fills in times:
   * -> running: startedAt (first start; later starts set resumedAt), pid (default process.pid: pass the
   *    child's pid when marking a run running on behalf of another process), clears endedAt and error;
   * -> done/failed/cancelled/interrupted: endedAt, and durationMs (active time, summed over resumes).
   */
  update(patch: Partial<RunRecord>): RunRecord;
  /** Appends one line to metrics.jsonl; adds `time` (ms since the epoch) when absent. */
  appendMetric(entry: MetricEntry): void;
  /** Writes `<dir>/<name>` (".json" added when there is no extension) atomically; returns its path. */
  writeResult(name: string, value: unknown): string;
  /** Reads a result written by writeResult; null when absent or unreadable. */
  readResult<T = unknown>(name: string): T | null;
  /** Re-reads run.json from disk (another process may have written it). */
  reload(): RunRecord;
  /**
   * Takes the run's lock for this process (see ./lock.ts); throws RunLockedError when a live process holds
   * it. Taking it again through the same handle returns the lock already held.
   */
  lock(): RunLock;
  /** Whether this handle holds the run's lock. */
  readonly locked: boolean;
  /** Removes temp files of writes a killed process left half done (call while holding the lock). */
  removeStaleTempFiles(): string[];
  /**
   * Keeps the metrics entries of steps up to `step` (and those without a step), dropping the rest and any
   * torn line: what a resume from a checkpoint at `step` does, so the curve has one point per step.
   */
  trimMetrics(step: number): void;
  /** File access inside the run folder, relative paths; links refused, writes atomic (see ./confined.ts). */
  writeFile(rel: string, data: string | Uint8Array): string;
  readFile(rel: string): Buffer | null;
  removeFile(rel: string): void;
  listFiles(rel: string): string[];
  /** Makes the folder `rel` (no link on the way) and returns its absolute path. */
  ensureDir(rel: string): string;
}

function resultFile(dir: string, name: string): string {
  if (!/^[A-Za-z0-9][\w.-]*$/.test(name)) throw new Error(`bad result name "${name}" (letters, digits, "-", "_", "." only)`);
  const file = path.extname(name) ? name : resultFileName(name);
  if (file === RUN_FILE) throw new Error(`"${RUN_FILE}" is not a result; use update()`);
  return path.join(dir, file);
}

class RunFolder implements RunHandle {
  readonly runFile: string;
  readonly metricsFile: string;
  readonly checkpointDir: string;
  readonly adapterDir: string;
  private current: RunRecord;
  private metricsChecked = false;
  private heldLock: RunLock | null = null;

  constructor(
    readonly dir: string,
    record: RunRecord,
  ) {
    this.current = record;
    this.runFile = path.join(dir, RUN_FILE);
    this.metricsFile = path.join(dir, METRICS_FILE);
    this.checkpointDir = path.join(dir, CHECKPOINT_DIR);
    this.adapterDir = path.join(dir, ADAPTER_DIR);
  }

  get record(): Readonly<RunRecord> {
    return this.current;
  }

  update(patch: Partial<RunRecord>): RunRecord {
    const cur = this.current;
    const next: Record<string, unknown> = { ...cur, ...patch };
    const to = patch.status;
    if (to !== undefined && to !== cur.status) {
      transition(cur.status, to);
      const now = new Date();
      if (to === 'running') {
        if (!('pid' in patch)) next.pid = process.pid;
        if (cur.startedAt === undefined) {
          if (!('startedAt' in patch)) next.startedAt = now.toISOString();
        } else if (!('resumedAt' in patch)) {
          next.resumedAt = now.toISOString();
        }
        if (!('endedAt' in patch)) delete next.endedAt;
        if (!('error' in patch)) delete next.error;
      } else if (TERMINAL.includes(to)) {
        const endedAt = patch.endedAt ?? now.toISOString();
        next.endedAt = endedAt;
        if (!('durationMs' in patch)) {
          const segStart = (next.resumedAt as string | undefined) ?? (next.startedAt as string | undefined);
          if (segStart !== undefined && cur.status === 'running') {
            const before = next.resumedAt !== undefined ? (cur.durationMs ?? 0) : 0;
            next.durationMs = before + Math.max(0, Date.parse(endedAt) - Date.parse(segStart));
          }
        }
      }
    }
    for (const k of Object.keys(next)) if (next[k] === undefined) delete next[k];
    writeConfined(this.dir, RUN_FILE, JSON.stringify(next, null, 2) + '\n');
    this.current = next as unknown as RunRecord;
    return this.current;
  }

  appendMetric(entry: MetricEntry): void {
    if (!entry || typeof entry.type !== 'string') throw new Error('a metrics entry needs a "type"');
    const line = JSON.stringify(entry.time === undefined ? { ...entry, time: Date.now() } : entry) + '\n';
    let prefix = '';
    if (!this.metricsChecked) {
      // A crash may have left a torn last line: start on a fresh line so the new entry is not glued to it.
      this.metricsChecked = true;
      prefix = endsWithNewline(confinedPath(this.dir, METRICS_FILE)) ? '' : '\n';
    }
    appendConfined(this.dir, METRICS_FILE, prefix + line);
  }

  writeResult(name: string, value: unknown): string {
    const file = resultFile(this.dir, name);
    writeConfined(this.dir, path.basename(file), JSON.stringify(value, null, 2) + '\n');
    return file;
  }

  readResult<T = unknown>(name: string): T | null {
    try {
      const bytes = readConfined(this.dir, path.basename(resultFile(this.dir, name)));
      return bytes === null ? null : (JSON.parse(bytes.toString('utf8')) as T);
    } catch {
      return null;
    }
  }

  reload(): RunRecord {
    this.current = readRecord(this.dir);
    return this.current;
  }

  lock(): RunLock {
    if (this.heldLock) return this.heldLock;
    const lock = acquireRunLock(this.dir);
    this.heldLock = {
      tookOverFrom: lock.tookOverFrom,
      release: () => {
        this.heldLock = null;
        lock.release();
      },
    };
    return this.heldLock;
  }

  get locked(): boolean {
    return this.heldLock !== null;
  }

  removeStaleTempFiles(): string[] {
    if (!this.heldLock) throw new Error('removeStaleTempFiles needs the run lock');
    return removeStaleTempFiles(this.dir, isProcessAlive);
  }

  trimMetrics(step: number): void {
    const bytes = readConfined(this.dir, METRICS_FILE);
    if (bytes === null) return;
    const lines = bytes.toString('utf8').split('\n');
    const kept = lines.filter((line) => {
      if (line.trim() === '') return false;
      try {
        const v = JSON.parse(line) as MetricEntry;
        return v !== null && typeof v === 'object' && !(typeof v.step === 'number' && v.step > step);
      } catch {
        return false; // torn
      }
    });
    if (kept.length === lines.filter((l) => l.trim() !== '').length && bytes[bytes.length - 1] === 10) return;
    writeConfined(this.dir, METRICS_FILE, kept.map((l) => l + '\n').join(''));
    this.metricsChecked = true;
  }

  writeFile(rel: string, data: string | Uint8Array): string {
    return writeConfined(this.dir, rel, data);
  }

  readFile(rel: string): Buffer | null {
    return readConfined(this.dir, rel);
  }

  removeFile(rel: string): void {
    removeConfined(this.dir, rel);
  }

  listFiles(rel: string): string[] {
    return listConfined(this.dir, rel);
  }

  ensureDir(rel: string): string {
    return ensureConfinedDir(this.dir, rel);
  }
}

/** True for an empty or missing file, and for one whose last byte is "\n". */
function endsWithNewline(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    const size = fs.fstatSync(fd).size;
    if (size === 0) return true;
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, size - 1);
    return b[0] === 10;
  } catch {
    return true;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// Creating, opening, listing

/** A file-name-safe form of a name: `spam-houlsby-64__lr-0.0003-bottleneck-8`. */
export function slugify(name: string): string {
  const s = name
    .normalize('NFKD')
    .replace(/[^\w.-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '')
    .slice(0, 60)
    .replace(/[-.]+$/, '');
  return s || 'run';
}

function stamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/**
 * Makes `<runsDir>/<YYYYMMDD-HHMMSS>-<name slug>-<4 hex>` (local time) holding run.json with status 'queued'.
 * The folder appears complete: it is built under a hidden temp name and renamed into place.
 */
export function createRun(runsDir: string, cfg: ResolvedConfig, opts: CreateRunOptions = {}): RunHandle {
  const root = path.resolve(runsDir);
  fs.mkdirSync(root, { recursive: true });
  removeDeadCreateTemps(root);
  const now = opts.now ?? new Date();
  const name = opts.name ?? cfg.name;
  for (let attempt = 0; attempt < 100; attempt++) {
    const id = `${stamp(now)}-${slugify(name)}-${crypto.randomBytes(2).toString('hex')}`;
    const dir = path.join(root, id);
    if (fs.existsSync(dir)) continue;
    const record: RunRecord = {
      id,
      name,
      status: 'queued',
      config: cfg,
      task: cfg.task.name,
      method: cfg.method.type,
      createdAt: now.toISOString(),
    };
    if (opts.sweep) record.sweep = opts.sweep;
    const tmp = path.join(root, `.${id}.${process.pid}.tmp`);
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp);
    try {
      writeJsonAtomic(path.join(tmp, RUN_FILE), record);
      if (fs.existsSync(dir)) continue; // lost a race for this name
      fs.renameSync(tmp, dir);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    return new RunFolder(dir, record);
  }
  throw new Error(`could not create a run folder in ${root}`);
}

/** The half-built folders (`.<id>.<pid>.tmp`) of createRun calls whose process was killed. */
function removeDeadCreateTemps(root: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(root);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^\.\d{8}-\d{6}-.+\.(\d+)\.tmp$/.exec(name);
    if (m && Number(m[1]) !== process.pid && !isProcessAlive(Number(m[1]))) fs.rmSync(path.join(root, name), { recursive: true, force: true });
  }
}


/** Asks the sweep that owns a run folder to cancel that point (see CANCEL_REQUEST_FILE). */
export function requestPointCancel(dir: string): void {
  writeConfined(dir, CANCEL_REQUEST_FILE, `${new Date().toISOString()}\n`);
}

export function isPointCancelRequested(dir: string): boolean {
  return fs.existsSync(path.join(dir, CANCEL_REQUEST_FILE));
}

/** Removes a point's cancel request once the sweep has acted on it. */
export function clearPointCancelRequest(dir: string): void {
  removeConfined(dir, CANCEL_REQUEST_FILE);
}

/**
 * The status to show: 'running' with a dead process is 'interrupted'. With the run folder given, its lock
 * decides when there is one (it also tells a pid reused by another process from the trainer).
 */
export function effectiveStatus(record: Pick<RunRecord, 'status' | 'pid'>, dir?: string): RunStatus {
  if (record.status !== 'running') return record.status;
  let held: boolean | null = null;
  try {
    held = dir === undefined ? null : isLockHeld(dir);
  } catch {
    held = null; // a link where the lock should be: fall back to the pid
  }
  if (held === false) return 'interrupted';
  if (held === null && typeof record.pid === 'number' && !isProcessAlive(record.pid)) return 'interrupted';
  return record.status;
}

/** Why a parsed run.json is not a usable record, or null when it is. */
function recordProblem(v: unknown): string | null {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'run.json does not hold an object';
  const r = v as Record<string, unknown>;
  if (!RUN_STATUSES.includes(r.status as RunStatus)) return `run.json has no valid status (got ${JSON.stringify(r.status)})`;
  if (typeof r.name !== 'string') return 'run.json has no name';
  const c = r.config as Record<string, unknown> | undefined;
  if (c === null || typeof c !== 'object' || typeof c.task !== 'object' || c.task === null || typeof c.method !== 'object' || c.method === null) {
    return 'run.json has no config';
  }
  if (typeof r.createdAt !== 'string') return 'run.json has no createdAt';
  return null;
}

/** Reads and checks run.json; fills id/task/method when missing. Throws UserInputError with the reason. */
function readRecord(dir: string): RunRecord {
  const file = path.join(dir, RUN_FILE);
  let bytes: Buffer | null;
  try {
    bytes = readConfined(dir, RUN_FILE);
  } catch (err) {
    if (err instanceof UserInputError) throw err; // a link where run.json should be
    throw new UserInputError(`cannot read: ${(err as Error).message}`, { file });
  }
  if (bytes === null) throw new UserInputError(`not a run folder, or a half-written one (no ${RUN_FILE})`, { file: dir });
  const text = bytes.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UserInputError(`corrupt (${text.trim() === '' ? 'empty' : `not valid JSON: ${(err as Error).message}`})`, { file });
  }
  const problem = recordProblem(value);
  if (problem) throw new UserInputError(`${problem.replace(/^run\.json /, '')}`, { file });
  const r = value as RunRecord;
  if (typeof r.id !== 'string') r.id = path.basename(dir);
  if (typeof r.task !== 'string') r.task = String((r.config.task as { name?: unknown }).name ?? '');
  if (typeof r.method !== 'string') r.method = r.config.method.type;
  return r;
}

/**
 * Opens an existing run folder (resume, eval, ablation). A 'running' record whose process is gone is
 * presented as 'interrupted' (in memory; run.json is rewritten only by the next update()), so it can be
 * resumed with update({ status: 'running' }). Throws UserInputError for a missing or corrupt run.json.
 */
export function openRun(dir: string): RunHandle {
  const abs = path.resolve(dir);
  const record = readRecord(abs);
  record.status = effectiveStatus(record, abs);
  return new RunFolder(abs, record);
}

/**
 * Lists every run folder under `runsDir`, newest first. Never throws: a folder without a readable, valid
 * run.json is a problem entry; a missing runsDir is an empty list. Hidden entries (".x") are skipped.
 * Statuses are as shown to users: 'running' with a dead pid is listed as 'interrupted' (run.json untouched;
 * `statusOnDisk` keeps what it says).
 */
export function listRuns(runsDir: string): { runs: RunSummary[]; problems: { dir: string; reason: string }[] } {
  const root = path.resolve(runsDir);
  const runs: RunSummary[] = [];
  const problems: { dir: string; reason: string }[] = [];
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(root, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') problems.push({ dir: root, reason: code === 'ENOTDIR' ? 'not a folder' : (err as Error).message });
    return { runs, problems };
  }
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const dir = path.join(root, e.name);
    let isDir = e.isDirectory();
    if (e.isSymbolicLink()) {
      try {
        isDir = fs.statSync(dir).isDirectory();
      } catch {
        isDir = false;
      }
    }
    if (!isDir) continue;
    try {
      const record = readRecord(dir);
      runs.push({ ...record, dir, status: effectiveStatus(record, dir), statusOnDisk: record.status });
    } catch (err) {
      problems.push({ dir, reason: (err as Error).message });
    }
  }
  runs.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  problems.sort((a, b) => (a.dir < b.dir ? -1 : 1));
  return { runs, problems };
}

/** The entries of metrics.jsonl; unparseable lines (a torn last line after a crash) are skipped. */
export function readMetrics(dir: string): MetricEntry[] {
  return parseMetrics(dir, 0, true).entries;
}

/**
 * For live views: the entries on the complete lines of metrics.jsonl from byte `offset` on, and the offset
 * to pass next time (just after the last complete line, so a line being written is read once it is whole).
 */
export function readMetricsFrom(dir: string, offset: number): { entries: MetricEntry[]; offset: number } {
  return parseMetrics(dir, offset, false);
}

function parseMetrics(dir: string, offset: number, withTail: boolean): { entries: MetricEntry[]; offset: number } {
  let buf: Buffer | null;
  try {
    buf = readConfined(dir, METRICS_FILE);
  } catch {
    buf = null; // a link in place of metrics.jsonl is not read
  }
  if (buf === null) return { entries: [], offset };
  if (offset > buf.length) offset = 0; // the file was replaced
  const end = buf.lastIndexOf(10) + 1; // just after the last complete line (0: none)
  const entries: MetricEntry[] = [];
  const take = (line: string): void => {
    if (line.trim() === '') return;
    try {
      const v = JSON.parse(line) as unknown;
      if (v !== null && typeof v === 'object' && !Array.isArray(v) && typeof (v as MetricEntry).type === 'string') entries.push(v as MetricEntry);
    } catch {
      /* a torn or corrupt line */
    }
  };
  if (end > offset) for (const line of buf.subarray(offset, end).toString('utf8').split('\n')) take(line);
  // A last line without its newline is torn unless it parses.
  if (withTail) take(buf.subarray(Math.max(offset, end)).toString('utf8'));
  return { entries, offset: Math.max(offset, end) };
}

/** Deletes a run folder. Refuses folders that do not look like a run folder. */
export function deleteRun(dir: string): void {
  const abs = path.resolve(dir);
  if (abs === path.parse(abs).root || abs === os.homedir()) throw new UserInputError(`refusing to delete ${abs}`);
  if (!fs.existsSync(abs)) return;
  const looksLikeRun = fs.existsSync(path.join(abs, RUN_FILE)) || /^\d{8}-\d{6}-/.test(path.basename(abs));
  if (!looksLikeRun) throw new UserInputError(`${abs} does not look like a run folder (no ${RUN_FILE}); not deleting it`);
  fs.rmSync(abs, { recursive: true, force: true });
}
