import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isProcessAlive, listRuns } from '../../src/engine/runs';
import { EngineProcess, LineSplitter, STDERR_TAIL_LINES } from '../../src/extension/runs/engineProcess';
import type { JobSpec } from '../../src/extension/runs/jobs';
import { RunQueue, type Job } from '../../src/extension/runs/queue';
import type { EngineMessage } from '../../src/protocol/messages';
import { tempDir } from '../helpers/fixtures';

/** The queue against real child processes: a fake engine (test/fixtures/engine/fakeEngine.js) that speaks the protocol and misbehaves on request. */
const FAKE = path.resolve(__dirname, '../fixtures/engine/fakeEngine.js');
const launcher = { command: process.execPath, args: [FAKE] };
const queues: RunQueue[] = [];

function makeQueue(maxConcurrent = 1, killGraceMs = 2000): RunQueue {
  const q = new RunQueue({ launcher, maxConcurrent, killGraceMs });
  queues.push(q);
  return q;
}

function spec(scenario: string, runsDir: string): JobSpec {
  return { kind: 'train', label: `fake ${scenario}`, args: [scenario, runsDir], cwd: runsDir };
}

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function runJson(dir: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8'));
}

afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.dispose()));
});

describe('LineSplitter', () => {
  it('joins lines split across chunks, strips CR, and keeps the unfinished rest until the end', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l));
    s.push('{"type":"lo');
    s.push('g","level":"info","message":"a"}\r\nsecond');
    expect(lines).toEqual(['{"type":"log","level":"info","message":"a"}']);
    s.push(' line\nthird');
    expect(lines).toEqual(['{"type":"log","level":"info","message":"a"}', 'second line']);
    s.end();
    expect(lines[2]).toBe('third');
  });
});

describe('EngineProcess', () => {
  it('delivers protocol messages in order and other lines as text, from a child that prints garbage', async () => {
    const runs = tempDir();
    const messages: EngineMessage[] = [];
    const text: string[] = [];
    const p = new EngineProcess(launcher, ['garbage', runs, '--json'], { cwd: runs }, { onMessage: (m) => messages.push(m), onText: (l) => text.push(l) });
    const exit = await p.exited;
    expect(exit.code).toBe(0);
    expect(messages.map((m) => m.type)).toEqual(['start', 'done']);
    expect(text).toContain('loading weights...');
    expect(text).toContain('{"type": "progress", "step": ');
    expect(text).toContain('{"no": "type"}');
    expect(text).toContain('trailing text without a newline');
    expect(exit.stderrTail).toEqual(['a warning on stderr']);
  });

  it('keeps only the last stderr lines of a process that dies', async () => {
    const runs = tempDir();
    const exit = await new EngineProcess(launcher, ['die', runs], { cwd: runs }).exited;
    expect(exit.code).toBe(3);
    expect(exit.stderrTail).toHaveLength(STDERR_TAIL_LINES);
    expect(exit.stderrTail[exit.stderrTail.length - 1]).toBe('FATAL: out of memory');
  });

  it('reports an executable that cannot be started', async () => {
    const exit = await new EngineProcess({ command: '/nonexistent/node', args: [] }, ['x'], { cwd: tempDir() }).exited;
    expect(exit.spawnError).toMatch(/ENOENT/);
  });
});

