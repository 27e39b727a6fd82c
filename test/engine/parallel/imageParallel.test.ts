import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { trainRun } from '../../../src/engine/train/trainer';
import { createRun, readMetrics, RunHandle } from '../../../src/engine/runs';
import { loadConfig } from '../../../src/engine/config/load';
import { ResolvedConfig } from '../../../src/engine/config/types';
import { readSafetensors } from '../../../src/engine/model/safetensors';
import { VISION_METHOD_NAMES } from '../../../src/engine/families/resnet/methods';
import { ImageBatch, resnetFamily, saveNetwork } from '../../../src/engine/families/resnet/family';
import { ResNet, ResNetConfig } from '../../../src/engine/families/resnet/network';
import { FamilyRunConfig } from '../../../src/engine/model/family';
import { evaluateFamily, startFamilyPool, unitAblationOn } from '../../../src/engine/parallel/familyParallel';
import { unitAblation } from '../../../src/engine/analysis/unitAblation';
import { Rng } from '../../../src/engine/util/random';
import * as tf from '@tensorflow/tfjs-core';
import { maxAbsDiff, tempDir, useBackend } from '../../helpers/fixtures';
import { TINY_RESNET, writeImageConfig } from '../../helpers/imageTask';

/**
 * Data-parallel training of image runs (the ResNet family through the generic trainer, parallel/familyParallel.ts):
 * 1, 2 and 3 workers compute the same run up to float summation order for every vision method, BatchNorm's batch
 * statistics being the whole batch's (synchronised over the shards) and augmentation drawn per example; a resume
 * with another number of workers continues the same run; a worker that fails fails the run with its error;
 * evaluation and the block ablation give the same results over workers as on one thread.
 */

const STEPS = 20;

function trainLosses(runDir: string): number[] {
  return readMetrics(runDir)
    .filter((m) => m.type === 'train')
    .map((m) => m.loss as number);
}

function devMetrics(run: RunHandle): Record<string, number> {
  return JSON.parse(fs.readFileSync(path.join(run.dir, 'eval-dev.json'), 'utf8')).metrics;
}

/** The trained domain's tensors: the method's parameters, its BatchNorm running statistics, the head (and the network for full, scratch). */
function domainTensors(run: RunHandle): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, t] of readSafetensors(path.join(run.adapterDir, 'domain.safetensors')).tensors) out.set(name, t.data as Float32Array);
  return out;
}

/** An image config on the shapes task with crops and flips (augmentation in play), 20 steps of 20 images. */
function imageConfig(method: string, dir = tempDir()): ResolvedConfig {
  const file = writeImageConfig(dir, { method: { type: method }, task: { augment: { cropPadding: 1, flip: true } }, training: { epochs: 3, maxSteps: STEPS, evalEverySteps: 7 } });
  return loadConfig(path.join(dir, file));
}

async function train(cfg: ResolvedConfig, workers: number, extra: Partial<Parameters<typeof trainRun>[0]> = {}): Promise<RunHandle> {
  const run = createRun(cfg.runsDir, cfg);
  await trainRun({ config: cfg, run, workers, ...extra });
  return run;
}

