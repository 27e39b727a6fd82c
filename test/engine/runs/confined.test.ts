import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRun, openRun, readMetrics } from '../../../src/engine/runs';
import { LinkRefusedError, removeStaleTempFiles } from '../../../src/engine/runs/confined';
import { acquireRunLock, LOCK_FILE, processStartTime, RunLockedError } from '../../../src/engine/runs/lock';
import { trainRun } from '../../../src/engine/train/trainer';
import { encodeSafetensors, parseSafetensors } from '../../../src/engine/model/safetensors';
import { readTrainedAdapter } from '../../../src/engine/model/fusionIo';
import { UserInputError } from '../../../src/engine/errors';
import { toCsv } from '../../../webview-ui/shared/csv';
import { tempDir, tinyModelDir, toyConfig, useBackend } from '../../helpers/fixtures';

/**
 * Run-folder I/O never goes through a symbolic link (issue 15, item 1), one live process owns a run (item 3),
 * and the smaller guards of items 8 and 9 that need no child process.
 */
const modelOptions = { layers: 2, hidden: 32, heads: 2, intermediate: 64 };

/** Every file under `dir` with its bytes, to show a folder was left exactly as it was. */
function snapshotTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[path.relative(dir, p)] = fs.readFileSync(p).toString('base64');
    }
  };
  walk(dir);
  return out;
}

/** A folder outside the run holding files a careless cleanup would delete or overwrite. */
function victimFolder(): string {
  const dir = tempDir('victim-');
  fs.writeFileSync(path.join(dir, 'someone-elses.safetensors'), encodeSafetensors(new Map([['w', { shape: [2], data: new Float32Array([1, 2]) }]])));
  fs.writeFileSync(path.join(dir, 'adapter_config.json'), '{"precious": true}\n');
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'keep me\n');
  return dir;
}

