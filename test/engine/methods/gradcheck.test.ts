import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { EVAL_CONTEXT } from '../../../src/engine/experiment';
import { AdapterModel } from '../../../src/engine/model/adapterModel';
import { fixedInput, tempDir, tinyModelDir, toyModel, useBackend } from '../../helpers/fixtures';

/**
 * Gradients of the trained parameters against central finite differences of the loss. Float32 limits the
 * precision, so the model is small, the steps are 1e-2 and the check is on the relative error of the largest
 * gradient entries, where the signal is far above rounding noise.
 */
function checkGradients(model: AdapterModel, paramNames: string[], labels: Float32Array): void {
  const input = fixedInput(model.encoder.config.vocabSize);
  const params = model.trainableParams();
  const lossValue = () => tf.tidy(() => model.loss(input, labels, EVAL_CONTEXT).dataSync()[0]);
  const vars = paramNames.map((n) => {
    const v = params.get(n);
    if (!v) throw new Error(`no trainable parameter ${n}; have ${[...params.keys()].join(', ')}`);
    return v;
  });
  const { grads } = tf.variableGrads(() => model.loss(input, labels, EVAL_CONTEXT), vars);
  for (const [k, v] of vars.entries()) {
    const g = grads[v.name].dataSync();
    // The three largest-magnitude entries of this parameter's gradient.
    const order = [...g.keys()].sort((a, b) => Math.abs(g[b]) - Math.abs(g[a])).slice(0, 3);
    expect(Math.abs(g[order[0]]), `${paramNames[k]} has a zero gradient`).toBeGreaterThan(1e-4);
    for (const idx of order) {
      const original = v.dataSync().slice();
      const eps = 1e-2;
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
      expect(rel, `${paramNames[k]}[${idx}]: analytic ${g[idx]}, numeric ${numeric}`).toBeLessThan(0.05);
    }
  }
}

describe('gradients against finite differences', () => {
  beforeAll(useBackend);
  const modelDir = () => tinyModelDir({ layers: 2, hidden: 16, heads: 2, intermediate: 32 });
  const labels = new Float32Array([1, 0, 1]);

  it('bottleneck adapter weights and biases (houlsby, both positions)', () => {
    // initStd 0.3 so the adapter's path carries a gradient far above float32 noise.
    const model = toyModel(tempDir(), modelDir(), { type: 'houlsby', bottleneck: 3, initStd: 0.3, nonLinearity: 'gelu' });
    checkGradients(
      model,
      [
        'encoder.layer.0.attention.output.adapters.toy.adapter_down.0.weight',
        'encoder.layer.0.attention.output.adapters.toy.adapter_up.bias',
        'encoder.layer.1.output.adapters.toy.adapter_down.0.bias',
        'encoder.layer.1.output.adapters.toy.adapter_up.weight',
      ],
      labels,
    );
  });

  it('AdapterBias: shift vector v and L_alpha', () => {
    const model = toyModel(tempDir(), modelDir(), { type: 'adapterbias', initStd: 0.3 });
    checkGradients(
      model,
      ['encoder.layer.0.output.adapters.toy.adapter_bias.v', 'encoder.layer.1.output.adapters.toy.adapter_bias.alpha.weight', 'encoder.layer.1.output.adapters.toy.adapter_bias.alpha.bias'],
      labels,
    );
  });

  it('AdapterBias with a shared L_alpha and the L0 gates', () => {
    const model = toyModel(tempDir(), modelDir(), { type: 'adapterbias', initStd: 0.3, sharedAlpha: true, l0Lambda: 0.5 });
    checkGradients(model, ['encoder.adapters.toy.shared_alpha.weight', 'encoder.adapters.toy.shared_alpha.log_alpha'], labels);
  });

  it('LayerNorm gains and biases (layernorm method)', () => {
    const model = toyModel(tempDir(), modelDir(), { type: 'layernorm' });
    checkGradients(model, ['encoder.layer.0.attention.output.LayerNorm.weight', 'encoder.layer.1.output.LayerNorm.bias', 'embeddings.LayerNorm.weight'], labels);
  });

  it('regression head and full fine-tuning weights, word embeddings included', () => {
    const model = toyModel(tempDir(), modelDir(), { type: 'full' }, null);
    checkGradients(model, ['encoder.layer.0.attention.self.query.weight', 'encoder.layer.1.intermediate.dense.weight', 'embeddings.word_embeddings.weight', 'heads.toy.4.weight'], new Float32Array([0.5, -1, 2]));
  });
});
