import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/fixtures';
import { cliAsync as cli, tempFiles, writeToyConfig } from '../helpers/cliRun';

/**
 * A full disk and a read-only one, for real: small tmpfs file systems mounted by the test (it runs as root,
 * as CI does; a mount that fails fails the test, it is not skipped). Issue 15, item 6.
 */
const mounts: string[] = [];

function mountTmpfs(size: string): string {
  const dir = tempDir('adapter-lab-tmpfs-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of mounts.splice(0)) {
    try {
      execFileSync('umount', [dir]);
    } catch {
      execFileSync('umount', ['-l', dir]);
    }
    fs.rmdirSync(dir);
  }
});

describe('full and read-only disks (CLI)', () => {
  let full: string;
  let readOnly: string;

  beforeAll(() => {
    // Room for run.json, the metrics and the first checkpoint's weights (about 100 KB for this model trained
    // in full), not for its optimizer state (twice that).
    full = mountTmpfs('160k');
    readOnly = mountTmpfs('16m');
  });

  it('a disk that fills during a checkpoint: exit 1 naming the file and the run, run.json failed with the reason, no temp file left', async () => {
    const dir = tempDir();
    const runsDir = path.join(full, 'runs');
    const config = writeToyConfig(dir, { method: { type: 'full' }, runsDir });
    const r = await cli(['train', config, '--json'], dir);
    expect(r.code, r.stderr).toBe(1);
    const runDir = r.lines.find((l) => l.type === 'start').runDir as string;
    const message = r.lines.find((l) => l.type === 'error').message as string;
    expect(message).toMatch(/^cannot write checkpoint\/optimizer-0\.safetensors in run folder .*: no space left on device \(ENOSPC\)$/);
    expect(message).toContain(runDir);
    const record = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
    expect(record.status).toBe('failed');
    expect(record.error.message).toBe(message);
    expect(tempFiles(runsDir)).toEqual([]);
    expect(fs.existsSync(path.join(runDir, 'run.lock'))).toBe(false);
  });

  it('eval on a read-only run folder prints the metrics, then says they were not saved (exit 1)', async () => {
    const dir = tempDir();
    const config = writeToyConfig(dir, { runsDir: path.join(readOnly, 'runs') });
    const train = await cli(['train', config, '--max-steps', '2', '--json'], dir);
    expect(train.code, train.stderr).toBe(0);
    const runDir = train.lines.find((l) => l.type === 'done').runDir as string;
    execFileSync('mount', ['-o', 'remount,ro', readOnly]);
    const r = await cli(['eval', runDir, '--split', 'dev', '--json'], dir);
    expect(r.code).toBe(1);
    const result = r.lines.find((l) => l.type === 'result');
    expect(result.metrics.accuracy).toBeGreaterThanOrEqual(0);
    expect(result.saved).toBe(false);
    expect(r.lines.find((l) => l.type === 'error').message).toMatch(/^the metrics above were not saved: cannot write eval-dev\.json in run folder .*: read-only file system \(EROFS\)$/);
    // The same in the terminal: the numbers, then what could not be saved.
    const plain = await cli(['eval', runDir], dir);
    expect(plain.code).toBe(1);
    expect(plain.stdout + plain.stderr).toMatch(/accuracy/);
    expect(plain.stderr).toMatch(/not saved: cannot write eval-dev\.json/);
  });
});
