import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir, tinyPretrainConfig, writeTinyCorpus } from './helpers';

/** `adapter-lab pretrain` as a user runs it: the bundled CLI in a child process (test/globalSetup.ts builds it). */
const BIN = path.resolve(__dirname, '../../../bin/adapter-lab.js');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  messages: Record<string, unknown>[];
}

function run(args: string[], cwd: string, onLine?: (msg: Record<string, unknown>, child: ReturnType<typeof spawn>) => void): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, ADAPTER_LAB_BACKEND: 'wasm' } });
    let stdout = '';
    let stderr = '';
    let pending = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
      pending += d;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const l of lines) if (l.startsWith('{')) onLine?.(JSON.parse(l), child);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (code) =>
      resolve({ code, stdout, stderr, messages: stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)) }),
    );
  });
}

describe('adapter-lab pretrain', () => {
  const dir = tempDir();
  writeTinyCorpus(dir);

  it('pretrains with JSON-lines progress, held-out evaluations and a result', async () => {
    fs.writeFileSync(path.join(dir, 'cli.json'), JSON.stringify(tinyPretrainConfig({ name: 'cli', output: 'cli-model' }, { steps: 20, warmupSteps: 2, evalEvery: 10 })));
    const r = await run(['pretrain', 'cli.json', '--json'], dir);
    expect(r.code, r.stderr).toBe(0);
    const types = r.messages.map((m) => m.type);
    expect(types[0]).toBe('start');
    expect(types[types.length - 1]).toBe('done');
    const evals = r.messages.filter((m) => m.type === 'eval');
    expect(evals.map((m) => m.step)).toEqual([0, 10, 20]);
    expect(evals[0]).toMatchObject({ split: 'heldout', metrics: { mlm_loss: expect.any(Number), mlm_accuracy: expect.any(Number) } });
    const progress = r.messages.filter((m) => m.type === 'progress');
    expect(progress).toHaveLength(20);
    expect(progress[19]).toMatchObject({ step: 20, totalSteps: 20, loss: expect.any(Number), learningRate: expect.any(Number) });
    expect(r.messages.find((m) => m.type === 'result')).toMatchObject({ command: 'pretrain', steps: 20 });
    expect(fs.existsSync(path.join(dir, 'cli-model', 'model.safetensors'))).toBe(true);

    // The result loads as a model anywhere a model folder is taken.
    fs.writeFileSync(path.join(dir, 'texts.jsonl'), '{"text":"The old whale sees the ship."}\n');
    const enc = await run(['encode', '--model', 'cli-model', '--input', 'texts.jsonl'], dir);
    expect(enc.code, enc.stderr).toBe(0);
    expect(JSON.parse(enc.stdout.trim().split('\n')[0]).embedding).toHaveLength(32);
  });

  it('stops on SIGTERM with a checkpoint and finishes with --resume', async () => {
    fs.writeFileSync(path.join(dir, 'sig.json'), JSON.stringify(tinyPretrainConfig({ name: 'sig', output: 'sig-model' }, { steps: 150, evalEvery: 75, checkpointEvery: 1000 })));
    let sent = false;
    const first = await run(['pretrain', 'sig.json', '--json'], dir, (msg, child) => {
      if (msg.type === 'progress' && (msg.step as number) >= 5 && !sent) {
        sent = true;
        child.kill('SIGTERM');
      }
    });
    expect(first.code, first.stderr).toBe(1);
    expect(first.messages[first.messages.length - 1]).toMatchObject({ type: 'done', status: 'cancelled', exitCode: 1 });
    expect(fs.existsSync(path.join(dir, 'sig-model', 'checkpoint', 'state.safetensors'))).toBe(true);
    const stoppedAt = JSON.parse(fs.readFileSync(path.join(dir, 'sig-model', 'checkpoint', 'state.json'), 'utf8')).step;
    expect(stoppedAt).toBeGreaterThanOrEqual(5);
    expect(stoppedAt).toBeLessThan(150);

    // Starting again without --resume is refused with a clear message (exit code 2).
    const again = await run(['pretrain', 'sig.json'], dir);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/--resume/);

    const resumed = await run(['pretrain', '--resume', 'sig.json', '--json'], dir);
    expect(resumed.code, resumed.stderr).toBe(0);
    const progress = resumed.messages.filter((m) => m.type === 'progress');
    expect(progress[0].step).toBe(stoppedAt + 1);
    expect(progress[progress.length - 1].step).toBe(150);
    expect(fs.existsSync(path.join(dir, 'sig-model', 'config.json'))).toBe(true);
  });

  it('rejects a bad config with the file, line and field (exit code 2)', async () => {
    const raw = tinyPretrainConfig({ name: 'bad' }, { batchSize: 0 });
    fs.writeFileSync(path.join(dir, 'bad.json'), JSON.stringify(raw, null, 2));
    const r = await run(['pretrain', 'bad.json'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.json:\d+: training\.batchSize: must be an integer >= 1, got 0/);
  });
});
