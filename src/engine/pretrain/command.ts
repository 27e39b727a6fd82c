import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse, type ParseError } from 'jsonc-parser';
import type { EngineMessage } from '../../protocol/messages';
import { UserInputError } from '../errors';
import { loadPretrainConfig } from './config';
import { runPretrain } from './pretrain';
import { familyFor, TASK_TYPES } from '../families';
import type { FamilyTaskType } from '../model/family';

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

/** The config's parsed object when it names a `taskType` (a family's pretraining), else null. */
function readFamilyPretrainConfig(file: string): { taskType: FamilyTaskType; raw: Record<string, unknown> } | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null; // loadPretrainConfig reports the missing file
  }
  const errors: ParseError[] = [];
  const raw = parse(text, errors, { allowTrailingComma: true }) as Record<string, unknown> | undefined;
  if (errors.length || !raw || typeof raw !== 'object' || raw.taskType === undefined) return null;
  if (!TASK_TYPES.includes(raw.taskType as FamilyTaskType)) throw new UserInputError(`unknown task type ${JSON.stringify(raw.taskType)}; the task types are ${TASK_TYPES.join(', ')}`, { file, field: 'taskType' });
  return { taskType: raw.taskType as FamilyTaskType, raw };
}

export async function pretrainCommand({ values, args, out }: PretrainCommandContext): Promise<number> {
  const file = values.resume ?? args[0];
  if (!file) throw new UserInputError(`missing the pretrain config file\n\nUsage: ${PRETRAIN_USAGE}`);
  // A config naming a task type is its family's pretraining (the ResNet's); without one, masked-language-model
  // pretraining of a BERT encoder (pretrain/config.ts).
  const familyConfig = readFamilyPretrainConfig(path.resolve(file));
  if (familyConfig) {
    const family = familyFor(familyConfig.taskType);
    if (!family.pretrain) throw new UserInputError(`the ${family.name} family has no pretraining of its own`, { file, field: 'taskType' });
    if (values.resume !== undefined) throw new UserInputError(`${family.name} pretraining does not checkpoint yet: run it again without --resume`, { file });
    return family.pretrain(path.resolve(file), familyConfig.raw, out);
  }
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
