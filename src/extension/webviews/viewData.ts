/**
 * What the webviews show, read from run folders: curves from metrics.jsonl, the ablation matrix from
 * ablation.json, the comparison table from run.json, per-class metrics from eval-<split>.json. No vscode import; the webview tests load their fixtures
 * through these same functions.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ADAPTER_DIR, evalResultName, openRun, readMetricsFrom, RESULT, resultFileName, type MetricEntry, type RunRecord, type RunSummary } from '../../engine/runs';
import { isTrainedFolder } from '../runs/treeModel';
import { taskKind } from '../runs/taskKinds';
import { predictionGridName, predictionSpriteName, type PredictionGridFile, type PredictionGridItem } from '../../engine/analysis/predictionGrid';
import type {
  AblationData,
  AppendMessage,
  ClassReportData,
  EvalSplit,
  SplitClassReport,
  CompareData,
  CompareRow,
  CurvePoint,
  DropData,
  ExportRequest,
  FusionAttentionData,
  ImagePredictions,
  LossCurvesData,
  RunCurves,
  RunRef,
} from '../../protocol/webview';

export function runRef(record: Pick<RunRecord, 'name' | 'task' | 'method' | 'status'>, runDir: string): RunRef {
  return { runDir, name: record.name, task: record.task, method: record.method, status: record.status };
}

/** Splits metric entries into train-loss and dev-metric points. */
export function curvePoints(entries: MetricEntry[], metric: string): { train: CurvePoint[]; dev: CurvePoint[] } {
  const train: CurvePoint[] = [];
  const dev: CurvePoint[] = [];
  for (const e of entries) {
    const step = Number(e.step);
    const epoch = Number(e.epoch ?? 0);
    if (!Number.isFinite(step)) continue;
    if (e.type === 'train') {
      const loss = typeof e.loss === 'number' ? e.loss : NaN; // a diverged step logs "NaN" as a string
      if (Number.isFinite(loss)) train.push({ step, epoch, value: loss });
    } else if (e.type === 'eval' && (e.split ?? 'dev') === 'dev') {
      const v = e[metric];
      if (typeof v === 'number' && Number.isFinite(v)) dev.push({ step, epoch, value: v });
    }
  }
  return { train, dev };
}

/** Follows the metrics.jsonl of runs: full curves at first, then only the lines added since. */
export class MetricsFollower {
  private readonly offsets = new Map<string, number>();

  /** The run's curves from the start of its metrics file; later calls to poll() continue from here. */
  load(runDir: string): RunCurves | null {
    let record: RunRecord;
    try {
      record = openRun(runDir).record;
    } catch {
      return null;
    }
    const { entries, offset } = readMetricsFrom(runDir, 0);
    this.offsets.set(runDir, offset);
    const metric = record.config.training.metric;
    return { run: runRef(record, runDir), metric, ...curvePoints(entries, metric) };
  }

  /** The points added to a followed run since the last call, with its current status; null if none. */
  poll(runDir: string): AppendMessage | null {
    const from = this.offsets.get(runDir);
    if (from === undefined) return null;
    let record: RunRecord;
    try {
      record = openRun(runDir).record;
    } catch {
      return null;
    }
    const { entries, offset } = readMetricsFrom(runDir, from);
    this.offsets.set(runDir, offset);
    const points = curvePoints(entries, record.config.training.metric);
    return { type: 'append', runDir, ...points, status: record.status };
  }

  forget(runDir: string): void {
    this.offsets.delete(runDir);
  }

  get followed(): string[] {
    return [...this.offsets.keys()];
  }
}

export function loadLossCurves(runDirs: string[]): LossCurvesData {
  const follower = new MetricsFollower();
  return { runs: runDirs.map((d) => follower.load(d)).filter((c): c is RunCurves => c !== null) };
}

