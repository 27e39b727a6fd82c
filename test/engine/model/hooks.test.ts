import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { EVAL_CONTEXT } from '../../../src/engine/experiment';
import { ForwardContext, KeyValueHook, LayerHooks } from '../../../src/engine/model/bert';
import { fixedInput, maxAbsDiff, tempDir, tinyModelDir, toyModel, useBackend } from '../../helpers/fixtures';

/** The model's hooks on the attention's keys and values (prefix-tuning's place), as a method would use them. */
describe('LayerHooks.keyValues', () => {
  beforeAll(useBackend);
  const P = 3;

  /** Prepends P positions (keys and values drawn once) to every row, with `bias` for them in the mask. */
  const prefixHook = (bias: number): KeyValueHook => (_layer, { keys, values, bias: mask }) => {
    const [B, , d] = keys.shape;
    const extra = (seed: number) => tf.tile(tf.randomNormal([1, P, d], 0, 1, 'float32', seed), [B, 1, 1]) as tf.Tensor3D;
    return {
      keys: tf.concat([extra(1), keys], 1) as tf.Tensor3D,
      values: tf.concat([extra(2), values], 1) as tf.Tensor3D,
      bias: tf.concat([tf.fill([B, 1, 1, P], bias), mask], 3) as tf.Tensor4D,
    };
  };

  it('extra positions masked out change nothing; attended ones change the output, except in switched-off layers', () => {
    const model = toyModel(tempDir(), tinyModelDir({ layers: 2, hidden: 16, heads: 2, intermediate: 32 }), { type: 'head' });
    const input = fixedInput(model.encoder.config.vocabSize);
    const run = (hooks: LayerHooks | undefined, extra: Partial<ForwardContext> = {}) =>
      tf.tidy(() => model.encoder.firstTokenOutput(model.encoder.embed(input, EVAL_CONTEXT), input, { ...EVAL_CONTEXT, hooks, ...extra }).dataSync() as Float32Array);
    const plain = run(undefined);
    expect(maxAbsDiff(run({ keyValues: prefixHook(-1e9) }), plain)).toBeLessThan(1e-6);
    const attended = run({ keyValues: prefixHook(0) });
    expect(maxAbsDiff(attended, plain)).toBeGreaterThan(1e-3);
    expect(run({ keyValues: prefixHook(0) }, { disabledAdapterLayers: new Set([0, 1]) })).toEqual(plain);
    // The full forward pass and the first-token-only last layer agree with the hook in place.
    const full = tf.tidy(() => {
      const h = model.encoder.forward(input, { ...EVAL_CONTEXT, hooks: { keyValues: prefixHook(0) } });
      return tf.reshape(tf.slice(tf.reshape(h, [input.batchSize, input.seqLen, 16]), [0, 0, 0], [input.batchSize, 1, 16]), [input.batchSize, 16]).dataSync() as Float32Array;
    });
    expect(maxAbsDiff(full, attended)).toBeLessThan(1e-5);
    model.dispose();
  });
});
