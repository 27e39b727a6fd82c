import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/fixtures';
import { runAsync } from '../helpers/python';
import { catalogEntry, catalogLearningRate, methodsForTaskType } from '../../src/engine/methods/catalog';
// @ts-expect-error: a plain .mjs module of the decathlon script, without types
import { METHODS as DECATHLON_ROWS } from '../../scripts/decathlon-methods.mjs';

/**
 * scripts/decathlon.mjs (`npm run decathlon`): real `adapter-lab train` and `eval --split test` runs of
 * builtin:resnet-fashion on the openclipart example domain and on Fashion-MNIST (Debian's dataset-fashion-mnist,
 * the base domain), three steps each, into a temporary --out folder (the README and docs/results are left alone).
 * The table's figures are checked against the run folders' own files and the decathlon score computed here.
 */
const ROOT = path.resolve(__dirname, '../..');
const SCRIPT = path.join(ROOT, 'scripts', 'decathlon.mjs');
const ARGS = ['--domains', 'openclipart', '--methods', 'residual-series,full,head', '--seeds', '1', '--max-steps', '3'];

const readJson = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8'));
const remembered = (out: string): Record<string, any> => {
  const file = path.join(out, 'decathlon.json');
  return fs.existsSync(file) ? readJson(file).runs : {};
};

async function decathlon(out: string, ...args: string[]) {
  const r = await runAsync(process.execPath, [SCRIPT, '--out', out, ...args], { timeoutMs: 600_000 });
  return { status: r.status, stdout: r.stdout, all: r.stdout + r.stderr };
}