describe('data-parallel image runs', () => {
  beforeAll(useBackend);
  afterEach(() => {
    delete process.env.ADAPTER_LAB_TEST_WORKER_FAIL;
  });

  it("a batch's shards are contiguous rows that know their place, and each is augmented as in the whole batch", async () => {
    const cfg = imageConfig('residual-series');
    const family = resnetFamily;
    const data = await family.readData(cfg as unknown as FamilyRunConfig);
    const model = await family.buildModel(cfg as unknown as FamilyRunConfig, data.labels, data.train);
    try {
      const [batch] = model.batches(data.train.slice(0, 7), 7, { training: true, rng: new Rng(9) });
      const shards = model.parallel!.shardBatch(batch, 3);
      expect(shards.map((s) => [s.firstRow, s.size, s.batchRows])).toEqual([
        [0, 2, 7],
        [2, 2, 7],
        [4, 3, 7],
      ]);
      expect(shards.flatMap((s) => s.examples)).toEqual(batch.examples);
      expect(model.parallel!.shardBatch(batch, 20)).toHaveLength(7);
      // Each row's outputs (evaluation mode: per row) on the augmented images: a shard's rows are augmented as
      // the same rows of the whole batch (drawn per example, not from one generator in batch order).
      const rowsOf = (b: ImageBatch) => model.parallel!.batchOutputs(b).scores;
      expect(shards.flatMap((s) => rowsOf(s)).flat()).toEqual(rowsOf(batch).flat());
      // And the augmentation is in play: without it the outputs differ.
      expect(rowsOf({ ...batch, augmentSeed: null }).flat()).not.toEqual(rowsOf(batch).flat());
    } finally {
      model.dispose();
    }
  }, 60_000);

  // Widths 4, 8, 8: BatchNorm on the wasm kernels; 3, 6, 6 (channels not a multiple of 4): in tfjs ops.
  for (const widths of [TINY_RESNET.widths, [3, 6, 6]] as ResNetConfig['widths'][]) {
  it(`a step's loss, gradients and BatchNorm running statistics over 2 and 3 workers are one thread's (synchronised BatchNorm, widths ${widths})`, async () => {
    const dir = tempDir();
    const network = ResNet.init({ ...TINY_RESNET, widths }, new Rng(3));
    saveNetwork(path.join(dir, 'network'), network);
    network.dispose();
    const cfg = imageConfig('residual-series', dir);
    const data = await resnetFamily.readData(cfg as unknown as FamilyRunConfig);
    const model = await resnetFamily.buildModel(cfg as unknown as FamilyRunConfig, data.labels, data.train);
    const state = () => new Map([...model.trainingState!()].map(([n, v]) => [n, v.dataSync().slice() as Float32Array]));
    const restore = (saved: Map<string, Float32Array>) => {
      for (const [n, v] of model.trainingState!()) v.assign(tf.tensor(saved.get(n)!, v.shape));
    };
    try {
      const [batch] = model.batches(data.train, 20, { training: true, rng: new Rng(1) });
      const before = state();
      const one = model.lossAndGradients(batch, new Rng(0));
      const statsOne = state();
      for (const workers of [2, 3]) {
        restore(before);
        const pool = await startFamilyPool(resnetFamily as never, model as never, workers);
        try {
          const many = await pool!.familyStep(model as never, batch, 0, 0);
          expect(Math.abs(many.loss - one.loss)).toBeLessThan(1e-6);
          expect([...many.grads.keys()].sort()).toEqual([...one.grads.keys()].sort());
          for (const [name, g] of one.grads) {
            const scale = Math.max(1e-3, ...Array.from(g.dataSync(), Math.abs));
            expect(maxAbsDiff(many.grads.get(name)!.dataSync(), g.dataSync()) / scale, name).toBeLessThan(1e-5);
          }
          for (const [name, v] of state()) expect(maxAbsDiff(v, statsOne.get(name)!), name).toBeLessThan(1e-5);
          // Why residual-series' runs part after the first step: at W = 0 the diagonal of each adapter's 1x1
          // convolution only rescales a channel the domain BatchNorm after it normalises, so its gradient is zero in
          // exact arithmetic, and what is computed there is rounding (AdamW's first step then sets it to +-lr by
          // that rounding's sign). The largest diagonal entry against the largest off-diagonal one:
          for (const [name, g] of one.grads) {
            if (!name.endsWith('.conv.weight') || !name.includes('.adapters.')) continue;
            const [, , cin, cout] = g.shape;
            const values = g.dataSync();
            let diagonal = 0;
            let offDiagonal = 0;
            for (let c = 0; c < cin; c++) {
              for (let o = 0; o < cout; o++) {
                const v = Math.abs(values[c * cout + o]);
                if (c === o) diagonal = Math.max(diagonal, v);
                else offDiagonal = Math.max(offDiagonal, v);
              }
            }
            expect(diagonal / offDiagonal, name).toBeLessThan(1e-4);
          }
          for (const g of many.grads.values()) g.dispose();
        } finally {
          await pool!.close();
        }
      }
      for (const g of one.grads.values()) g.dispose();
    } finally {
      model.dispose();
    }
  }, 60_000);
  }

  it("synchronised steps leave no tensors behind, in the workers or here (the exchanged statistics and sums are freed)", async () => {
    const cfg = imageConfig('residual-series');
    const data = await resnetFamily.readData(cfg as unknown as FamilyRunConfig);
    const model = await resnetFamily.buildModel(cfg as unknown as FamilyRunConfig, data.labels, data.train);
    const pool = await startFamilyPool(resnetFamily as never, model as never, 3);
    try {
      const batches = model.batches(data.train, 20, { training: true, rng: new Rng(1) });
      const workers: number[][] = [];
      const here: number[] = [];
      for (let step = 0; step < 5; step++) {
        const { grads } = await pool!.familyStep(model as never, batches[step], 0, step);
        for (const g of grads.values()) g.dispose();
        pool!.publishWeights();
        workers.push((await pool!.workerMemory()).map((m) => m.tensors));
        here.push(tf.memory().numTensors);
      }
      expect(workers.slice(2)).toEqual([workers[1], workers[1], workers[1]]);
      expect(here.slice(2)).toEqual([here[1], here[1], here[1]]);
    } finally {
      await pool!.close();
      model.dispose();
    }
  }, 60_000);

  for (const method of VISION_METHOD_NAMES) {
    it(`${method}: 1, 2 and 3 workers give the same losses, dev metrics and trained domain (BatchNorm statistics included)`, async () => {
      const cfg = imageConfig(method);
      const runs: RunHandle[] = [];
      for (const workers of [1, 2, 3]) runs.push(await train(cfg, workers));
      const [one, ...more] = runs;
      const losses = trainLosses(one.dir);
      expect(losses).toHaveLength(STEPS);
      const tensors = domainTensors(one);
      // Running statistics are trained state of every method but the head alone (its network stays frozen).
      if (method !== 'head') expect([...tensors.keys()].some((n) => n.endsWith('running_mean'))).toBe(true);
      // residual-series alone amplifies float summation order (see the step test below: its first AdamW step sets
      // the diagonal of every adapter's 1x1 convolution by the sign of a gradient that is zero in exact arithmetic),
      // so it is held to the same first step and to 1e-3 after 20; every other method to 1e-5 throughout.
      const series = method === 'residual-series';
      for (const run of more) {
        const theirs = trainLosses(run.dir);
        expect(Math.abs(theirs[0] - losses[0]), `first loss of ${method}`).toBeLessThan(1e-6);
        expect(maxAbsDiff(theirs, losses), `losses of ${method}`).toBeLessThan(series ? 1e-3 : 1e-5);
        if (series) expect(Math.abs(devMetrics(run).accuracy - devMetrics(one).accuracy)).toBeLessThanOrEqual(1 / 60 + 1e-9);
        else expect(devMetrics(run).accuracy).toBe(devMetrics(one).accuracy);
        expect(Math.abs(devMetrics(run).loss - devMetrics(one).loss)).toBeLessThan(series ? 1e-3 : 1e-5);
        const w = domainTensors(run);
        expect([...w.keys()]).toEqual([...tensors.keys()]);
        for (const [name, values] of tensors) {
          // The series adapter's parameters (and the statistics downstream of them) are not compared: those with a
          // zero gradient in exact arithmetic (its BatchNorm's shift, its convolution's diagonal at the start) take
          // AdamW steps of the learning rate's size from rounding alone.
          if (series && /\.adapters\.|running_/.test(name)) continue;
          expect(maxAbsDiff(w.get(name)!, values), name).toBeLessThan(series ? 1e-2 : 1e-4);
        }
      }
      const record = JSON.parse(fs.readFileSync(path.join(more[1].dir, 'run.json'), 'utf8'));
      expect(record.warnings ?? []).toEqual([]);
    }, 180_000);
  }

  it('a run resumed with another number of workers equals an uninterrupted one', async () => {
    const cfg = imageConfig('residual-parallel');
    const whole = await train(cfg, 1);
    const controller = new AbortController();
    const run = createRun(cfg.runsDir, cfg);
    const first = await trainRun({ config: cfg, run, workers: 3, signal: controller.signal, callbacks: { progress: (p) => p.step === 9 && controller.abort() } });
    expect(first.status).toBe('cancelled');
    expect(first.steps).toBe(9);
    const second = await trainRun({ config: cfg, run, workers: 2, resume: true });
    expect(second.status).toBe('done');
    expect(trainLosses(run.dir)).toHaveLength(STEPS);
    expect(maxAbsDiff(trainLosses(run.dir), trainLosses(whole.dir))).toBeLessThan(1e-5);
    const w = domainTensors(run);
    for (const [name, values] of domainTensors(whole)) expect(maxAbsDiff(w.get(name)!, values), name).toBeLessThan(1e-4);
  }, 120_000);

  for (const mode of ['throw', 'exit'] as const) {
    it(`a worker that ${mode === 'throw' ? 'throws' : 'exits'} mid-step fails the run with its error, the others not left waiting at a BatchNorm`, async () => {
      const cfg = imageConfig('batchnorm');
      process.env.ADAPTER_LAB_TEST_WORKER_FAIL = `2:5${mode === 'exit' ? ':exit' : ''}`;
      const run = createRun(cfg.runsDir, cfg);
      const expected = mode === 'throw' ? /worker 2 failed: test hook: worker 2 fails at step 5/ : /worker 2 exited \(code 3\)/;
      const started = Date.now();
      await expect(trainRun({ config: cfg, run, workers: 3 })).rejects.toThrow(expected);
      // Well before a synchronisation's timeout (120 s): the failure woke the waiting workers.
      expect(Date.now() - started).toBeLessThan(60_000);
      // The steps before it were recorded (the CLI records the failure in run.json: test/cli/imageTasks.test.ts).
      expect(trainLosses(run.dir)).toHaveLength(5);
    }, 90_000);
  }

  it('evaluation and the block ablation are the same with 1, 2 and 3 workers', async () => {
    const cfg = imageConfig('residual-series');
    cfg.training.maxSteps = 6;
    const trained = await train(cfg, 1);
    const data = await resnetFamily.readData(cfg as unknown as FamilyRunConfig);
    const model = await resnetFamily.loadTrained(trained.adapterDir);
    try {
      const opts = { metric: 'accuracy', batchSize: 16 };
      const evaluation = model.evaluate(data.dev, 16);
      const ablation = unitAblation(model, data.dev, opts);
      expect(ablation.matrix.flat().some((v) => v !== null && v !== ablation.baseline)).toBe(true);
      for (const workers of [2, 3]) {
        const pool = await startFamilyPool(resnetFamily as never, model as never, workers);
        expect(pool?.size).toBe(workers);
        try {
          // Each batch is computed whole by one worker: bit for bit the same.
          expect(await evaluateFamily(pool, model, data.dev, 16)).toEqual(evaluation);
          const spans: number[] = [];
          expect(await unitAblationOn(pool, model, data.dev, { ...opts, onSpan: (done) => spans.push(done) })).toEqual(ablation);
          expect(spans.at(-1)).toBe(6);
        } finally {
          await pool!.close();
        }
      }
    } finally {
      model.dispose();
    }
  }, 120_000);
});
