import { expect } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { EVAL_CONTEXT } from '../../src/engine/experiment';
import { AdapterModel } from '../../src/engine/model/adapterModel';
import { fixedInput } from './fixtures';

/**
 * Gradients of the trained parameters against central finite differences of the loss. Float32 limits the
 * precision, so the model is small, the steps are 1e-2 and the check is on the relative error of the largest
 * gradient entries, where the signal is far above rounding noise.
 */
export function checkGradients(model: AdapterModel, paramNames: string[], labels: Float32Array): void {
  const input = fixedInput(model.encoder.config.vocabSize);
  const params = model.trainableParams();
  const vars = paramNames.map((n) => {
    const v = params.get(n);
    if (!v) throw new Error(`no trainable parameter ${n}; have ${[...params.keys()].join(', ')}`);
    return v;
  });
  checkGradientsOf(() => model.loss(input, labels, EVAL_CONTEXT), vars, paramNames);
}

/**
 * The same check for any deterministic scalar loss of the variables `vars` (named `names` in messages). A network
 * with ReLUs needs a smaller step (`eps`) than 1e-2, lest the difference straddle a kink.
 */
export function checkGradientsOf(loss: () => tf.Scalar, vars: tf.Variable[], names: string[], eps = 1e-2): void {
  const lossValue = () => tf.tidy(() => loss().dataSync()[0]);
  const { grads } = tf.variableGrads(loss, vars);
  for (const [k, v] of vars.entries()) {
    const g = grads[v.name].dataSync();
    // The three largest-magnitude entries of this parameter's gradient.
    const order = [...g.keys()].sort((a, b) => Math.abs(g[b]) - Math.abs(g[a])).slice(0, 3);
    expect(Math.abs(g[order[0]]), `${names[k]} has a zero gradient`).toBeGreaterThan(1e-4);
    for (const idx of order) {
      const original = v.dataSync().slice();
      const plus = original.slice();
      plus[idx] += eps;
      v.assign(tf.tensor(plus, v.shape));
      const lp = lossValue();
      const minus = original.slice();
      minus[idx] -= eps;
      v.assign(tf.tensor(minus, v.shape));
      const lm = lossValue();
      v.assign(tf.tensor(original, v.shape));
      const numeric = (lp - lm) / (2 * eps);
      const rel = Math.abs(numeric - g[idx]) / Math.max(Math.abs(numeric), Math.abs(g[idx]));
      expect(rel, `${names[k]}[${idx}]: analytic ${g[idx]}, numeric ${numeric}`).toBeLessThan(0.05);
    }
  }
  for (const g of Object.values(grads)) g.dispose();
}
