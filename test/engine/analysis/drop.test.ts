import { beforeAll, describe, expect, it } from 'vitest';
import { trainRun, trainStep } from '../../../src/engine/train/trainer';
import { createRun } from '../../../src/engine/runs';
import { buildModel, loadAdapterModel, prepareData } from '../../../src/engine/experiment';
import { evaluate } from '../../../src/engine/analysis/evaluate';
import { adapterDropTradeoff, withLowestDropped } from '../../../src/engine/analysis/drop';
import { AdamW } from '../../../src/engine/train/adamw';
import { LayerHooks } from '../../../src/engine/model/bert';
import { fixedInput, tempDir, tinyModelDir, toyConfig, useBackend } from '../../helpers/fixtures';

const L = 3;
const modelOptions = { layers: L, hidden: 32, heads: 2, intermediate: 64 };

describe('AdapterDrop', () => {
  beforeAll(useBackend);

  it('the trade-off: n = 0 equals plain evaluation, and every n equals evaluation with those adapters dropped', async () => {
    const dir = tempDir();
    // Large adapters, so that dropping them changes predictions.
    const cfg = toyConfig(dir, tinyModelDir(modelOptions), { method: { type: 'houlsby', bottleneck: 8, initStd: 1 }, training: { epochs: 1, maxSteps: 4 } });
    const run = createRun(cfg.runsDir, cfg);
    await trainRun({ config: cfg, run });
    const { model, tokenizer } = await loadAdapterModel(run.adapterDir);
    const dev = (await prepareData(cfg, tokenizer)).dev;
    const result = adapterDropTradeoff(model, dev, { metric: 'macroF1', batchSize: 16, repeats: 1, timingExamples: 16 });

    expect(result.points.map((p) => p.n)).toEqual([0, 1, 2, 3]);
    expect(result.baseline).toBe(evaluate(model, dev, 16).metrics.macroF1);
    expect(result.points[0].value).toBe(result.baseline);
    const byDrop = result.points.map((p) => evaluate(model, dev, 16, withLowestDropped(p.n)).metrics.macroF1);
    expect(result.points.map((p) => p.value)).toEqual(byDrop);
    // The adapters matter here, so the check above is not about one constant.
    expect(new Set(byDrop).size).toBeGreaterThan(1);
    for (const p of result.points) expect(p.tokensPerSecond).toBeGreaterThan(0);
    expect(result.timing).toMatchObject({ examples: 16, repeats: 1, batchSize: 16 });
    expect(result.timing.tokens).toBe(dev.slice(0, 16).reduce((s, e) => s + e.inputIds.length, 0));
    model.dispose();
  });

  it('robust training (dropLowest: k) drops the adapters of the lowest n layers at each step, n uniform in 0..k', () => {
    const dir = tempDir();
    const modelDir = tinyModelDir(modelOptions);
    const seenPerStep = (dropLowest: number): string[] => {
      const cfg = toyConfig(dir, modelDir, { method: { type: 'pfeiffer', bottleneck: 4, dropLowest } });
      const model = buildModel(cfg, modelDir, ['neg', 'pos']);
      const hooks = model.method.hooks as LayerHooks;
      const original = hooks.feedForwardOutput!;
      let seen: number[] = [];
      hooks.feedForwardOutput = (i, out, residual, norm, ctx) => {
        seen.push(i);
        return original(i, out, residual, norm, ctx);
      };
      const params = model.trainableParams();
      const optimizer = new AdamW(params, { weightDecay: 0.01 });
      const input = fixedInput(model.encoder.config.vocabSize);
      const batch = { ...input, labels: new Float32Array([1, 0, 1]), realTokens: 0, indices: [0, 1, 2] };
      const patterns: string[] = [];
      for (let step = 0; step < 30; step++) {
        seen = [];
        trainStep(model, batch, cfg, step, [...params.values()], new Map([...params].map(([n, v]) => [v.name, n])), optimizer, () => 1e-3);
        patterns.push(seen.join(','));
      }
      optimizer.dispose();
      model.dispose();
      return patterns;
    };
    const robust = seenPerStep(2);
    // Only the layers above the dropped ones run their adapters: n = 0, 1 or 2, each of them drawn.
    expect(new Set(robust)).toEqual(new Set(['0,1,2', '1,2', '2']));
    expect(seenPerStep(0).every((p) => p === '0,1,2')).toBe(true);
  });
});
