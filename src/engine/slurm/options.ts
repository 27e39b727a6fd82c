/**
 * What a Slurm submission asks for (README "Sweeps on a Slurm cluster"). Three places can set it, later ones
 * winning field by field: the config's optional `slurm` section (what the experiment needs: time, memory,
 * GPUs), then the command line's flags (which the VS Code settings `adapterLab.slurm.*` become).
 */
import { UserInputError } from '../errors';

export interface SlurmOptions {
  /** `--partition`. */
  partition?: string;
  /** `--time`, in Slurm's formats: minutes ("30"), "H:MM:SS", "D-HH:MM:SS". */
  time?: string;
  /** `--cpus-per-task`. */
  cpusPerTask?: number;
  /** `--mem`, e.g. "8G". */
  mem?: string;
  /** `--gres`, e.g. "gpu:1". */
  gres?: string;
  /** How many array tasks run at once (`--array=0-N%K`); unset: as many as Slurm allows. */
  maxConcurrent?: number;
  /**
   * Seconds before the time limit at which the task is told to stop (`--signal=B:USR1@N`): it saves a
   * checkpoint and requeues itself, and resumes from there. Slurm sends it up to a minute early.
   */
  signalLeadSeconds?: number;
  /** More sbatch arguments, one per item: ["--account=nlp", "--qos=short"]. */
  extraArgs?: string[];
  /** The Node.js (20 or later) executable on the compute nodes (default: `node` on their PATH). */
  node?: string;
  /** The adapter-lab CLI script on the shared filesystem (default: the one submitting). */
  cli?: string;
}

export const DEFAULT_SIGNAL_LEAD_SECONDS = 120;

/** Field by field: a later source's defined values win. */
export function mergeSlurmOptions(...sources: (SlurmOptions | null | undefined)[]): SlurmOptions {
  const out: Record<string, unknown> = {};
  for (const s of sources) {
    if (!s) continue;
    for (const [k, v] of Object.entries(s)) if (v !== undefined && v !== null && v !== '') out[k] = v;
  }
  return out as SlurmOptions;
}

const TIME = /^(\d+-)?\d+(:\d{1,2}){0,2}$|^\d+-\d+$|^(UNLIMITED|INFINITE)$/i;

/** Checks values the script would otherwise carry to sbatch, so a mistake is named before anything is created. */
export function checkSlurmOptions(o: SlurmOptions, where = 'slurm'): void {
  const bad = (field: string, message: string): never => {
    throw new UserInputError(message, { field: `${where}.${field}` });
  };
  if (o.time !== undefined && !TIME.test(o.time)) bad('time', `"${o.time}" is not a Slurm time (minutes, "H:MM:SS" or "D-HH:MM:SS")`);
  for (const k of ['cpusPerTask', 'maxConcurrent', 'signalLeadSeconds'] as const) {
    const v = o[k];
    if (v !== undefined && (!Number.isInteger(v) || v < (k === 'signalLeadSeconds' ? 0 : 1))) bad(k, `must be a ${k === 'signalLeadSeconds' ? 'non-negative' : 'positive'} integer, got ${JSON.stringify(v)}`);
  }
  for (const k of ['partition', 'mem', 'gres', 'node', 'cli'] as const) {
    const v = o[k];
    if (v !== undefined && (typeof v !== 'string' || /[\n\r]/.test(v))) bad(k, 'must be a one-line string');
  }
  if (o.extraArgs !== undefined) {
    if (!Array.isArray(o.extraArgs)) bad('extraArgs', 'must be a list of arguments');
    o.extraArgs.forEach((a, i) => {
      if (typeof a !== 'string' || !a.startsWith('-') || /[\n\r]/.test(a)) bad(`extraArgs[${i}]`, `must be one sbatch option such as "--account=nlp", got ${JSON.stringify(a)}`);
    });
  }
}
