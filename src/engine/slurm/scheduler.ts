/**
 * Slurm's own commands, run as child processes: sbatch to submit, scontrol to release, requeue and read a job's
 * state (sacct when scontrol has forgotten the job and the cluster keeps accounting), scancel to cancel. No
 * scheduling of our own: what Slurm says is what the runs show.
 */
import { execFile } from 'node:child_process';
import { UserInputError } from '../errors';

export interface SlurmCommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a Slurm command (env: SLURM_CONF and the rest of this process's environment). Never rejects. */
export function runSlurmCommand(command: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<SlurmCommandResult> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd: opts.cwd, timeout: opts.timeoutMs ?? 60_000, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
      if (e && e.code === 'ENOENT') {
        resolve({ code: 127, stdout: '', stderr: `${command}: not found (is this a Slurm login node? Slurm's client commands must be on PATH)` });
        return;
      }
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr: stderr || (e && !stderr ? e.message : '') });
    });
  });
}

/** Submits a batch script held (`--hold`): nothing runs until release(). Returns the job id. */
export async function submitHeld(scriptFile: string, cwd: string): Promise<string> {
  const r = await runSlurmCommand('sbatch', ['--parsable', '--hold', scriptFile], { cwd });
  const jobId = r.stdout.trim().split(';')[0];
  if (r.code !== 0 || !/^\d+$/.test(jobId)) throw new UserInputError(`sbatch refused the job (${scriptFile}): ${(r.stderr || r.stdout).trim() || `exit code ${r.code}`}`, { file: scriptFile });
  return jobId;
}

export async function release(jobId: string): Promise<void> {
  const r = await runSlurmCommand('scontrol', ['release', jobId]);
  if (r.code !== 0) throw new Error(`scontrol release ${jobId}: ${(r.stderr || r.stdout).trim()}`);
}

/** scancel of a whole job array, or of one of its tasks. */
export async function cancel(jobId: string, arrayTaskId?: number): Promise<void> {
  const target = arrayTaskId === undefined ? jobId : `${jobId}_${arrayTaskId}`;
  const r = await runSlurmCommand('scancel', [target]);
  if (r.code !== 0) throw new UserInputError(`scancel ${target}: ${(r.stderr || r.stdout).trim() || `exit code ${r.code}`}`);
}

/** One array task as Slurm describes it. */
export interface SlurmTaskRecord {
  jobId: string;
  arrayTaskId: number;
  /** Slurm's state, e.g. PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, NODE_FAIL. */
  state: string;
  /** Why it waits (Priority, Resources, BeginTime, ...), or None. */
  reason?: string;
  /** The batch script's exit code, and the signal that killed it (0: none). */
  exitCode?: number;
  signal?: number;
  /** How many times it was requeued. */
  restarts?: number;
}

/** Expands an array task list: "0-2%2", "1,3-4", "[1-2]". */
export function expandTaskIds(spec: string): number[] {
  const ids: number[] = [];
  for (const part of spec.replace(/^\[|\]$/g, '').split('%')[0].split(',')) {
    const m = /^(\d+)(?:-(\d+))?(?::(\d+))?$/.exec(part.trim());
    if (!m) continue;
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    const step = m[3] === undefined ? 1 : Number(m[3]);
    for (let i = from; i <= to; i += step) ids.push(i);
  }
  return ids;
}

function field(line: string, key: string): string | undefined {
  const m = new RegExp(`(?:^|\\s)${key}=(\\S*)`).exec(line);
  return m ? m[1] : undefined;
}

function exitParts(v: string | undefined): { exitCode?: number; signal?: number } {
  const m = v ? /^(\d+):(\d+)$/.exec(v) : null;
  return m ? { exitCode: Number(m[1]), signal: Number(m[2]) } : {};
}

/** Parses `scontrol show job -o <array job>`: one line per task (a pending, not yet split part lists its range). */
export function parseScontrolJobs(text: string): SlurmTaskRecord[] {
  const out: SlurmTaskRecord[] = [];
  for (const line of text.split('\n')) {
    const arrayJobId = field(line, 'ArrayJobId');
    const taskSpec = field(line, 'ArrayTaskId');
    const state = field(line, 'JobState');
    if (!arrayJobId || !taskSpec || !state) continue;
    const restarts = field(line, 'Restarts');
    const reason = field(line, 'Reason');
    for (const arrayTaskId of expandTaskIds(taskSpec)) {
      out.push({ jobId: arrayJobId, arrayTaskId, state, reason: reason === '(null)' ? undefined : reason, ...exitParts(field(line, 'ExitCode')), restarts: restarts ? Number(restarts) : undefined });
    }
  }
  return out;
}

/** Parses `sacct -n -P -X -o JobID,State,ExitCode,Reason`: `123_4|CANCELLED by 0|0:15|None`. */
export function parseSacct(text: string): SlurmTaskRecord[] {
  const out: SlurmTaskRecord[] = [];
  for (const line of text.split('\n')) {
    const [id, state, exit, reason] = line.split('|');
    const m = /^(\d+)_(\[?[\d,\-%:]+\]?)$/.exec(id?.trim() ?? '');
    if (!m || !state) continue;
    for (const arrayTaskId of expandTaskIds(m[2])) out.push({ jobId: m[1], arrayTaskId, state: state.trim().split(/\s+/)[0], reason: reason?.trim() || undefined, ...exitParts(exit?.trim()) });
  }
  return out;
}

/**
 * What Slurm knows of a job array's tasks: `scontrol show job` while the controller remembers the job (MinJobAge
 * after it ends), else sacct where the cluster keeps accounting. An empty list: Slurm has no record of the job.
 * Throws only when the commands themselves cannot run (not a Slurm machine).
 */
export async function queryArray(jobId: string): Promise<SlurmTaskRecord[]> {
  const r = await runSlurmCommand('scontrol', ['show', 'job', '-o', jobId]);
  if (r.code === 127) throw new UserInputError(r.stderr);
  if (r.code === 0) {
    const tasks = parseScontrolJobs(r.stdout).filter((t) => t.jobId === jobId);
    if (tasks.length) return tasks;
  }
  const s = await runSlurmCommand('sacct', ['-n', '-P', '-X', '-j', jobId, '-o', 'JobID,State,ExitCode,Reason']);
  return s.code === 0 ? parseSacct(s.stdout).filter((t) => t.jobId === jobId) : [];
}
