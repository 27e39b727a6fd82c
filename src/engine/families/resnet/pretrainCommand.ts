import * as path from 'node:path';
import { UserInputError } from '../../errors';
import { checkResNetConfig, ResNetConfig } from './network';
import { ImageSource } from './family';
import { pretrainResNet, ResNetPretrainRecipe } from './pretrain';
import type { FamilyPretrainContext } from '../../model/family';

/**
 * `adapter-lab pretrain <config>` for the ResNet family: a config with `"taskType": "image-classification"`,
 * validated field by field (errors name the file and the field), then pretrainResNet. Paths are relative to the
 * config file.
 *
 * {
 *   "taskType": "image-classification",
 *   "name": "resnet-fashion",
 *   "output": "../../models/resnet-fashion",
 *   "network": { "inputChannels": 1, "imageSize": 28, "widths": [16, 32, 64], "blocksPerStage": 1 },
 *   "train": { "images": "train-images-idx3-ubyte.gz", "labels": "train-labels-idx1-ubyte.gz" },
 *   "test": { "images": "...", "labels": "..." },
 *   "labels": ["T-shirt/top", ...],
 *   "training": { "epochs": 2, "batchSize": 64, "learningRate": 2e-3, "weightDecay": 1e-4, "warmupRatio": 0.05,
 *                 "seed": 1, "trainExamples": null, "testExamples": null },   (the first N images only; null: all)
 *   "augment": { "cropPadding": 2, "flip": false }
 * }
 */

interface RawPretrain {
  name?: unknown;
  output?: unknown;
  network?: Record<string, unknown>;
  train?: unknown;
  test?: unknown;
  labels?: unknown;
  training?: Record<string, unknown>;
  augment?: Record<string, unknown>;
}

const KNOWN = new Set(['$schema', 'taskType', 'name', 'output', 'network', 'train', 'test', 'labels', 'training', 'augment']);

export async function resnetPretrainCommand(file: string, raw: Record<string, unknown>, ctx: FamilyPretrainContext): Promise<number> {
  const recipe = parseRecipe(file, raw);
  const baseDir = path.dirname(file);
  const out = path.resolve(baseDir, recipe.output);
  ctx.emit({ type: 'start', command: 'pretrain', runDir: out });
  const started = Date.now();
  let lastReport = 0;
  const result = await pretrainResNet(recipe.recipe, baseDir, out, (p) => {
    // One progress line every ~10 s (the message stream is the same as a training run's).
    if (Date.now() - lastReport < 10_000 && p.step !== p.totalSteps) return;
    lastReport = Date.now();
    ctx.emit({ type: 'progress', runDir: out, epoch: 0, epochs: recipe.recipe.epochs, step: p.step, totalSteps: p.totalSteps, loss: p.loss, elapsedMs: Date.now() - started });
  });
  const wallMs = Date.now() - started;
  ctx.emit({ type: 'result', command: 'pretrain', outputDir: out, steps: result.steps, wallMs, testAccuracy: result.testAccuracy, finalLoss: result.finalLoss });
  if (!ctx.json) {
    ctx.info(`${result.steps} steps in ${(wallMs / 60000).toFixed(1)} min; final loss ${result.finalLoss.toFixed(4)}` + (result.testAccuracy === null ? '' : `; test accuracy ${(100 * result.testAccuracy).toFixed(2)}%`));
    ctx.info(`network folder: ${out}`);
  }
  ctx.emit({ type: 'done', command: 'pretrain', status: 'done', runDir: out, exitCode: 0 });
  return 0;
}

function parseRecipe(file: string, raw: RawPretrain & Record<string, unknown>): { recipe: ResNetPretrainRecipe; output: string } {
  const bad = (field: string, message: string) => new UserInputError(message, { file, field });
  for (const key of Object.keys(raw)) if (!KNOWN.has(key)) throw bad(key, `unknown field; a ResNet pretrain config has ${[...KNOWN].filter((k) => k !== '$schema').join(', ')}`);
  if (typeof raw.output !== 'string' || !raw.output) throw bad('output', 'the network folder to write: a path (relative to this file)');
  const n = raw.network;
  if (!n || typeof n !== 'object') throw bad('network', 'the network\'s shape: { "inputChannels", "imageSize", "widths", "blocksPerStage" }');
  const network: ResNetConfig = { modelType: 'resnet', inputChannels: n.inputChannels as number, imageSize: n.imageSize as number, widths: n.widths as ResNetConfig['widths'], blocksPerStage: n.blocksPerStage as number };
  try {
    checkResNetConfig(network);
  } catch (err) {
    throw bad('network', (err as Error).message);
  }
  const source = (field: 'train' | 'test', v: unknown): ImageSource => {
    if (typeof v === 'string' && v) return v;
    const o = v as Record<string, unknown> | null;
    if (o && typeof o === 'object' && typeof o.images === 'string' && typeof o.labels === 'string') return { images: o.images, labels: o.labels };
    throw bad(field, 'an image folder (one subfolder per class) or an IDX pair { "images": ..., "labels": ... }');
  };
  const train = source('train', raw.train);
  const test = raw.test == null ? null : source('test', raw.test);
  if (raw.labels != null && (!Array.isArray(raw.labels) || raw.labels.some((l) => typeof l !== 'string'))) throw bad('labels', 'the class names in index order: an array of strings');
  const t = raw.training ?? {};
  const num = (key: string, fallback: number, check: (v: number) => boolean, what: string): number => {
    const v = t[key] ?? fallback;
    if (typeof v !== 'number' || !check(v)) throw bad(`training.${key}`, `must be ${what}, got ${JSON.stringify(v)}`);
    return v;
  };
  const positiveInt = (v: number) => Number.isInteger(v) && v >= 1;
  const a = raw.augment ?? {};
  if (a.cropPadding !== undefined && !(Number.isInteger(a.cropPadding) && (a.cropPadding as number) >= 0)) throw bad('augment.cropPadding', 'must be a non-negative integer');
  if (a.flip !== undefined && typeof a.flip !== 'boolean') throw bad('augment.flip', 'must be true or false');
  const recipe: ResNetPretrainRecipe = {
    network,
    train,
    test,
    labels: (raw.labels as string[] | undefined) ?? null,
    epochs: num('epochs', 1, positiveInt, 'a positive integer'),
    batchSize: num('batchSize', 64, positiveInt, 'a positive integer'),
    learningRate: num('learningRate', 2e-3, (v) => v > 0 && v < 1, 'a number in (0, 1)'),
    weightDecay: num('weightDecay', 1e-4, (v) => v >= 0, 'a non-negative number'),
    warmupRatio: num('warmupRatio', 0.05, (v) => v >= 0 && v < 1, 'a number in [0, 1)'),
    seed: num('seed', 1, Number.isInteger, 'an integer'),
    trainExamples: t.trainExamples == null ? null : num('trainExamples', 0, positiveInt, 'a positive integer or null'),
    testExamples: t.testExamples == null ? null : num('testExamples', 0, positiveInt, 'a positive integer or null'),
    augment: { cropPadding: (a.cropPadding as number | undefined) ?? 0, flip: (a.flip as boolean | undefined) ?? false },
  };
  return { recipe, output: raw.output };
}
