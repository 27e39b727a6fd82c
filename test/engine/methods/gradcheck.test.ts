import { beforeAll, describe, it } from 'vitest';
import { tempDir, tinyModelDir, toyModel, useBackend } from '../../helpers/fixtures';
import { checkGradients } from '../../helpers/gradcheck';

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
