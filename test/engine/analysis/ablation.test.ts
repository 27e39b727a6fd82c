import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { trainRun } from '../../../src/engine/train/trainer';
import { createRun } from '../../../src/engine/runs';
import { EVAL_CONTEXT, loadAdapterModel, prepareData } from '../../../src/engine/experiment';
import { evaluate } from '../../../src/engine/analysis/evaluate';
import { layerAblation } from '../../../src/engine/analysis/ablation';
import { AdapterModel } from '../../../src/engine/model/adapterModel';
import { methodDefinition } from '../../../src/engine/methods/registry';
import { saveAdapterFolder } from '../../../src/engine/model/adapterIo';
import { fixedInput, maxAbsDiff, tempDir, tinyModelDir, toyConfig, toyModel, useBackend } from '../../helpers/fixtures';
import { Rng } from '../../../src/engine/util/random';

const modelOptions = { layers: 3, hidden: 32, heads: 2, intermediate: 64 };

describe('save and load', () => {
  beforeAll(useBackend);

  for (const method of [{ type: 'houlsby', bottleneck: 6, initStd: 0.3 }, { type: 'adapterbias', initStd: 0.3, l0Lambda: 0.1 }, { type: 'top-k', k: 1 }]) {
    it(`${method.type}: an adapter folder saved and loaded back gives the same logits, bit for bit`, async () => {
      const dir = tempDir();
      const model = toyModel(dir, tinyModelDir(modelOptions), method);
      // Move the trained base parameters away from the checkpoint's values, so loading must restore them.
      for (const n of model.method.trainedBaseParams) {
        const v = model.encoder.params.get(n)!;
        v.assign(tf.add(v, tf.randomNormal(v.shape, 0, 0.1, 'float32', 5)));
      }
      const input = fixedInput(model.encoder.config.vocabSize);
      const before = tf.tidy(() => model.outputs(input, EVAL_CONTEXT).dataSync());
      const adapterDir = path.join(dir, 'adapter');
      saveAdapterFolder(adapterDir, {
        adapterParams: new Map([...model.method.params, ...model.method.trainedBaseParams.map((n) => [n, model.encoder.params.get(n)!] as const)]),
        headParams: model.head.params,
        adapterConfig: model.method.adapterConfig(),
        headConfig: model.head.headConfig('test'),
        meta: {
          model: tinyModelDir(modelOptions),
          method: { ...(toyConfig(dir, tinyModelDir(modelOptions), { method }).method) },
          task: { name: 'toy', type: 'classification', labels: ['neg', 'pos'] },
          maxSeqLength: 16,
          adapterName: 'toy',
          base: { hiddenSize: 32, numLayers: 3, vocabSize: model.encoder.config.vocabSize },
        },
      });
      const loaded = await loadAdapterModel(adapterDir);
      const after = tf.tidy(() => loaded.model.outputs(input, EVAL_CONTEXT).dataSync());
      expect(Array.from(after)).toEqual(Array.from(before));
    });
  }

  it('a trained run\'s adapter reloads to the dev metrics the trainer reported', async () => {
    const dir = tempDir();
    const cfg = toyConfig(dir, tinyModelDir(modelOptions), { training: { epochs: 2 } });
    const run = createRun(cfg.runsDir, cfg);
    await trainRun({ config: cfg, run });
    const loaded = await loadAdapterModel(run.adapterDir);
    const prepared = await prepareData(cfg, loaded.tokenizer);
    const result = evaluate(loaded.model, prepared.dev, cfg.training.evalBatchSize);
    expect(result.metrics).toEqual(run.readResult<{ metrics: Record<string, number> }>('eval-dev')!.metrics);
  });

  it('refuses an adapter trained on another base model', async () => {
    const dir = tempDir();
    const cfg = toyConfig(dir, tinyModelDir(modelOptions), { training: { maxSteps: 2, epochs: 1 } });
    const run = createRun(cfg.runsDir, cfg);
    await trainRun({ config: cfg, run });
    const other = tinyModelDir({ layers: 2, hidden: 32, heads: 2, intermediate: 64 });
    await expect(loadAdapterModel(run.adapterDir, other)).rejects.toThrow(/trained on a base with 3 layers.*has 2 layers/);
  });
});

describe('layer-removal ablation', () => {
  beforeAll(useBackend);

  it('removing nothing equals plain evaluation; removing every layer equals the model without adapters', async () => {
    const dir = tempDir();
    const cfg = toyConfig(dir, tinyModelDir(modelOptions), { method: { type: 'houlsby', bottleneck: 8, initStd: 0.2 }, training: { epochs: 2 } });
    const run = createRun(cfg.runsDir, cfg);
    await trainRun({ config: cfg, run });
    const { model, tokenizer } = await loadAdapterModel(run.adapterDir);
    const dev = (await prepareData(cfg, tokenizer)).dev;
    const result = layerAblation(model, dev, { metric: 'accuracy', batchSize: 16 });

    expect(result.baseline).toBe(evaluate(model, dev, 16).metrics.accuracy);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) expect(result.matrix[i][j] === null).toBe(j < i);

    // The same encoder (with its trained LayerNorms) and head, with no adapter modules at all.
    const bare = new AdapterModel(model.encoder, methodDefinition('head').create(model.encoder, { adapterName: 'toy', config: cfg.method, rng: new Rng(0) }), model.head);
    expect(result.matrix[0][2]).toBe(evaluate(bare, dev, 16).metrics.accuracy);
    const input = fixedInput(model.encoder.config.vocabSize);
    const noAdapters = tf.tidy(() => model.outputs(input, { ...EVAL_CONTEXT, disabledAdapterLayers: new Set([0, 1, 2]) }).dataSync());
    expect(maxAbsDiff(noAdapters, tf.tidy(() => bare.outputs(input, EVAL_CONTEXT).dataSync()))).toBe(0);
    // A single removed layer changes the logits (the adapters are in use).
    const one = tf.tidy(() => model.outputs(input, { ...EVAL_CONTEXT, disabledAdapterLayers: new Set([1]) }).dataSync());
    expect(maxAbsDiff(one, tf.tidy(() => model.outputs(input, EVAL_CONTEXT).dataSync()))).toBeGreaterThan(0);
  });
});
