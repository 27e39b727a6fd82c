import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { trainRun, trainStep } from '../../../src/engine/train/trainer';
import { AdamW } from '../../../src/engine/train/adamw';
import { createRun, readMetrics } from '../../../src/engine/runs';
import { buildModel } from '../../../src/engine/experiment';
import { resolveConfig } from '../../../src/engine/config/load';
import { readSafetensors } from '../../../src/engine/model/safetensors';
import { fixedInput, tempDir, tinyModelDir, toyConfig, useBackend } from '../../helpers/fixtures';
import { ResolvedConfig } from '../../../src/engine/config/types';

const modelOptions = { layers: 2, hidden: 32, heads: 2, intermediate: 64 };

function trainLosses(runDir: string): number[] {
  return readMetrics(runDir)
    .filter((m) => m.type === 'train')
    .map((m) => m.loss as number);
}

async function train(cfg: ResolvedConfig, extra: Partial<Parameters<typeof trainRun>[0]> = {}) {
  const run = createRun(cfg.runsDir, cfg);
  const outcome = await trainRun({ config: cfg, run, ...extra });
  return { run, outcome };
}

describe('trainer', () => {
  beforeAll(useBackend);

  it('frozen weights stay bit-identical and trained ones move', () => {
    const dir = tempDir();
    const cfg = toyConfig(dir, tinyModelDir(modelOptions), { method: { type: 'houlsby', bottleneck: 4 } });
    const model = buildModel(cfg, tinyModelDir(modelOptions), ['neg', 'pos']);
    const before = new Map([...model.encoder.params].map(([n, v]) => [n, (v.dataSync() as Float32Array).slice()]));
    const params = model.trainableParams();
    const optimizer = new AdamW(params, { weightDecay: 0.01 });
    const vars = [...params.values()];
    const nameOfVar = new Map([...params].map(([n, v]) => [v.name, n]));
    const input = fixedInput(model.encoder.config.vocabSize);
    const batch = { ...input, labels: new Float32Array([1, 0, 1]), realTokens: 0, indices: [0, 1, 2] };
    for (let s = 0; s < 5; s++) trainStep(model, batch, cfg, s, vars, nameOfVar, optimizer, () => 1e-2);
    let frozen = 0;
    for (const [name, v] of model.encoder.params) {
      const now = v.dataSync() as Float32Array;
      const same = Buffer.from(now.buffer, now.byteOffset, now.byteLength).equals(Buffer.from(before.get(name)!.buffer));
      if (name.includes('LayerNorm')) expect(same, `${name} is trained by houlsby and should move`).toBe(false);
      else {
        expect(same, `${name} is frozen and must not change`).toBe(true);
        frozen++;
      }
    }
    expect(frozen).toBeGreaterThan(10);
    model.dispose();
  });

  it('the live tensor count is the same after step 100 as after step 10', async () => {
    const dir = tempDir();
    const cfg = toyConfig(dir, tinyModelDir(modelOptions), { training: { epochs: 9, maxSteps: 100, evalEverySteps: 25 } });
    const counts = new Map<number, number>();
    await train(cfg, { callbacks: { progress: (p) => counts.set(p.step, tf.memory().numTensors) } });
    expect(counts.get(10)).toBeDefined();
    expect(counts.get(100)).toBe(counts.get(10));
  });

  it('same seed, same losses; another seed, other losses', async () => {
    const modelDir = tinyModelDir(modelOptions);
    const a = await train(toyConfig(tempDir(), modelDir, { training: { maxSteps: 15 } }));
    const b = await train(toyConfig(tempDir(), modelDir, { training: { maxSteps: 15 } }));
    const c = await train(toyConfig(tempDir(), modelDir, { training: { maxSteps: 15, seed: 8 } }));
    expect(trainLosses(a.run.dir)).toHaveLength(15);
    expect(trainLosses(b.run.dir)).toEqual(trainLosses(a.run.dir));
    expect(trainLosses(c.run.dir)).not.toEqual(trainLosses(a.run.dir));
  });

  it('a cancelled run resumes to exactly what an uninterrupted run computes', async () => {
    const modelDir = tinyModelDir(modelOptions);
    const overrides = { training: { epochs: 2, maxSteps: 20 } };
    const whole = await train(toyConfig(tempDir(), modelDir, overrides));

    const cfg = toyConfig(tempDir(), modelDir, overrides);
    const controller = new AbortController();
    const run = createRun(cfg.runsDir, cfg);
    // Cancel mid-epoch (an epoch is 12 steps here).
    const first = await trainRun({ config: cfg, run, signal: controller.signal, callbacks: { progress: (p) => p.step === 7 && controller.abort() } });
    expect(first.status).toBe('cancelled');
    expect(run.reload().status).toBe('cancelled');
    expect(fs.readdirSync(run.checkpointDir)).toContain('state.json');
    const second = await trainRun({ config: cfg, run, resume: true });
    expect(second.status).toBe('done');

    expect(trainLosses(run.dir)).toEqual(trainLosses(whole.run.dir));
    const adapterA = readSafetensors(path.join(whole.run.adapterDir, 'adapter.safetensors')).tensors;
    const adapterB = readSafetensors(path.join(run.adapterDir, 'adapter.safetensors')).tensors;
    for (const [name, arr] of adapterA) expect(Array.from(adapterB.get(name)!.data), name).toEqual(Array.from(arr.data));
  });

  it('keeps the best dev checkpoint and reports it', async () => {
    const cfg = toyConfig(tempDir(), tinyModelDir(modelOptions), { training: { epochs: 3 } });
    const { run, outcome } = await train(cfg);
    const evals = readMetrics(run.dir).filter((m) => m.type === 'eval');
    expect(evals).toHaveLength(3);
    const bestValue = Math.max(...evals.map((e) => e.accuracy as number));
    expect(outcome.best?.value).toBe(bestValue);
    const record = run.reload();
    expect(record.status).toBe('done');
    expect(record.best?.value).toBe(bestValue);
    // The adapter handed out is the best checkpoint: its dev accuracy is the best one.
    const finalEval = run.readResult<{ metrics: Record<string, number> }>('eval-dev')!;
    expect(finalEval.metrics.accuracy).toBe(bestValue);
  });

  it('a loss that becomes infinite stops the run with a message about the learning rate', async () => {
    const dir = tempDir();
    const modelDir = tinyModelDir(modelOptions);
    fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
    const rows = Array.from({ length: 32 }, (_, i) => JSON.stringify({ text: `word ${i}`, score: i === 3 ? 1e39 : i / 10 })).join('\n');
    fs.writeFileSync(path.join(dir, 'data', 'train.jsonl'), rows);
    fs.writeFileSync(path.join(dir, 'data', 'dev.jsonl'), rows);
    const raw = {
      name: 'diverge',
      task: { name: 'r', type: 'regression', train: 'data/train.jsonl', dev: 'data/dev.jsonl', textField: 'text', labelField: 'score' },
      model: modelDir,
      method: { type: 'bitfit' },
      training: { epochs: 1, batchSize: 32, maxSeqLength: 8 },
      runsDir: path.join(dir, 'runs'),
    };
    const cfg = resolveConfig(raw, path.join(dir, 'x.adapter.json'), dir);
    const run = createRun(cfg.runsDir, cfg);
    await expect(trainRun({ config: cfg, run })).rejects.toThrow(/NaN or infinite at step 0.*lower learning rate/);
  });

  it('the training loss falls on a small real task (Liu opinion words)', async () => {
    const dir = tempDir();
    const examples = path.resolve(__dirname, '../../../examples/data/liu-opinion');
    const raw = {
      name: 'liu-full',
      task: { name: 'liu', type: 'classification', train: path.join(examples, 'train.jsonl'), dev: path.join(examples, 'dev.jsonl'), textField: 'text', labelField: 'label' },
      model: tinyModelDir(modelOptions),
      method: { type: 'full' },
      training: { epochs: 3, batchSize: 32, learningRate: 1e-3, maxSeqLength: 16, seed: 3 },
      runsDir: path.join(dir, 'runs'),
    };
    const cfg = resolveConfig(raw, path.join(dir, 'liu.adapter.json'), dir);
    const { run } = await train(cfg);
    const losses = trainLosses(run.dir);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const early = mean(losses.slice(0, 30));
    const late = mean(losses.slice(-30));
    expect(late).toBeLessThan(early - 0.02);
    const dev = readMetrics(run.dir).filter((m) => m.type === 'eval').map((m) => m.accuracy as number);
    expect(Math.max(...dev)).toBeGreaterThan(0.58);
  });
});
