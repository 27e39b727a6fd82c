import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { bertFamily } from '../../../src/engine/families/bert/family';
import { familyFor } from '../../../src/engine/families';
import { evaluate } from '../../../src/engine/analysis/evaluate';
import { layerAblation } from '../../../src/engine/analysis/ablation';
import { unitAblation } from '../../../src/engine/analysis/unitAblation';
import { BertFamilyModel } from '../../../src/engine/families/bert/family';
import { trainStep } from '../../../src/engine/train/trainer';
import { AdamW, applyGradients } from '../../../src/engine/train/adamw';
import { prepareData, buildModel, modelDirOf } from '../../../src/engine/experiment';
import { loadTokenizer } from '../../../src/engine/data/tokenizer';
import { Rng } from '../../../src/engine/util/random';
import { tempDir, tinyModelDir, toyConfig, useBackend } from '../../helpers/fixtures';

/** The BERT family behind the interface computes what the text path computes, bit for bit. */
describe('the BERT family through the family interface', () => {
  beforeAll(useBackend);

  it('reads the same data, takes the same training steps as the trainer and evaluates as analysis/evaluate does', async () => {
    const dir = tempDir();
    // No dropout: the trainer's step and the family's draw their randomness from different generators.
    const cfg = toyConfig(dir, tinyModelDir({ layers: 2, hidden: 16, heads: 2, intermediate: 32 }), { method: { type: 'pfeiffer', bottleneck: 4 }, training: { dropout: 0 } });
    expect(familyFor(cfg.task.type)).toBe(bertFamily);
    const data = await bertFamily.readData(cfg);
    const prepared = await prepareData(cfg, await loadTokenizer(modelDirOf(cfg)));
    expect(data.train).toEqual(prepared.train);
    expect(data.labels).toEqual(['neg', 'pos']);

    const viaFamily = await bertFamily.buildModel(cfg, data.labels, data.train);
    const direct = buildModel(cfg, modelDirOf(cfg), data.labels);
    const params = direct.trainableParams();
    const vars = [...params.values()];
    const nameOfVar = new Map(vars.map((v) => [v.name, [...params.entries()].find(([, w]) => w === v)![0]]));
    const directOptimizer = new AdamW(params, { weightDecay: cfg.training.weightDecay });
    const familyOptimizer = new AdamW(viaFamily.trainableParams(), { weightDecay: cfg.training.weightDecay });
    const batches = viaFamily.batches(data.train, cfg.training.batchSize, { training: true, rng: new Rng(1) });
    expect(batches.reduce((n, b) => n + b.size, 0)).toBe(data.train.length);
    for (let step = 0; step < 3; step++) {
      const expected = trainStep(direct, batches[step], cfg, step, vars, nameOfVar, directOptimizer, () => 1e-2);
      const { loss, grads } = viaFamily.lossAndGradients(batches[step], new Rng(step));
      applyGradients(loss, grads, cfg.training.maxGradNorm, familyOptimizer, () => 1e-2);
      expect(loss).toBe(expected);
    }
    for (const [n, v] of viaFamily.trainableParams()) expect(Array.from(v.dataSync()), n).toEqual(Array.from(params.get(n)!.dataSync()));
    const ours = viaFamily.evaluate(data.dev, 16);
    const theirs = evaluate(direct, data.dev, 16);
    expect(ours.metrics).toEqual(theirs.metrics);
    expect(ours.predictions).toEqual(theirs.predictions);
    expect(viaFamily.ablationUnits).toEqual([0, 1]);
    viaFamily.setDisabledUnits(new Set([0, 1]));
    expect(viaFamily.evaluate(data.dev, 16).loss).not.toBe(ours.loss);
    viaFamily.setDisabledUnits(new Set());
    // The family-generic ablation (one evaluation per span) equals the encoder's own, which shares work.
    for (const metric of ['accuracy', 'macroF1']) {
      const generic = unitAblation(viaFamily, data.dev, { metric, batchSize: 16 });
      const own = layerAblation((viaFamily as BertFamilyModel).model, data.dev, { metric, batchSize: 16 });
      expect(generic).toEqual(own);
    }

    const saved = path.join(dir, 'adapter');
    viaFamily.saveTrained(saved);
    const loaded = await bertFamily.loadTrained(saved);
    expect(loaded.evaluate(data.dev, 16).predictions).toEqual(ours.predictions);
    for (const m of [viaFamily, loaded]) m.dispose();
    direct.dispose();
  });
});