/** The pid of a process that has ended. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('run folders never follow symbolic links', () => {
  beforeAll(useBackend);

  it('a resume whose checkpoint/ is a link is refused and the link target is left untouched', async () => {
    const cfg = toyConfig(tempDir(), tinyModelDir(modelOptions), { training: { maxSteps: 3 } });
    const run = createRun(cfg.runsDir, cfg);
    await trainRun({ config: cfg, run });
    const victim = victimFolder();
    // The run's own checkpoint files moved into the victim's folder, and the link put in their place.
    for (const f of fs.readdirSync(run.checkpointDir)) fs.renameSync(path.join(run.checkpointDir, f), path.join(victim, f));
    fs.rmdirSync(run.checkpointDir);
    fs.symlinkSync(victim, run.checkpointDir);
    const before = snapshotTree(victim);
    // A done run cannot be resumed anyway; make it an interrupted one, as after a crash.
    const record = JSON.parse(fs.readFileSync(run.runFile, 'utf8'));
    fs.writeFileSync(run.runFile, JSON.stringify({ ...record, status: 'running', pid: deadPid() }));
    await expect(trainRun({ config: cfg, run: openRun(run.dir), resume: true })).rejects.toThrow(LinkRefusedError);
    await expect(trainRun({ config: cfg, run: openRun(run.dir), resume: true })).rejects.toThrow(/checkpoint is a symbolic link/);
    expect(snapshotTree(victim)).toEqual(before);
  });

  it('metrics.jsonl as a link: nothing is appended to its target', () => {
    const cfg = toyConfig(tempDir(), tinyModelDir(modelOptions));
    const run = createRun(cfg.runsDir, cfg);
    const victim = victimFolder();
    fs.symlinkSync(path.join(victim, 'notes.txt'), run.metricsFile);
    const before = snapshotTree(victim);
    expect(() => run.appendMetric({ type: 'train', step: 1, loss: 0.5 })).toThrow(LinkRefusedError);
    expect(() => run.trimMetrics(0)).toThrow(LinkRefusedError);
    expect(readMetrics(run.dir)).toEqual([]); // readers do not read through it either
    expect(snapshotTree(victim)).toEqual(before);
  });

  it('adapter/ as a link: training ends with an error and the other folder\'s adapter is not overwritten', async () => {
    const cfg = toyConfig(tempDir(), tinyModelDir(modelOptions), { training: { maxSteps: 2 } });
    const run = createRun(cfg.runsDir, cfg);
    const victim = victimFolder();
    fs.symlinkSync(victim, run.adapterDir);
    const before = snapshotTree(victim);
    await expect(trainRun({ config: cfg, run })).rejects.toThrow(/adapter is a symbolic link/);
    expect(snapshotTree(victim)).toEqual(before);
  });

  it('run.json and results as links are refused, not written through', () => {
    const cfg = toyConfig(tempDir(), tinyModelDir(modelOptions));
    const run = createRun(cfg.runsDir, cfg);
    const victim = victimFolder();
    fs.symlinkSync(path.join(victim, 'adapter_config.json'), path.join(run.dir, 'eval-dev.json'));
    expect(() => run.writeResult('eval-dev', { metrics: {} })).toThrow(LinkRefusedError);
    fs.rmSync(run.runFile);
    fs.symlinkSync(path.join(victim, 'adapter_config.json'), run.runFile);
    expect(() => openRun(run.dir)).toThrow(/run\.json is a symbolic link/);
    expect(() => run.update({ status: 'running' })).toThrow(LinkRefusedError);
    expect(fs.readFileSync(path.join(victim, 'adapter_config.json'), 'utf8')).toBe('{"precious": true}\n');
  });
});

describe('the run lock', () => {
  it('a second owner is refused while the first lives; a released lock can be taken again', () => {
    const dir = tempDir();
    const first = acquireRunLock(dir);
    expect(() => acquireRunLock(dir)).toThrow(RunLockedError);
    expect(() => acquireRunLock(dir)).toThrow(new RegExp(`in use by process ${process.pid}`));
    first.release();
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
    acquireRunLock(dir).release();
  });

  it('a stale lock (dead process, or a pid now used by another process) is taken over', () => {
    const dir = tempDir();
    const pid = deadPid();
    fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid, hostname: os.hostname(), since: '2020-01-01T00:00:00.000Z' }));
    const lock = acquireRunLock(dir);
    expect(lock.tookOverFrom?.pid).toBe(pid);
    expect(JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    lock.release();
    // Our own pid, but another start time: the process that took the lock is gone and the pid was reused.
    expect(processStartTime(process.pid)).toBeDefined();
    fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: process.pid, hostname: os.hostname(), since: 'x', processStart: '1' }));
    const again = acquireRunLock(dir);
    expect(again.tookOverFrom?.processStart).toBe('1');
    again.release();
  });

  it('temp files of a killed writer are removed; a live writer\'s are kept', () => {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, 'checkpoint'));
    const dead = path.join(dir, 'checkpoint', `.trainable-4.safetensors.${deadPid()}.1700000000000.tmp`);
    const live = path.join(dir, `.run.json.${process.ppid}.1700000000000.tmp`);
    fs.writeFileSync(dead, 'half');
    fs.writeFileSync(live, 'in progress');
    expect(removeStaleTempFiles(dir, (pid) => pid === process.ppid)).toEqual([dead]);
    expect(fs.existsSync(live)).toBe(true);
  });
});

describe('half-built run folders', () => {
  it('createRun removes the hidden folder a killed createRun left, not one a live process is building', () => {
    const cfg = toyConfig(tempDir(), tinyModelDir(modelOptions));
    fs.mkdirSync(cfg.runsDir, { recursive: true });
    const dead = path.join(cfg.runsDir, `.20260101-000000-toy-ab12.${deadPid()}.tmp`);
    const live = path.join(cfg.runsDir, `.20260101-000000-toy-cd34.${process.ppid}.tmp`);
    for (const d of [dead, live]) fs.mkdirSync(d);
    createRun(cfg.runsDir, cfg);
    expect(fs.existsSync(dead)).toBe(false);
    expect(fs.existsSync(live)).toBe(true);
  });
});

describe('bad files are bad input naming the file', () => {
  it('a truncated safetensors file is a UserInputError that says so (not "Invalid DataView length")', () => {
    const bytes = encodeSafetensors(new Map([['w', { shape: [4, 4], data: new Float32Array(16).fill(1) }]]));
    const cut = bytes.subarray(0, bytes.length - 10);
    let err: unknown;
    try {
      parseSafetensors(cut, '/x/adapter.safetensors');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserInputError);
    expect((err as UserInputError).location?.file).toBe('/x/adapter.safetensors');
    expect((err as Error).message).toMatch(/truncated: tensor w needs bytes 0\.\.64 of the data, which has only 54/);
    expect(() => parseSafetensors(Buffer.alloc(0), '/x/a.safetensors')).toThrow(/empty/);
  });

  it('a fusion folder whose fused-adapter list points outside it is refused', () => {
    const dir = tempDir();
    fs.writeFileSync(
      path.join(dir, 'adapter_fusion_config.json'),
      JSON.stringify({ adapter_lab: { model: 'x', method: { type: 'fusion' }, task: { name: 't', type: 'classification', labels: ['a'] }, maxSeqLength: 8, adapterName: 't', base: {}, fused: [{ name: 'a', folder: '../../etc' }] } }),
    );
    let err: unknown;
    try {
      readTrainedAdapter(dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserInputError);
    expect((err as UserInputError).location?.field).toBe('adapter_lab.fused[0].folder');
    expect((err as Error).message).toMatch(/"\.\.\/\.\.\/etc" is not a folder inside/);
  });
});

describe('CSV exports', () => {
  it('text a spreadsheet would run as a formula gets a leading apostrophe; numbers stay numbers', () => {
    const csv = toCsv(['run', 'value'], [
      ['=HYPERLINK("http://x","y")', -0.5],
      ['+1', 2],
      ['-cmd', 3],
      ['@SUM(A1)', 4],
      ['\tx', 5],
      ['\rx', 6],
      ['plain', 7],
    ]);
    expect(csv.split('\n')).toEqual([
      'run,value',
      `"'=HYPERLINK(""http://x"",""y"")",-0.5`,
      "'+1,2",
      "'-cmd,3",
      "'@SUM(A1),4",
      "'\tx,5",
      `"'\rx",6`,
      'plain,7',
      '',
    ]);
  });
});
