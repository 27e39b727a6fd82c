/**
 * `adapter-lab list` and `adapter-lab compare`: the runs of a runs folder, and a side-by-side table of chosen
 * runs, from the terminal (what the extension's Runs view and Compare panel show). Both read run folders only.
 */
import * as path from 'node:path';
import { findWorkspaceRoot } from '../engine/config/load';
import { UserInputError } from '../engine/errors';
import { listRuns, readMetricsFrom, type RunSummary } from '../engine/runs';
import { compareRow } from '../extension/webviews/viewData';
import type { CompareRow } from '../protocol/webview';
import { Reporter, formatNumber, formatTable } from './reporter';
import { resolveTarget } from './targets';

interface ListCtx {
  args: string[];
  values: { 'runs-dir'?: string };
  out: Reporter;
}

/** The runs folder a command means: the argument, --runs-dir, or the workspace's .adapter-lab/runs. */
function runsDirOf(args: string[], values: ListCtx['values']): string {
  if (args[0] !== undefined) return path.resolve(args[0]);
  if (values['runs-dir']) return path.resolve(values['runs-dir']);
  return path.join(findWorkspaceRoot(process.cwd()), '.adapter-lab', 'runs');
}

/** The last step a run logged (metrics.jsonl), 0 before its first. */
function lastStep(run: RunSummary): number {
  let step = 0;
  try {
    for (const e of readMetricsFrom(run.dir, 0).entries) if (typeof e.step === 'number' && e.step > step) step = e.step;
  } catch {
    // an unreadable metrics file: the run is still listed
  }
  return step;
}

export interface ListedRun {
  id: string;
  name: string;
  dir: string;
  status: string;
  method: string;
  task: string;
  /** The best-checkpoint metric and its best dev value; null before the first dev evaluation. */
  metric: string | null;
  value: number | null;
  /** The last step logged. */
  step: number;
  createdAt: string;
}

export async function listCommand({ args, values, out }: ListCtx): Promise<number> {
  const runsDir = runsDirOf(args, values);
  const { runs, problems } = listRuns(runsDir);
  const listed: ListedRun[] = runs.map((r) => ({
    id: r.id,
    name: r.name,
    dir: r.dir,
    status: r.status,
    method: r.method,
    task: r.task,
    metric: r.best?.metric ?? null,
    value: r.best?.value ?? null,
    step: lastStep(r),
    createdAt: r.createdAt,
  }));
  out.emit({ type: 'result', command: 'list', runsDir, runs: listed, problems });
  if (!out.json) {
    if (listed.length === 0) out.info(`no runs in ${runsDir}`);
    else {
      out.info(
        formatTable([
          ['name', 'status', 'method', 'task', 'metric', 'step'],
          ...listed.map((r) => [r.name, r.status, r.method, r.task, r.metric && r.value !== null ? `${r.metric} ${formatNumber(r.value)}` : '-', String(r.step)]),
        ]),
      );
    }
    for (const p of problems) out.emit({ type: 'log', level: 'warn', message: `${p.dir}: ${p.reason}` });
  }
  return 0;
}

export async function compareCommand({ args, values, out }: ListCtx): Promise<number> {
  if (args.length === 0) throw new UserInputError('compare needs one or more run folders (or configs, for their latest finished run)');
  const rows: CompareRow[] = args.map((arg) => {
    const target = resolveTarget(arg, values['runs-dir']);
    if (target.kind !== 'run') throw new UserInputError(`${arg} is an adapter folder, not a run folder: compare reads run.json and metrics.jsonl`);
    const record = target.run.record;
    return compareRow({ ...record, dir: target.run.dir, statusOnDisk: record.status });
  });
  out.emit({ type: 'result', command: 'compare', runs: rows });
  if (!out.json) {
    // Every dev metric any of the runs has, in a stable order.
    const metrics = [...new Set(rows.flatMap((r) => Object.keys(r.devMetrics)))].sort();
    const cell = (v: number | null | undefined) => (v === null || v === undefined ? '-' : formatNumber(v));
    out.info(
      formatTable([
        ['run', 'method', 'task', 'status', 'trainable', '% of base', ...metrics.map((m) => `dev ${m}`)],
        ...rows.map((r) => [
          r.run.name,
          r.run.method,
          r.run.task,
          r.run.status,
          r.trainableParams === null ? '-' : r.trainableParams.toLocaleString('en-US'),
          r.trainablePercent === null ? '-' : `${r.trainablePercent.toFixed(2)}%`,
          ...metrics.map((m) => cell(r.devMetrics[m])),
        ]),
      ]),
    );
  }
  return 0;
}
