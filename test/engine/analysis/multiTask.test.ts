import { beforeAll, describe, expect, it } from 'vitest';
import { trainRun } from '../../../src/engine/train/trainer';
import { createRun, RunHandle } from '../../../src/engine/runs';
import { loadAdapterModel, prepareData } from '../../../src/engine/experiment';
import { predict } from '../../../src/engine/analysis/evaluate';
import { loadTaskModels, predictMultiTask } from '../../../src/engine/analysis/multiTask';
import { tempDir, tinyModelDir, toyConfig, useBackend } from '../../helpers/fixtures';

const modelOptions = { layers: 3, hidden: 32, heads: 2, intermediate: 64 };

async function train(name: string, method: Record<string, unknown>, modelDir = tinyModelDir(modelOptions), seed = 1): Promise<RunHandle> {
  const cfg = toyConfig(tempDir(), modelDir, { task: { name }, method, training: { epochs: 1, maxSteps: 3, seed } });
  const run = createRun(cfg.runsDir, cfg);
  await trainRun({ config: cfg, run });
  return run;
}

describe('multi-task inference', () => {
  beforeAll(useBackend);

  it('several tasks in one pass predict exactly what each predicts alone, sharing the frozen lowest layers', async () => {
    // Two Pfeiffer tasks without adapters in layers 0 and 1 (AdapterHub fuses only adapters of one placement); a
    // third, Houlsby, that trains every LayerNorm (it shares nothing) and a
    // fusion of the first two.
    const a = await train('alpha', { type: 'pfeiffer', bottleneck: 4, initStd: 0.3, leaveOut: [0, 1], trainLayerNorm: false });
    const b = await train('beta', { type: 'pfeiffer', bottleneck: 4, initStd: 0.3, leaveOut: [0, 1], trainLayerNorm: false }, undefined, 2);
    const c = await train('gamma', { type: 'houlsby', bottleneck: 4, initStd: 0.3 }, undefined, 3);
    const f = await train('delta', { type: 'fusion', adapters: [a.dir, b.dir] });
    const cfg = a.record.config;

    const single = async (run: RunHandle) => {
      const { model, tokenizer } = await loadAdapterModel(run.adapterDir);
      const dev = (await prepareData(cfg, tokenizer)).dev;
      const out = predict(model, dev, 64).outputs;
      model.dispose();
      return { out, dev };
    };
    const expected = await Promise.all([a, b, c, f].map(single));
    const dev = expected[0].dev;

    const tasks = await loadTaskModels([a, b, f].map((r) => r.adapterDir));
    const shared = predictMultiTask(tasks.models, dev, 64);
    expect(shared.groups).toEqual([{ models: [0, 1, 2], depth: 2 }]);
    expect(shared.results.map((r) => r.outputs)).toEqual([expected[0].out, expected[1].out, expected[3].out]);
    // One base model: the tasks' encoders hold the same frozen variables.
    const q = 'encoder.layer.2.attention.self.query.weight';
    expect(tasks.models[1].encoder.params.get(q)).toBe(tasks.models[0].encoder.params.get(q));
    // dispose() frees every variable once: the shared encoder's, each task's own, the fused adapters'.
    const variables = tasks.models.flatMap((m) => [...m.encoder.params.values(), ...m.method.params.values(), ...(m.method.fixedParams?.values() ?? []), ...m.head.params.values()]);
    tasks.dispose();
    expect(variables.every((v) => v.isDisposed)).toBe(true);

    // A task that trains every LayerNorm, the embeddings' included, shares nothing and keeps LayerNorms of its own.
    const withC = await loadTaskModels([a, c, b].map((r) => r.adapterDir));
    const all = predictMultiTask(withC.models, dev, 64);
    expect(all.groups).toEqual([{ models: [0, 2], depth: 2 }, { models: [1], depth: 0 }]);
    expect(all.results.map((r) => r.outputs)).toEqual([expected[0].out, expected[2].out, expected[1].out]);
    const ln = 'encoder.layer.2.output.LayerNorm.weight';
    expect(withC.models[1].encoder.params.get(ln)).not.toBe(withC.models[0].encoder.params.get(ln));
    withC.dispose();
  });

  it('refuses runs trained on different base models, naming the run', async () => {
    const a = await train('alpha', { type: 'pfeiffer', bottleneck: 4 });
    const other = await train('beta', { type: 'pfeiffer', bottleneck: 4 }, tinyModelDir({ ...modelOptions, seed: 9 }));
    await expect(loadTaskModels([a.adapterDir, other.adapterDir])).rejects.toThrow(new RegExp(`${other.adapterDir}: trained on another base model .*fingerprint`));
  });
});
