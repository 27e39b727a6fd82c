import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/engine/tf/backend';
import { loadPretrainConfig, PretrainConfig } from '../../../src/engine/pretrain/config';
import { maskBatch } from '../../../src/engine/pretrain/data';
import { runPretrain } from '../../../src/engine/pretrain/pretrain';
import { readSafetensors } from '../../../src/engine/model/safetensors';
import { saveTokenizerFiles, trainWordPieceVocab } from '../../../src/engine/pretrain/vocab';
import { shardMaskedBatch } from '../../../src/engine/parallel/shard';
import { Rng } from '../../../src/engine/util/random';
import { maxAbsDiff } from '../../helpers/fixtures';
import { tempDir, tinyPretrainConfig, writeTinyCorpus } from '../pretrain/helpers';

/**
 * Pretraining on data-parallel workers (src/engine/parallel, `adapter-lab pretrain --workers N`): the batch is
 * masked whole, then cut into shards of rows whose losses count by their share of the masked tokens; 1, 2 and 3
 * workers give the same run up to float summation order, a run resumed with another number of workers equals an
 * uninterrupted one, and a worker that fails fails the run with its error.
 */

const STEPS = 20;

describe('data-parallel pretraining', () => {
  const dir = tempDir('pretrain-parallel-');
  writeTinyCorpus(dir);

  beforeAll(async () => {
    await initBackend('wasm');
    // One vocabulary for every run (a learnt one is not bit-for-bit repeatable).
    saveTokenizerFiles(path.join(dir, 'vocab'), trainWordPieceVocab([path.join(dir, 'train.txt')], 120), 32);
  });
  afterEach(() => {
    delete process.env.ADAPTER_LAB_TEST_WORKER_FAIL;
  });

  /**
   * A 20-step recipe with dropout on and a third of the windows cut short, so that rows hold different numbers
   * of masked tokens (a shard weighted by its rows instead would give another loss) and padding is in play.
   */
  function configIn(name: string, training: Record<string, unknown> = {}): PretrainConfig {
    const file = path.join(dir, `${name}.json`);
    const raw = tinyPretrainConfig(
      { name, output: name, vocab: 'vocab/vocab.txt', vocabSize: 120 },
      { steps: STEPS, batchSize: 12, warmupSteps: 3, evalEvery: 7, checkpointEvery: 5, shortSequenceProbability: 0.3, ...training },
    );
    (raw.model as Record<string, unknown>).dropout = 0.1;
    fs.writeFileSync(file, JSON.stringify(raw, null, 2));
    return loadPretrainConfig(file);
  }

  async function pretrain(name: string, workers: number, more: Partial<Parameters<typeof runPretrain>[0]> = {}): Promise<{ losses: number[]; evals: number[][]; cfg: PretrainConfig; log: string[] }> {
    const cfg = more.config ?? configIn(name);
    const losses: number[] = [];
    const log: string[] = [];
    const outcome = await runPretrain({ config: cfg, workers, callbacks: { progress: (p) => losses.push(p.loss), log: (m) => log.push(m) }, ...more });
    return { losses, evals: outcome.evals.map((e) => [e.step, e.loss, e.accuracy, e.trainLoss ?? -1]), cfg, log };
  }

  function weights(modelDir: string): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const [name, t] of readSafetensors(path.join(modelDir, 'model.safetensors')).tensors) out.set(name, t.data as Float32Array);
    return out;
  }

  it("shards of a masked batch are its rows, with the batch's masked positions re-based to them", () => {
    const masking = { maskProbability: 0.3, vocabSize: 50, ids: { pad: 0, unk: 1, cls: 2, sep: 3, mask: 4 }, specialIds: new Set([0, 1, 2, 3, 4]) };
    const rng = new Rng(5);
    const seqs = [9, 6, 12, 4, 10].map((n) => Int32Array.from({ length: n }, (_, i) => (i === 0 ? 2 : i === n - 1 ? 3 : 5 + rng.int(45))));
    const batch = maskBatch(seqs, masking, new Rng(11));
    const T = batch.seqLen;
    const shards = shardMaskedBatch(batch, 3);
    expect(shards.map((s) => [s.firstRow, s.batch.batchSize, s.batch.seqLen])).toEqual([[0, 1, T], [1, 2, T], [3, 2, T]]);
    // Every masked position lands in its row's shard, at the same place in the row, with its label.
    expect(shards.flatMap((s) => [...s.batch.positions].map((p) => p + s.firstRow * T))).toEqual([...batch.positions]);
    expect(shards.flatMap((s) => [...s.batch.labels])).toEqual([...batch.labels]);
    for (const s of shards) {
      expect([...s.batch.inputIds]).toEqual([...batch.inputIds.slice(s.firstRow * T, (s.firstRow + s.batch.batchSize) * T)]);
      for (const p of s.batch.positions) expect(p).toBeLessThan(s.batch.batchSize * T);
    }
    expect(shards.reduce((n, s) => n + s.batch.realTokens, 0)).toBe(batch.realTokens);
    // One shard: the batch itself.
    expect(shardMaskedBatch(batch, 1)[0].batch).toBe(batch);
  });

  it('1, 2 and 3 workers give the same losses, held-out curve and model over 20 steps', async () => {
    const one = await pretrain('w1', 1);
    expect(one.losses).toHaveLength(STEPS);
    const w1 = weights(one.cfg.output);
    for (const workers of [2, 3]) {
      const run = await pretrain(`w${workers}`, workers);
      expect(run.log.some((m) => m.includes(`${workers} workers`))).toBe(true);
      expect(run.losses).toHaveLength(STEPS);
      expect(maxAbsDiff(run.losses, one.losses), `losses with ${workers} workers`).toBeLessThan(1e-5);
      expect(run.evals.map((e) => e[0])).toEqual(one.evals.map((e) => e[0]));
      expect(maxAbsDiff(run.evals.flat(), one.evals.flat()), `held-out curve with ${workers} workers`).toBeLessThan(1e-5);
      const w = weights(run.cfg.output);
      expect([...w.keys()]).toEqual([...w1.keys()]);
      for (const [name, values] of w1) expect(maxAbsDiff(w.get(name)!, values), name).toBeLessThan(1e-4);
    }
    // The losses move (the run learns), so equal losses are not equal constants.
    expect(Math.max(...one.losses) - Math.min(...one.losses)).toBeGreaterThan(0.1);
  });

  it('a run resumed with another number of workers equals an uninterrupted one', async () => {
    const whole = await pretrain('uninterrupted', 1);
    const cfg = configIn('resumed-2-then-3');
    // Stop at step 12: after the checkpoint at 10, between evaluations (7 and 14).
    const first = await pretrain('resumed-2-then-3', 2, { config: cfg, stopAfterSteps: 12 });
    expect(first.losses).toHaveLength(12);
    const second = await pretrain('resumed-2-then-3', 3, { config: cfg, resume: true });
    expect(second.losses).toHaveLength(STEPS - 12);
    expect(maxAbsDiff([...first.losses, ...second.losses], whole.losses)).toBeLessThan(1e-5);
    expect(second.evals.map((e) => e[0])).toEqual(whole.evals.map((e) => e[0]));
    expect(maxAbsDiff(second.evals.flat(), whole.evals.flat())).toBeLessThan(1e-5);
    const a = weights(whole.cfg.output);
    const b = weights(cfg.output);
    for (const [name, values] of a) expect(maxAbsDiff(b.get(name)!, values), name).toBeLessThan(1e-4);
  });

  for (const mode of ['throw', 'exit'] as const) {
    it(`a worker that ${mode === 'throw' ? 'throws' : 'exits'} mid-step fails the run with its error`, async () => {
      const cfg = configIn(`fails-${mode}`);
      process.env.ADAPTER_LAB_TEST_WORKER_FAIL = `2:5${mode === 'exit' ? ':exit' : ''}`;
      const expected = mode === 'throw' ? /worker 2 failed: test hook: worker 2 fails at step 5/ : /worker 2 exited \(code 3\) during the run/;
      const losses: number[] = [];
      await expect(runPretrain({ config: cfg, workers: 3, callbacks: { progress: (p) => losses.push(p.loss) } })).rejects.toThrow(expected);
      // Steps 0..4 were taken; no model was written.
      expect(losses).toHaveLength(5);
      expect(fs.existsSync(path.join(cfg.output, 'model.safetensors'))).toBe(false);
    });
  }
});