/** Starts the script in a process group of its own and kills the group once `key` is remembered (a run cut short). */
async function interruptAfter(out: string, key: string): Promise<void> {
  const child = spawn(process.execPath, [SCRIPT, '--out', out, ...ARGS], { detached: true, stdio: 'ignore' });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const deadline = Date.now() + 480_000;
  while (!remembered(out)[key]) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the script ended or stalled before ${key} was remembered`);
    await new Promise((r) => setTimeout(r, 200));
  }
  process.kill(-child.pid!, 'SIGKILL');
  await exited;
}

/** The table's rows in decathlon.md by method label: the cells after the label. */
function tableRows(out: string): Map<string, string[]> {
  const md = fs.readFileSync(path.join(out, 'decathlon.md'), 'utf8');
  const rows = new Map<string, string[]>();
  for (const line of md.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| method'))) {
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    rows.set(cells[0], cells.slice(1));
  }
  return rows;
}

describe('scripts/decathlon.mjs', () => {
  it('cut short, it resumes without training the finished runs again; its table agrees with the run folders and the score formula', async () => {
    const out = tempDir();
    await interruptAfter(out, 'openclipart/residual-series/42');
    const before = remembered(out);
    expect(Object.keys(before).sort()).toEqual(['fashion-mnist/base-head/42', 'openclipart/residual-series/42']);

    const resumed = await decathlon(out, ...ARGS);
    expect(resumed.status, resumed.all).toBe(0);
    // The finished runs are not trained again; the others are.
    expect(resumed.stdout).not.toMatch(/fashion-mnist\/base-head\/42: test accuracy/);
    expect(resumed.stdout).not.toMatch(/openclipart\/residual-series\/42: test accuracy/);
    expect(resumed.stdout).toMatch(/openclipart\/full\/42: test accuracy \d\.\d{4}/);
    expect(resumed.stdout).toMatch(/openclipart\/head\/42: test accuracy \d\.\d{4}/);
    const runs = remembered(out);
    expect(Object.keys(runs).sort()).toEqual(['fashion-mnist/base-head/42', 'openclipart/full/42', 'openclipart/head/42', 'openclipart/residual-series/42']);
    for (const key of Object.keys(before)) expect(runs[key]).toEqual(before[key]);

    // Every remembered figure is the run folder's: the test split's accuracy, the trainable parameters.
    for (const run of Object.values(runs)) {
      const dir = path.resolve(ROOT, run.runDir);
      const test = readJson(path.join(dir, 'eval-test.json'));
      const record = readJson(path.join(dir, 'run.json'));
      expect(run.test).toBe(test.metrics.accuracy);
      expect(run.trainable).toBe(record.params.trainable);
      expect(run.base).toBe(record.params.base);
      expect(test.split).toBe('test');
      expect(record.config.training.maxSteps).toBe(3);
    }
    const base = runs['fashion-mnist/base-head/42'];
    expect(base.testExamples).toBe(10_000);
    expect(readJson(path.join(path.resolve(ROOT, base.runDir), 'run.json')).config.method.type).toBe('head');

    // The table, recomputed from the run folders: accuracy in %, parameters as a multiple of the network, the score.
    const acc = (key: string) => readJson(path.join(path.resolve(ROOT, runs[key].runDir), 'eval-test.json')).metrics.accuracy as number;
    const trainable = (key: string) => readJson(path.join(path.resolve(ROOT, runs[key].runDir), 'run.json')).params.trainable as number;
    const network = base.base as number;
    expect(network).toBe(74_352);
    const baseError = 1 - acc('fashion-mnist/base-head/42');
    const fullError = 1 - acc('openclipart/full/42');
    const score = (error: number) => {
      // Rebuffi et al. 2017: alpha_d * max(0, Emax_d - E_d)^2, Emax_d = 2 x full fine-tuning's error, alpha_d = 1000 / Emax_d^2.
      const term = (e: number, emax: number) => (1000 / emax ** 2) * Math.max(0, emax - e) ** 2;
      return term(baseError, 2 * baseError) + term(error, 2 * fullError);
    };
    const rows = tableRows(out);
    const expected: [string, string][] = [
      ['residual adapters, series (Rebuffi 2017)', 'openclipart/residual-series/42'],
      ['head only (frozen features)', 'openclipart/head/42'],
      ['full fine-tuning', 'openclipart/full/42'],
    ];
    expect([...rows.keys()].sort()).toEqual(expected.map(([label]) => label).sort());
    for (const [label, key] of expected) {
      const [params, baseCell, domainCell, scoreCell] = rows.get(label)!;
      expect(params, label).toBe(((network + trainable('fashion-mnist/base-head/42') + trainable(key)) / network).toFixed(2));
      expect(baseCell, label).toBe((100 * acc('fashion-mnist/base-head/42')).toFixed(2));
      expect(domainCell, label).toBe(`${(100 * acc(key)).toFixed(2)} (n=1)`);
      expect(Number(scoreCell), label).toBe(Math.round(score(1 - acc(key))));
    }
    // Full fine-tuning: 250 on each domain by the definition; its parameters a second network besides the base's.
    expect(rows.get('full fine-tuning')![3]).toBe('500');
    expect(Number(rows.get('full fine-tuning')![0])).toBeGreaterThan(2);
    // The base domain is shown unchanged: no frozen-base run saved a network tensor; full saved a whole network.
    const md = fs.readFileSync(path.join(out, 'decathlon.md'), 'utf8');
    expect(md).toContain("2 runs of the frozen-base methods saved none of the network's tensors");
    expect(md).toContain('1 runs of full fine-tuning and from-scratch saved a whole network of their own (1 complete)');

    // --report rewrites the table from the remembered runs, training nothing.
    fs.rmSync(path.join(out, 'decathlon.md'));
    const report = await decathlon(out, '--report');
    expect(report.status, report.all).toBe(0);
    expect(report.stdout).not.toMatch(/test accuracy \d/);
    expect(tableRows(out)).toEqual(rows);
  }, 900_000);

  it("has a row for every method of the ResNet family, at the catalog's learning rate for image tasks or with the reason it is not", () => {
    const rows = DECATHLON_ROWS as { key: string; lr: number; frozenBase: boolean; lrWhy?: string }[];
    expect(rows.map((r) => r.key).sort()).toEqual([...methodsForTaskType('image-classification')].sort());
    for (const r of rows) {
      // A row that departs from the catalog says why (the table's notes print it).
      if (r.lr !== catalogLearningRate(r.key as never, 'image-classification')) expect(r.lrWhy, r.key).toMatch(/\S/);
      else expect(r.lrWhy, r.key).toBeUndefined();
      expect(r.frozenBase, r.key).toBe(catalogEntry(r.key as never).trainsBase !== 'everything');
    }
  });

  it('names an unknown domain or method and the ones it knows, exit 2', async () => {
    const out = tempDir();
    const domain = await decathlon(out, '--domains', 'cifar');
    expect(domain.status).toBe(2);
    expect(domain.all).toContain('--domains: unknown domain "cifar" (known: mnist, sklearn-digits, emoji-google, emoji-twitter, openclipart)');
    const method = await decathlon(out, '--methods', 'lora');
    expect(method.status).toBe(2);
    expect(method.all).toContain('--methods: unknown method "lora" (known: residual-series, residual-parallel, batchnorm, head, full, scratch)');
    expect(fs.existsSync(path.join(out, 'decathlon.json'))).toBe(false);
  });
});