/** The ablation of a run, or why there is none. */
export function loadAblation(runDir: string): { data: AblationData | null; missing?: string } {
  let record: RunRecord;
  try {
    record = openRun(runDir).record;
  } catch (err) {
    return { data: null, missing: (err as Error).message };
  }
  const file = path.join(runDir, resultFileName(RESULT.ablation));
  let raw: Partial<AblationData>;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<AblationData>;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return {
      data: null,
      missing: code === 'ENOENT' ? `${record.name} has no layer ablation yet: run "Adapter Lab: Run Layer Ablation" on it.` : `${file} is unreadable: ${(err as Error).message}`,
    };
  }
  const matrix = raw.matrix;
  if (!Array.isArray(matrix) || typeof raw.baseline !== 'number' || !matrix.every((row) => Array.isArray(row) && row.length === matrix.length)) {
    return { data: null, missing: `${file} does not hold an L x L ablation matrix` };
  }
  return {
    data: {
      run: runRef(record, runDir),
      metric: raw.metric ?? record.config.training.metric,
      baseline: raw.baseline,
      matrix: matrix.map((row) => row.map((v) => (typeof v === 'number' ? v : null))),
      adapterLayers: raw.adapterLayers ?? [],
      numLayers: raw.numLayers ?? matrix.length,
      split: raw.split ?? 'dev',
      examples: raw.examples ?? 0,
    },
  };
}

/** Every numeric metric of the dev evaluation of the best checkpoint (else the last dev evaluation). */
export function bestDevMetrics(run: Pick<RunSummary, 'dir' | 'best'>): Record<string, number> {
  let entries: MetricEntry[];
  try {
    entries = readMetricsFrom(run.dir, 0).entries;
  } catch {
    return {};
  }
  const evals = entries.filter((e) => e.type === 'eval' && (e.split ?? 'dev') === 'dev');
  const chosen = (run.best ? evals.filter((e) => Number(e.step) === run.best!.step).pop() : undefined) ?? evals[evals.length - 1];
  const out: Record<string, number> = {};
  if (chosen) for (const [k, v] of Object.entries(chosen)) if (typeof v === 'number' && Number.isFinite(v) && !['step', 'epoch', 'examples', 'elapsedMs', 'time'].includes(k)) out[k] = v;
  if (run.best && out[run.best.metric] === undefined) out[run.best.metric] = run.best.value;
  return out;
}

export function compareRow(run: RunSummary): CompareRow {
  const seed = run.config.training?.seed;
  return {
    run: runRef(run, run.dir),
    configName: run.sweep?.group ?? run.config.name,
    seed: typeof seed === 'number' ? seed : null,
    sweep: run.sweep ? { ...run.sweep } : null,
    devMetrics: bestDevMetrics(run),
    trainablePercent: run.params?.trainablePercent ?? null,
    trainableParams: run.params?.trainable ?? null,
    baseParams: run.params?.base ?? null,
    metric: run.best?.metric ?? run.config.training.metric ?? null,
    best: run.best?.value ?? null,
    durationMs: run.durationMs ?? null,
    createdAt: run.createdAt,
  };
}

/** The comparison of the listed runs (all, or those in `runDirs`). */
export function loadCompare(runs: RunSummary[], runDirs?: string[]): CompareData {
  const wanted = runDirs && runDirs.length ? new Set(runDirs) : null;
  return { rows: runs.filter((r) => !wanted || wanted.has(r.dir)).map(compareRow) };
}

function readRunJson<T>(runDir: string, file: string, missingHint: (name: string) => string): { record: RunRecord; raw: T } | { missing: string } {
  let record: RunRecord;
  try {
    record = openRun(runDir).record;
  } catch (err) {
    return { missing: (err as Error).message };
  }
  const abs = path.join(runDir, file);
  try {
    return { record, raw: JSON.parse(fs.readFileSync(abs, 'utf8')) as T };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { missing: code === 'ENOENT' ? missingHint(record.name) : `${abs} is unreadable: ${(err as Error).message}` };
  }
}

