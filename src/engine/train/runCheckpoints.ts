import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { RunHandle } from '../runs/runFolder';
import { CHECKPOINT_DIR, CHECKPOINT_STATE_FILE } from '../runs/files';
import { RunRecord } from '../runs/types';
import { assignParams, snapshot } from '../model/adapterIo';
import { encodeSafetensors, parseSafetensors, TensorMap } from '../model/safetensors';
import { UserInputError } from '../errors';
import { AdamW } from './adamw';

/**
 * A training run's checkpoints (its folder's checkpoint/), for both trainers (trainer.ts for the text family,
 * familyTrainer.ts for the others): the state a resume starts from (step, where in which epoch, the best so
 * far, the files holding the trainable weights, the optimizer's moments and the best weights), written after
 * the files it names and cleaned of the files it no longer names; and the best dev score with its weights.
 */

type Best = NonNullable<RunRecord['best']>;

export interface CheckpointState {
  /** Steps done. */
  step: number;
  /** Where the next step starts. */
  epoch: number;
  batchInEpoch: number;
  best: Best | null;
  files: { trainable: string; optimizer: string; best: string | null };
}

/** The steps of a run: batches per epoch, the total (epochs, or maxSteps when fewer) and the warm-up's. */
export function trainingPlan(t: { epochs: number; batchSize: number; maxSteps?: number | null; warmupRatio: number }, trainExamples: number): { batchesPerEpoch: number; totalSteps: number; warmupSteps: number } {
  const batchesPerEpoch = Math.ceil(trainExamples / t.batchSize);
  const fullSteps = t.epochs * batchesPerEpoch;
  const totalSteps = t.maxSteps ? Math.min(t.maxSteps, fullSteps) : fullSteps;
  return { batchesPerEpoch, totalSteps, warmupSteps: Math.round(t.warmupRatio * totalSteps) };
}

export class RunCheckpoints {
  state: CheckpointState = { step: 0, epoch: 0, batchInEpoch: 0, best: null, files: { trainable: '', optimizer: '', best: null } };
  /** The best dev score so far (the checkpoint's, then every better one). */
  best: Best | null = null;
  /** A checkpoint was read (a resume of a run that had one). */
  readonly restored: boolean;

  /**
   * Reads the checkpoint into params and the optimizer when resuming a run that has one. A resumed run killed
   * before its first checkpoint was complete starts again from step 0: the same seeds make it compute exactly
   * what the first attempt did.
   */
  constructor(
    private readonly run: RunHandle,
    private readonly params: Map<string, tf.Variable>,
    private readonly optimizer: AdamW,
    resume: boolean,
    log: (message: string) => void,
  ) {
    this.restored = resume && run.readFile(`${CHECKPOINT_DIR}/${CHECKPOINT_STATE_FILE}`) !== null;
    if (this.restored) {
      this.state = loadCheckpoint(run, params, optimizer);
      this.best = this.state.best;
      log(`resuming at step ${this.state.step} (epoch ${this.state.epoch + 1}, batch ${this.state.batchInEpoch + 1})`);
    } else if (resume) {
      log('no complete checkpoint yet: starting again from step 0');
    }
  }

  /** Saves the weights and moments after `step` steps, the next step at batch batchInEpoch of epoch. */
  save(step: number, epoch: number, batchInEpoch: number): void {
    this.state = {
      step,
      epoch,
      batchInEpoch,
      best: this.best,
      files: {
        trainable: saveTensors(this.run, `trainable-${step}`, snapshot(this.params)),
        optimizer: saveTensors(this.run, `optimizer-${step}`, this.optimizer.state()),
        best: this.state.files.best,
      },
    };
    this.run.writeFile(`${CHECKPOINT_DIR}/${CHECKPOINT_STATE_FILE}`, JSON.stringify({ ...this.state, optimizerStep: this.optimizer.step }, null, 2) + '\n');
    removeStaleFiles(this.run, this.state);
  }

