import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { trainRun } from '../../../src/engine/train/trainer';
import { createRun, RunHandle } from '../../../src/engine/runs';
import { buildModel, EVAL_CONTEXT, loadAdapterModel } from '../../../src/engine/experiment';
import { AdapterModel } from '../../../src/engine/model/adapterModel';
import { isFusion } from '../../../src/engine/methods/fusion';
import { saveFusionFolder, FUSION_CONFIG_FILE, FUSION_WEIGHTS } from '../../../src/engine/model/fusionIo';
import { readSafetensors } from '../../../src/engine/model/safetensors';
import { UserInputError } from '../../../src/engine/errors';
import { fixedInput, maxAbsDiff, tempDir, tinyModelDir, toyConfig, useBackend } from '../../helpers/fixtures';
import { checkGradients } from '../../helpers/gradcheck';

const L = 2;
const d = 32;
const modelOptions = { layers: L, hidden: d, heads: 2, intermediate: 64 };

/** A pfeiffer adapter on the toy task under another task name, trained a few steps; returns its run. */
async function trainAdapter(name: string, seed: number, modelDir = tinyModelDir(modelOptions), method: Record<string, unknown> = {}): Promise<RunHandle> {
  const cfg = toyConfig(tempDir(), modelDir, {
    task: { name },
    method: { type: 'pfeiffer', bottleneck: 8, initStd: 0.3, trainLayerNorm: false, ...method },
    training: { maxSteps: 3, epochs: 1, seed },
  });
  const run = createRun(cfg.runsDir, cfg);
  await trainRun({ config: cfg, run });
  return run;
}

function fusionModel(adapters: string[], modelDir = tinyModelDir(modelOptions)): AdapterModel {
  const cfg = toyConfig(tempDir(), modelDir, { method: { type: 'fusion', adapters } });
  return buildModel(cfg, modelDir, ['neg', 'pos']);
}

/** Gives `target` the head of `source` (same shapes; the head's names carry the task's name). */
function copyHead(target: AdapterModel, source: AdapterModel): void {
  const from = [...source.head.params.values()];
  [...target.head.params.values()].forEach((v, i) => v.assign(from[i]));
}

const logits = (model: AdapterModel) => tf.tidy(() => model.outputs(fixedInput(model.encoder.config.vocabSize), EVAL_CONTEXT).dataSync() as Float32Array);

