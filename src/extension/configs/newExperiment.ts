/**
 * "New Experiment": a new `*.adapter.json` from a method and, when the workspace has one, an existing config
 * of the same task (its task block, model and training settings are kept, so the new run is comparable).
 * No vscode import.
 */
import * as path from 'node:path';
import { parse as parseJsonc } from 'jsonc-parser';
import { defaultLearningRate } from '../../engine/config/load';
import type { MethodType } from '../../engine/config/types';
import { catalogEntry, METHOD_NAMES } from '../../engine/methods/catalog';

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

export function newExperimentText(input: NewExperimentInput): string {
  let base: Record<string, unknown> = {};
  if (input.baseText) {
    const v = parseJsonc(input.baseText, [], { allowTrailingComma: true }) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) base = v as Record<string, unknown>;
  }
  const task = (base.task as Record<string, unknown> | undefined) ?? {
    name: 'my-task',
    type: 'classification',
    train: 'data/train.jsonl',
    dev: 'data/dev.jsonl',
    textField: 'text',
    labelField: 'label',
  };
  const rebase = (p: unknown) =>
    typeof p === 'string' && input.baseDir && !path.isAbsolute(p)
      ? path.relative(input.targetDir, path.resolve(input.baseDir, p)).split(path.sep).join('/') || '.'
      : p;
  const taskOut: Record<string, unknown> = { ...task };
  for (const k of ['train', 'dev', 'test']) if (k in taskOut) taskOut[k] = rebase(taskOut[k]);
  const model = typeof base.model === 'string' ? (base.model.startsWith('builtin:') ? base.model : rebase(base.model)) : 'builtin:tiny-bert';
  const training = { ...((base.training as Record<string, unknown> | undefined) ?? { epochs: 3, batchSize: 32, maxSeqLength: 128, seed: 42 }) };
  training.learningRate = defaultLearningRate(input.method);
  // No $schema: the extension contributes the schema for every *.adapter.json.
  const out = { name: input.name, task: taskOut, model, method: methodBlock(input.method), training };
  return JSON.stringify(out, null, 2) + '\n';
}
