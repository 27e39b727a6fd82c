import * as crypto from 'node:crypto';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { expandSweep, SweepPoint } from '../engine/config/sweep';
import { ResolvedConfig } from '../engine/config/types';
import { clearPointCancelRequest, createRun, isPointCancelRequested, RunHandle, RunRecord } from '../engine/runs';
import { isLockHeld } from '../engine/runs/lock';
import { parseEngineLine, SweepPointMessage } from '../protocol/messages';
import { Reporter, formatNumber } from './reporter';

/**
 * `adapter-lab sweep <config> --jobs N`: the grid of a config's sweep axes (SPEC section 3), one run per point,
 * N of them training at a time, each in a child process of this CLI (`train --resume <run folder> --json`, which
 * starts a run that was never started). Every run folder is created up front as `queued` with
 * `sweep: {group, assignment, id, index, size}` in run.json, so a view of the runs folder shows the whole sweep
 * at once and can group it. With --json, the children's JSON lines are passed on as they come (each carries its
 * `runDir`), with a `sweepPoint` message whenever a point changes state and a `result` with every point at the
 * end. Exit code 0 when no point failed, 1 when one failed or the sweep was cancelled (SIGINT/SIGTERM: the
 * running points save a checkpoint and end `cancelled`, the points not started end `cancelled` too). One point
 * can be cancelled on its own with a `cancel-requested` file in its run folder (CANCEL_REQUEST_FILE; the
 * extension's Cancel Run on a point writes it): a point not started is skipped, a running one is stopped with
 * SIGTERM (it saves a checkpoint), and the other points go on.
 */

/** Command-line settings that override a config's (and every sweep point's). */
export interface RunOverrides {
  maxSteps?: number;
  runsDir?: string;
  /** A model folder (relative to the working directory) or `builtin:<name>`. */
  model?: string;
}

export function withOverrides(config: ResolvedConfig, o: RunOverrides): ResolvedConfig {
  const c = { ...config, training: { ...config.training } };
  if (o.maxSteps) c.training.maxSteps = o.maxSteps;
  if (o.runsDir) c.runsDir = path.resolve(o.runsDir);
  if (o.model) c.model = o.model.startsWith('builtin:') ? o.model : path.resolve(o.model);
  return c;
}

/** The grid of a config's sweep, each point with the overrides applied (expandSweep re-resolves from the file). */
export function sweepPoints(config: ResolvedConfig, o: RunOverrides): SweepPoint[] {
  return expandSweep(config).map((p) => ({ ...p, config: withOverrides(p.config, o) }));
}

export function newSweepId(): string {
  const now = new Date();
  const p = (n: number) => String(n).padStart(2, '0');
  return `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}-${crypto.randomBytes(2).toString('hex')}`;
}

/** Creates the run folders of a sweep's points, all `queued`, in grid order. */
export function createSweepRuns(group: string, points: SweepPoint[], id = newSweepId()): { id: string; runs: RunHandle[] } {
  const runs = points.map((p, index) => createRun(p.config.runsDir, p.config, { name: p.name, sweep: { group, assignment: p.assignment, id, index, size: points.length } }));
  return { id, runs };
}

export interface SweepRunOptions {
  jobs: number;
  /** How to start this CLI: an executable and the arguments before the command (process.execPath, [the CLI script]). */
  cli: { command: string; args: string[] };
  /** Arguments every child gets after its command's own (e.g. --backend). */
  childArgs: string[];
  out: Reporter;
}

const STDERR_TAIL = 20;
/** How often a running point's folder is checked for a cancel request. */
const CANCEL_POLL_MS = 250;

