import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { EVAL_CONTEXT, prepareData } from '../../../src/engine/experiment';
import { BertEncoder } from '../../../src/engine/model/bert';
import { layerAblation } from '../../../src/engine/analysis/ablation';
import { trainRun } from '../../../src/engine/train/trainer';
import { createRun, readMetrics } from '../../../src/engine/runs';
import { loadTokenizer } from '../../../src/engine/data/tokenizer';
import { naiveAblation, naiveLoss } from '../../../bench/naive';
import { fixedInput, maxAbsDiff, tempDir, tinyModelDir, toyConfig, toyModel, useBackend } from '../../helpers/fixtures';

/** The fast paths must compute what the plain formulation computes: speed never changes results. */
const modelOptions = { layers: 3, hidden: 32, heads: 2, intermediate: 64 };

describe('fast paths equal the naive formulation', () => {
  beforeAll(useBackend);

  for (const method of [
    { type: 'houlsby', bottleneck: 8, initStd: 0.2 },
    { type: 'pfeiffer', bottleneck: 8, initStd: 0.2, nonLinearity: 'relu' },
    // (full fine-tuning is left out: the naive embedding gradient needs UnsortedSegmentSum, which wasm lacks.)
    { type: 'top-k', k: 2 },
    { type: 'bitfit' },
    { type: 'layernorm' },
  ]) {
    it(`${method.type}: same loss and same gradients`, () => {
      const model = toyModel(tempDir(), tinyModelDir(modelOptions), method);
      const input = fixedInput(model.encoder.config.vocabSize, 4, 9);
      const labels = new Float32Array([1, 0, 0, 1]);
      const params = model.trainableParams();
      const vars = [...params.values()];
      const fast = tf.variableGrads(() => model.loss(input, labels, EVAL_CONTEXT), vars);
      const naive = tf.variableGrads(() => naiveLoss(model, input, labels, EVAL_CONTEXT), vars);
      expect(Math.abs(fast.value.dataSync()[0] - naive.value.dataSync()[0])).toBeLessThan(1e-5);
      for (const [name, v] of params) {
        const a = fast.grads[v.name].dataSync();
        const b = naive.grads[v.name].dataSync();
        const scale = Math.max(1e-3, ...Array.from(b, Math.abs));
        expect(maxAbsDiff(a, b) / scale, name).toBeLessThan(1e-3);
      }
    });
  }

  it('the last layer computed for the first token only gives the first token of the full forward pass', () => {
    for (const method of [{ type: 'adapterbias' }, { type: 'houlsby', bottleneck: 8, initStd: 0.3 }]) {
      const model = toyModel(tempDir(), tinyModelDir(modelOptions), method);
      const input = fixedInput(model.encoder.config.vocabSize, 4, 9);
      // Padding in some rows: the keys and values of every token still count, padding still masked.
      input.attentionMask.fill(0, 9 - 3, 9);
      const ctx = model.withHooks(EVAL_CONTEXT);
      const full = tf.tidy(() => BertEncoder.firstToken(model.hidden(input, EVAL_CONTEXT), 4, 9).dataSync());
      const short = tf.tidy(() => model.encoder.firstTokenOutput(model.encoder.embed(input, ctx), input, ctx).dataSync());
      expect(short.length).toBe(full.length);
      expect(maxAbsDiff(short, full), method.type).toBeLessThan(1e-5);
      const h1 = tf.tidy(() => model.encoder.layers(model.encoder.embed(input, ctx), input, ctx, 0, 1));
      const fromOne = tf.tidy(() => model.encoder.firstTokenOutput(h1, input, ctx, 1).dataSync());
      expect(maxAbsDiff(fromOne, full), `${method.type} from layer 1`).toBeLessThan(1e-5);
      h1.dispose();
      model.dispose();
    }
  });

  it('the shared-prefix layer ablation equals evaluating every span from scratch', async () => {
    const dir = tempDir();
    const cfg = toyConfig(dir, tinyModelDir(modelOptions), { method: { type: 'houlsby', bottleneck: 8, initStd: 0.3 } });
    const model = toyModel(dir, tinyModelDir(modelOptions), { type: 'houlsby', bottleneck: 8, initStd: 0.3 });
    const dev = (await prepareData(cfg, await loadTokenizer(tinyModelDir(modelOptions)))).dev;
    const fast = layerAblation(model, dev, { metric: 'accuracy', batchSize: 16 });
    const naive = naiveAblation(model, dev, { metric: 'accuracy', batchSize: 16 });
    expect(fast.baseline).toBe(naive.baseline);
    expect(fast.matrix).toEqual(naive.matrix);
    // The random adapters matter, so the matrix is not trivially constant.
    expect(new Set(fast.matrix.flat().filter((v) => v !== null)).size).toBeGreaterThan(1);
  });

  it('training on cached frozen layers gives the losses of recomputing them (dropout off)', async () => {
    const modelDir = tinyModelDir(modelOptions);
    const overrides = (cache: boolean) => ({
      method: { type: 'houlsby', bottleneck: 4, leaveOut: [0, 1], trainLayerNorm: false },
      training: { epochs: 2, maxSteps: 16, dropout: 0, cacheFrozenLayers: cache },
    });
    const losses = async (cache: boolean) => {
      const cfg = toyConfig(tempDir(), modelDir, overrides(cache));
      const run = createRun(cfg.runsDir, cfg);
      const logs: string[] = [];
      await trainRun({ config: cfg, run, callbacks: { log: (m) => logs.push(m) } });
      return { losses: readMetrics(run.dir).filter((m) => m.type === 'train').map((m) => m.loss as number), logs, dev: run.readResult<{ metrics: { loss: number } }>('eval-dev')!.metrics.loss };
    };
    const cached = await losses(true);
    const plain = await losses(false);
    expect(cached.logs.some((l) => /cached the outputs of the 2 frozen lowest layers/.test(l))).toBe(true);
    expect(plain.logs.some((l) => /cached/.test(l))).toBe(false);
    expect(cached.losses).toHaveLength(16);
    expect(maxAbsDiff(cached.losses, plain.losses)).toBeLessThan(1e-4);
    expect(Math.abs(cached.dev - plain.dev)).toBeLessThan(1e-4);
  });
});
