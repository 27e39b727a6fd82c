import { RunHandle } from '../runs/runFolder';
import type { MetricName } from '../config/types';
import { metricHigherIsBetter } from '../metrics/metrics';
import { linearScheduleFactor } from './adamw';
import type { RunCheckpoints } from './runCheckpoints';
import type { TrainCallbacks, TrainProgress } from './trainer';

/**
 * The epochs of a training run, for both trainers (trainer.ts, familyTrainer.ts), which bring their batches and
 * their step: from the checkpoint's epoch and batch to the last step, with the learning rate's warm-up and
 * decay (the head at its own rate), a metrics line and a progress report per step, a dev evaluation (the best
 * kept) and a checkpoint every evalEverySteps and at each epoch's end, a stop at a loss that is not finite, and on cancel a
 * checkpoint at the batch it stopped before.
 */

/** The loss became NaN or infinite. */
export class DivergenceError extends Error {
  constructor(step: number, learningRate: number) {
    super(
      `training diverged: the loss became NaN or infinite at step ${step}. ` +
        `Try a lower learning rate (this run used ${learningRate}), or a stronger gradient clip (training.maxGradNorm).`,
    );
    this.name = 'DivergenceError';
  }
}

export interface EpochLoop<B> {
  run: RunHandle;
  training: { epochs: number; learningRate: number; headLearningRate?: number | null; evalEverySteps: number; metric: MetricName };
  checkpoints: RunCheckpoints;
  plan: { totalSteps: number; warmupSteps: number };
  /** The head's parameters, trained at training.headLearningRate when it is set. */
  headNames: ReadonlySet<string>;
  signal?: AbortSignal;
  callbacks: TrainCallbacks;
  log: (message: string) => void;
  /** The epoch's batches, in the order its seed draws them. */
  batchesOf(epoch: number): B[];
  /** One optimisation step on a batch; returns the loss before the update. */
  step(batch: B, step: number, lrFor: (name: string) => number): Promise<number> | number;
  /** What a batch counts toward the training rate (real tokens, images), and the rate's name. */
  unitsOf(batch: B): number;
  rate: 'tokensPerSecond' | 'imagesPerSecond';
  /** The dev set's metrics with the weights as they are. */
  evaluateDev(): Promise<Record<string, number>>;
}

export async function runEpochs<B>(o: EpochLoop<B>): Promise<{ status: 'done' | 'cancelled'; steps: number }> {
  const t = o.training;
  const { totalSteps, warmupSteps } = o.plan;
  const start = o.checkpoints.state;
  const headLr = t.headLearningRate ?? t.learningRate;
  const higherIsBetter = metricHigherIsBetter(t.metric);
  const evaluateDev = async (epoch: number, step: number) => {
    const metrics = await o.evaluateDev();
    const isBest = o.checkpoints.recordDev(epoch, step, metrics, t.metric, higherIsBetter);
    o.callbacks.evaluated?.({ epoch, step, metrics, isBest });
  };
  let step = start.step;
  const started = Date.now();
  let unitsSeen = 0;
  for (let epoch = start.epoch; epoch < t.epochs && step < totalSteps; epoch++) {
    const batches = o.batchesOf(epoch);
    const firstBatch = epoch === start.epoch ? start.batchInEpoch : 0;
    for (let b = firstBatch; b < batches.length && step < totalSteps; b++) {
      if (o.signal?.aborted) {
        o.checkpoints.save(step, epoch, b);
        o.run.update({ status: 'cancelled', resumable: true });
        o.log(`cancelled at step ${step}; checkpoint saved, resume with --resume`);
        return { status: 'cancelled', steps: step };
      }
      const lrFactor = linearScheduleFactor(step, warmupSteps, totalSteps);
      const lrFor = (n: string) => (o.headNames.has(n) ? headLr : t.learningRate) * lrFactor;
      const loss = await o.step(batches[b], step, lrFor);
      if (!Number.isFinite(loss)) {
        o.run.appendMetric({ type: 'train', epoch, step, loss: String(loss) });
        throw new DivergenceError(step, t.learningRate);
      }
      step++;
      unitsSeen += o.unitsOf(batches[b]);
      const elapsedMs = Date.now() - started;
      const rate = { [o.rate]: unitsSeen / Math.max(1e-3, elapsedMs / 1000) };
      const progress: TrainProgress = { epoch, epochs: t.epochs, step, totalSteps, loss, learningRate: t.learningRate * lrFactor, ...rate, elapsedMs };
      o.run.appendMetric({ type: 'train', epoch, step, loss, lr: progress.learningRate, ...rate });
      o.callbacks.progress?.(progress);
      if (t.evalEverySteps > 0 && step % t.evalEverySteps === 0 && b < batches.length - 1) {
        await evaluateDev(epoch, step);
        o.checkpoints.save(step, epoch, b + 1);
      }
      // Let signals (cancel) and stdout drain between steps.
      await new Promise((resolve) => setImmediate(resolve));
    }
    await evaluateDev(epoch, step);
    // Before the checkpoint: a resume from it must find the epoch's line (one from a later step is trimmed).
    o.run.appendMetric({ type: 'epoch', epoch, step });
    o.checkpoints.save(step, epoch + 1, 0);
  }
  return { status: 'done', steps: step };
}