export async function runSweep(group: string, points: SweepPoint[], opts: SweepRunOptions): Promise<number> {
  const { out } = opts;
  const { id, runs } = createSweepRuns(group, points);
  const total = runs.length;
  const statuses: SweepPointMessage['status'][] = runs.map(() => 'queued');
  const emitPoint = (i: number, extra: Partial<SweepPointMessage> = {}) =>
    out.emit({ type: 'sweepPoint', sweepId: id, group, index: i, total, name: points[i].name, runDir: runs[i].dir, assignment: points[i].assignment, status: statuses[i], ...extra });
  runs.forEach((_, i) => emitPoint(i));

  const children = new Set<ReturnType<typeof spawn>>();
  let cancelled = false;
  const onSignal = () => {
    cancelled = true;
    for (const c of children) c.kill('SIGTERM');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const trainPoint = (i: number) =>
    new Promise<void>((resolve) => {
      const run = runs[i];
      const child = spawn(opts.cli.command, [...opts.cli.args, 'train', '--resume', run.dir, '--json', ...opts.childArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.add(child);
      statuses[i] = 'running';
      emitPoint(i);
      let stoppedOnRequest = false;
      const poll = setInterval(() => {
        if (!stoppedOnRequest && isPointCancelRequested(run.dir)) {
          stoppedOnRequest = true;
          child.kill('SIGTERM');
        }
      }, CANCEL_POLL_MS);
      let rest = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        const lines = (rest + chunk).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) {
          const msg = parseEngineLine(line);
          if (!msg) continue;
          if (out.json) out.emit(msg);
          else if (msg.type === 'error') out.info(`[${i + 1}/${total}] ${points[i].name}: error: ${msg.message}`);
        }
      });
      const stderr: string[] = [];
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
        stderr.push(...chunk.split('\n').filter((l) => l.trim()));
        stderr.splice(0, Math.max(0, stderr.length - STDERR_TAIL));
      });
      child.on('error', (err) => stderr.push(`cannot start the training process: ${err.message}`));
      child.on('close', (code, signal) => {
        children.delete(child);
        clearInterval(poll);
        clearPointCancelRequest(run.dir);
        let record: RunRecord | undefined;
        try {
          record = run.reload();
          if (record.status === 'running' && isLockHeld(run.dir) === true) {
            // Another live process trains this point (the child was refused its lock): not ours to end.
          } else if ((record.status === 'running' || record.status === 'queued') && stoppedOnRequest) {
            // Stopped on request before it could end its run itself (SIGTERM before its handler was set).
            record = run.update({ status: 'cancelled' });
          } else if (record.status === 'running' || record.status === 'queued') {
            // The child died without ending its run (killed, crashed): say so in run.json.
            record = run.update({
              status: 'failed',
              error: { message: `the training process ended without finishing the run (${signal ?? `exit code ${code}`})`, ...(code !== null ? { exitCode: code } : {}), stderrTail: stderr.join('\n') },
            });
          }
        } catch {
          // run.json unreadable: reported as failed below
        }
        const status = record?.status;
        statuses[i] = status === 'done' || status === 'cancelled' ? status : 'failed';
        emitPoint(i, { exitCode: code ?? undefined, ...(record?.best ? { best: record.best } : {}) });
        resolve();
      });
    });

  try {
    let next = 0;
    const worker = async () => {
      while (!cancelled && next < total) {
        const i = next++;
        if (isPointCancelRequested(runs[i].dir)) {
          // Cancelled on its own before it started: skipped, the sweep goes on.
          clearPointCancelRequest(runs[i].dir);
          runs[i].update({ status: 'cancelled' });
          statuses[i] = 'cancelled';
          emitPoint(i);
          continue;
        }
        await trainPoint(i);
      }
    };
    await Promise.all(Array.from({ length: Math.min(opts.jobs, total) }, worker));
    for (let i = 0; i < total; i++) {
      if (statuses[i] !== 'queued') continue;
      runs[i].update({ status: 'cancelled' });
      statuses[i] = 'cancelled';
      emitPoint(i);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  const failed = statuses.filter((s) => s === 'failed').length;
  const done = statuses.filter((s) => s === 'done').length;
  const summary = runs.map((r, i) => ({ runDir: r.dir, name: points[i].name, assignment: points[i].assignment, status: statuses[i], best: r.reload().best ?? null }));
  out.emit({ type: 'result', command: 'sweep', group, sweepId: id, points: summary });
  if (!out.json) {
    for (const p of summary) out.info(`${p.status.padEnd(9)} ${p.best ? `${p.best.metric} ${formatNumber(p.best.value)}` : '-'.padEnd(15)}  ${p.name}`);
    const notDone = total - done - failed;
    out.info(`${done} of ${total} points done${failed ? `, ${failed} failed` : ''}${notDone ? `, ${notDone} cancelled` : ''}${cancelled ? ' (sweep cancelled)' : ''}; runs in ${path.dirname(runs[0].dir)}`);
  }
  const exitCode = failed > 0 || cancelled ? 1 : 0;
  out.emit({ type: 'done', command: 'sweep', status: cancelled ? 'cancelled' : failed ? 'failed' : 'done', exitCode });
  return exitCode;
}
