/**
 * The one message contract between the extension and its webviews (loss curves, ablation heatmap, compare,
 * fusion attention, AdapterDrop, per-class metrics).
 *
 * Handshake: a webview posts `ready` once its script runs; only then does the extension send `init` with the
 * view's data (so nothing is posted into a page that cannot receive it yet). Loss curves then receive
 * `append` while their runs train. A webview's persisted state (getState/setState) is a {@link ViewState}:
 * it names what the view shows, so the extension can rebuild it after a reload (WebviewPanelSerializer).
 *
 * The result files' shapes (ablation.json, fusion-attention.json, drop.json, eval-<split>.json's classes) are the engine's own types, imported
 * as types only: erased at build, so no engine code reaches a webview bundle.
 */
import type { AblationResult } from '../engine/analysis/ablation';
import type { DropPoint, DropResult } from '../engine/analysis/drop';
import type { ClassReport } from '../engine/analysis/evaluate';
import type { FusionAttentionResult } from '../engine/analysis/fusionAttention';
import type { PredictionGridFile } from '../engine/analysis/predictionGrid';

/** Mirrors the engine's RunStatus (kept here so webviews need not import engine types). */
export type RunStatusName = 'queued' | 'running' | 'done' | 'failed' | 'cancelled' | 'interrupted';

export type ViewKind = 'lossCurves' | 'ablation' | 'compare' | 'fusion' | 'drop' | 'classReport';

/** The webview panel types (WebviewPanel.viewType) and their titles. */
export const VIEW_TYPES: Record<ViewKind, string> = {
  lossCurves: 'adapterLab.lossCurves',
  ablation: 'adapterLab.ablation',
  compare: 'adapterLab.compare',
  fusion: 'adapterLab.fusion',
  drop: 'adapterLab.drop',
  classReport: 'adapterLab.classReport',
};

/** What identifies a run in a view. */
export interface RunRef {
  /** Absolute path of the run folder (the run's identity). */
  runDir: string;
  name: string;
  task: string;
  method: string;
  status: RunStatusName;
}

export interface CurvePoint {
  step: number;
  epoch: number;
  value: number;
}

export interface RunCurves {
  run: RunRef;
  /** The dev metric that picks the best checkpoint (training.metric). */
  metric: string;
  /** Train loss per step (non-finite losses are dropped: the run stopped there). */
  train: CurvePoint[];
  /** The dev metric at each evaluation. */
  dev: CurvePoint[];
  totalSteps?: number;
}

export interface LossCurvesData {
  runs: RunCurves[];
}

/** ablation.json of a run (the engine's AblationResult), with the run it belongs to. */
export interface AblationData extends AblationResult {
  run: RunRef;
}

/** A sweep point's place in its sweep (run.json `sweep`). */
export interface SweepRef {
  /** The config's name. */
  group: string;
  /** Dotted field -> value, e.g. {"training.learningRate": 0.001, "training.seed": 1}. */
  assignment: Record<string, unknown>;
  id?: string;
  index?: number;
  size?: number;
}

export interface CompareRow {
  run: RunRef;
  /** The config's name (a sweep point's group). */
  configName: string;
  /** The seed the run trained with (training.seed). */
  seed: number | null;
  sweep: SweepRef | null;
  /** Every dev metric of the best checkpoint's evaluation (e.g. accuracy, f1, mcc), for "best by metric". */
  devMetrics: Record<string, number>;
  trainablePercent: number | null;
  trainableParams: number | null;
  baseParams: number | null;
  /** Name of the best-checkpoint metric and its best dev value (null until a dev evaluation). */
  metric: string | null;
  best: number | null;
  durationMs: number | null;
  createdAt: string;
}

export interface CompareData {
  rows: CompareRow[];
}

/** fusion-attention.json of an AdapterFusion run (the engine's FusionAttentionResult): where the fusion looks, per dev class. */
export interface FusionAttentionData extends FusionAttentionResult {
  run: RunRef;
}

export type { DropPoint };

/** drop.json (adapter-lab drop): the AdapterDrop trade-off of a run (the engine's DropResult, timing aside). */
export interface DropData extends Omit<DropResult, 'timing'> {
  run: RunRef;
  backend: string | null;
  time: string | null;
}

/** What a task's examples are: the Runs tree's icon and the per-class view's wording (runs/taskKinds.ts). */
export type TaskInputs = 'text' | 'images';

/** The splits `adapter-lab eval` evaluates. */
export type EvalSplit = 'dev' | 'test';

