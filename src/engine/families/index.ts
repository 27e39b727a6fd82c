import { FamilyTaskType, ModelFamily } from '../model/family';
import { bertFamily } from './bert/family';
import { resnetFamily } from './resnet/family';

/**
 * Every model family, and the one that serves a task type. A new family is its folder here and one line below;
 * code outside the families asks `familyFor(task.type)`, never which family it has.
 */
const FAMILIES: readonly ModelFamily<never, never>[] = [bertFamily as unknown as ModelFamily<never, never>, resnetFamily as unknown as ModelFamily<never, never>];

export const TASK_TYPES: readonly FamilyTaskType[] = FAMILIES.flatMap((f) => f.taskTypes);

export function familyFor(taskType: FamilyTaskType): ModelFamily {
  const family = FAMILIES.find((f) => f.taskTypes.includes(taskType));
  if (!family) throw new Error(`no model family serves task type "${taskType}"; the task types are ${TASK_TYPES.join(', ')}`);
  return family as unknown as ModelFamily;
}
