import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { EVAL_CONTEXT } from '../../../src/engine/experiment';
import { layerParamNames } from '../../../src/engine/model/bert';
import { tinyVocab } from '../../helpers/tinyModel';
import { fixedInput, maxAbsDiff, tempDir, tinyModelDir, toyModel, useBackend } from '../../helpers/fixtures';

const L = 3;
const d = 24;
const modelOptions = { layers: L, hidden: d, heads: 2, intermediate: 48 };
/** The head every method trains: dense d->d and d->C (C = 2). */
const headParams = d * d + d + d * 2 + 2;
const layerNormParamCount = 2 * d * (2 * L + 1);

describe('parameter counts', () => {
  beforeAll(useBackend);
  const build = (method: Record<string, unknown>) => toyModel(tempDir(), tinyModelDir(modelOptions), method);
  const adapter = (m: number) => 2 * m * d + d + m;

  it('houlsby: two adapters of 2md + d + m per layer, plus LayerNorms and head', () => {
    const model = build({ type: 'houlsby', bottleneck: 5 });
    expect(model.parameterCounts().trainable).toBe(L * 2 * adapter(5) + layerNormParamCount + headParams);
    const down = model.method.params.get('encoder.layer.0.attention.output.adapters.toy.adapter_down.0.weight')!;
    expect(down.shape).toEqual([d, 5]);
  });

  it('houlsby without LayerNorms, with per-layer sizes and a left-out layer', () => {
    const model = build({ type: 'houlsby', bottleneckPerLayer: [2, 7, 3], leaveOut: [1], trainLayerNorm: false });
    expect(model.parameterCounts().trainable).toBe(2 * adapter(2) + 2 * adapter(3) + headParams);
    expect(model.method.adapterLayers).toEqual([0, 2]);
  });

  it('pfeiffer: one adapter per layer; reductionFactor gives m = d / factor', () => {
    const model = build({ type: 'pfeiffer', reductionFactor: 8, trainLayerNorm: false });
    expect(model.parameterCounts().trainable).toBe(L * adapter(d / 8) + headParams);
  });

  it('adapterbias: 2d + 1 per layer plus the FFN LayerNorms; shared L_alpha once', () => {
    const own = build({ type: 'adapterbias' });
    expect(own.parameterCounts().trainable).toBe(L * (2 * d + 1) + L * 2 * d + headParams);
    const shared = build({ type: 'adapterbias', sharedAlpha: true, trainLayerNorm: false });
    expect(shared.parameterCounts().trainable).toBe(L * d + (d + 1) + headParams);
  });

  it('bitfit, layernorm, top-k, full and head train what they say', () => {
    const base = build({ type: 'head' }).parameterCounts().base;
    // Biases: the embedding LayerNorm's, and per layer q, k, v, attention output, FFN output (d each),
    // FFN input (48) and two LayerNorms (d each).
    expect(build({ type: 'bitfit' }).parameterCounts().trainable).toBe(d + L * (5 * d + 48 + 2 * d) + headParams);
    expect(build({ type: 'layernorm' }).parameterCounts().trainable).toBe(layerNormParamCount + headParams);
    const perLayer = 4 * (d * d + d) + 2 * 2 * d + (d * 48 + 48) + (48 * d + d);
    expect(build({ type: 'top-k', k: 2 }).parameterCounts().trainable).toBe(2 * perLayer + headParams);
    expect(build({ type: 'full' }).parameterCounts().trainable).toBe(base + headParams);
    expect(build({ type: 'head' }).parameterCounts().trainable).toBe(headParams);
    expect(base).toBe(L * perLayer + (tinyVocabSize() + 64 + 2) * d + 2 * d);
  });

  it('top-k unfreezes exactly the top k layers', () => {
    const model = build({ type: 'top-k', k: 1 });
    expect(model.method.trainedBaseParams.sort()).toEqual(layerParamNames(L - 1).sort());
    expect(model.encoder.params.get('encoder.layer.0.attention.self.query.weight')!.trainable).toBe(false);
  });
});

function tinyVocabSize(): number {
  return tinyVocab().length;
}

describe('near-identity initialisation', () => {
  beforeAll(useBackend);

  for (const method of [{ type: 'houlsby', bottleneck: 16 }, { type: 'pfeiffer', bottleneck: 16 }, { type: 'adapterbias' }]) {
    it(`${method.type}: logits with fresh adapters are within 1e-3 of the base model's`, () => {
      const model = toyModel(tempDir(), tinyModelDir(modelOptions), method);
      const input = fixedInput(model.encoder.config.vocabSize);
      const withAdapters = tf.tidy(() => model.outputs(input, EVAL_CONTEXT).dataSync());
      const all = new Set([...Array(L).keys()]);
      const base = tf.tidy(() => model.outputs(input, { ...EVAL_CONTEXT, disabledAdapterLayers: all }).dataSync());
      const diff = maxAbsDiff(withAdapters, base);
      expect(diff).toBeLessThan(1e-3);
      // ...and the adapters do change something (they are in the computation at all).
      expect(diff).toBeGreaterThan(0);
    });
  }

  it('a larger init std moves the logits well beyond that (the check can fail)', () => {
    const model = toyModel(tempDir(), tinyModelDir(modelOptions), { type: 'houlsby', bottleneck: 16, initStd: 0.5 });
    const input = fixedInput(model.encoder.config.vocabSize);
    const a = tf.tidy(() => model.outputs(input, EVAL_CONTEXT).dataSync());
    const b = tf.tidy(() => model.outputs(input, { ...EVAL_CONTEXT, disabledAdapterLayers: new Set([0, 1, 2]) }).dataSync());
    expect(maxAbsDiff(a, b)).toBeGreaterThan(1e-3);
  });

  it('padding does not change the other tokens\' result: a padded row equals the unpadded row', () => {
    const model = toyModel(tempDir(), tinyModelDir(modelOptions), { type: 'houlsby', bottleneck: 16 });
    const padded = fixedInput(model.encoder.config.vocabSize);
    const T = padded.seqLen;
    const len = T - 3; // row 1 is padded to T
    const single = {
      inputIds: padded.inputIds.slice(T, T + len),
      tokenTypeIds: padded.tokenTypeIds.slice(T, T + len),
      attentionMask: new Float32Array(len).fill(1),
      batchSize: 1,
      seqLen: len,
    };
    const batchOut = tf.tidy(() => model.outputs(padded, EVAL_CONTEXT).arraySync() as number[][]);
    const singleOut = tf.tidy(() => model.outputs(single, EVAL_CONTEXT).arraySync() as number[][]);
    expect(maxAbsDiff(batchOut[1], singleOut[0])).toBeLessThan(1e-5);
  });
});
