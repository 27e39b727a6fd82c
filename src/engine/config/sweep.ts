/**
 * Sweeps (SPEC section 3): a config's `sweep` maps dotted field paths to lists of values; the sweep is the
 * grid (cartesian product) of those axes, one run per point.
 */
import * as path from 'node:path';
import {
  ConfigError,
  configSchema,
  didYouMean,
  fieldPath,
  originOf,
  resolveInternal,
  type ConfigProblem,
} from './load';
import type { ResolvedConfig } from './types';

export interface SweepPoint {
  /** The resolved config of this point: `sweep` removed, the swept fields set, defaults re-derived. */
  config: ResolvedConfig;
  /** Dotted path -> value, in axis order. */
  assignment: Record<string, unknown>;
  /** Run name, e.g. `spam-houlsby-64__lr=0.0003,bottleneck=8` (the config's name when there is no sweep). */
  name: string;
}

/** The dotted paths a sweep may set (from the schema). */
export function sweepAxisPaths(): string[] {
  const sweep = (configSchema.properties as Record<string, { properties?: Record<string, unknown> }>).sweep;
  return Object.keys(sweep?.properties ?? {});
}

const SHORT: Record<string, string> = {
  learningRate: 'lr',
  headLearningRate: 'headLr',
  batchSize: 'bs',
  weightDecay: 'wd',
};

function shortNames(axes: string[]): string[] {
  const short = axes.map((a) => {
    const last = a.split('.').pop()!;
    return SHORT[last] ?? last;
  });
  return short.map((s, i) => (short.indexOf(s) !== short.lastIndexOf(s) ? axes[i]! : s));
}

function formatValue(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

function setPath(obj: Record<string, unknown>, dotted: string, value: unknown): void {
  const segs = dotted.split('.');
  let cur = obj;
  for (const s of segs.slice(0, -1)) {
    const next = cur[s];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) cur[s] = {};
    cur = cur[s] as Record<string, unknown>;
  }
  cur[segs[segs.length - 1]!] = structuredClone(value);
}

/**
 * Expands a config's sweep into its grid, first axis outermost, values in the order given. Without a sweep:
 * one point, the config itself (minus `sweep`). Each point is validated and resolved again, so defaults that
 * depend on a swept field (the learning rate on `method.type`, the metric on `task.type`) follow it; a value
 * of the wrong type, an unknown axis path or an empty axis is a ConfigError naming the axis.
 *
 * Re-resolving uses the raw config when `cfg` is the object loadConfig/resolveConfig returned; for a config
 * that went through JSON (e.g. read back from run.json) the resolved values stand in for the raw ones.
 * A swept `method.bottleneck` replaces a fixed `method.reductionFactor` and the other way round.
 */
export function expandSweep(cfg: ResolvedConfig): SweepPoint[] {
  const origin = originOf(cfg);
  const file = origin?.displayFile ?? cfg.configFile ?? undefined;
  const locate = origin?.locate;
  const sweep = cfg.sweep ?? {};
  const axes = Object.keys(sweep);

  const axisProblem = (axis: string, message: string): ConfigProblem => {
    const p: ConfigProblem = { file, field: fieldPath(['sweep', axis]), message };
    const line = locate?.(['sweep', axis]);
    if (line !== undefined) p.line = line;
    return p;
  };
  const valid = sweepAxisPaths();
  const problems: ConfigProblem[] = [];
  for (const axis of axes) {
    if (!valid.includes(axis)) {
      const m = didYouMean(axis, valid);
      problems.push(axisProblem(axis, `unknown sweep axis "${axis}" (no such field${m ? `; did you mean "${m}"?` : ''})`));
    } else if (!Array.isArray(sweep[axis]) || sweep[axis]!.length === 0) {
      problems.push(axisProblem(axis, 'must be a non-empty list of values'));
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  // The grid, first axis outermost.
  let grid: unknown[][] = [[]];
  for (const axis of axes) {
    const next: unknown[][] = [];
    for (const prefix of grid) for (const v of sweep[axis]!) next.push([...prefix, v]);
    grid = next;
  }

  const short = shortNames(axes);
  const configFile = origin?.configFile ?? cfg.configFile;
  const baseDir = origin?.baseDir ?? (cfg.configFile ? path.dirname(cfg.configFile) : process.cwd());

  return grid.map((values) => {
    const assignment: Record<string, unknown> = {};
    axes.forEach((a, i) => (assignment[a] = values[i]));

    let raw: Record<string, unknown>;
    if (origin && origin.raw !== null && typeof origin.raw === 'object') {
      raw = structuredClone(origin.raw) as Record<string, unknown>;
    } else {
      raw = structuredClone(cfg) as unknown as Record<string, unknown>;
      delete raw.configFile;
    }
    delete raw.sweep;
    const method = raw.method as Record<string, unknown> | undefined;
    if (method && axes.includes('method.bottleneck') && !axes.includes('method.reductionFactor')) delete method.reductionFactor;
    if (method && axes.includes('method.reductionFactor') && !axes.includes('method.bottleneck')) delete method.bottleneck;
    axes.forEach((a, i) => setPath(raw, a, values[i]));

    const name = axes.length === 0 ? cfg.name : `${cfg.name}__${axes.map((_, i) => `${short[i]}=${formatValue(values[i])}`).join(',')}`;
    let config: ResolvedConfig;
    try {
      config = resolveInternal(raw, configFile, baseDir, file, locate);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      throw new ConfigError(
        err.problems.map((p) => {
          const axis = axes.find((a) => p.field === a || p.field?.startsWith(a + '.') || p.field?.startsWith(a + '['));
          if (axis === undefined) return { ...p, message: `${p.message} (in sweep point ${name})` };
          const line = locate?.(['sweep', axis]);
          return { ...p, line, message: `${p.message} (from sweep axis "${axis}" = ${JSON.stringify(assignment[axis])})` };
        }),
      );
    }
    delete config.sweep;
    return { config, assignment, name };
  });
}
