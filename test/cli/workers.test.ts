import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cli, trainSteps, writeToyConfig } from '../helpers/cliRun';
import { maxAbsDiff, tempDir } from '../helpers/fixtures';

/** --workers on the built CLI: the same run and evaluation with 1 and 2 worker threads; a failing worker fails the run. */
describe('adapter-lab --workers', () => {
  afterEach(() => {
    delete process.env.ADAPTER_LAB_TEST_WORKER_FAIL;
  });

  const train = (dir: string, file: string, workers: string) => {
    const r = cli(['train', file, '--json', '--workers', workers], dir);
    const done = r.lines.find((l) => l.type === 'done');
    return { r, runDir: done?.runDir as string | undefined };
  };

  it('train and eval give the same losses and metrics with 1 and 2 workers, and the process ends', () => {
    const dir = tempDir();
    const file = writeToyConfig(dir, { training: { epochs: 1, batchSize: 16, learningRate: 3e-3, maxSeqLength: 16, seed: 1, maxSteps: 8, dropout: 0.1 } });
    const one = train(dir, file, '1');
    const two = train(dir, file, '2');
    expect(one.r.code, one.r.stderr).toBe(0);
    expect(two.r.code, two.r.stderr).toBe(0);
    expect(two.r.lines.some((l) => l.type === 'log' && /2 workers/.test(l.message))).toBe(true);
    const losses = (runDir: string) => trainSteps(runDir).map((s) => s.loss);
    expect(losses(two.runDir!)).toHaveLength(8);
    expect(maxAbsDiff(losses(two.runDir!), losses(one.runDir!))).toBeLessThan(1e-5);
    const evalOne = cli(['eval', one.runDir!, '--json', '--workers', '1'], dir);
    const evalTwo = cli(['eval', one.runDir!, '--json', '--workers', '2'], dir);
    expect(evalTwo.code, evalTwo.stderr).toBe(0);
    const metrics = (r: ReturnType<typeof cli>) => r.lines.find((l) => l.type === 'result').metrics;
    expect(metrics(evalTwo)).toEqual(metrics(evalOne));
  }, 120_000);

  it('a worker that fails mid-step fails the run with its error (exit 1, run.json failed)', () => {
    const dir = tempDir();
    const file = writeToyConfig(dir, { training: { epochs: 1, batchSize: 16, learningRate: 3e-3, maxSeqLength: 16, seed: 1, maxSteps: 8 } });
    process.env.ADAPTER_LAB_TEST_WORKER_FAIL = '1:3';
    const r = cli(['train', file, '--json', '--workers', '2'], dir);
    expect(r.code).toBe(1);
    const error = r.lines.find((l) => l.type === 'error');
    expect(error?.message).toMatch(/worker 1 failed: test hook: worker 1 fails at step 3/);
    const runsDir = path.join(dir, '.adapter-lab', 'runs');
    const [runName] = fs.readdirSync(runsDir);
    const record = JSON.parse(fs.readFileSync(path.join(runsDir, runName, 'run.json'), 'utf8'));
    expect(record.status).toBe('failed');
    expect(trainSteps(path.join(runsDir, runName))).toHaveLength(3);
  }, 60_000);

  it('--workers must be a positive integer', () => {
    const dir = tempDir();
    const file = writeToyConfig(dir);
    const r = cli(['train', file, '--workers', '0'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--workers must be a positive integer, got "0"/);
  });
});
