import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CANCEL_REQUEST_FILE, listRuns, requestPointCancel } from '../../src/engine/runs';
import { tempDir, tinyModelDir, writeToyTask } from '../helpers/fixtures';
import { cliAsync } from '../helpers/cliRun';

/** `adapter-lab sweep` and `train` on a config with sweep axes, as a user runs them: the built bin, real files. */
const BIN = path.resolve(__dirname, '../../bin/adapter-lab.js');

const cli = (args: string[], cwd: string) => cliAsync(args, cwd, { timeoutMs: 240_000 });

function writeSweepConfig(dir: string, sweep: Record<string, unknown[]>): string {
  writeToyTask(dir);
  const cfg = {
    name: 'toy-sweep',
    task: { name: 'toy', type: 'classification', train: 'data/train.jsonl', dev: 'data/dev.jsonl', textField: 'text', labelField: 'label' },
    model: tinyModelDir({ layers: 2, hidden: 32, heads: 2, intermediate: 64 }),
    method: { type: 'pfeiffer', bottleneck: 4 },
    training: { epochs: 1, batchSize: 16, learningRate: 3e-3, maxSeqLength: 16, seed: 1 },
    sweep,
  };
  fs.writeFileSync(path.join(dir, 'toy.adapter.json'), JSON.stringify(cfg, null, 2));
  return 'toy.adapter.json';
}