describe('AdapterFusion', () => {
  let a: RunHandle;
  let b: RunHandle;
  beforeAll(async () => {
    await useBackend();
    a = await trainAdapter('alpha', 1);
    b = await trainAdapter('beta', 2);
  });

  it('with its attention forced onto one adapter, the fusion computes that adapter\'s logits', async () => {
    const single = (await loadAdapterModel(a.adapterDir)).model;
    const other = (await loadAdapterModel(b.adapterDir)).model;
    const fusion = fusionModel([a.dir, b.dir]);
    copyHead(fusion, single);
    if (!isFusion(fusion.method)) throw new Error('not a fusion');
    fusion.method.fusion.forcedAdapter = 0;
    const expected = logits(single);
    // W_V starts as AdapterHub's: the identity with 1e-6 off the diagonal.
    expect(maxAbsDiff(logits(fusion), expected)).toBeLessThan(1e-4);
    // ...and forced onto the other adapter it computes something else (the adapters differ).
    fusion.method.fusion.forcedAdapter = 1;
    copyHead(other, single);
    expect(maxAbsDiff(logits(fusion), logits(other))).toBeLessThan(1e-4);
    expect(maxAbsDiff(logits(fusion), expected)).toBeGreaterThan(1e-3);

    // With one fused adapter the softmax is over one adapter: attention 1 without forcing.
    const one = fusionModel([a.dir]);
    copyHead(one, single);
    expect(maxAbsDiff(logits(one), expected)).toBeLessThan(1e-4);
    for (const m of [single, other, fusion, one]) m.dispose();
  });

  it('attention is a distribution over the fused adapters for every token of every layer', () => {
    const fusion = fusionModel([a.dir, b.dir]);
    if (!isFusion(fusion.method)) throw new Error('not a fusion');
    // Move the query and key away from their near-zero start so the attention is not uniform.
    for (const [n, v] of fusion.method.params) if (/\.(query|key)\.weight$/.test(n)) v.assign(tf.randomNormal(v.shape, 0, 1, 'float32', 3));
    const rows: number[][] = [];
    fusion.method.fusion.onAttention = (layer, adapters, probs) => {
      expect(adapters).toEqual([0, 1]);
      rows.push(...(probs.arraySync() as number[][]));
    };
    const input = fixedInput(fusion.encoder.config.vocabSize);
    // The full forward pass (outputs() runs the last layer for the first token only).
    tf.tidy(() => void fusion.hidden(input, EVAL_CONTEXT));
    expect(rows).toHaveLength(L * input.batchSize * input.seqLen);
    for (const row of rows) {
      expect(row.every((p) => p >= 0)).toBe(true);
      expect(Math.abs(row[0] + row[1] - 1)).toBeLessThan(1e-6);
    }
    expect(rows.some((r) => Math.abs(r[0] - 0.5) > 0.05)).toBe(true);
    fusion.dispose();
  });

  it('a fusion saved and loaded gives the same logits, alone in its folder, in AdapterHub\'s layout', async () => {
    const cfg = toyConfig(tempDir(), tinyModelDir(modelOptions), { method: { type: 'fusion', adapters: [a.dir, b.dir] } });
    const fusion = buildModel(cfg, tinyModelDir(modelOptions), ['neg', 'pos']);
    const method = fusion.method;
    if (!isFusion(method)) throw new Error('not a fusion');
    for (const v of [...method.params.values(), ...fusion.head.params.values()]) v.assign(tf.add(v, tf.randomNormal(v.shape, 0, 0.2, 'float32', 9)));
    const before = logits(fusion);
    const dir = path.join(tempDir(), 'adapter');
    saveFusionFolder(dir, {
      fusionParams: method.params,
      headParams: fusion.head.params,
      fusionConfig: method.adapterConfig(),
      headConfig: fusion.head.headConfig('test'),
      meta: {
        model: tinyModelDir(modelOptions),
        method: { ...cfg.method },
        task: { name: 'toy', type: 'classification', labels: ['neg', 'pos'] },
        maxSeqLength: 16,
        adapterName: 'toy',
        base: { hiddenSize: d, numLayers: L, vocabSize: fusion.encoder.config.vocabSize },
      },
      fused: method.fusion.adapterNames.map((name, i) => ({ name, dir: method.fusion.sources[i] })),
    });
    const config = JSON.parse(fs.readFileSync(path.join(dir, FUSION_CONFIG_FILE), 'utf8'));
    expect(config.name).toBe('alpha,beta');
    expect(config.config).toMatchObject({ query: true, key: true, value: true, value_before_softmax: true, residual_before: false });
    const weights = readSafetensors(path.join(dir, FUSION_WEIGHTS.safetensors)).tensors;
    expect([...weights.keys()].sort()).toEqual(
      [0, 1].flatMap((i) => ['query.weight', 'query.bias', 'key.weight', 'key.bias', 'value.weight'].map((p) => `bert.encoder.layer.${i}.output.adapter_fusion_layer.alpha,beta.${p}`)).sort(),
    );
    for (const name of ['alpha', 'beta']) expect(fs.existsSync(path.join(dir, name, 'adapter.safetensors')), name).toBe(true);
    // The runs the adapters came from are gone: the fusion folder holds everything it needs.
    const moved = path.join(tempDir(), 'moved');
    fs.cpSync(dir, moved, { recursive: true });
    fs.rmSync(dir, { recursive: true });
    const loaded = (await loadAdapterModel(moved)).model;
    expect(Array.from(logits(loaded))).toEqual(Array.from(before));
    fusion.dispose();
    loaded.dispose();
  });

  it('refuses adapters trained on another base model, naming the adapter and what differs', async () => {
    const sameShape = tinyModelDir({ ...modelOptions, seed: 2 });
    expect(() => fusionModel([a.dir, b.dir], sameShape)).toThrow(UserInputError);
    expect(() => fusionModel([a.dir, b.dir], sameShape)).toThrow(/adapter "alpha" .* was trained on another base model.*other weights \(fingerprint/);
    const deeper = tinyModelDir({ ...modelOptions, layers: 3 });
    expect(() => fusionModel([a.dir], deeper)).toThrow(/"alpha" .*2 layers, not 3/);
    // Only bottleneck adapters can be fused.
    const bitfit = await trainAdapter('gamma', 3, undefined, { type: 'bitfit', bottleneck: undefined, initStd: undefined, trainLayerNorm: undefined });
    expect(() => fusionModel([a.dir, bitfit.dir])).toThrow(/is a bitfit run; AdapterFusion fuses bottleneck adapters/);
  });

  it('training moves the fusion layers and the head only; fusion-attention.json rows sum to one', async () => {
    const modelDir = tinyModelDir(modelOptions);
    const cfg = toyConfig(tempDir(), modelDir, { method: { type: 'fusion', adapters: [a.dir, b.dir] }, training: { epochs: 1, maxSteps: 4, learningRate: 1e-2 } });
    const before = buildModel(cfg, modelDir, ['neg', 'pos']);
    const run = createRun(cfg.runsDir, cfg);
    await trainRun({ config: cfg, run });
    const record = run.reload();
    // Query and key d x d + d, value d x d (no bias), per layer; the head d x d + d + 2d + 2.
    expect(record.params?.trainable).toBe(L * (3 * d * d + 2 * d) + (d * d + d + 2 * d + 2));
    const after = (await loadAdapterModel(run.adapterDir)).model;
    const changed = (x: tf.Variable, y: tf.Variable) => maxAbsDiff(x.dataSync(), y.dataSync()) > 0;
    for (const [n, v] of before.method.fixedParams!) expect(changed(v, after.method.fixedParams!.get(n)!), `${n} is a fused adapter's and must not move`).toBe(false);
    for (const [n, v] of before.encoder.params) expect(changed(v, after.encoder.params.get(n)!), n).toBe(false);
    expect([...before.method.params].some(([n, v]) => n.includes('.query.') && changed(v, after.method.params.get(n)!))).toBe(true);

    const attention = run.readResult<{ layers: number[]; adapters: string[]; classes: string[]; matrix: number[][][]; examples: number[] }>('fusion-attention')!;
    expect(attention.layers).toEqual([0, 1]);
    expect(attention.adapters).toEqual(['alpha', 'beta']);
    expect(attention.classes).toEqual(['neg', 'pos']);
    expect(attention.examples.reduce((x, y) => x + y, 0)).toBe(48);
    for (const perClass of attention.matrix) for (const row of perClass) expect(Math.abs(row[0] + row[1] - 1)).toBeLessThan(1e-6);
    before.dispose();
    after.dispose();
  });

  it('gradients of the query, key and value parameters (with the value regulariser) match finite differences', async () => {
    const small = tinyModelDir({ layers: 2, hidden: 16, heads: 2, intermediate: 32 });
    const x = await trainAdapter('x', 4, small);
    const y = await trainAdapter('y', 5, small);
    const fusion = fusionModel([x.dir, y.dir], small);
    // Larger query, key and head weights than their near-zero start (not so large that the softmax saturates), so
    // that where the attention goes moves the loss well above float32 noise.
    for (const [n, v] of fusion.method.params) if (/\.(query|key)\.weight$/.test(n)) v.assign(tf.randomNormal(v.shape, 0, 0.3, 'float32', 11));
    for (const [n, v] of fusion.head.params) if (n.endsWith('.weight')) v.assign(tf.randomNormal(v.shape, 0, 1, 'float32', 12));
    const p = (i: number, w: string) => `encoder.layer.${i}.output.adapter_fusion_layer.x,y.${w}`;
    checkGradients(fusion, [p(0, 'query.weight'), p(1, 'query.bias'), p(1, 'key.weight'), p(0, 'value.weight')], new Float32Array([1, 0, 1]));
    fusion.dispose();
  });
});
