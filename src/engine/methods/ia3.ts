import { loraFamilyMethod } from './lora';

/**
 * (IA)³ (Liu et al. 2022; AdapterHub's IA3Config, a LoRAConfig with composition_mode "scale", r = 1, init "ia3"):
 * learned vectors, initialised to ones, that rescale the outputs of the key and value projections and of the
 * intermediate projection (before its activation, where AdapterHub wraps `intermediate.dense`).
 */
export const ia3 = loraFamilyMethod('ia3', 'scale');