  /**
   * A dev evaluation after `step` steps: its metrics line, and when its metric beats the best (or the best is
   * NaN and it is not), the best with its weights. Returns whether it was the best.
   */
  recordDev(epoch: number, step: number, metrics: Record<string, number>, metric: string, higherIsBetter: boolean): boolean {
    const value = metrics[metric];
    const best = this.best;
    const isBest = best === null || (higherIsBetter ? value > best.value : value < best.value) || (Number.isNaN(best.value) && !Number.isNaN(value));
    this.run.appendMetric({ type: 'eval', split: 'dev', epoch, step, ...metrics });
    if (isBest) {
      this.best = { metric, value, epoch, step };
      this.state.files.best = saveTensors(this.run, `best-${step}`, snapshot(this.params));
      this.run.update({ best: this.best });
    }
    return isBest;
  }

  /** Puts the best checkpoint's weights into params; false when there is none. */
  restoreBest(): boolean {
    if (!this.state.files.best) return false;
    assignParams(this.params, readCheckpointTensors(this.run, this.state.files.best), 'best checkpoint');
    return true;
  }
}

function saveTensors(run: RunHandle, stem: string, tensors: TensorMap): string {
  const file = `${stem}.safetensors`;
  run.writeFile(`${CHECKPOINT_DIR}/${file}`, encodeSafetensors(tensors));
  return file;
}

/** Deletes the checkpoint files the new state does not name (inside checkpoint/ only: links are refused). */
function removeStaleFiles(run: RunHandle, state: CheckpointState): void {
  const keep = new Set([CHECKPOINT_STATE_FILE, state.files.trainable, state.files.optimizer, state.files.best].filter(Boolean) as string[]);
  for (const f of run.listFiles(CHECKPOINT_DIR)) if (f.endsWith('.safetensors') && !keep.has(f)) run.removeFile(`${CHECKPOINT_DIR}/${f}`);
}

function readCheckpointTensors(run: RunHandle, name: string): TensorMap {
  const file = path.join(run.checkpointDir, name);
  const bytes = run.readFile(`${CHECKPOINT_DIR}/${name}`);
  if (bytes === null) throw new UserInputError('missing: the checkpoint state names it but it is not there', { file });
  return parseSafetensors(bytes, file).tensors;
}

/** A plain file name of checkpoint/ (a state naming `../x` is corrupt, not a path to follow). */
function isCheckpointFileName(v: unknown): v is string {
  return typeof v === 'string' && /^[\w.-]+\.safetensors$/.test(v) && !v.startsWith('.');
}

function loadCheckpoint(run: RunHandle, params: Map<string, tf.Variable>, optimizer: AdamW): CheckpointState {
  const file = path.join(run.checkpointDir, CHECKPOINT_STATE_FILE);
  const text = run.readFile(`${CHECKPOINT_DIR}/${CHECKPOINT_STATE_FILE}`)?.toString('utf8') ?? '';
  let state: CheckpointState & { optimizerStep: number };
  try {
    state = JSON.parse(text);
  } catch (err) {
    throw new UserInputError(`corrupt checkpoint state (${text.trim() === '' ? 'empty' : (err as Error).message}); it cannot be resumed: train its config again`, { file });
  }
  const ok =
    state !== null &&
    typeof state === 'object' &&
    [state.step, state.epoch, state.batchInEpoch, state.optimizerStep].every((n) => Number.isInteger(n) && n >= 0) &&
    isCheckpointFileName(state.files?.trainable) &&
    isCheckpointFileName(state.files?.optimizer) &&
    (state.files.best === null || isCheckpointFileName(state.files.best));
  if (!ok) throw new UserInputError('corrupt checkpoint state (missing or invalid step, epoch or file names); it cannot be resumed: train its config again', { file });
  const where = (name: string) => path.join(run.checkpointDir, name);
  try {
    assignParams(params, readCheckpointTensors(run, state.files.trainable), `checkpoint ${where(state.files.trainable)}`);
    optimizer.loadState(readCheckpointTensors(run, state.files.optimizer), state.optimizerStep);
  } catch (err) {
    if (err instanceof UserInputError) throw err;
    throw new UserInputError((err as Error).message, { file: where(state.files.optimizer) });
  }
  return state;
}
