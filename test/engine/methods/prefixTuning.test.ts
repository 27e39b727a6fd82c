import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { adapterMeta, EVAL_CONTEXT, loadAdapterModel } from '../../../src/engine/experiment';
import { AdapterModel } from '../../../src/engine/model/adapterModel';
import { METHOD_CATALOG, PREFIX_TUNING_DEFAULTS } from '../../../src/engine/methods/catalog';
import { methodDefinition } from '../../../src/engine/methods/registry';
import { PrefixTuningInstance } from '../../../src/engine/methods/prefixTuning';
import { readSafetensors } from '../../../src/engine/model/safetensors';
import { Rng } from '../../../src/engine/util/random';
import { fixedInput, maxAbsDiff, tempDir, tinyModelDir, toyConfig, toyModel, useBackend } from '../../helpers/fixtures';
import { checkGradients } from '../../helpers/gradcheck';

/** Prefix-tuning (Li & Liang 2021; AdapterHub's PrefixTuningConfig). */
const L = 3;
const d = 24;
const modelOptions = { layers: L, hidden: d, heads: 2, intermediate: 48 };
const headParams = d * d + d + d * 2 + 2;
const pool = 'prefix_tuning.prefix_tunings.toy.self_prefix';

function logits(model: AdapterModel, ctx: Partial<typeof EVAL_CONTEXT> & { disabledAdapterLayers?: Set<number> } = {}): Float32Array {
  const input = fixedInput(model.encoder.config.vocabSize);
  return tf.tidy(() => model.outputs(input, { ...EVAL_CONTEXT, ...ctx }).dataSync() as Float32Array);
}

