import { MethodType } from '../config/types';
import { MethodDefinition } from './method';
import { houlsby } from './houlsby';
import { pfeiffer } from './pfeiffer';
import { adapterbias } from './adapterbias';
import { bitfit, full, head, layernorm, topK } from './baselines';

/** Every method, by its config name. Fusion comes with its own issue. */
const methods: Partial<Record<MethodType, MethodDefinition>> = {
  houlsby,
  pfeiffer,
  adapterbias,
  bitfit,
  layernorm,
  'top-k': topK,
  full,
  head,
};

export function methodDefinition(type: MethodType): MethodDefinition {
  const def = methods[type];
  if (!def) throw new Error(`method "${type}" is not implemented yet`);
  return def;
}

export const implementedMethods = Object.keys(methods) as MethodType[];
