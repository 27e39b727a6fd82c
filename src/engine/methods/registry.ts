import { MethodType } from '../config/types';
import { MethodDefinition } from './method';
import { houlsby } from './houlsby';
import { pfeiffer } from './pfeiffer';
import { parallel } from './parallel';
import { prefixTuning } from './prefixTuning';
import { adapterbias } from './adapterbias';
import { bitfit, full, head, layernorm, topK } from './baselines';
import { fusion } from './fusion';
import { lora } from './lora';
import { ia3 } from './ia3';

/** The BERT family's methods, by their config names (the catalog's entries that name the family 'bert'). */
const methods: Partial<Record<MethodType, MethodDefinition>> = {
  houlsby,
  pfeiffer,
  parallel,
  'prefix-tuning': prefixTuning,
  adapterbias,
  bitfit,
  layernorm,
  'top-k': topK,
  full,
  head,
  fusion,
  lora,
  ia3,
};

export function methodDefinition(type: MethodType): MethodDefinition {
  const def = methods[type];
  if (!def) throw new Error(`method "${type}" is not implemented for this model family`);
  return def;
}

export const implementedMethods = Object.keys(methods) as MethodType[];
