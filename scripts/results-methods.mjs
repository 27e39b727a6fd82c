// The rows of `npm run results` (scripts/results.mjs): one per method setting, learning rates fixed per row (no
// search). Every method New Experiment offers has a row (test/engine/methods/catalog.test.ts checks it against the
// method catalog, src/engine/methods/catalog.ts).
/**
 * The methods of the table, as Houlsby et al. compare them; learning rates fixed per method (no search). `revision`
 * (optional) marks a row whose computation changed under the same config, so its older runs count as stale.
 */
export const METHODS = [
  { key: 'head', label: 'head only', method: { type: 'head' }, lr: 1e-3 },
  { key: 'bitfit', label: 'BitFit', method: { type: 'bitfit' }, lr: 1e-3 },
  { key: 'layernorm', label: 'LayerNorm', method: { type: 'layernorm' }, lr: 1e-3 },
  { key: 'adapterbias', label: 'AdapterBias', method: { type: 'adapterbias' }, lr: 1e-3 },
  // revision 2: AdapterHub's SeqBnConfig placement, LN(x + h + A(LN(x + h))) (the runs before it had another one).
  { key: 'pfeiffer-64', label: 'Pfeiffer, m=64', method: { type: 'pfeiffer', bottleneck: 64 }, lr: 1e-3, revision: 2 },
  { key: 'lora-8', label: 'LoRA, r=8', method: { type: 'lora', r: 8 }, lr: 1e-3 },
  // AdapterHub's defaults: m = d / 2 with scaling 4 (He et al. 2022); prefix length 30 through a 512-wide MLP.
  { key: 'parallel', label: 'parallel adapter, m=d/2', method: { type: 'parallel' }, lr: 3e-4 },
  { key: 'prefix-30', label: 'prefix-tuning, P=30', method: { type: 'prefix-tuning', prefixLength: 30 }, lr: 3e-3 },
  { key: 'ia3', label: '(IA)³', method: { type: 'ia3' }, lr: 3e-3 },
  { key: 'houlsby-8', label: 'Houlsby, m=8', method: { type: 'houlsby', bottleneck: 8 }, lr: 1e-3 },
  { key: 'houlsby-64', label: 'Houlsby, m=64', method: { type: 'houlsby', bottleneck: 64 }, lr: 1e-3 },
  { key: 'top-2', label: 'top-2 layers', method: { type: 'top-k', k: 2 }, lr: 1e-4 },
  { key: 'full', label: 'full fine-tuning', method: { type: 'full' }, lr: 1e-4 },
  { key: 'houlsby-64-random', label: 'Houlsby, m=64, random encoder', method: { type: 'houlsby', bottleneck: 64 }, lr: 1e-3, randomEncoder: true },
  // What pretraining buys when every weight trains (the comparison of BERT's own ablations).
  { key: 'full-random', label: 'full fine-tuning, random encoder', method: { type: 'full' }, lr: 1e-4, randomEncoder: true },
];