const numOrNull = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** The fusion attention of an AdapterFusion run (fusion-attention.json), or why there is none. */
export function loadFusionAttention(runDir: string): { data: FusionAttentionData | null; missing?: string } {
  const r = readRunJson<Partial<FusionAttentionData>>(runDir, resultFileName(RESULT.fusionAttention), (name) => `${name} has no fusion attention: it is written by the training of an AdapterFusion run ("method": {"type": "fusion"}).`);
  if ('missing' in r) return { data: null, missing: r.missing };
  const { record, raw } = r;
  const file = path.join(runDir, resultFileName(RESULT.fusionAttention));
  const layers = raw.layers;
  const adapters = raw.adapters;
  const classes = raw.classes;
  const shaped = (m: unknown): m is unknown[][] =>
    Array.isArray(m) && m.length === layers!.length && m.every((row) => Array.isArray(row) && row.length === adapters!.length);
  if (!Array.isArray(layers) || !Array.isArray(adapters) || !Array.isArray(classes) || !Array.isArray(raw.matrix) || raw.matrix.length !== classes.length || !raw.matrix.every(shaped)) {
    return { data: null, missing: `${file} does not hold a classes x layers x adapters attention matrix` };
  }
  const clean = (m: unknown[][]) => m.map((row) => row.map(numOrNull));
  return {
    data: {
      run: runRef(record, runDir),
      split: raw.split ?? 'dev',
      layers: layers.map(Number),
      adapters: adapters.map(String),
      classes: classes.map(String),
      matrix: raw.matrix.map((m) => clean(m as unknown[][])),
      overall: shaped(raw.overall) ? clean(raw.overall) : clean(raw.matrix[0] as unknown[][]),
      examples: Array.isArray(raw.examples) ? raw.examples.map(Number) : classes.map(() => 0),
      tokens: Array.isArray(raw.tokens) ? raw.tokens.map(Number) : classes.map(() => 0),
    },
  };
}

/** The AdapterDrop trade-off of a run (drop.json), or why there is none. */
export function loadDrop(runDir: string): { data: DropData | null; missing?: string } {
  type Raw = Partial<Omit<DropData, 'points'>> & { points?: unknown };
  const r = readRunJson<Raw>(runDir, resultFileName(RESULT.drop), (name) => `${name} has no AdapterDrop measurement yet: run "Adapter Lab: Run AdapterDrop" on it.`);
  if ('missing' in r) return { data: null, missing: r.missing };
  const { record, raw } = r;
  const points = Array.isArray(raw.points)
    ? (raw.points as Record<string, unknown>[]).filter((p) => p && typeof p.n === 'number' && typeof p.value === 'number').map((p) => ({ n: p.n as number, value: p.value as number, tokensPerSecond: numOrNull(p.tokensPerSecond) ?? 0 }))
    : [];
  if (!points.length || typeof raw.baseline !== 'number') return { data: null, missing: `${path.join(runDir, resultFileName(RESULT.drop))} does not hold AdapterDrop points` };
  points.sort((a, b) => a.n - b.n);
  return {
    data: {
      run: runRef(record, runDir),
      metric: raw.metric ?? record.config.training.metric,
      baseline: raw.baseline,
      points,
      numLayers: raw.numLayers ?? points.length - 1,
      adapterLayers: raw.adapterLayers ?? [],
      split: raw.split ?? 'dev',
      examples: raw.examples ?? 0,
      backend: raw.backend ?? null,
      time: raw.time ?? null,
    },
  };
}

const EVAL_SPLITS: readonly EvalSplit[] = ['dev', 'test'];

/**
 * The size and time of each of a run's eval files and prediction grids ('-' where there is none): what changes
 * when one is written.
 */
export function evalFilesSignature(runDir: string): string {
  return EVAL_SPLITS.flatMap((split) => [evalResultName(split), predictionGridName(split)]).map((name) => {
    try {
      const st = fs.statSync(path.join(runDir, resultFileName(name)));
      return `${st.size}:${st.mtimeMs}`;
    } catch {
      return '-';
    }
  }).join('|');
}

/**
 * One eval-<split>.json's class report, checked for shape: labels, one score row per label and a square
 * confusion matrix of counts over them. Null when the file has none (a regression run; the evaluation the
 * training writes at its end, which has no `classes`); a string when it is malformed, saying how.
 */
