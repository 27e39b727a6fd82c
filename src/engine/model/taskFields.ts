import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserInputError } from '../errors';
import { writeJsonAtomic } from '../util/atomicFile';

/**
 * The input fields of the task an adapter was trained on, kept beside the adapter in a file of its own (not in
 * adapter_config.json, whose content follows AdapterHub): `predict <adapter folder>` then reads the same fields
 * as `predict <run>`, also after `export`.
 */
export const TASK_FIELDS_FILE = 'adapter_lab_task_fields.json';

export interface TaskFields {
  textField: string;
  textPairField: string | null;
}

export function writeTaskFields(dir: string, task: { textField: string; textPairField?: string | null }): void {
  const fields: TaskFields = { textField: task.textField, textPairField: task.textPairField ?? null };
  writeJsonAtomic(path.join(dir, TASK_FIELDS_FILE), fields);
}

/** The fields saved with an adapter, or null for an adapter saved without them (older runs, other tools). */
export function readTaskFields(dir: string): TaskFields | null {
  const file = path.join(dir, TASK_FIELDS_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  let v: Partial<TaskFields>;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new UserInputError(`cannot parse: ${(err as Error).message}`, { file });
  }
  if (typeof v?.textField !== 'string' || !v.textField || !(v.textPairField === null || v.textPairField === undefined || typeof v.textPairField === 'string')) {
    throw new UserInputError('expected {"textField": "...", "textPairField": "..." or null}', { file });
  }
  return { textField: v.textField, textPairField: v.textPairField ?? null };
}
