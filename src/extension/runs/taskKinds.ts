/**
 * What the extension needs to know of a task type (run.json's config.task.type): what its examples are (the Runs
 * tree's icon, the per-class view's wording) and whether it predicts classes (the per-class view). One table, keyed
 * by the engine's task types so that a new type cannot be left out; the extension asks here, never which model
 * family a run has.
 */
import type { FamilyTaskType } from '../../engine/model/family';
import type { TaskInputs } from '../../protocol/webview';

export interface TaskKind {
  inputs: TaskInputs;
  /** Whether its runs predict classes (per-class scores and a confusion matrix). */
  classification: boolean;
}

const TASK_KINDS: Record<FamilyTaskType, TaskKind> = {
  classification: { inputs: 'text', classification: true },
  regression: { inputs: 'text', classification: false },
  'image-classification': { inputs: 'images', classification: true },
};

/** The kind of a task type; a type this extension does not know reads as text classification's kin, by its name. */
export function taskKind(taskType: string | undefined): TaskKind {
  const known = TASK_KINDS[taskType as FamilyTaskType];
  if (known) return known;
  return { inputs: taskType?.startsWith('image') ? 'images' : 'text', classification: !!taskType?.endsWith('classification') };
}

/** The codicon of a task's inputs, for the Runs tree. */
export const INPUT_ICONS: Record<TaskInputs, string> = {
  text: 'symbol-text',
  images: 'file-media',
};