/** One evaluation's class report (eval-<split>.json `classes`, the engine's ClassReport), with its metrics. */
export interface SplitClassReport extends ClassReport {
  split: EvalSplit;
  examples: number;
  /** The evaluation's metrics (accuracy, macroF1, matthews, loss). */
  metrics: Record<string, number>;
  /** When the evaluation was written (ISO 8601), when the file says. */
  time: string | null;
  /** Image runs: the evaluation's prediction grid (predictions-<split>.json and its sprite), when it wrote one. */
  images?: ImagePredictions;
  /** Why the grid cannot be shown (its files are malformed or missing a part), when that is so. */
  imagesProblem?: string;
}

/**
 * The images of an image run's evaluation with their true and predicted classes (the engine's
 * PredictionGridFile): at most a few hundred, the misclassified first; the sprite as a data: URL, tile k at
 * column k % tile.columns, row floor(k / tile.columns).
 */
export interface ImagePredictions extends Omit<PredictionGridFile, 'sprite' | 'split' | 'time'> {
  spriteUrl: string;
  time: string | null;
}

/**
 * The per-class metrics and confusion matrices of a classification run (text or images): one report per split
 * evaluated with `adapter-lab eval`. `splits` is empty until then; `unevaluated` names the splits the task has
 * that have no report yet, and `canEvaluate` whether the run has a trained adapter to evaluate.
 */
export interface ClassReportData {
  run: RunRef;
  /** run.json's task.type ('classification', 'image-classification'). */
  taskType: string;
  inputs: TaskInputs;
  splits: SplitClassReport[];
  unevaluated: EvalSplit[];
  canEvaluate: boolean;
}

export type ViewData =
  | { view: 'lossCurves'; data: LossCurvesData }
  | { view: 'ablation'; data: AblationData | null; missing?: string }
  | { view: 'compare'; data: CompareData }
  | { view: 'fusion'; data: FusionAttentionData | null; missing?: string }
  | { view: 'drop'; data: DropData | null; missing?: string }
  | { view: 'classReport'; data: ClassReportData | null; missing?: string; /** Open on this tab (once; Show Image Predictions). */ tab?: ClassReportTab };

/** The Per-class Metrics view's tabs: the scores and confusion matrix, and (image runs) the prediction grid. */
export type ClassReportTab = 'scores' | 'images';

/** What a view shows: enough to rebuild it from disk after a reload. */
export type ViewSubject = { runDirs: string[] };

/** A webview's persisted state: its subject and its own UI settings (smoothing, sort, filter, ...). */
export interface ViewState<Ui = Record<string, unknown>> {
  view: ViewKind;
  subject: ViewSubject;
  ui?: Ui;
}

// ---------------------------------------------------------------------------------------------
// Extension -> webview

export interface InitMessage {
  type: 'init';
  payload: ViewData;
  subject: ViewSubject;
}

/** New points of a training run (loss curves only). */
export interface AppendMessage {
  type: 'append';
  runDir: string;
  train: CurvePoint[];
  dev: CurvePoint[];
  status: RunStatusName;
  totalSteps?: number;
}

export interface ExportedMessage {
  type: 'exported';
  file: string;
}

export interface NoticeMessage {
  type: 'notice';
  level: 'info' | 'error';
  message: string;
}

export type HostToWebview = InitMessage | AppendMessage | ExportedMessage | NoticeMessage;

// ---------------------------------------------------------------------------------------------
// Webview -> extension

export interface ReadyMessage {
  type: 'ready';
  view: ViewKind;
}

/** A file the user asked to export; the extension asks where to save it. */
export interface ExportRequest {
  type: 'export';
  format: 'png' | 'csv';
  /** Suggested file name, e.g. `loss-curves.png`. */
  fileName: string;
  /** PNG: a data: URL (base64); CSV: the text. */
  data: string;
}

export interface OpenRunMessage {
  type: 'openRun';
  runDir: string;
  /** Which view to open for it. */
  show: 'lossCurves' | 'ablation' | 'folder';
}

/** Evaluate a run on a split (the per-class view's button when a split has no class report yet). */
export interface EvaluateRunMessage {
  type: 'evaluate';
  runDir: string;
  split: EvalSplit;
}

export type WebviewToHost = ReadyMessage | ExportRequest | OpenRunMessage | EvaluateRunMessage;

/** Type guard for messages from a webview (they arrive untyped). */
export function isWebviewMessage(v: unknown): v is WebviewToHost {
  if (typeof v !== 'object' || v === null) return false;
  const m = v as Record<string, unknown>;
  switch (m.type) {
    case 'ready':
      return typeof m.view === 'string';
    case 'export':
      return (m.format === 'png' || m.format === 'csv') && typeof m.fileName === 'string' && typeof m.data === 'string';
    case 'openRun':
      return typeof m.runDir === 'string' && (m.show === 'lossCurves' || m.show === 'ablation' || m.show === 'folder');
    case 'evaluate':
      return typeof m.runDir === 'string' && (m.split === 'dev' || m.split === 'test');
    default:
      return false;
  }
}
