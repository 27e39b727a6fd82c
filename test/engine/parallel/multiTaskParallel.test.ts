import { beforeAll, describe, expect, it } from 'vitest';
import { trainRun } from '../../../src/engine/train/trainer';
import { createRun, RunHandle } from '../../../src/engine/runs';
import { loadAdapterModel, prepareData } from '../../../src/engine/experiment';
import { loadTaskModels, multiTaskBatches, predictMultiTask, predictMultiTaskOn } from '../../../src/engine/analysis/multiTask';
import { tasksPool } from '../../../src/engine/parallel/pool';
import { tempDir, tinyModelDir, toyConfig, useBackend } from '../../helpers/fixtures';

/**
 * Multi-task prediction (`predict --runs`) on data-parallel workers: each batch computed whole by one worker, so
 * every task's outputs are the same, bit for bit, with 1, 2 and 3 workers, and equal the single-thread pass.
 */

const modelOptions = { layers: 3, hidden: 32, heads: 2, intermediate: 64 };

async function train(name: string, method: Record<string, unknown>, seed: number): Promise<RunHandle> {
  const cfg = toyConfig(tempDir(), tinyModelDir(modelOptions), { task: { name }, method, training: { epochs: 1, maxSteps: 3, seed } });
  const run = createRun(cfg.runsDir, cfg);
  await trainRun({ config: cfg, run, workers: 1 });
  return run;
}

describe('multi-task prediction on workers', () => {
  beforeAll(useBackend);

  it('1, 2 and 3 workers give the same outputs, bit for bit, for every task and any subset of them', async () => {
    // Two Pfeiffer tasks sharing their two lowest layers and a Houlsby one that shares nothing.
    const a = await train('alpha', { type: 'pfeiffer', bottleneck: 4, initStd: 0.3, leaveOut: [0, 1], trainLayerNorm: false }, 1);
    const b = await train('beta', { type: 'pfeiffer', bottleneck: 4, initStd: 0.3, leaveOut: [0, 1], trainLayerNorm: false }, 2);
    const c = await train('gamma', { type: 'houlsby', bottleneck: 4, initStd: 0.3 }, 3);
    const dirs = [a, b, c].map((r) => r.adapterDir);
    const { tokenizer, model } = await loadAdapterModel(a.adapterDir);
    model.dispose();
    const dev = (await prepareData(a.record.config, tokenizer)).dev;
    const batchSize = 7;
    expect(multiTaskBatches(dev, batchSize).length).toBeGreaterThan(3);

    const tasks = await loadTaskModels(dirs);
    try {
      // The tasks in another order than the pool's folders, so that a wrong index mapping would show.
      const indices = [2, 0, 1];
      const models = indices.map((k) => tasks.models[k]);
      const alone = predictMultiTask(models, dev, batchSize);
      expect(alone.groups.map((g) => [g.models, g.depth])).toEqual([[[0], 0], [[1, 2], 2]]);
      for (const workers of [1, 2, 3]) {
        const pool = await tasksPool(dirs, workers, multiTaskBatches(dev, batchSize).length);
        expect(pool?.size ?? 1).toBe(workers);
        try {
          const got = await predictMultiTaskOn(pool, models, indices, dev, batchSize);
          expect(got.groups).toEqual(alone.groups);
          got.results.forEach((r, k) => {
            expect(r.outputs, `task ${k} with ${workers} workers`).toEqual(alone.results[k].outputs);
            expect(r.predictions).toEqual(alone.results[k].predictions);
          });
          // A subset (one maximum length of several): only the tasks asked for, from the right models.
          const subset = await predictMultiTaskOn(pool, [tasks.models[1]], [1], dev, batchSize);
          expect(subset.results[0].outputs).toEqual(alone.results[2].outputs);
        } finally {
          await pool?.close();
        }
      }
      // The tasks' outputs differ from each other (a mix-up of models would not pass unseen).
      expect(alone.results[0].outputs).not.toEqual(alone.results[1].outputs);
      expect(alone.results[1].outputs).not.toEqual(alone.results[2].outputs);
    } finally {
      tasks.dispose();
    }
  }, 240_000);
});