describe('adapter-lab sweep', () => {
  it('a 2 x 2 sweep with --jobs 2 makes 4 runs with the right resolved configs, two training at a time', async () => {
    const dir = tempDir();
    const config = writeSweepConfig(dir, { 'training.learningRate': [1e-3, 3e-3], 'method.bottleneck': [4, 8] });
    const r = await cli(['sweep', config, '--jobs', '2', '--max-steps', '2', '--json'], dir);
    expect(r.code, r.stderr).toBe(0);

    const runs = listRuns(path.join(dir, '.adapter-lab', 'runs')).runs.sort((a, b) => a.sweep!.index! - b.sweep!.index!);
    expect(runs).toHaveLength(4);
    const grid = [
      [1e-3, 4],
      [1e-3, 8],
      [3e-3, 4],
      [3e-3, 8],
    ];
    runs.forEach((run, i) => {
      expect(run.status).toBe('done');
      expect([run.config.training.learningRate, run.config.method.bottleneck]).toEqual(grid[i]);
      expect(run.config.training.maxSteps).toBe(2);
      expect(run.config.sweep).toBeUndefined();
      expect(run.sweep).toEqual({ group: 'toy-sweep', assignment: { 'training.learningRate': grid[i][0], 'method.bottleneck': grid[i][1] }, id: runs[0].sweep!.id, index: i, size: 4 });
      expect(run.name).toBe(`toy-sweep__lr=${grid[i][0]},bottleneck=${grid[i][1]}`);
      // Each point trained its own adapter: a bottleneck-8 adapter is larger than a bottleneck-4 one.
      expect(run.params!.trainable).toBe(runs[i % 2].params!.trainable);
    });
    expect(runs[1].params!.trainable).toBeGreaterThan(runs[0].params!.trainable);

    // JSON lines: every point queued up front, then running and done; two points ran side by side.
    const points = r.lines.filter((l) => l.type === 'sweepPoint');
    expect(points.slice(0, 4).map((p) => p.status)).toEqual(['queued', 'queued', 'queued', 'queued']);
    const events = points.slice(4).map((p) => `${p.status}:${p.index}`);
    expect(events.filter((e) => e.startsWith('done')).sort()).toEqual(['done:0', 'done:1', 'done:2', 'done:3']);
    expect(events.indexOf('running:1')).toBeLessThan(events.findIndex((e) => e.startsWith('done')));
    // The children's own training lines come through, with their run folders.
    expect(new Set(r.lines.filter((l) => l.type === 'start' && l.command === 'train').map((l) => l.runDir))).toEqual(new Set(runs.map((x) => x.dir)));
    const result = r.lines.find((l) => l.type === 'result' && l.command === 'sweep');
    expect(result.points).toHaveLength(4);
    expect(r.lines[r.lines.length - 1]).toMatchObject({ type: 'done', command: 'sweep', status: 'done', exitCode: 0 });
  }, 300_000);

  it('exits 1 when a point fails, and the other points still train', async () => {
    const dir = tempDir();
    // Layer 5 does not exist in the 2-layer model: that point fails when it starts.
    const config = writeSweepConfig(dir, { 'method.leaveOut': [[0], [5]] });
    const r = await cli(['sweep', config, '--jobs', '2', '--max-steps', '1', '--json'], dir);
    expect(r.code).toBe(1);
    const runs = listRuns(path.join(dir, '.adapter-lab', 'runs')).runs.sort((a, b) => a.sweep!.index! - b.sweep!.index!);
    expect(runs.map((x) => x.status)).toEqual(['done', 'failed']);
    expect(runs[1].error?.message).toMatch(/leaveOut.*layer 5 does not exist/);
    expect(r.lines[r.lines.length - 1]).toMatchObject({ type: 'done', command: 'sweep', status: 'failed', exitCode: 1 });
  }, 300_000);

  it('train on a config with sweep axes trains the points one after another, recorded as a sweep', async () => {
    const dir = tempDir();
    const config = writeSweepConfig(dir, { 'training.seed': [1, 2] });
    const r = await cli(['train', config, '--max-steps', '1', '--json'], dir);
    expect(r.code, r.stderr).toBe(0);
    const runs = listRuns(path.join(dir, '.adapter-lab', 'runs')).runs.sort((a, b) => a.sweep!.index! - b.sweep!.index!);
    expect(runs.map((x) => [x.status, x.config.training.seed, x.config.training.maxSteps, x.sweep?.group, x.sweep?.size])).toEqual([
      ['done', 1, 1, 'toy-sweep', 2],
      ['done', 2, 1, 'toy-sweep', 2],
    ]);
  }, 300_000);

  it('a cancel request on one point stops that point (or skips it, not yet started) and the rest of the sweep goes on', async () => {
    const dir = tempDir();
    const config = writeSweepConfig(dir, { 'training.seed': [1, 2, 3] });
    const raw = JSON.parse(fs.readFileSync(path.join(dir, config), 'utf8'));
    raw.training = { ...raw.training, epochs: 20, batchSize: 8 };
    fs.writeFileSync(path.join(dir, config), JSON.stringify(raw));
    const child = spawn(process.execPath, [BIN, 'sweep', config, '--jobs', '1', '--max-steps', '400', '--json'], { cwd: dir });
    let out = '';
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    await new Promise<void>((resolve) => {
      let sent = false;
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const lines = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
        const queued = lines.filter((l) => l.type === 'sweepPoint' && l.status === 'queued');
        if (!sent && lines.filter((l) => l.type === 'progress').length >= 3) {
          sent = true;
          // Point 0 is training, point 1 has not started: cancel both, as the extension does.
          requestPointCancel(queued[0].runDir);
          requestPointCancel(queued[1].runDir);
        }
      });
      child.on('exit', () => resolve());
    });
    expect(child.exitCode, stderr).toBe(0);
    const runs = listRuns(path.join(dir, '.adapter-lab', 'runs')).runs.sort((a, b) => a.sweep!.index! - b.sweep!.index!);
    expect(runs.map((x) => x.status)).toEqual(['cancelled', 'cancelled', 'done']);
    // The stopped point saved a checkpoint (resumable); the skipped one never started; no request files are left.
    expect(runs[0].resumable).toBe(true);
    expect(fs.existsSync(path.join(runs[0].dir, 'checkpoint', 'state.json'))).toBe(true);
    expect(runs[1].startedAt).toBeUndefined();
    expect(runs.some((r) => fs.existsSync(path.join(r.dir, CANCEL_REQUEST_FILE)))).toBe(false);
    const last = JSON.parse(out.trim().split('\n').pop()!);
    expect(last).toMatchObject({ type: 'done', command: 'sweep', status: 'done', exitCode: 0 });
  }, 300_000);

  it('SIGTERM cancels the running point with a checkpoint and the points not started; those can be started later', async () => {
    const dir = tempDir();
    const config = writeSweepConfig(dir, { 'training.seed': [1, 2, 3] });
    const raw = JSON.parse(fs.readFileSync(path.join(dir, config), 'utf8'));
    raw.training = { ...raw.training, epochs: 20, batchSize: 8 };
    fs.writeFileSync(path.join(dir, config), JSON.stringify(raw));
    const child = spawn(process.execPath, [BIN, 'sweep', config, '--jobs', '1', '--json'], { cwd: dir });
    let out = '';
    await new Promise<void>((resolve) => {
      let sent = false;
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (!sent && out.split('\n').filter((l) => l.includes('"type":"progress"')).length >= 3) {
          sent = true;
          child.kill('SIGTERM');
        }
      });
      child.on('exit', () => resolve());
    });
    expect(child.exitCode).toBe(1);
    const runs = listRuns(path.join(dir, '.adapter-lab', 'runs')).runs.sort((a, b) => a.sweep!.index! - b.sweep!.index!);
    expect(runs.map((x) => x.status)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    expect(runs[0].resumable).toBe(true);
    expect(fs.existsSync(path.join(runs[0].dir, 'checkpoint', 'state.json'))).toBe(true);
    expect(runs[1].startedAt).toBeUndefined();
    // A point that never started starts from the beginning with train --resume.
    const resumed = await cli(['train', '--resume', runs[2].dir, '--json'], dir);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(runs[2].dir, 'run.json'), 'utf8')).status).toBe('done');
  }, 300_000);
});
