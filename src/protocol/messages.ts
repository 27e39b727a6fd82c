/**
 * The JSON-lines protocol the engine speaks on stdout with `--json` (one object per line). The CLI writes
 * it; the VS Code extension reads it from its child processes. Every line has a `type`.
 */

export interface StartMessage {
  type: 'start';
  command: string;
  runDir?: string;
  backend?: string;
  params?: { trainable: number; base: number; trainablePercent: number };
}

export interface ProgressMessage {
  type: 'progress';
  runDir?: string;
  epoch: number;
  epochs: number;
  step: number;
  totalSteps: number;
  loss?: number;
  learningRate?: number;
  tokensPerSecond?: number;
  /** Image tasks' training rate, in place of tokensPerSecond. */
  imagesPerSecond?: number;
  elapsedMs: number;
}

export interface EvalMessage {
  type: 'eval';
  runDir?: string;
  split: string;
  epoch?: number;
  step?: number;
  metrics: Record<string, number>;
  isBest?: boolean;
}

/** A row of a task file that was skipped or stopped a load: where, and why. */
export interface RowReport {
  file: string;
  line: number;
  reason: string;
  kind: 'bad row' | 'class not seen in train';
}

export interface LogMessage {
  type: 'log';
  level: 'info' | 'warn' | 'error';
  message: string;
  /** The rows the message is about (rows task.skipBadRows skipped), as data. */
  rows?: RowReport[];
}

export interface ResultMessage {
  type: 'result';
  command: string;
  [key: string]: unknown;
}

export interface PredictionMessage {
  type: 'prediction';
  index: number;
  /** Multi-task prediction (`predict --runs`): the task, and the run or adapter folder as given. */
  task?: string;
  run?: string;
  /** Where the input came from: a text row's file and line; an image's file, and its index in an IDX file. */
  source?: { file: string; line: number } | { file: string; image?: number };
  /** The class name (classification) or the value (regression). */
  prediction: string | number;
  /** Classification: the class names, in the order of `probabilities` and `logits`. */
  labels?: string[];
  logits?: number[];
  probabilities?: number[];
}

/**
 * A point of a sweep (`adapter-lab sweep`) changed state: every point once as `queued` when the sweep has
 * created its run folders, then `running` and its end (`done`, `failed` or `cancelled`). The points' own
 * training messages (start, progress, eval, done, with their `runDir`) come in between, as the child
 * processes that train them print them.
 */
export interface SweepPointMessage {
  type: 'sweepPoint';
  sweepId: string;
  /** The config's name (run.json's `sweep.group`). */
  group: string;
  index: number;
  total: number;
  name: string;
  runDir: string;
  assignment: Record<string, unknown>;
  status: 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
  exitCode?: number;
  best?: { metric: string; value: number; epoch: number; step: number };
  /** A point run on Slurm (`sweep --slurm`): its array task and Slurm's state of it. */
  slurm?: { id: string; phase: string; state?: string; reason?: string; exitCode?: number; restarts?: number };
}

export interface ErrorMessage {
  type: 'error';
  message: string;
  /** 1: a failed run; 2: bad input. */
  exitCode: number;
  file?: string;
  line?: number;
  field?: string;
  /** Bad data: every bad row (the first 1000) and how many there are in all. */
  rows?: RowReport[];
  rowCount?: number;
}

export interface DoneMessage {
  type: 'done';
  command: string;
  status: 'done' | 'failed' | 'cancelled';
  runDir?: string;
  exitCode: number;
}

export type EngineMessage =
  | StartMessage
  | ProgressMessage
  | EvalMessage
  | LogMessage
  | ResultMessage
  | PredictionMessage
  | SweepPointMessage
  | ErrorMessage
  | DoneMessage;

/** Parses one line of engine output; null for lines that are not protocol messages (stray prints). */
export function parseEngineLine(line: string): EngineMessage | null {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return null;
  try {
    const value = JSON.parse(trimmed) as unknown;
    if (typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string') return value as EngineMessage;
  } catch {
    // not JSON
  }
  return null;
}
