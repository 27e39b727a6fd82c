/**
 * "New Experiment": a new `*.adapter.json` from a method and, when the workspace has one, an existing config
 * of the same task (its task block, model and training settings are kept, so the new run is comparable).
 * No vscode import.
 */
import * as path from 'node:path';
import { parse as parseJsonc } from 'jsonc-parser';
import { defaultLearningRate } from '../../engine/config/load';
import type { MethodType } from '../../engine/config/types';
import { catalogEntry, familyOfTaskType, METHOD_NAMES, type FamilyName } from '../../engine/methods/catalog';

/** The methods New Experiment offers (the catalog's, in its order; not fusion, which needs trained adapters). */
export const METHODS: { type: MethodType; description: string }[] = METHOD_NAMES.filter((n) => catalogEntry(n).newExperiment !== undefined).map((n) => ({
  type: n,
  description: catalogEntry(n).description,
}));

/** The method block of a new config: the catalog's New Experiment block for the method. */
export function methodBlock(type: MethodType): Record<string, unknown> {
  return { type, ...structuredClone((catalogEntry(type).newExperiment ?? {}) as Record<string, unknown>) };
}

/** A file name for a config, free among `taken` (base names in the target folder). */
export function configFileName(name: string, taken: Set<string>): string {
  const slug = name.replace(/[^\w.-]+/g, '-').replace(/^-+|-+$/g, '') || 'experiment';
  let file = `${slug}.adapter.json`;
  for (let i = 2; taken.has(file); i++) file = `${slug}-${i}.adapter.json`;
  return file;
}

export interface NewExperimentInput {
  name: string;
  method: MethodType;
  /** The text of a config to take the task, model and training settings from. */
  baseText?: string;
  /** Where the base config lives and where the new one goes (relative data paths are rewritten). */
  baseDir?: string;
  targetDir: string;
}

/** Where a new config of each model family starts when there is no config of that family to start from. */
const STARTERS: Record<FamilyName, { task: Record<string, unknown>; model: string; training: Record<string, unknown> }> = {
  bert: {
    task: { name: 'my-task', type: 'classification', train: 'data/train.jsonl', dev: 'data/dev.jsonl', textField: 'text', labelField: 'label' },
    model: 'builtin:tiny-bert',
    training: { epochs: 3, batchSize: 32, maxSeqLength: 128, seed: 42 },
  },
  resnet: {
    task: { name: 'my-images', type: 'image-classification', train: 'data/images', split: { dev: 0.1 } },
    model: 'builtin:resnet-fashion',
    training: { epochs: 3, batchSize: 32, seed: 42 },
  },
};

export function newExperimentText(input: NewExperimentInput): string {
  let base: Record<string, unknown> = {};
  if (input.baseText) {
    const v = parseJsonc(input.baseText, [], { allowTrailingComma: true }) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) base = v as Record<string, unknown>;
  }
  // The base config's task, model and training, when its task is of a family the method serves; else the starter
  // of the method's first family.
  const families = catalogEntry(input.method).families;
  const baseTask = base.task as Record<string, unknown> | undefined;
  const baseFamily = baseTask ? familyOfTaskType(typeof baseTask.type === 'string' ? baseTask.type : 'classification') : undefined;
  if (baseFamily === undefined || !families.includes(baseFamily)) base = {};
  const starter = STARTERS[families[0]];
  const task = (base.task as Record<string, unknown> | undefined) ?? starter.task;
  const rebase = (p: unknown) =>
    typeof p === 'string' && input.baseDir && !path.isAbsolute(p)
      ? path.relative(input.targetDir, path.resolve(input.baseDir, p)).split(path.sep).join('/') || '.'
      : p;
  // A split is a path, or (image tasks) an IDX pair of paths.
  const rebaseSource = (v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).map(([k, p]) => [k, rebase(p)])) : rebase(v));
  const taskOut: Record<string, unknown> = { ...task };
  for (const k of ['train', 'dev', 'test']) if (k in taskOut) taskOut[k] = rebaseSource(taskOut[k]);
  const model = typeof base.model === 'string' ? (base.model.startsWith('builtin:') ? base.model : rebase(base.model)) : starter.model;
  const training = { ...((base.training as Record<string, unknown> | undefined) ?? starter.training) };
  training.learningRate = defaultLearningRate(input.method, String(taskOut.type));
  // No $schema: the extension contributes the schema for every *.adapter.json.
  const out = { name: input.name, task: taskOut, model, method: methodBlock(input.method), training };
  return JSON.stringify(out, null, 2) + '\n';
}
