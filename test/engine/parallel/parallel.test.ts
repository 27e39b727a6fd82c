import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { trainRun } from '../../../src/engine/train/trainer';
import { createRun, readMetrics, RunHandle } from '../../../src/engine/runs';
import { ResolvedConfig } from '../../../src/engine/config/types';
import { catalogEntry, METHOD_NAMES } from '../../../src/engine/methods/catalog';
import { readSafetensors } from '../../../src/engine/model/safetensors';
import { maxAbsDiff, tempDir, tinyModelDir, toyConfig, useBackend } from '../../helpers/fixtures';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { loadAdapterModel, prepareData } from '../../../src/engine/experiment';
import { layerAblation } from '../../../src/engine/analysis/ablation';
import { adapterDropTradeoff } from '../../../src/engine/analysis/drop';
import { predict } from '../../../src/engine/analysis/evaluate';
import { adapterPool, WorkerPool } from '../../../src/engine/parallel/pool';
import { buildModel, modelDirOf } from '../../../src/engine/experiment';
import { AdamW } from '../../../src/engine/train/adamw';
import { shardBatch } from '../../../src/engine/parallel/shard';
import { dropout, dropoutMask, withBatchShard } from '../../../src/engine/tf/ops';
import * as tf from '@tensorflow/tfjs-core';
import { values } from '../../helpers/fixtures';

/**
 * Data-parallel training (src/engine/parallel): 1, 2 and 3 workers compute the same run up to float summation
 * order, for every method of the catalog; a resume with another number of workers continues the same run; a
 * worker that fails fails the run with its error.
 */

const modelOptions = { layers: 2, hidden: 32, heads: 2, intermediate: 64 };
const STEPS = 20;

function trainLosses(runDir: string): number[] {
  return readMetrics(runDir)
    .filter((m) => m.type === 'train')
    .map((m) => m.loss as number);
}

function devOutputs(run: RunHandle): { accuracy: number; loss: number } {
  const result = JSON.parse(fs.readFileSync(path.join(run.dir, 'eval-dev.json'), 'utf8'));
  return result.metrics;
}

function adapterWeights(run: RunHandle): Map<string, Float32Array> {
  const dir = run.adapterDir;
  const out = new Map<string, Float32Array>();
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors'))) {
    for (const [name, t] of readSafetensors(path.join(dir, f)).tensors) out.set(`${f}:${name}`, t.data as Float32Array);
  }
  return out;
}

/** The options each method is tried with: dropout on, AdapterDrop's random choice and the frozen-prefix cache in play. */
const methodOptions: Record<string, Record<string, unknown>> = {
  houlsby: { bottleneck: 4, dropLowest: 1 },
  pfeiffer: { bottleneck: 4, leaveOut: [0] },
  adapterbias: { l0Lambda: 0.01 },
  lora: { r: 4 },
  ia3: {},
  parallel: { bottleneck: 8 },
  // The prefix MLP's dropout is drawn per example too (the reparametrisation runs inside every worker).
  'prefix-tuning': { prefixLength: 4, bottleneckSize: 8, dropout: 0.1 },
  bitfit: {},
  layernorm: {},
  'top-k': { k: 1 },
  full: {},
  head: {},
};

async function train(cfg: ResolvedConfig, workers: number, extra: Partial<Parameters<typeof trainRun>[0]> = {}): Promise<RunHandle> {
  const run = createRun(cfg.runsDir, cfg);
  await trainRun({ config: cfg, run, workers, ...extra });
  return run;
}

function config(method: Record<string, unknown>, training: Record<string, unknown> = {}): ResolvedConfig {
  return toyConfig(tempDir(), tinyModelDir(modelOptions), { method, training: { epochs: 3, maxSteps: STEPS, batchSize: 16, evalEverySteps: 7, dropout: 0.1, ...training } });
}

async function expectSameRuns(cfg: ResolvedConfig): Promise<void> {
  const runs = [];
  for (const workers of [1, 2, 3]) runs.push(await train(cfg, workers));
  const [one, ...more] = runs;
  const losses = trainLosses(one.dir);
  expect(losses).toHaveLength(STEPS);
  const weights = adapterWeights(one);
  expect(weights.size).toBeGreaterThan(0);
  for (const run of more) {
    expect(maxAbsDiff(trainLosses(run.dir), losses), `losses of ${cfg.method.type}`).toBeLessThan(1e-5);
    expect(trainLosses(run.dir)).toHaveLength(STEPS);
    const dev = devOutputs(run);
    expect(dev.accuracy).toBe(devOutputs(one).accuracy);
    expect(Math.abs(dev.loss - devOutputs(one).loss)).toBeLessThan(1e-5);
    const w = adapterWeights(run);
    expect([...w.keys()]).toEqual([...weights.keys()]);
    for (const [name, values] of weights) expect(maxAbsDiff(w.get(name)!, values), name).toBeLessThan(1e-4);
  }
}