export function readSplitClassReport(file: string, split: EvalSplit): SplitClassReport | null | string {
  let raw: { examples?: unknown; metrics?: unknown; time?: unknown; classes?: unknown };
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return `${file} is unreadable: ${(err as Error).message}`;
  }
  if (raw.classes === undefined || raw.classes === null) return null;
  const c = raw.classes as { labels?: unknown; perClass?: unknown; confusion?: unknown };
  const labels = c.labels;
  const k = Array.isArray(labels) ? labels.length : -1;
  const isCount = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0;
  if (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string')) return `${file}: classes.labels is not a list of class names`;
  if (!Array.isArray(c.confusion) || c.confusion.length !== k || !c.confusion.every((row) => Array.isArray(row) && row.length === k && row.every(isCount))) {
    return `${file}: classes.confusion is not a ${k} x ${k} matrix of counts`;
  }
  if (!Array.isArray(c.perClass) || c.perClass.length !== k) return `${file}: classes.perClass does not hold one row per class (${k})`;
  const perClass = (c.perClass as Record<string, unknown>[]).map((row, i) => ({
    label: labels[i] as string,
    precision: numOrNull(row?.precision) ?? 0,
    recall: numOrNull(row?.recall) ?? 0,
    f1: numOrNull(row?.f1) ?? 0,
    support: numOrNull(row?.support) ?? 0,
    predicted: numOrNull(row?.predicted) ?? 0,
  }));
  const metrics: Record<string, number> = {};
  for (const [name, v] of Object.entries((raw.metrics ?? {}) as Record<string, unknown>)) if (numOrNull(v) !== null) metrics[name] = v as number;
  const confusion = c.confusion as number[][];
  return {
    split,
    examples: numOrNull(raw.examples) ?? confusion.reduce((n, row) => n + row.reduce((a, b) => a + b, 0), 0),
    metrics,
    time: typeof raw.time === 'string' ? raw.time : null,
    labels: labels as string[],
    perClass,
    confusion,
  };
}

/**
 * A split's prediction grid (predictions-<split>.json and its sprite, written by the evaluation of an image run),
 * checked against the class report's labels, with the sprite as a data: URL. Null when there is none (text runs,
 * runs evaluated before the grid existed); a string saying what is wrong when a part is malformed or missing.
 */
export function readImagePredictions(runDir: string, split: EvalSplit, labels: string[]): ImagePredictions | null | string {
  const file = path.join(runDir, resultFileName(predictionGridName(split)));
  let raw: Partial<Record<keyof PredictionGridFile, unknown>>;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return `${file} is unreadable: ${(err as Error).message}`;
  }
  const k = labels.length;
  const isIndex = (v: unknown, below: number) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < below;
  const isSize = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v > 0;
  if (!Array.isArray(raw.labels) || raw.labels.length !== k || raw.labels.some((l, i) => l !== labels[i])) return `${file}: labels are not the evaluation's (${labels.join(', ')})`;
  const tile = raw.tile as Partial<PredictionGridFile['tile']> | undefined;
  if (!tile || !isSize(tile.width) || !isSize(tile.height) || !isSize(tile.columns) || (tile.channels !== 1 && tile.channels !== 3)) return `${file}: tile is not {width, height, channels: 1 or 3, columns}`;
  const examples = isSize(raw.examples) ? (raw.examples as number) : 0;
  if (!examples) return `${file}: examples is not a positive count`;
  const items = raw.items;
  if (!Array.isArray(items) || !items.length) return `${file}: items is not a list of examples`;
  const bad = items.findIndex((it: Record<string, unknown>) => !it || !isIndex(it.index, examples) || !isIndex(it.true, k) || !isIndex(it.predicted, k) || typeof it.confidence !== 'number' || typeof it.source !== 'string');
  if (bad >= 0) return `${file}: items[${bad}] is not {index, source, true, predicted, confidence} within ${examples} examples and ${k} classes`;
  const spriteName = predictionSpriteName(split);
  if (raw.sprite !== spriteName) return `${file}: sprite is not "${spriteName}"`;
  let sprite: Buffer;
  try {
    sprite = fs.readFileSync(path.join(runDir, spriteName));
  } catch (err) {
    return `${path.join(runDir, spriteName)} is unreadable: ${(err as Error).message}`;
  }
  // The PNG's header (IHDR: width and height at bytes 16 and 20) must hold every tile.
  const t = tile as PredictionGridFile['tile'];
  const needW = Math.min(t.columns, items.length) * t.width;
  const needH = Math.ceil(items.length / t.columns) * t.height;
  if (sprite.length < 24 || sprite.toString('latin1', 12, 16) !== 'IHDR' || sprite.readUInt32BE(16) < needW || sprite.readUInt32BE(20) < needH) {
    return `${path.join(runDir, spriteName)} is not a PNG of ${items.length} tiles of ${t.width} x ${t.height} (${needW} x ${needH} pixels)`;
  }
  return {
    labels,
    examples,
    misclassified: isIndex(raw.misclassified, examples + 1) ? (raw.misclassified as number) : items.filter((it: PredictionGridItem) => it.true !== it.predicted).length,
    selection: 'misclassified first',
    tile: t,
    items: (items as PredictionGridItem[]).map((it) => ({ index: it.index, source: it.source, true: it.true, predicted: it.predicted, confidence: it.confidence })),
    spriteUrl: `data:image/png;base64,${sprite.toString('base64')}`,
    time: typeof raw.time === 'string' ? raw.time : null,
  };
}

