import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cliAsync, trainSteps, writeToyConfig } from '../helpers/cliRun';
import { tinyPretrainConfig, writeTinyCorpus } from '../engine/pretrain/helpers';
import { saveTokenizerFiles, trainWordPieceVocab } from '../../src/engine/pretrain/vocab';
import { maxAbsDiff, tempDir } from '../helpers/fixtures';

/** --workers on the built CLI: the same run and evaluation with 1 and 2 worker threads; a failing worker fails the run. */
describe('adapter-lab --workers', () => {
  afterEach(() => {
    delete process.env.ADAPTER_LAB_TEST_WORKER_FAIL;
  });

  const train = async (dir: string, file: string, workers: string) => {
    const r = await cliAsync(['train', file, '--json', '--workers', workers], dir);
    const done = r.lines.find((l) => l.type === 'done');
    return { r, runDir: done?.runDir as string | undefined };
  };

  it('train and eval give the same losses and metrics with 1 and 2 workers, and the process ends', async () => {
    const dir = tempDir();
    const file = writeToyConfig(dir, { training: { epochs: 1, batchSize: 16, learningRate: 3e-3, maxSeqLength: 16, seed: 1, maxSteps: 8, dropout: 0.1 } });
    const one = await train(dir, file, '1');
    const two = await train(dir, file, '2');
    expect(one.r.code, one.r.stderr).toBe(0);
    expect(two.r.code, two.r.stderr).toBe(0);
    expect(two.r.lines.some((l) => l.type === 'log' && /2 workers/.test(l.message))).toBe(true);
    const losses = (runDir: string) => trainSteps(runDir).map((s) => s.loss);
    expect(losses(two.runDir!)).toHaveLength(8);
    expect(maxAbsDiff(losses(two.runDir!), losses(one.runDir!))).toBeLessThan(1e-5);
    const evalOne = await cliAsync(['eval', one.runDir!, '--json', '--workers', '1'], dir);
    const evalTwo = await cliAsync(['eval', one.runDir!, '--json', '--workers', '2'], dir);
    expect(evalTwo.code, evalTwo.stderr).toBe(0);
    const metrics = (r: Awaited<ReturnType<typeof cliAsync>>) => r.lines.find((l) => l.type === 'result').metrics;
    expect(metrics(evalTwo)).toEqual(metrics(evalOne));
  }, 120_000);

  it('a worker that fails mid-step fails the run with its error (exit 1, run.json failed)', async () => {
    const dir = tempDir();
    const file = writeToyConfig(dir, { training: { epochs: 1, batchSize: 16, learningRate: 3e-3, maxSeqLength: 16, seed: 1, maxSteps: 8 } });
    process.env.ADAPTER_LAB_TEST_WORKER_FAIL = '1:3';
    const r = await cliAsync(['train', file, '--json', '--workers', '2'], dir);
    expect(r.code).toBe(1);
    const error = r.lines.find((l) => l.type === 'error');
    expect(error?.message).toMatch(/worker 1 failed: test hook: worker 1 fails at step 3/);
    const runsDir = path.join(dir, '.adapter-lab', 'runs');
    const [runName] = fs.readdirSync(runsDir);
    const record = JSON.parse(fs.readFileSync(path.join(runsDir, runName, 'run.json'), 'utf8'));
    expect(record.status).toBe('failed');
    expect(trainSteps(path.join(runsDir, runName))).toHaveLength(3);
  }, 60_000);

  it('pretrain --workers 2 gives the losses of --workers 1', async () => {
    const dir = tempDir();
    writeTinyCorpus(dir);
    // One vocabulary for both (a learnt one is not bit-for-bit repeatable).
    saveTokenizerFiles(path.join(dir, 'vocab'), trainWordPieceVocab([path.join(dir, 'train.txt')], 120), 32);
    const losses = async (workers: string) => {
      const name = `w${workers}`;
      fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(tinyPretrainConfig({ name, output: name, vocab: 'vocab/vocab.txt' }, { steps: 6, warmupSteps: 1, evalEvery: 3 })));
      const r = await cliAsync(['pretrain', `${name}.json`, '--json', '--workers', workers], dir);
      expect(r.code, r.stderr).toBe(0);
      expect(r.lines.some((l) => l.type === 'log' && l.message.includes(`${workers} worker${workers === '1' ? '' : 's'}`))).toBe(true);
      return r.lines.filter((l) => l.type === 'progress').map((l) => l.loss as number);
    };
    const one = await losses('1');
    const two = await losses('2');
    expect(one).toHaveLength(6);
    expect(two).toHaveLength(6);
    expect(maxAbsDiff(two, one)).toBeLessThan(1e-5);
  }, 120_000);

  it('--workers must be a positive integer', async () => {
    const dir = tempDir();
    const file = writeToyConfig(dir);
    const r = await cliAsync(['train', file, '--workers', '0'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--workers must be a positive integer, got "0"/);
  });
});
