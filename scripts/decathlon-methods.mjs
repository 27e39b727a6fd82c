// The rows of `npm run decathlon` (scripts/decathlon.mjs); test/scripts/decathlon.test.ts checks them against the
// method catalog (src/engine/methods/catalog.ts).
/**
 * The rows: every method of the ResNet family at the catalog's learning rate for image tasks
 * (src/engine/methods/catalog.ts; AdamW): 1e-2 for the modules that start at the identity or from scratch and for
 * the head, 1e-3 for full fine-tuning (ten times lower so as not to wash out the pretrained weights in a few
 * hundred steps). None looked wrong in the quick check (`--seeds 1 --domains sklearn-digits`), so none is changed.
 * `frozenBase`: the method leaves the network's own parameters as they are (the base domain is then shared).
 */
export const METHODS = [
  { key: 'residual-series', label: 'residual adapters, series (Rebuffi 2017)', lr: 1e-2, frozenBase: true },
  { key: 'residual-parallel', label: 'residual adapters, parallel (Rebuffi 2018)', lr: 1e-2, frozenBase: true },
  { key: 'batchnorm', label: 'BatchNorm only (Bilen & Vedaldi 2017)', lr: 1e-2, frozenBase: true },
  { key: 'head', label: 'head only (frozen features)', lr: 1e-2, frozenBase: true },
  { key: 'full', label: 'full fine-tuning', lr: 1e-3, frozenBase: false },
  { key: 'scratch', label: 'from scratch', lr: 1e-2, frozenBase: false },
];
