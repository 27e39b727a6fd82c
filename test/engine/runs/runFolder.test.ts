import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../src/engine/config/load';
import type { ResolvedConfig } from '../../../src/engine/config/types';
import { UserInputError } from '../../../src/engine/errors';
import {
  canTransition,
  createRun,
  deleteRun,
  listRuns,
  openRun,
  readMetrics,
  readMetricsFrom,
  slugify,
  transition,
} from '../../../src/engine/runs/runFolder';
import type { RunStatus } from '../../../src/engine/runs/types';

const dirs: string[] = [];
function tmp(): string {
  const d = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'adapter-lab-runs-')));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function config(root: string, name = 'spam-houlsby-64'): ResolvedConfig {
  return resolveConfig(
    {
      name,
      task: { name: 'spam', type: 'classification', train: 'train.jsonl', textField: 'text', labelField: 'label' },
      model: 'builtin:tiny-bert',
      method: { type: 'houlsby', bottleneck: 64 },
      runsDir: 'runs',
    },
    null,
    root,
  );
}

/** A pid that surely belonged to a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  return r.pid!;
}

describe('run folders', () => {
  it('createRun / update / openRun / listRuns round trip', () => {
    const root = tmp();
    const cfg = config(root);
    const now = new Date(2026, 0, 2, 3, 4, 5);
    const run = createRun(cfg.runsDir, cfg, { now });
    expect(path.dirname(run.dir)).toBe(cfg.runsDir);
    expect(path.basename(run.dir)).toMatch(/^20260102-030405-spam-houlsby-64-[0-9a-f]{4}$/);
    expect(run.record).toMatchObject({ id: path.basename(run.dir), name: 'spam-houlsby-64', status: 'queued', task: 'spam', method: 'houlsby', createdAt: now.toISOString() });
    expect(JSON.parse(fs.readFileSync(path.join(run.dir, 'run.json'), 'utf8'))).toEqual(run.record);
    expect(run.checkpointDir).toBe(path.join(run.dir, 'checkpoint'));
    expect(run.adapterDir).toBe(path.join(run.dir, 'adapter'));

    run.update({ status: 'running', backend: 'cpu', versions: { tfjs: '4.22.0' } });
    expect(run.record.startedAt).toBeDefined();
    expect(run.record.pid).toBe(process.pid);
    run.appendMetric({ type: 'train', step: 1, loss: 0.7 });
    run.appendMetric({ type: 'eval', step: 1, accuracy: 0.5 });
    run.update({ best: { metric: 'accuracy', value: 0.5, epoch: 0, step: 1 }, params: { trainable: 10, base: 1000, trainablePercent: 1 } });
    run.update({ status: 'done' });
    expect(run.record.endedAt).toBeDefined();
    expect(run.record.durationMs).toBeGreaterThanOrEqual(0);
    const evalFile = run.writeResult('eval', { accuracy: 0.5 });
    expect(evalFile).toBe(path.join(run.dir, 'eval.json'));
    expect(run.readResult('eval.json')).toEqual({ accuracy: 0.5 });
    expect(run.readResult('ablation')).toBeNull();
    expect(() => run.writeResult('../x', {})).toThrow();
    expect(() => run.writeResult('run.json', {})).toThrow();

    const reopened = openRun(run.dir);
    expect(reopened.record).toEqual(run.record);
    expect(reopened.record.config).toEqual(cfg);
    expect(readMetrics(run.dir).map((m) => m.type)).toEqual(['train', 'eval']);
    expect(typeof readMetrics(run.dir)[0]!.time).toBe('number');

    const second = createRun(cfg.runsDir, config(root, 'spam-houlsby-64__lr=0.0003,bottleneck=8'), {
      name: 'spam-houlsby-64__lr=0.0003,bottleneck=8',
      sweep: { group: 'spam-houlsby-64', assignment: { 'training.learningRate': 3e-4, 'method.bottleneck': 8 } },
      now: new Date(2026, 0, 2, 3, 4, 6),
    });
    expect(path.basename(second.dir)).toMatch(/^20260102-030406-spam-houlsby-64__lr-0\.0003-bottleneck-8-[0-9a-f]{4}$/);
    const { runs, problems } = listRuns(cfg.runsDir);
    expect(problems).toEqual([]);
    expect(runs.map((r) => r.dir)).toEqual([second.dir, run.dir]); // newest first
    expect(runs[1]).toMatchObject({ status: 'done', statusOnDisk: 'done', best: { value: 0.5 }, params: { trainable: 10 } });
    expect(runs[0]!.sweep?.assignment).toEqual({ 'training.learningRate': 3e-4, 'method.bottleneck': 8 });
    // no leftovers from the atomic writes
    expect(fs.readdirSync(cfg.runsDir).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(fs.readdirSync(run.dir).sort()).toEqual(['eval.json', 'metrics.jsonl', 'run.json']);
  });

  it('a missing runs folder lists as empty', () => {
    expect(listRuns(path.join(tmp(), 'nope'))).toEqual({ runs: [], problems: [] });
  });

  it('corrupt and half-written folders are problems; the other runs are still listed', () => {
    const root = tmp();
    const cfg = config(root);
    const good = createRun(cfg.runsDir, cfg);
    const corrupt = path.join(cfg.runsDir, '20260101-000000-corrupt-aaaa');
    fs.mkdirSync(corrupt);
    fs.writeFileSync(path.join(corrupt, 'run.json'), '{"id": "20260101-000000-corrupt-aaaa", "status": "runn');
    const half = path.join(cfg.runsDir, '20260101-000000-half-bbbb');
    fs.mkdirSync(half);
    fs.writeFileSync(path.join(half, '.run.json.123.tmp'), '{');
    const empty = path.join(cfg.runsDir, '20260101-000000-empty-cccc');
    fs.mkdirSync(empty);
    fs.writeFileSync(path.join(empty, 'run.json'), '');
    const wrong = path.join(cfg.runsDir, 'not-a-run');
    fs.mkdirSync(wrong);
    fs.writeFileSync(path.join(wrong, 'run.json'), '{"hello": 1}');
    fs.writeFileSync(path.join(cfg.runsDir, 'stray-file.txt'), 'x');
    fs.mkdirSync(path.join(cfg.runsDir, '.hidden-tmp'));

    const { runs, problems } = listRuns(cfg.runsDir);
    expect(runs.map((r) => r.dir)).toEqual([good.dir]);
    expect(problems.map((p) => p.dir).sort()).toEqual([corrupt, empty, half, wrong].sort());
    const reason = (d: string) => problems.find((p) => p.dir === d)!.reason;
    expect(reason(corrupt)).toMatch(/corrupt \(not valid JSON/);
    expect(reason(half)).toMatch(/no run\.json/);
    expect(reason(empty)).toMatch(/corrupt \(empty\)/);
    expect(reason(wrong)).toMatch(/no valid status/);
    expect(() => openRun(corrupt)).toThrow(UserInputError);
    expect(() => openRun(half)).toThrow(/half-written/);
  });

  it("a 'running' run whose process is gone is listed as interrupted, and can be resumed", () => {
    const root = tmp();
    const cfg = config(root);
    const run = createRun(cfg.runsDir, cfg);
    const pid = deadPid();
    run.update({ status: 'running', pid });
    const alive = createRun(cfg.runsDir, cfg);
    alive.update({ status: 'running' }); // this process

    const before = fs.readFileSync(path.join(run.dir, 'run.json'), 'utf8');
    const { runs } = listRuns(cfg.runsDir);
    const listed = runs.find((r) => r.dir === run.dir)!;
    expect(listed.status).toBe('interrupted');
    expect(listed.statusOnDisk).toBe('running');
    expect(runs.find((r) => r.dir === alive.dir)!.status).toBe('running');
    expect(fs.readFileSync(path.join(run.dir, 'run.json'), 'utf8')).toBe(before); // listing does not write

    const resumed = openRun(run.dir);
    expect(resumed.record.status).toBe('interrupted');
    resumed.update({ status: 'running', resumable: true });
    expect(resumed.record.pid).toBe(process.pid);
    expect(resumed.record.resumedAt).toBeDefined();
    expect(listRuns(cfg.runsDir).runs.find((r) => r.dir === run.dir)!.status).toBe('running');
    resumed.update({ status: 'failed', error: { message: 'boom', exitCode: 1 } });
    expect(openRun(run.dir).record).toMatchObject({ status: 'failed', error: { message: 'boom', exitCode: 1 } });
    resumed.update({ status: 'running' });
    expect(resumed.record.error).toBeUndefined();
    expect(resumed.record.endedAt).toBeUndefined();
  });

  it('a torn last metrics line is skipped, and the next append starts a new line', () => {
    const root = tmp();
    const cfg = config(root);
    const run = createRun(cfg.runsDir, cfg);
    run.appendMetric({ type: 'train', step: 1, loss: 1 });
    run.appendMetric({ type: 'train', step: 2, loss: 0.9 });
    fs.appendFileSync(run.metricsFile, '{"type":"train","step":3,"lo');
    expect(readMetrics(run.dir).map((m) => m.step)).toEqual([1, 2]);

    const inc = readMetricsFrom(run.dir, 0);
    expect(inc.entries).toHaveLength(2);
    expect(readMetricsFrom(run.dir, inc.offset).entries).toEqual([]);

    const again = openRun(run.dir); // e.g. the resumed trainer
    again.appendMetric({ type: 'epoch', epoch: 0 });
    expect(readMetrics(run.dir).map((m) => m.type)).toEqual(['train', 'train', 'epoch']);
    expect(readMetricsFrom(run.dir, inc.offset).entries.map((m) => m.type)).toEqual(['epoch']);
    expect(readMetrics(path.join(root, 'nothing'))).toEqual([]);
  });

  it('status transitions', () => {
    const ok: [RunStatus, RunStatus][] = [
      ['queued', 'running'],
      ['queued', 'cancelled'],
      ['queued', 'failed'],
      ['running', 'done'],
      ['running', 'failed'],
      ['running', 'cancelled'],
      ['running', 'interrupted'],
      ['interrupted', 'running'],
      ['cancelled', 'running'],
      ['failed', 'running'],
      ['interrupted', 'queued'],
      ['cancelled', 'queued'],
      ['failed', 'queued'],
    ];
    const all: RunStatus[] = ['queued', 'running', 'done', 'failed', 'cancelled', 'interrupted'];
    for (const from of all) {
      for (const to of all) {
        const valid = ok.some(([a, b]) => a === from && b === to);
        expect(canTransition(from, to), `${from} -> ${to}`).toBe(valid);
        if (valid) expect(transition(from, to)).toBe(to);
        else expect(() => transition(from, to), `${from} -> ${to}`).toThrow(UserInputError);
      }
    }
    expect(() => transition('done', 'running')).toThrow(/done; start a new run/);

    const root = tmp();
    const cfg = config(root);
    const run = createRun(cfg.runsDir, cfg);
    expect(() => run.update({ status: 'done' })).toThrow(/cannot go from "queued" to "done"/);
    expect(openRun(run.dir).record.status).toBe('queued'); // nothing written
  });

  it('deleteRun removes a run folder and refuses other folders', () => {
    const root = tmp();
    const cfg = config(root);
    const run = createRun(cfg.runsDir, cfg);
    fs.mkdirSync(run.checkpointDir);
    fs.writeFileSync(path.join(run.checkpointDir, 'state.bin'), 'x');
    deleteRun(run.dir);
    expect(fs.existsSync(run.dir)).toBe(false);
    expect(listRuns(cfg.runsDir).runs).toEqual([]);
    const other = path.join(root, 'important');
    fs.mkdirSync(other);
    expect(() => deleteRun(other)).toThrow(/does not look like a run folder/);
    expect(fs.existsSync(other)).toBe(true);
    const half = path.join(cfg.runsDir, '20260101-000000-half-bbbb');
    fs.mkdirSync(half);
    deleteRun(half);
    expect(fs.existsSync(half)).toBe(false);
  });

  it('slugify', () => {
    expect(slugify('spam-houlsby-64')).toBe('spam-houlsby-64');
    expect(slugify('a b/c\\d:é')).toBe('a-b-c-d-e');
    expect(slugify('...')).toBe('run');
    expect(slugify('x'.repeat(100))).toHaveLength(60);
  });
});