describe('RunQueue', () => {
  it('runs a job to done, collecting its run folder, progress, eval and result', async () => {
    const runs = tempDir();
    const q = makeQueue();
    const events: string[] = [];
    q.listen({ onJob: (j, e) => events.push(`${j.id}:${e}`) });
    const job = q.enqueue(spec('ok', runs));
    await q.whenEnded(job);
    expect(job.state).toBe('done');
    expect(job.runDirs).toHaveLength(1);
    expect(job.progress?.step).toBe(1); // the progress line arrived in two pieces
    expect(job.lastEval?.metrics.accuracy).toBe(0.75);
    expect(job.result?.best).toEqual({ metric: 'accuracy', value: 0.75 });
    expect(events[0]).toBe(`${job.id}:queued`);
    expect(events).toContain(`${job.id}:started`);
    expect(events[events.length - 1]).toBe(`${job.id}:ended`);
    expect(runJson(job.runDirs[0]).status).toBe('done');
  });

  it('is not thrown off by garbage on stdout', async () => {
    const runs = tempDir();
    const q = makeQueue();
    const text: string[] = [];
    q.listen({ onText: (_j, l) => text.push(l) });
    const job = await q.whenEnded(q.enqueue(spec('garbage', runs)));
    expect(job.state).toBe('done');
    expect(text.length).toBeGreaterThanOrEqual(4);
  });

  it('never runs more than maxConcurrent jobs, and starts the next as one ends', async () => {
    const runs = tempDir();
    const q = makeQueue(2);
    let peak = 0;
    q.listen({ onJob: () => (peak = Math.max(peak, q.jobs.filter((j) => j.state === 'running').length)) });
    const jobs = [1, 2, 3, 4].map(() => q.enqueue(spec('hold', runs)));
    await until(() => jobs.filter((j) => j.runDirs.length).length === 2, 'two jobs to start');
    expect(jobs.map((j) => j.state)).toEqual(['running', 'running', 'queued', 'queued']);
    fs.writeFileSync(path.join(runs, 'release'), '');
    await Promise.all(jobs.map((j) => q.whenEnded(j)));
    expect(jobs.every((j) => j.state === 'done')).toBe(true);
    expect(peak).toBe(2);
    expect(listRuns(runs).runs.map((r) => r.status)).toEqual(['done', 'done', 'done', 'done']);
  });

  it('counts slots: a two-slot job (a sweep with --jobs 2) waits for two free slots, and jobs behind it wait too', async () => {
    const runs = tempDir();
    const q = makeQueue(2);
    const single = q.enqueue(spec('hold', runs));
    const wide = q.enqueue({ ...spec('hold', runs), slots: 2 });
    const after = q.enqueue(spec('hold', runs));
    await until(() => single.runDirs.length === 1, 'the one-slot job to start');
    // One slot is free, but the two-slot job needs both; first in, first out keeps the third job behind it.
    expect([single.state, wide.state, after.state]).toEqual(['running', 'queued', 'queued']);
    fs.writeFileSync(path.join(runs, 'release'), '');
    await q.whenEnded(single);
    expect(wide.state).toBe('running');
    // The wide job alone fills the queue: the third still waits.
    expect(after.state).toBe('queued');
    await Promise.all([wide, after].map((j) => q.whenEnded(j)));
    expect(after.startedAt!).toBeGreaterThanOrEqual(wide.endedAt!);
  });

  it('a job wider than the whole queue still starts, alone', async () => {
    const runs = tempDir();
    const q = makeQueue(2);
    const wide = q.enqueue({ ...spec('hold', runs), slots: 5 });
    const next = q.enqueue(spec('hold', runs));
    expect([wide.state, next.state]).toEqual(['running', 'queued']);
    fs.writeFileSync(path.join(runs, 'release'), '');
    await Promise.all([wide, next].map((j) => q.whenEnded(j)));
    expect([wide.state, next.state]).toEqual(['done', 'done']);
    expect(next.startedAt!).toBeGreaterThanOrEqual(wide.endedAt!);
  });

  it('raising maxConcurrent starts waiting jobs at once', async () => {
    const runs = tempDir();
    const q = makeQueue(1);
    const jobs = [1, 2, 3].map(() => q.enqueue(spec('hold', runs)));
    await until(() => jobs[0].runDirs.length === 1, 'the first job to start');
    expect(jobs[1].state).toBe('queued');
    q.setMaxConcurrent(3);
    expect(jobs.map((j) => j.state)).toEqual(['running', 'running', 'running']);
    fs.writeFileSync(path.join(runs, 'release'), '');
    await Promise.all(jobs.map((j) => q.whenEnded(j)));
  });

  it('cancel of a running job stops its process tree; the run ends cancelled with its checkpoint', async () => {
    const runs = tempDir();
    const q = makeQueue();
    const job = q.enqueue(spec('slow', runs));
    await until(() => (job.progress?.step ?? 0) >= 3, 'progress');
    const grandchild = Number(fs.readFileSync(path.join(runs, 'grandchild.pid'), 'utf8'));
    expect(isProcessAlive(grandchild)).toBe(true);
    expect(q.cancel(job)).toBe(true);
    await q.whenEnded(job);
    expect(job.state).toBe('cancelled');
    expect(job.exitCode).toBe(1);
    const record = runJson(job.runDirs[0]);
    expect(record.status).toBe('cancelled');
    expect(fs.existsSync(path.join(job.runDirs[0], 'checkpoint', 'state.json'))).toBe(true);
    await until(() => !isProcessAlive(grandchild), 'the grandchild to die');
  });

  it('cancel of a queued job drops it without starting a process', async () => {
    const runs = tempDir();
    const q = makeQueue(1);
    const first = q.enqueue(spec('hold', runs));
    const second = q.enqueue(spec('ok', runs));
    expect(q.cancel(second)).toBe(true);
    expect(second.state).toBe('cancelled');
    expect(second.pid).toBeUndefined();
    fs.writeFileSync(path.join(runs, 'release'), '');
    await q.whenEnded(first);
    expect(listRuns(runs).runs).toHaveLength(1);
    expect(q.cancel(second)).toBe(false);
  });

  it('a process that ignores SIGTERM is killed after the grace period and its run is marked cancelled', async () => {
    const runs = tempDir();
    const q = makeQueue(1, 300);
    const job = q.enqueue(spec('stubborn', runs));
    await until(() => job.runDirs.length === 1, 'start');
    q.cancel(job);
    await q.whenEnded(job);
    expect(job.state).toBe('cancelled');
    expect(job.exitCode).toBeNull(); // ended by SIGKILL
    const record = runJson(job.runDirs[0]);
    expect(record.status).toBe('cancelled');
    expect(record.resumable).toBe(false);
    expect(record.endedAt).toBeTypeOf('string');
  });

  it('a process that dies marks its job and its run failed, with the exit code and the last stderr lines', async () => {
    const runs = tempDir();
    const q = makeQueue();
    const job = await q.whenEnded(q.enqueue(spec('die', runs)));
    expect(job.state).toBe('failed');
    expect(job.error?.exitCode).toBe(3);
    expect(job.error?.message).toContain('exited with code 3');
    expect(job.error?.message).toContain('FATAL: out of memory');
    const record = runJson(job.runDirs[0]) as { status: string; error: { message: string; exitCode: number; stderrTail: string }; durationMs: number };
    expect(record.status).toBe('failed');
    expect(record.error.exitCode).toBe(3);
    expect(record.error.stderrTail.split('\n')).toHaveLength(STDERR_TAIL_LINES);
    expect(record.error.stderrTail).toMatch(/FATAL: out of memory$/);
    expect(record.durationMs).toBeGreaterThanOrEqual(0);
    // What the tree reads: failed, not running and not interrupted.
    expect(listRuns(runs).runs[0].status).toBe('failed');
  });

  it('a process killed by a signal fails its run with the signal named', async () => {
    const runs = tempDir();
    const q = makeQueue();
    const job = await q.whenEnded(q.enqueue(spec('killed', runs)));
    expect(job.state).toBe('failed');
    expect(job.error?.message).toContain('SIGKILL');
    expect(runJson(job.runDirs[0]).status).toBe('failed');
  });

  it('bad input fails the job with the located error and creates no run', async () => {
    const runs = tempDir();
    const q = makeQueue();
    const job = await q.whenEnded(q.enqueue(spec('badinput', runs)));
    expect(job.state).toBe('failed');
    expect(job.error).toMatchObject({ exitCode: 2, file: 'x.adapter.json', line: 7, field: 'training.learningRate' });
    expect(job.runDirs).toEqual([]);
  });

  it('a job whose executable cannot start fails instead of hanging', async () => {
    const q = new RunQueue({ launcher: { command: '/nonexistent/node', args: [] }, maxConcurrent: 1 });
    queues.push(q);
    const job: Job = await q.whenEnded(q.enqueue(spec('ok', tempDir())));
    expect(job.state).toBe('failed');
    expect(job.error?.message).toMatch(/could not start the engine/);
  });

  it('dispose cancels queued and running jobs and waits for them', async () => {
    const runs = tempDir();
    const q = new RunQueue({ launcher, maxConcurrent: 1, killGraceMs: 2000 });
    const running = q.enqueue(spec('slow', runs));
    const waiting = q.enqueue(spec('ok', runs));
    await until(() => running.runDirs.length === 1, 'start');
    await q.dispose();
    expect(running.state).toBe('cancelled');
    expect(waiting.state).toBe('cancelled');
    expect(() => q.enqueue(spec('ok', runs))).toThrow(/closed/);
  });
});
