/**
 * The run folder store (SPEC section 4): one folder per run under the runs folder, holding
 *   run.json       the RunRecord below (written atomically)
 *   metrics.jsonl  one JSON object per line, each with a `type` ('train' | 'eval' | 'epoch' | ...)
 *   <name>.json    results: eval.json, ablation.json, drop.json, fusion-attention.json, ...
 *   checkpoint/    the training state for resume, and the best checkpoint
 *   adapter/       the trained adapter, AdapterHub layout
 */
import type { MethodType, ResolvedConfig } from '../config/types';

export type RunStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled' | 'interrupted';

export const RUN_STATUSES: readonly RunStatus[] = ['queued', 'running', 'done', 'failed', 'cancelled', 'interrupted'];

/** The content of run.json. */
export interface RunRecord {
  /** The run folder's name: `<YYYYMMDD-HHMMSS>-<name slug>-<4 hex>`. */
  id: string;
  /** Display name: the config's name, or the sweep point's name (`spam-houlsby-64__lr=0.0003`). */
  name: string;
  status: RunStatus;
  config: ResolvedConfig;
  /** The task's name (config.task.name), for grouping. */
  task: string;
  /** The method's type (config.method.type). */
  method: MethodType;
  /** ISO 8601 times. */
  createdAt: string;
  /** First start. */
  startedAt?: string;
  /** Latest start, when the run was resumed. */
  resumedAt?: string;
  endedAt?: string;
  /** Active running time, summed over resumes. */
  durationMs?: number;
  /** The TensorFlow.js backend the run used ('tensorflow', 'wasm', 'cpu'). */
  backend?: string;
  /** Versions of the engine, tfjs, node, ... */
  versions?: Record<string, string>;
  params?: { trainable: number; base: number; trainablePercent: number };
  best?: { metric: string; value: number; epoch: number; step: number };
  /** `rows`: for bad data, the rows that stopped the run (the first 1000; `rowCount` in all). */
  error?: { message: string; exitCode?: number; stderrTail?: string; rows?: NonNullable<RunRecord['skipped']>; rowCount?: number };
  /** The process that runs (ran) the training. */
  pid?: number;
  /**
   * The sweep this run is a point of: `group` the config's name, `assignment` the swept fields' values
   * (dotted path -> value); `id` tells launches of the same sweep apart, `index` of `size` is the point's place
   * in the grid (written by `adapter-lab sweep` and by `train` on a config with sweep axes).
   */
  sweep?: { group: string; assignment: Record<string, unknown>; id?: string; index?: number; size?: number };
  /**
   * The Slurm job array task that trains this run (`adapter-lab sweep|train --slurm`): the array job's id, the
   * task's index, the batch script, and the file Slurm writes its own messages for the task to.
   */
  slurm?: { jobId: string; arrayTaskId: number; script: string; output: string };
  /** Whether checkpoint/ holds a state the run can resume from. */
  resumable?: boolean;
  /** How many rows task.skipBadRows skipped; `skipped` lists them (the first 1000), each with file, line, reason. */
  skippedRows?: number;
  skipped?: { file: string; line: number; reason: string; kind: 'bad row' | 'class not seen in train' }[];
  /** What the data and the method's size looked like at the start, when something looked wrong (what to check). */
  warnings?: string[];
}

/** A run as listed: its record (status adjusted for dead processes) and where it lives. */
export interface RunSummary extends RunRecord {
  /** Absolute path of the run folder. */
  dir: string;
  /** The status written in run.json; differs from `status` when a 'running' run's process is gone. */
  statusOnDisk: RunStatus;
}

/** One line of metrics.jsonl. */
export interface MetricEntry {
  type: 'train' | 'eval' | 'epoch' | (string & {});
  [key: string]: unknown;
}
