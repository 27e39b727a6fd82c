import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { EVAL_CONTEXT, loadAdapterModel } from '../../../src/engine/experiment';
import { saveAdapterFolder } from '../../../src/engine/model/adapterIo';
import { AdapterModel } from '../../../src/engine/model/adapterModel';
import { METHOD_CATALOG } from '../../../src/engine/methods/catalog';
import { readSafetensors } from '../../../src/engine/model/safetensors';
import { fixedInput, maxAbsDiff, tempDir, tinyModelDir, toyConfig, toyModel, useBackend } from '../../helpers/fixtures';
import { checkGradients } from '../../helpers/gradcheck';
import { layerNorm } from '../../../src/engine/tf/ops';

/** Parallel adapters (He et al. 2022; AdapterHub's ParBnConfig). */
const L = 3;
const d = 24;
const modelOptions = { layers: L, hidden: d, heads: 2, intermediate: 48 };
const headParams = d * d + d + d * 2 + 2;
const adapter = (m: number) => 2 * m * d + d + m;
const prefix = (i: number) => `encoder.layer.${i}.output.adapters.toy`;

function logits(model: AdapterModel, disabled?: Set<number>): Float32Array {
  const input = fixedInput(model.encoder.config.vocabSize);
  return tf.tidy(() => model.outputs(input, disabled ? { ...EVAL_CONTEXT, disabledAdapterLayers: disabled } : EVAL_CONTEXT).dataSync() as Float32Array);
}

/** Every adapter parameter moved to random values (the up projection starts at zero). */
function randomise(model: AdapterModel, std = 0.3, seed = 3): void {
  let s = seed;
  for (const v of model.method.params.values()) v.assign(tf.randomNormal(v.shape, 0, std, 'float32', s++));
}

