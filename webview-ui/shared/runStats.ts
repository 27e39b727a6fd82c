/**
 * The Compare view's statistics, with no DOM (test/extension/runStats.test.ts tests them directly): the best run
 * per task by a chosen dev metric (Houlsby et al. 2019 pick the best hyper-parameters on dev), and the mean and
 * spread over seeds of runs that differ only by seed.
 */
import type { CompareRow } from '../../src/protocol/webview';

/** Metrics where lower is better; every other metric (accuracy, f1, mcc, pearson, spearman) is higher-better. */
export function lowerIsBetter(metric: string): boolean {
  return metric === 'loss' || metric === 'mse' || metric === 'mae' || metric === 'rmse';
}

/** The dev metrics the rows have, the most common first (ties by name). */
export function availableMetrics(rows: CompareRow[]): string[] {
  const count = new Map<string, number>();
  for (const r of rows) for (const m of Object.keys(r.devMetrics)) count.set(m, (count.get(m) ?? 0) + 1);
  return [...count.keys()].sort((a, b) => count.get(b)! - count.get(a)! || a.localeCompare(b));
}

export function metricOf(r: CompareRow, metric: string): number | null {
  const v = r.devMetrics[metric];
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  return r.metric === metric && r.best !== null ? r.best : null;
}

/** Per task, the run with the best value of `metric` (runs without it are skipped); task -> run folder. */
export function bestPerTask(rows: CompareRow[], metric: string): Map<string, CompareRow> {
  const lower = lowerIsBetter(metric);
  const best = new Map<string, CompareRow>();
  for (const r of rows) {
    const v = metricOf(r, metric);
    if (v === null) continue;
    const cur = best.get(r.run.task);
    const cv = cur ? metricOf(cur, metric)! : null;
    if (cv === null || (lower ? v < cv : v > cv)) best.set(r.run.task, r);
  }
  return best;
}

const SEED_KEYS = new Set(['training.seed', 'seed']);

/**
 * What runs share when they differ only by seed: for a sweep point, its group and its assignment without the
 * seed axis; for another run, its config's name. Same task in both cases.
 */
export function seedGroupKey(r: CompareRow): string {
  if (r.sweep) {
    const rest = Object.entries(r.sweep.assignment)
      .filter(([k]) => !SEED_KEYS.has(k))
      .sort(([a], [b]) => a.localeCompare(b));
    return `${r.run.task}\u0000sweep:${r.sweep.group}\u0000${JSON.stringify(rest)}`;
  }
  return `${r.run.task}\u0000config:${r.configName}`;
}

/** The label of a seed group: the config's name, and the sweep assignment without the seed. */
export function seedGroupLabel(r: CompareRow): string {
  if (!r.sweep) return r.configName;
  const rest = Object.entries(r.sweep.assignment).filter(([k]) => !SEED_KEYS.has(k));
  return rest.length ? `${r.sweep.group} (${rest.map(([k, v]) => `${k.split('.').pop()}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(', ')})` : r.sweep.group;
}

export interface SeedGroup {
  key: string;
  label: string;
  task: string;
  metric: string;
  /** The runs with a value of the metric, and their seeds. */
  runDirs: string[];
  seeds: (number | null)[];
  values: number[];
  n: number;
  mean: number;
  /** Sample standard deviation (n - 1); 0 for one run. */
  std: number;
  min: number;
  max: number;
}

/** Runs that differ only by seed, with the mean and spread of `metric`; groups of at least `minRuns` runs. */
export function seedGroups(rows: CompareRow[], metric: string, minRuns = 2): SeedGroup[] {
  const groups = new Map<string, CompareRow[]>();
  for (const r of rows) {
    if (metricOf(r, metric) === null) continue;
    const k = seedGroupKey(r);
    const list = groups.get(k) ?? [];
    list.push(r);
    groups.set(k, list);
  }
  const out: SeedGroup[] = [];
  for (const [key, list] of groups) {
    if (list.length < minRuns) continue;
    const values = list.map((r) => metricOf(r, metric)!);
    const n = values.length;
    const mean = values.reduce((a, b) => a + b, 0) / n;
    const std = n > 1 ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)) : 0;
    out.push({
      key,
      label: seedGroupLabel(list[0]),
      task: list[0].run.task,
      metric,
      runDirs: list.map((r) => r.run.runDir),
      seeds: list.map((r) => r.seed),
      values,
      n,
      mean,
      std,
      min: Math.min(...values),
      max: Math.max(...values),
    });
  }
  const lower = lowerIsBetter(metric);
  return out.sort((a, b) => a.task.localeCompare(b.task) || (lower ? a.mean - b.mean : b.mean - a.mean) || a.label.localeCompare(b.label));
}