describe('prefix-tuning', () => {
  beforeAll(useBackend);
  const build = (method: Record<string, unknown>) => toyModel(tempDir(), tinyModelDir(modelOptions), method);

  it('counts: the MLP while training, Pd + (d + 1)b + (b + 1)2nd; flat, P·2nd; n the layers with a prefix', () => {
    const P = 5;
    const b = 7;
    const reparam = build({ type: 'prefix-tuning', prefixLength: P, bottleneckSize: b });
    expect(reparam.parameterCounts().trainable).toBe(P * d + (d + 1) * b + (b + 1) * 2 * L * d + headParams);
    expect(reparam.method.params.get(`${pool}.wte.weight`)!.shape).toEqual([P, d]);
    expect(reparam.method.params.get(`${pool}.control_trans.2.weight`)!.shape).toEqual([b, 2 * L * d]);
    const flat = build({ type: 'prefix-tuning', prefixLength: P, flat: true, leaveOut: [1] });
    expect(flat.parameterCounts().trainable).toBe(P * 2 * 2 * d + headParams);
    expect([...flat.method.params.keys()]).toEqual([`${pool}.control_trans`]);
    const shape = { d, L, intermediate: 48 };
    expect(METHOD_CATALOG['prefix-tuning'].addedParams(shape, { prefixLength: P, bottleneckSize: b })).toBe(P * d + (d + 1) * b + (b + 1) * 2 * L * d);
    expect(METHOD_CATALOG['prefix-tuning'].addedParams(shape, { prefixLength: P, flat: true, leaveOut: [1] })).toBe(P * 4 * d);
    // AdapterHub's defaults, P = 30 and b = 512, with BERT-base's shape: 9.9M while training, 0.55M saved.
    const base = { d: 768, L: 12, intermediate: 3072 };
    expect(METHOD_CATALOG['prefix-tuning'].addedParams(base, {})).toBe(30 * 768 + 769 * 512 + 513 * 2 * 12 * 768);
    expect(METHOD_CATALOG['prefix-tuning'].addedParams(base, { flat: true })).toBe(30 * 2 * 12 * 768);
  });

  it("defaults and config are AdapterHub's: prefix length 30, MLP 512 wide, tanh, not flat, no dropout", () => {
    const cfg = toyConfig(tempDir(), tinyModelDir(modelOptions), { method: { type: 'prefix-tuning' } });
    expect(cfg.method).toMatchObject({ prefixLength: 30, bottleneckSize: 512, flat: false, nonLinearity: 'tanh', dropout: 0, trainLayerNorm: false });
    const config = build({ type: 'prefix-tuning', prefixLength: 4, bottleneckSize: 8, leaveOut: [2] }).method.adapterConfig();
    expect(Object.keys(config).sort()).toEqual(Object.keys(PREFIX_TUNING_DEFAULTS).sort());
    expect(config).toMatchObject({ architecture: 'prefix_tuning', prefix_length: 4, bottleneck_size: 8, leave_out: [2], flat: false, non_linearity: 'tanh', use_gating: false });
  });

  it('no identity at initialisation (a fresh prefix changes every attention); with its layers switched off it is the base model, bit for bit', () => {
    const model = build({ type: 'prefix-tuning', prefixLength: 4, bottleneckSize: 8 });
    const off = logits(model, { disabledAdapterLayers: new Set([0, 1, 2]) });
    const bare = new AdapterModel(model.encoder, methodDefinition('head').create(model.encoder, { adapterName: 'toy', config: toyConfig(tempDir(), tinyModelDir(modelOptions), { method: { type: 'head' } }).method, rng: new Rng(0) }), model.head);
    expect(Array.from(off)).toEqual(Array.from(logits(bare)));
    expect(maxAbsDiff(logits(model), off)).toBeGreaterThan(1e-3);
  });

  it('the attention mask is extended: a padded row equals the same row unpadded', () => {
    const model = build({ type: 'prefix-tuning', prefixLength: 3, bottleneckSize: 8 });
    const padded = fixedInput(model.encoder.config.vocabSize);
    const T = padded.seqLen;
    const len = T - 3;
    const single = { inputIds: padded.inputIds.slice(T, T + len), tokenTypeIds: padded.tokenTypeIds.slice(T, T + len), attentionMask: new Float32Array(len).fill(1), batchSize: 1, seqLen: len };
    const batchOut = tf.tidy(() => model.outputs(padded, EVAL_CONTEXT).arraySync() as number[][]);
    const singleOut = tf.tidy(() => model.outputs(single, EVAL_CONTEXT).arraySync() as number[][]);
    expect(maxAbsDiff(batchOut[1], singleOut[0])).toBeLessThan(1e-5);
    // The prefix is attended: with it switched off, the same row differs.
    const noPrefix = tf.tidy(() => model.outputs(single, { ...EVAL_CONTEXT, disabledAdapterLayers: new Set([0, 1, 2]) }).arraySync() as number[][]);
    expect(maxAbsDiff(noPrefix[0], singleOut[0])).toBeGreaterThan(1e-3);
  });

  it('the flat form (the MLP computed once, as eject_prefix_tuning does) computes the same logits, bit for bit', () => {
    const model = build({ type: 'prefix-tuning', prefixLength: 4, bottleneckSize: 8, leaveOut: [1] });
    const flat = build({ type: 'prefix-tuning', prefixLength: 4, flat: true, leaveOut: [1] });
    const vector = (model.method as PrefixTuningInstance).flatPrefix();
    expect(vector.shape).toEqual([4 * 2 * 2 * d]);
    flat.method.params.get(`${pool}.control_trans`)!.assign(vector);
    flat.head.params.forEach((v, n) => v.assign(model.head.params.get(n)!));
    expect(Array.from(logits(flat))).toEqual(Array.from(logits(model)));
    vector.dispose();
  });

  it('dropout on the prefix while training only', () => {
    const model = build({ type: 'prefix-tuning', prefixLength: 4, bottleneckSize: 8, dropout: 0.5 });
    const train = (seed: number) => logits(model, { training: true, rng: new Rng(seed), hiddenDropout: 0, attentionDropout: 0 });
    expect(maxAbsDiff(train(1), train(2))).toBeGreaterThan(1e-4);
    const none = build({ type: 'prefix-tuning', prefixLength: 4, bottleneckSize: 8 });
    expect(Array.from(logits(none, { training: true, rng: new Rng(1), hiddenDropout: 0, attentionDropout: 0 }))).toEqual(Array.from(logits(none)));
  });

  it('gradients against finite differences: the embedding, both MLP layers, and the flat prefix', () => {
    const small = tinyModelDir({ layers: 2, hidden: 16, heads: 2, intermediate: 32 });
    const labels = new Float32Array([1, 0, 1]);
    const reparam = toyModel(tempDir(), small, { type: 'prefix-tuning', prefixLength: 3, bottleneckSize: 5 });
    // Larger MLP weights than PyTorch's default init, so every parameter's gradient is far above float32 noise.
    let seed = 1;
    // (a first layer small enough to keep tanh out of saturation, a second one large).
    for (const [n, v] of reparam.method.params) if (n.includes('control_trans')) v.assign(tf.randomNormal(v.shape, 0, n.includes('.0.') ? 0.35 : 2, 'float32', seed++));
    checkGradients(reparam, [`${pool}.wte.weight`, `${pool}.control_trans.0.weight`, `${pool}.control_trans.0.bias`, `${pool}.control_trans.2.weight`, `${pool}.control_trans.2.bias`], labels);
    const flat = toyModel(tempDir(), small, { type: 'prefix-tuning', prefixLength: 3, flat: true });
    flat.method.params.get(`${pool}.control_trans`)!.assign(tf.randomNormal([3 * 2 * 2 * 16], 0, 3, 'float32', 5));
    checkGradients(flat, [`${pool}.control_trans`], labels);
  });

  it('saves the flat form in AdapterHub\'s names, and the loaded folder computes the same logits, bit for bit', async () => {
    const dir = tempDir();
    const method = { type: 'prefix-tuning', prefixLength: 4, bottleneckSize: 8, leaveOut: [0] };
    const cfg = toyConfig(dir, tinyModelDir(modelOptions), { method });
    const model = toyModel(dir, tinyModelDir(modelOptions), method);
    const before = logits(model);
    const adapterDir = path.join(dir, 'adapter');
    expect(model.method.saveAdapter).toBeDefined();
    model.method.saveAdapter!(adapterDir, { adapterParams: model.method.params, headParams: model.head.params, adapterConfig: model.method.adapterConfig(), headConfig: model.head.headConfig('test'), meta: adapterMeta(cfg, model) });
    const weights = readSafetensors(path.join(adapterDir, 'adapter.safetensors')).tensors;
    expect([...weights.keys()]).toEqual([`bert.${pool}.control_trans`]);
    expect(weights.get(`bert.${pool}.control_trans`)!.shape).toEqual([4 * 2 * 2 * d]);
    const file = JSON.parse(fs.readFileSync(path.join(adapterDir, 'adapter_config.json'), 'utf8'));
    expect(file.config).toMatchObject({ architecture: 'prefix_tuning', flat: true, prefix_length: 4, leave_out: [0] });
    expect(file.adapter_lab.method.flat).toBe(true);
    expect(fs.readFileSync(path.join(adapterDir, 'adapter_config.json'), 'utf8')).toMatch(/"dropout": 0\.0/);
    const loaded = await loadAdapterModel(adapterDir);
    expect(loaded.model.method.type).toBe('prefix-tuning');
    expect(Array.from(logits(loaded.model))).toEqual(Array.from(before));
  });

  it('the layer ablation and AdapterDrop switch a layer\'s prefix off, and only there', () => {
    const model = build({ type: 'prefix-tuning', prefixLength: 4, bottleneckSize: 8, leaveOut: [1] });
    const all = logits(model);
    expect(model.method.adapterLayers).toEqual([0, 2]);
    expect(Array.from(logits(model, { disabledAdapterLayers: new Set([1]) }))).toEqual(Array.from(all));
    expect(maxAbsDiff(logits(model, { disabledAdapterLayers: new Set([2]) }), all)).toBeGreaterThan(1e-4);
  });
});