/**
 * The per-class view of a run: the class report of each split `adapter-lab eval` evaluated (dev first), which
 * splits are still to evaluate, or why there is nothing to show (a regression run, an unreadable folder or file).
 */
export function loadClassReport(runDir: string): { data: ClassReportData | null; missing?: string } {
  let record: RunRecord;
  try {
    record = openRun(runDir).record;
  } catch (err) {
    return { data: null, missing: (err as Error).message };
  }
  const taskType = record.config.task?.type ?? 'classification';
  const kind = taskKind(taskType);
  if (!kind.classification) {
    return { data: null, missing: `${record.name} is a ${taskType} run: per-class metrics and a confusion matrix are for classification runs (its evaluation has ${record.config.training.metric} and the other ${taskType} metrics).` };
  }
  const task = record.config.task as { dev?: unknown; test?: unknown; split?: { test?: unknown } | null };
  // The splits the task has: dev always (a file or a share of train), test when it names one.
  const hasSplit = (s: EvalSplit) => s === 'dev' || !!task.test || !!task.split?.test;
  const splits: SplitClassReport[] = [];
  const unevaluated: EvalSplit[] = [];
  for (const split of EVAL_SPLITS) {
    const report = readSplitClassReport(path.join(runDir, resultFileName(evalResultName(split))), split);
    if (typeof report === 'string') return { data: null, missing: report };
    if (report && kind.inputs === 'images') {
      const images = readImagePredictions(runDir, split, report.labels);
      if (typeof images === 'string') report.imagesProblem = images;
      else if (images) report.images = images;
    }
    if (report) splits.push(report);
    else if (hasSplit(split)) unevaluated.push(split);
  }
  return {
    data: {
      run: runRef(record, runDir),
      taskType,
      inputs: kind.inputs,
      splits,
      unevaluated,
      canEvaluate: record.status === 'done' && isTrainedFolder(path.join(runDir, ADAPTER_DIR)),
    },
  };
}

/** The bytes of an export a webview asked for (PNG from its data: URL, CSV as UTF-8 text). */
export function exportBytes(req: ExportRequest): Buffer {
  if (req.format === 'png') {
    const m = /^data:image\/png;base64,(.*)$/s.exec(req.data);
    if (!m) throw new Error('the PNG export is not a base64 data: URL');
    return Buffer.from(m[1], 'base64');
  }
  return Buffer.from(req.data, 'utf8');
}