describe('data-parallel training', () => {
  beforeAll(useBackend);
  afterEach(() => {
    delete process.env.ADAPTER_LAB_TEST_WORKER_FAIL;
  });

  it("a shard's dropout masks are the whole batch's rows (wasm kernel and JS mask)", () => {
    // 6 examples of 5 tokens x 8: rows 2..4 are elements 80..199 of the batch-major tensor.
    const x = tf.randomNormal([30, 8], 0, 1, 'float32', 3) as tf.Tensor2D;
    const whole = dropout(x, 0.3, 1234);
    const part = withBatchShard(2, 3, () => dropout(tf.slice(x, [10, 0], [15, 8]), 0.3, 1234));
    expect(values(part)).toEqual(values(tf.slice(whole, [10, 0], [15, 8])));
    // Not the same as drawing the shard's own mask from the seed.
    expect(values(dropout(tf.slice(x, [10, 0], [15, 8]), 0.3, 1234))).not.toEqual(values(part));
    expect(dropoutMask(120, 0.3, 1234, 80)).toEqual(dropoutMask(240, 0.3, 1234).slice(80, 200));
    expect(() => withBatchShard(1, 7, () => dropout(x, 0.3, 1))).toThrow(/not batch-major/);
  });

  it('shards are contiguous rows padded to the batch length, none empty', () => {
    const T = 4;
    const batch = { inputIds: new Int32Array(5 * T).map((_, i) => i), tokenTypeIds: new Int32Array(5 * T), attentionMask: new Float32Array(5 * T).fill(1), labels: new Float32Array([0, 1, 0, 1, 1]), batchSize: 5, seqLen: T, realTokens: 5 * T, indices: [7, 3, 9, 1, 4] };
    const shards = shardBatch(batch, 3);
    expect(shards.map((s) => [s.firstRow, s.batch.batchSize, s.batch.seqLen])).toEqual([[0, 1, T], [1, 2, T], [3, 2, T]]);
    expect(shards.flatMap((s) => s.batch.indices)).toEqual(batch.indices);
    expect(shards.flatMap((s) => [...s.batch.inputIds])).toEqual([...batch.inputIds]);
    expect(shardBatch(batch, 8)).toHaveLength(5);
  });

  it("a worker's tensors stay as many from step to step (the weights it reads each step are not kept)", async () => {
    const cfg = config({ type: 'houlsby', bottleneck: 4 });
    const model = buildModel(cfg, modelDirOf(cfg), ['0', '1']);
    const params = model.trainableParams();
    const vars = [...params.values()];
    const nameOfVar = new Map([...params].map(([n, v]) => [v.name, n]));
    const optimizer = new AdamW(params, { weightDecay: 0.01 });
    const T = 6;
    const B = 4;
    const batch = { inputIds: new Int32Array(B * T).map((_, i) => 5 + (i % 7)), tokenTypeIds: new Int32Array(B * T), attentionMask: new Float32Array(B * T).fill(1), labels: new Float32Array([0, 1, 0, 1]), batchSize: B, seqLen: T, realTokens: B * T, indices: [0, 1, 2, 3] };
    const pool = await WorkerPool.start({ workers: 2, backend: tf.getBackend() as 'wasm', source: { kind: 'config', cfg, labels: ['0', '1'] }, params });
    try {
      const counts: number[] = [];
      for (let step = 0; step < 5; step++) {
        await pool.trainStep(model, batch, cfg, step, vars, nameOfVar, optimizer, () => 1e-3);
        counts.push((await pool.workerMemory())[0].tensors);
      }
      // Each step publishes new weights, which the worker reads into its variables before the next.
      expect(counts.slice(1)).toEqual(new Array(4).fill(counts[1]));
    } finally {
      await pool.close();
      model.dispose();
      optimizer.dispose();
    }
  }, 60_000);

  // The text family's methods (image runs: imageParallel.test.ts).
  for (const type of METHOD_NAMES.filter((m) => m !== 'fusion' && catalogEntry(m).families.includes('bert'))) {
    it(`${type}: 1, 2 and 3 workers give the same losses, dev metrics and adapter`, async () => {
      expect(methodOptions[type], `options for ${type} in this test`).toBeDefined();
      await expectSameRuns(config({ type, ...methodOptions[type] }));
    }, 120_000);
  }

  it('fusion: 1, 2 and 3 workers give the same losses, dev metrics and adapter', async () => {
    const adapters = [];
    for (const [name, seed] of [['a', 1], ['b', 2]] as const) {
      const cfg = toyConfig(tempDir(), tinyModelDir(modelOptions), { task: { name }, method: { type: 'pfeiffer', bottleneck: 4, initStd: 0.3 }, training: { maxSteps: 3, epochs: 1, seed } });
      adapters.push((await train(cfg, 1)).dir);
    }
    await expectSameRuns(config({ type: 'fusion', adapters }));
  }, 120_000);

  it('a run resumed with another number of workers equals an uninterrupted one', async () => {
    const cfg = config({ type: 'houlsby', bottleneck: 4, dropLowest: 1 });
    const whole = await train(cfg, 1);
    // Cancelled after 9 steps with 3 workers (the checkpoint is saved), resumed with 2.
    const controller = new AbortController();
    const run = createRun(cfg.runsDir, cfg);
    const first = await trainRun({
      config: cfg,
      run,
      workers: 3,
      signal: controller.signal,
      callbacks: { progress: (p) => p.step === 9 && controller.abort() },
    });
    expect(first.status).toBe('cancelled');
    expect(first.steps).toBe(9);
    expect(fs.existsSync(path.join(run.dir, 'checkpoint', 'state.json'))).toBe(true);
    const second = await trainRun({ config: cfg, run, workers: 2, resume: true });
    expect(second.status).toBe('done');
    expect(maxAbsDiff(trainLosses(run.dir), trainLosses(whole.dir))).toBeLessThan(1e-5);
    expect(trainLosses(run.dir)).toHaveLength(STEPS);
    const w = adapterWeights(run);
    for (const [name, values] of adapterWeights(whole)) expect(maxAbsDiff(w.get(name)!, values), name).toBeLessThan(1e-4);
  }, 120_000);

  for (const mode of ['throw', 'exit'] as const) {
    it(`a worker that ${mode === 'throw' ? 'throws' : 'exits'} mid-step fails the run with its error`, async () => {
      const cfg = config({ type: 'houlsby', bottleneck: 4 });
      process.env.ADAPTER_LAB_TEST_WORKER_FAIL = `2:5${mode === 'exit' ? ':exit' : ''}`;
      const run = createRun(cfg.runsDir, cfg);
      const expected = mode === 'throw' ? /worker 2 failed: test hook: worker 2 fails at step 5/ : /worker 2 exited \(code 3\)/;
      await expect(trainRun({ config: cfg, run, workers: 3 })).rejects.toThrow(expected);
      // The steps before it were recorded; the run can be resumed from its checkpoint.
      expect(trainLosses(run.dir)).toHaveLength(5);
    }, 60_000);
  }

  it("the layer ablation, AdapterDrop's metrics and predictions are the same with 1, 2 and 3 workers", async () => {
    const cfg = config({ type: 'houlsby', bottleneck: 4, initStd: 0.5 }, { maxSteps: 6 });
    const trained = await train(cfg, 1);
    const { model, tokenizer } = await loadAdapterModel(trained.adapterDir);
    try {
      const { dev } = await prepareData(cfg, tokenizer);
      const opts = { metric: 'accuracy', batchSize: 8, padId: tokenizer.padId };
      const ablation = layerAblation(model, dev, opts);
      const predictions = predict(model, dev, 8);
      const dropped = adapterDropTradeoff(model, dev, { ...opts, repeats: 1, timingExamples: 16 });
      expect(new Set(dropped.points.map((q) => q.value)).size).toBeGreaterThan(1);
      // Removing layers changes something: the matrix is not all baseline.
      expect(ablation.matrix.flat().some((v) => v !== null && v !== ablation.baseline)).toBe(true);
      for (const workers of [2, 3]) {
        const pool = await adapterPool(trained.adapterDir, workers, Math.ceil(dev.length / 8));
        expect(pool?.size).toBe(workers);
        try {
          const spans: number[] = [];
          const parallel = await pool!.ablate(model, dev, { ...opts, onSpan: (done) => spans.push(done) });
          expect(parallel).toEqual(ablation);
          expect(spans.at(-1)).toBe(3 * Math.ceil(dev.length / 8));
          const drop = await pool!.adapterDrop(model, dev, { ...opts, repeats: 1, timingExamples: 16 });
          expect(drop.points.map((q) => q.value)).toEqual(dropped.points.map((q) => q.value));
          expect(drop.points.every((q) => q.tokensPerSecond > 0)).toBe(true);
          const p = await pool!.predict(model, dev, 8);
          // Each batch is computed whole by one worker: bit for bit the same outputs.
          expect(p.outputs).toEqual(predictions.outputs);
          expect(p.predictions).toEqual(predictions.predictions);
        } finally {
          await pool!.close();
        }
      }
    } finally {
      model.dispose();
    }
  }, 60_000);
});