describe('parallel adapters', () => {
  beforeAll(useBackend);
  const build = (method: Record<string, unknown>) => toyModel(tempDir(), tinyModelDir(modelOptions), method);

  it("count: one adapter of 2md + d + m per layer, m = d / 2 by AdapterHub's default reduction factor 2; no LayerNorms", () => {
    const model = build({ type: 'parallel' });
    expect(model.parameterCounts().trainable).toBe(L * adapter(d / 2) + headParams);
    expect(model.method.params.get(`${prefix(0)}.adapter_down.0.weight`)!.shape).toEqual([d, d / 2]);
    const small = build({ type: 'parallel', bottleneck: 5, leaveOut: [1] });
    expect(small.parameterCounts().trainable).toBe(2 * adapter(5) + headParams);
    expect(small.method.adapterLayers).toEqual([0, 2]);
    // The catalog's size rule says the same.
    expect(METHOD_CATALOG.parallel.addedParams({ d, L, intermediate: 48 }, { reductionFactor: 2 })).toBe(L * adapter(d / 2));
    expect(METHOD_CATALOG.parallel.addedParams({ d, L, intermediate: 48 }, { bottleneck: 5, leaveOut: [1] })).toBe(2 * adapter(5));
  });

  it('the defaults are ParBnConfig\'s: scaling 4, relu, reduction factor 2, no LayerNorms trained', () => {
    const cfg = toyConfig(tempDir(), tinyModelDir(modelOptions), { method: { type: 'parallel' } });
    expect(cfg.method).toMatchObject({ reductionFactor: 2, scaling: 4, nonLinearity: 'relu', trainLayerNorm: false });
    expect(cfg.method.bottleneck).toBeUndefined();
    const sized = toyConfig(tempDir(), tinyModelDir(modelOptions), { method: { type: 'parallel', bottleneck: 3 } });
    expect(sized.method.reductionFactor).toBeUndefined();
    const config = build({ type: 'parallel' }).method.adapterConfig();
    expect(config).toMatchObject({ is_parallel: true, scaling: 4, init_weights: 'mam_adapter', mh_adapter: false, output_adapter: true, original_ln_before: false, original_ln_after: true, non_linearity: 'relu' });
  });

  it('identity at initialisation: the up projection starts at zero, so the logits are the base model\'s bit for bit', () => {
    const model = build({ type: 'parallel' });
    expect(Array.from(logits(model))).toEqual(Array.from(logits(model, new Set([0, 1, 2]))));
    const up = model.method.params.get(`${prefix(1)}.adapter_up.weight`)!;
    expect(Math.max(...Array.from(up.dataSync()).map(Math.abs))).toBe(0);
    // The down projection is PyTorch's Linear default, U(-1/sqrt(d), 1/sqrt(d)): not zero, within the bound.
    const down = Array.from(model.method.params.get(`${prefix(1)}.adapter_down.0.weight`)!.dataSync());
    expect(Math.max(...down.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(d));
    expect(Math.max(...down.map(Math.abs))).toBeGreaterThan(0.5 / Math.sqrt(d));
    randomise(model);
    expect(maxAbsDiff(logits(model), logits(model, new Set([0, 1, 2])))).toBeGreaterThan(1e-2);
  });

  it('computes LN(x + h + s A(x)) at the feed-forward sublayer: A reads the sublayer input x, not its output h', () => {
    const model = build({ type: 'parallel', bottleneck: 4, scaling: 2.5 });
    randomise(model);
    const hook = model.method.hooks!.feedForwardOutput!;
    const x = tf.randomNormal([5, d], 0, 1, 'float32', 11) as tf.Tensor2D;
    const h = tf.randomNormal([5, d], 0, 1, 'float32', 12) as tf.Tensor2D;
    const g = tf.randomNormal([d], 1, 0.1, 'float32', 13) as tf.Tensor1D;
    const b = tf.randomNormal([d], 0, 0.1, 'float32', 14) as tf.Tensor1D;
    const norm = (z: tf.Tensor2D, r?: tf.Tensor2D) => layerNorm(z, g, b, 1e-12, r);
    const p = (n: string) => model.method.params.get(`${prefix(1)}.${n}`)! as unknown as tf.Tensor2D;
    const expected = tf.tidy(() => {
      const a = tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, p('adapter_down.0.weight')), p('adapter_down.0.bias'))), p('adapter_up.weight')), p('adapter_up.bias'));
      const sum = tf.add(tf.add(x, h), tf.mul(a, 2.5));
      const mean = tf.mean(sum, 1, true);
      const variance = tf.mean(tf.square(tf.sub(sum, mean)), 1, true);
      return tf.add(tf.mul(tf.div(tf.sub(sum, mean), tf.sqrt(tf.add(variance, 1e-12))), g), b).dataSync();
    });
    const actual = tf.tidy(() => hook(1, h, x, norm, EVAL_CONTEXT).dataSync());
    expect(maxAbsDiff(actual, expected)).toBeLessThan(1e-5);
    // Reading h instead of x would be far off.
    const swapped = tf.tidy(() => hook(1, x, h, norm, EVAL_CONTEXT).dataSync());
    expect(maxAbsDiff(swapped, expected)).toBeGreaterThan(1e-2);
  });

  it('gradients of the down and up projections against finite differences', () => {
    const model = toyModel(tempDir(), tinyModelDir({ layers: 2, hidden: 16, heads: 2, intermediate: 32 }), { type: 'parallel', bottleneck: 3, nonLinearity: 'gelu', scaling: 1.5 });
    randomise(model);
    checkGradients(
      model,
      ['encoder.layer.0.output.adapters.toy.adapter_down.0.weight', 'encoder.layer.0.output.adapters.toy.adapter_up.bias', 'encoder.layer.1.output.adapters.toy.adapter_down.0.bias', 'encoder.layer.1.output.adapters.toy.adapter_up.weight'],
      new Float32Array([1, 0, 1]),
    );
  });

  it('an adapter folder saved and loaded back gives the same logits, bit for bit; AdapterHub names and layout', async () => {
    const dir = tempDir();
    const method = { type: 'parallel', bottleneck: 6, scaling: 3, leaveOut: [2] };
    const cfg = toyConfig(dir, tinyModelDir(modelOptions), { method });
    const model = toyModel(dir, tinyModelDir(modelOptions), method);
    randomise(model);
    const before = logits(model);
    const adapterDir = path.join(dir, 'adapter');
    saveAdapterFolder(adapterDir, {
      adapterParams: model.method.params,
      headParams: model.head.params,
      adapterConfig: model.method.adapterConfig(),
      headConfig: model.head.headConfig('test'),
      meta: { model: tinyModelDir(modelOptions), method: { ...cfg.method }, task: { name: 'toy', type: 'classification', labels: ['neg', 'pos'] }, maxSeqLength: 16, adapterName: 'toy', base: { hiddenSize: d, numLayers: L, vocabSize: model.encoder.config.vocabSize } },
    });
    const loaded = await loadAdapterModel(adapterDir);
    expect(loaded.model.method.type).toBe('parallel');
    expect(Array.from(logits(loaded.model))).toEqual(Array.from(before));
    const names = [...readSafetensors(path.join(adapterDir, 'adapter.safetensors')).tensors.keys()].sort();
    expect(names).toEqual([0, 1].flatMap((i) => ['adapter_down.0.bias', 'adapter_down.0.weight', 'adapter_up.bias', 'adapter_up.weight'].map((n) => `bert.${prefix(i)}.${n}`)).sort());
    const config = JSON.parse(fs.readFileSync(path.join(adapterDir, 'adapter_config.json'), 'utf8')).config;
    expect(config).toMatchObject({ is_parallel: true, scaling: 3, leave_out: [2] });
    expect(config).not.toHaveProperty('architecture');
  });

  it('the layer ablation and AdapterDrop switch a layer\'s parallel adapter off, and only there', () => {
    const model = build({ type: 'parallel', bottleneck: 4, leaveOut: [0] });
    randomise(model);
    const all = logits(model);
    // Layer 0 has no adapter: switching it off changes nothing; layer 1 has one.
    expect(Array.from(logits(model, new Set([0])))).toEqual(Array.from(all));
    expect(maxAbsDiff(logits(model, new Set([1])), all)).toBeGreaterThan(1e-3);
  });
});
