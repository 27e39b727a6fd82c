import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/engine/config/load';
import { createRun, listRuns, openRun } from '../../src/engine/runs';
import { finalizeDeadRun } from '../../src/extension/runs/finalize';
import { jobOutcome } from '../../src/extension/runs/queue';
import { tempDir, writeToyTask } from '../helpers/fixtures';

const exit = (code: number | null, signal: NodeJS.Signals | null = null, stderrTail: string[] = []) => ({ code, signal, stderrTail });

describe('job outcome (status transitions of a job)', () => {
  it('done when the engine says done and exits 0', () => {
    expect(jobOutcome(exit(0), { status: 'done', exitCode: 0 }, undefined, false)).toEqual({ state: 'done' });
  });

  it('cancelled when the engine says cancelled (exit code 1 is the CLI\'s code for it)', () => {
    expect(jobOutcome(exit(1), { status: 'cancelled', exitCode: 1 }, undefined, true).state).toBe('cancelled');
  });

  it('failed with the engine\'s located error when it says failed', () => {
    const o = jobOutcome(exit(2), { status: 'failed', exitCode: 2 }, { type: 'error', message: 'bad lr', exitCode: 2, file: 'a.adapter.json', line: 3, field: 'training.learningRate' }, false);
    expect(o.state).toBe('failed');
    expect(o.error).toMatchObject({ message: 'bad lr', exitCode: 2, file: 'a.adapter.json', line: 3, field: 'training.learningRate' });
  });

  it('failed with the exit code and last stderr line when the process dies without a word', () => {
    const o = jobOutcome(exit(134, null, ['...', 'Aborted (core dumped)']), undefined, undefined, false);
    expect(o.state).toBe('failed');
    expect(o.error?.message).toBe('the engine process exited with code 134: Aborted (core dumped)');
    expect(o.error?.stderrTail).toEqual(['...', 'Aborted (core dumped)']);
  });

  it('failed, naming the signal, when a signal ends it unasked; cancelled when it was asked to stop', () => {
    expect(jobOutcome(exit(null, 'SIGKILL'), undefined, undefined, false).error?.message).toBe('the engine process was killed by SIGKILL');
    expect(jobOutcome(exit(null, 'SIGKILL'), undefined, undefined, true).state).toBe('cancelled');
  });

  it('done for a command that ends with exit 0 and no run (export)', () => {
    expect(jobOutcome(exit(0), undefined, undefined, false).state).toBe('done');
  });

  it('failed when the exit code contradicts a "done"', () => {
    expect(jobOutcome(exit(1), { status: 'done', exitCode: 0 }, undefined, false).state).toBe('failed');
  });

  it('failed when the process could not start', () => {
    expect(jobOutcome({ ...exit(null), spawnError: 'spawn ENOENT' }, undefined, undefined, false).error?.message).toBe('could not start the engine: spawn ENOENT');
  });
});

describe('finalizeDeadRun (a run whose process died)', () => {
  function running() {
    const ws = tempDir();
    writeToyTask(ws);
    const cfg = resolveConfig(
      { name: 't', task: { name: 't', type: 'classification', train: 'data/train.jsonl', dev: 'data/dev.jsonl', textField: 'text', labelField: 'label' }, model: 'builtin:tiny-bert', method: { type: 'head' } },
      path.join(ws, 't.adapter.json'),
      ws,
    );
    const run = createRun(path.join(ws, 'runs'), cfg);
    const pid = spawnSync(process.execPath, ['-e', '0']).pid!;
    run.update({ status: 'running', pid, startedAt: new Date(Date.now() - 5000).toISOString() });
    return { run, pid };
  }

  it('marks it failed with the reason and the time it ran; the store can resume it afterwards', () => {
    const { run, pid } = running();
    expect(finalizeDeadRun(run.dir, { status: 'failed', error: { message: 'died', exitCode: 3, stderrTail: 'boom' } }, pid)).toBe(true);
    const r = openRun(run.dir).record;
    expect(r.status).toBe('failed');
    expect(r.error).toEqual({ message: 'died', exitCode: 3, stderrTail: 'boom' });
    expect(r.durationMs).toBeGreaterThanOrEqual(4900);
    expect(r.resumable).toBe(false);
    expect(listRuns(path.dirname(run.dir)).runs[0].status).toBe('failed');
    // failed -> running is a resume the store allows.
    expect(openRun(run.dir).update({ status: 'running' }).status).toBe('running');
  });

  it('marks it resumable when a checkpoint exists', () => {
    const { run, pid } = running();
    fs.mkdirSync(run.checkpointDir, { recursive: true });
    fs.writeFileSync(path.join(run.checkpointDir, 'state.json'), '{}');
    finalizeDeadRun(run.dir, { status: 'cancelled' }, pid);
    expect(openRun(run.dir).record).toMatchObject({ status: 'cancelled', resumable: true });
  });

  it('leaves alone a run its process ended itself, one a live process owns, and an unreadable one', () => {
    const { run, pid } = running();
    run.update({ status: 'done' });
    expect(finalizeDeadRun(run.dir, { status: 'failed' }, pid)).toBe(false);
    expect(openRun(run.dir).record.status).toBe('done');

    const other = running().run;
    other.update({ status: 'running', pid: process.pid });
    expect(finalizeDeadRun(other.dir, { status: 'failed' }, 999999)).toBe(false);
    expect(openRun(other.dir).record.status).toBe('running');

    const broken = running().run;
    fs.writeFileSync(broken.runFile, '{"status": "runn');
    expect(finalizeDeadRun(broken.dir, { status: 'failed' })).toBe(false);
  });
});
