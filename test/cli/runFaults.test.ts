import * as fs from 'node:fs';
import * as path from 'node:path';
import { readTorchBin } from '../../src/engine/model/torchPickle';
import { beforeAll, describe, expect, it } from 'vitest';
import { listRuns } from '../../src/engine/runs';
import { tempDir } from '../helpers/fixtures';
import { cliAsync as cli, cliLive, tempFiles, trainSteps, treeBytes, writeToyConfig } from '../helpers/cliRun';

/**
 * Issue 15 as a user meets it, through the real command: a run killed before its first checkpoint, a second
 * trainer on a live run, broken run and adapter folders, and the checks that must come before a run folder.
 */

const runsOf = (dir: string) => listRuns(path.join(dir, '.adapter-lab', 'runs'));

/** One epoch of 48 steps: its only checkpoints are the one before step 1 and the one at the end. */
const ONE_EPOCH = { training: { epochs: 1, batchSize: 4, learningRate: 3e-3, maxSeqLength: 16, seed: 1 } };

describe('crashes, locks and broken folders (CLI)', () => {
  let dir: string;
  let config: string;
  let reference: string;

  beforeAll(async () => {
    dir = tempDir();
    config = writeToyConfig(dir, ONE_EPOCH);
    const r = await cli(['train', config, '--json'], dir);
    expect(r.code, r.stderr).toBe(0);
    reference = r.lines.find((l) => l.type === 'done').runDir;
  }, 300_000);

  it('kill -9 before the first checkpoint: a second trainer is refused while the first lives, then the resume takes over the stale lock and ends bit for bit where an uninterrupted run ends', async () => {
    const untouched = treeBytes(reference);
    let runDir = '';
    const a = cliLive(['train', config, '--json'], dir, (line, child) => {
      if (!runDir && line.type === 'progress' && line.step >= 3) {
        runDir = line.runDir;
        child.kill('SIGSTOP'); // alive, but holding still while the second trainer tries
      }
    });
    await expect.poll(() => runDir, { timeout: 60_000 }).not.toBe('');
    const runJsonBefore = fs.readFileSync(path.join(runDir, 'run.json'), 'utf8');

    const second = await cli(['train', '--resume', runDir, '--json'], dir);
    expect(second.code, second.stderr).toBe(2);
    expect(second.lines.find((l) => l.type === 'error').message).toMatch(new RegExp(`run .* is in use by process ${a.child.pid}`));
    expect(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')).toBe(runJsonBefore);

    a.child.kill('SIGKILL');
    const killed = await a.done;
    expect(killed.signal).toBe('SIGKILL');
    const onDisk = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
    expect(onDisk.status).toBe('running');
    expect(onDisk.resumable).toBe(true);
    // Shown as what it is: interrupted, with a checkpoint to resume from (the extension's resume offer).
    expect(runsOf(dir).runs.find((r) => r.dir === runDir)?.status).toBe('interrupted');
    expect(fs.existsSync(path.join(runDir, 'checkpoint', 'state.json'))).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(runDir, 'checkpoint', 'state.json'), 'utf8')).step).toBe(0);
    expect(fs.existsSync(path.join(runDir, 'run.lock'))).toBe(true);

    // info works on the unfinished run.
    const info = await cli(['info', runDir, '--json'], dir);
    expect(info.code, info.stderr).toBe(0);
    expect(info.lines.find((l) => l.type === 'result')).toMatchObject({ status: 'interrupted', method: 'houlsby' });

    const resumed = await cli(['train', '--resume', runDir, '--json'], dir);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(fs.existsSync(path.join(runDir, 'run.lock'))).toBe(false);
    expect(JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')).status).toBe('done');
    for (const f of ['adapter.safetensors', 'model_head.safetensors']) {
      expect(fs.readFileSync(path.join(runDir, 'adapter', f)).equals(fs.readFileSync(path.join(reference, 'adapter', f))), f).toBe(true);
    }
    // One point per step, the same losses as the uninterrupted run.
    const steps = trainSteps(runDir);
    expect(steps.map((s) => s.step)).toEqual(Array.from({ length: 48 }, (_, i) => i + 1));
    expect(steps).toEqual(trainSteps(reference));
    expect(tempFiles(runDir)).toEqual([]);
    expect(treeBytes(reference)).toEqual(untouched);
  });

  it('a truncated checkpoint state or checkpoint file stops the resume with exit 2 naming the file', async () => {
    const broken = (name: string, edit: (runDir: string) => string) => {
      const copy = path.join(dir, 'broken', name);
      fs.cpSync(reference, copy, { recursive: true });
      const record = JSON.parse(fs.readFileSync(path.join(copy, 'run.json'), 'utf8'));
      // As after a crash: 'running' on disk, its process gone.
      fs.writeFileSync(path.join(copy, 'run.json'), JSON.stringify({ ...record, status: 'running', pid: 2 ** 22 + 1 }));
      return { copy, file: edit(copy) };
    };
    const truncate = (file: string) => {
      const bytes = fs.readFileSync(file);
      fs.writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length / 2)));
      return file;
    };
    const state = broken('state', (d) => truncate(path.join(d, 'checkpoint', 'state.json')));
    const r1 = await cli(['train', '--resume', state.copy, '--json'], dir);
    expect(r1.code, r1.stderr).toBe(2);
    expect(r1.lines.find((l) => l.type === 'error').message).toMatch(/checkpoint\/state\.json: corrupt checkpoint state/);

    const tensors = broken('tensors', (d) => {
      const name = JSON.parse(fs.readFileSync(path.join(d, 'checkpoint', 'state.json'), 'utf8')).files.trainable;
      return truncate(path.join(d, 'checkpoint', name));
    });
    const r2 = await cli(['train', '--resume', tensors.copy, '--json'], dir);
    expect(r2.code, r2.stderr).toBe(2);
    const message = r2.lines.find((l) => l.type === 'error').message;
    expect(message).toContain(tensors.file);
    expect(message).toMatch(/truncated: tensor .* \(the file was cut short\)/);
    expect(message).not.toMatch(/DataView/);
    // The failure is recorded honestly in run.json, with the exit code.
    expect(JSON.parse(fs.readFileSync(path.join(tensors.copy, 'run.json'), 'utf8'))).toMatchObject({ status: 'failed', error: { exitCode: 2 } });
  });

  it('export refuses a missing, empty or truncated adapter, a garbage adapter_config.json and a link, and creates nothing', async () => {
    const cases: [string, (adapter: string) => void, RegExp][] = [
      ['missing', (a) => fs.rmSync(path.join(a, 'adapter.safetensors')), /adapter\.safetensors: file not found/],
      ['empty', (a) => fs.writeFileSync(path.join(a, 'adapter.safetensors'), ''), /adapter\.safetensors: not a safetensors file \(empty\)/],
      ['truncated', (a) => fs.truncateSync(path.join(a, 'adapter.safetensors'), fs.statSync(path.join(a, 'adapter.safetensors')).size - 7), /adapter\.safetensors: truncated/],
      ['garbage', (a) => fs.writeFileSync(path.join(a, 'adapter_config.json'), '{"config": [1, 2'), /adapter_config\.json: cannot parse/],
      ['head', (a) => fs.writeFileSync(path.join(a, 'head_config.json'), 'not json'), /head_config\.json: cannot parse/],
      ['link', (a) => fs.symlinkSync('/etc/hostname', path.join(a, 'extra.txt')), /extra\.txt is a symbolic link/],
      // Python reads the .bin, this tool the safetensors: a .bin that is cut short or holds other numbers is refused.
      ['bin truncated', (a) => fs.truncateSync(path.join(a, 'pytorch_adapter.bin'), fs.statSync(path.join(a, 'pytorch_adapter.bin')).size - 30), /pytorch_adapter\.bin/],
      ['bin differs', (a) => fs.copyFileSync(path.join(a, 'pytorch_model_head.bin'), path.join(a, 'pytorch_adapter.bin')), /pytorch_adapter\.bin: does not hold the same tensors as adapter\.safetensors/],
      ['only the bin', (a) => fs.rmSync(path.join(a, 'adapter.safetensors')), /adapter\.safetensors: file not found/],
    ];
    fs.mkdirSync(path.join(dir, 'exports'));
    for (const [name, breakIt, expected] of cases) {
      const copy = path.join(dir, 'export-cases', name);
      fs.cpSync(reference, copy, { recursive: true });
      breakIt(path.join(copy, 'adapter'));
      const dest = path.join(dir, 'exports', name);
      const r = await cli(['export', copy, dest, '--json'], dir);
      expect(r.code, `${name}: ${r.stdout}${r.stderr}`).toBe(2);
      expect(r.lines.find((l) => l.type === 'error').message, name).toMatch(expected);
      expect(fs.existsSync(dest), name).toBe(false);
      expect(fs.readdirSync(path.join(dir, 'exports')).filter((f) => f.endsWith('.tmp')), name).toEqual([]);
    }
    // The unbroken run exports, and the export predicts as the run does.
    const good = path.join(dir, 'exports', 'good');
    expect((await cli(['export', reference, good], dir)).code).toBe(0);
    expect(fs.existsSync(path.join(good, 'adapter_lab_task_fields.json'))).toBe(true);
    // A run from before .bin files were written exports with them (what Python's load_adapter(dir) reads).
    const older = path.join(dir, 'export-cases', 'older');
    fs.cpSync(reference, older, { recursive: true });
    for (const f of ['pytorch_adapter.bin', 'pytorch_model_head.bin']) fs.rmSync(path.join(older, 'adapter', f));
    const olderOut = path.join(dir, 'exports', 'older');
    expect((await cli(['export', older, olderOut], dir)).code).toBe(0);
    for (const f of ['pytorch_adapter.bin', 'pytorch_model_head.bin']) expect(readTorchBin(path.join(olderOut, f))).toEqual(readTorchBin(path.join(good, f)));
  });

  it('an exported adapter remembers its task\'s text fields: predict <export> reads them as predict <run> does', async () => {
    const d = tempDir();
    const cfg = writeToyConfig(d, { task: { name: 'toy', type: 'classification', train: 'data/train.jsonl', dev: 'data/dev.jsonl', textField: 'review', labelField: 'label' } });
    for (const f of ['train.jsonl', 'dev.jsonl']) {
      const file = path.join(d, 'data', f);
      fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/"text":/g, '"review":'));
    }
    const train = await cli(['train', cfg, '--max-steps', '2', '--json'], d);
    expect(train.code, train.stderr).toBe(0);
    const runDir = train.lines.find((l) => l.type === 'done').runDir;
    expect((await cli(['export', runDir, 'exported'], d)).code).toBe(0);
    const fromRun = await cli(['predict', runDir, '--input', 'data/dev.jsonl', '--logits'], d);
    const fromExport = await cli(['predict', 'exported', '--input', 'data/dev.jsonl', '--logits'], d);
    expect(fromRun.code, fromRun.stderr).toBe(0);
    expect(fromExport.code, fromExport.stderr).toBe(0);
    expect(fromExport.lines.map((l) => l.logits)).toEqual(fromRun.lines.map((l) => l.logits));
    expect(fromExport.lines).toHaveLength(48);
  });

  it('a config error found against the model leaves no run folder behind', async () => {
    const d = tempDir();
    const cfg = writeToyConfig(d, { method: { type: 'houlsby', bottleneck: 4, leaveOut: [7] } });
    const r = await cli(['train', cfg, '--json'], d);
    expect(r.code).toBe(2);
    expect(r.lines.find((l) => l.type === 'error').message).toMatch(/leaveOut.*layer 7 does not exist/);
    expect(fs.existsSync(path.join(d, '.adapter-lab', 'runs')) ? fs.readdirSync(path.join(d, '.adapter-lab', 'runs')) : []).toEqual([]);
  });
});
