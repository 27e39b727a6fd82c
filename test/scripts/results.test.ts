import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/fixtures';
import { runAsync } from '../helpers/python';

/**
 * scripts/results.mjs (`npm run results`): real `adapter-lab train` runs of the built-in encoder on the real
 * liu-opinion data, two steps each, into a temporary --out folder (the README and docs/results are left alone).
 * What it must get right: a finished run is not trained again, and a run whose config, budget, encoder or data has
 * changed since is (and is left out of the tables until it has been).
 */
const ROOT = path.resolve(__dirname, '../..');
const SCRIPT = path.join(ROOT, 'scripts', 'results.mjs');

// Awaited, not spawnSync: a script that trains for minutes must not block the vitest worker ("Timeout calling onTaskUpdate").
async function results(out: string, ...args: string[]) {
  const r = await runAsync(process.execPath, [SCRIPT, '--out', out, '--tasks', 'liu-opinion', '--seeds', '1', ...args], { timeoutMs: 600_000 });
  return { status: r.status, stdout: r.stdout, all: r.stdout + r.stderr };
}
const remembered = (out: string) => JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')).runs;

describe('scripts/results.mjs', () => {
  it('trains each cell once, trains it again when its budget or fingerprint changes, and tables only current runs', async () => {
    const out = tempDir();
    const methods = ['--methods', 'head,houlsby-64-random'];

    const first = await results(out, ...methods, '--max-steps', '2');
    expect(first.status, first.all).toBe(0);
    expect(first.stdout).toMatch(/liu-opinion\/head\/42: accuracy \d\.\d{4}/);
    expect(first.stdout).toMatch(/liu-opinion\/houlsby-64-random\/42: accuracy \d\.\d{4}/);
    const runs = remembered(out);
    expect(Object.keys(runs).sort()).toEqual(['liu-opinion/head/42', 'liu-opinion/houlsby-64-random/42']);
    expect(runs['liu-opinion/head/42'].fingerprint).toMatch(/^[0-9a-f]{16}$/);
    // The two rows ran on different encoders, so their fingerprints differ.
    expect(runs['liu-opinion/head/42'].fingerprint).not.toBe(runs['liu-opinion/houlsby-64-random/42'].fingerprint);
    expect(fs.readFileSync(path.join(out, 'README.md'), 'utf8')).toMatch(/\| head only \| [\d.]+% \| \d\.\d{3} \(n=1\) \|/);
    expect(fs.existsSync(path.join(out, 'work', 'random-tiny-bert-s42', 'model.safetensors'))).toBe(true);

    // The same command again: nothing to train, the runs are kept as they were.
    const again = await results(out, ...methods, '--max-steps', '2');
    expect(again.status, again.all).toBe(0);
    expect(again.stdout).not.toMatch(/liu-opinion\/head\/42: accuracy/);
    expect(remembered(out)).toEqual(runs);

    // Another budget: both cells are stale and trained again.
    const longer = await results(out, ...methods, '--max-steps', '3');
    expect(longer.status, longer.all).toBe(0);
    expect(longer.stdout).toMatch(/liu-opinion\/head\/42: stale/);
    expect(longer.stdout).toMatch(/liu-opinion\/head\/42: accuracy \d\.\d{4}/);
    expect(remembered(out)['liu-opinion/head/42'].budget).toContain('"maxSteps":3');

    // A run remembered under another fingerprint (as after a re-pretrained encoder or a rebuilt task) is left out of
    // the tables, and said to be.
    const file = path.join(out, 'results.json');
    const tampered = JSON.parse(fs.readFileSync(file, 'utf8'));
    tampered.runs['liu-opinion/head/42'].fingerprint = '0000000000000000';
    fs.writeFileSync(file, JSON.stringify(tampered));
    const report = await results(out, '--report');
    expect(report.status, report.all).toBe(0);
    expect(report.stdout).toContain('1 of 2 remembered runs are stale');
    const table = fs.readFileSync(path.join(out, 'README.md'), 'utf8');
    expect(table).not.toMatch(/\| head only \|/);
    expect(table).toMatch(/\| Houlsby, m=64, random encoder \|/);
  }, 600_000);

  it('names an unknown method or task and the ones it knows', async () => {
    const out = tempDir();
    const method = await results(out, '--methods', 'houlsby-32');
    expect(method.status).toBe(2);
    expect(method.all).toContain('--methods: unknown method "houlsby-32" (known: head, bitfit,');
    const task = await runAsync(process.execPath, [SCRIPT, '--out', out, '--tasks', 'imdb']);
    expect(task.status).toBe(2);
    expect(task.stderr).toContain('--tasks: unknown task "imdb" (known: liu-opinion, afinn-valence, sotu-party, spam)');
    expect(fs.existsSync(path.join(out, 'results.json'))).toBe(false);
  });
});
