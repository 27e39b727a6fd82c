import * as path from 'node:path';
import type { EngineMessage } from '../../protocol/messages';
import { UserInputError } from '../errors';
import { loadPretrainConfig } from './config';
import { runPretrain } from './pretrain';

/**
 * `adapter-lab pretrain <pretrain.json>` and `adapter-lab pretrain --resume <pretrain.json>`: the CLI side of
 * pretraining. Progress and held-out evaluations go out as protocol messages (JSON lines with --json);
 * SIGINT/SIGTERM stop at the next step boundary with a checkpoint (exit code 1, as a cancelled run).
 */
export interface PretrainCommandContext {
  values: { resume?: string; 'max-steps'?: string; json?: boolean; workers?: string };
  args: string[];
  out: { json: boolean; emit(msg: EngineMessage): void; info(message: string): void };
}

export const PRETRAIN_USAGE = 'adapter-lab pretrain <pretrain.json> | --resume <pretrain.json>  [--max-steps N] [--workers N]';

export async function pretrainCommand({ values, args, out }: PretrainCommandContext): Promise<number> {
  const file = values.resume ?? args[0];
  if (!file) throw new UserInputError(`missing the pretrain config file\n\nUsage: ${PRETRAIN_USAGE}`);
  const config = loadPretrainConfig(path.resolve(file));
  if (values['max-steps'] !== undefined) {
    const n = Number(values['max-steps']);
    if (!Number.isInteger(n) || n < 1) throw new UserInputError(`--max-steps must be a positive integer, got "${values['max-steps']}"`);
    config.training.steps = n;
    if (config.training.warmupSteps >= n) config.training.warmupSteps = Math.floor(n / 10);
  }
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  out.emit({ type: 'start', command: 'pretrain', runDir: config.output });
  try {
    const outcome = await runPretrain({
      config,
      resume: values.resume !== undefined,
      // --workers (checked by the CLI: a positive integer); else every core, one on tfjs-node.
      workers: values.workers !== undefined ? Number(values.workers) : undefined,
      signal: controller.signal,
      callbacks: {
        log: (message, level = 'info') => out.emit({ type: 'log', level, message }),
        progress: (p) => out.emit({ type: 'progress', runDir: config.output, ...p }),
        evaluated: (e) =>
          out.emit({
            type: 'eval',
            runDir: config.output,
            split: 'heldout',
            epoch: e.epoch,
            step: e.step,
            metrics: { mlm_loss: e.loss, mlm_accuracy: e.accuracy, ...(e.trainLoss !== undefined ? { train_loss: e.trainLoss } : {}) },
          }),
      },
    });
    if (outcome.status === 'done') {
      const first = outcome.evals[0];
      const last = outcome.evals[outcome.evals.length - 1];
      out.emit({ type: 'result', command: 'pretrain', outputDir: outcome.outputDir, steps: outcome.step, wallMs: outcome.wallMs, heldout: { start: first, end: last } });
      if (!out.json) {
        out.info(`held-out MLM loss ${first.loss.toFixed(4)} -> ${last.loss.toFixed(4)}, accuracy ${(100 * first.accuracy).toFixed(1)}% -> ${(100 * last.accuracy).toFixed(1)}%`);
        out.info(`model folder: ${outcome.outputDir}`);
      }
    } else if (!out.json) {
      out.info(`resume with: adapter-lab pretrain --resume ${file}`);
    }
    const exitCode = outcome.status === 'done' ? 0 : 1;
    out.emit({ type: 'done', command: 'pretrain', status: outcome.status === 'done' ? 'done' : 'cancelled', runDir: config.output, exitCode });
    return exitCode;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
