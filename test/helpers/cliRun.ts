import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tinyModelDir, writeToyTask } from './fixtures';
import { runAsync } from './python';

/** The adapter-lab command as a user runs it: the built bin in a real child process, on real files. */
export const BIN = path.resolve(__dirname, '../../bin/adapter-lab.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The JSON lines of stdout (with --json). */
  lines: any[];
}

function jsonLines(stdout: string): Record<string, any>[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}

/**
 * `adapter-lab <args>` in `cwd`, awaited: the exit code (null when killed at the timeout), stdout, stderr and
 * the JSON lines. The environment is process.env as it is at the call (a test's ADAPTER_LAB_TEST_* settings
 * reach the child) unless `env` is given. Tests use this, not spawnSync: a test that blocks its vitest worker
 * for a minute (CLI runs add up to that on a loaded machine) fails the run with "Timeout calling onTaskUpdate".
 */
export async function cliAsync(args: string[], cwd: string, opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  const r = await runAsync(process.execPath, [BIN, ...args], { cwd, env: opts.env, timeoutMs: opts.timeoutMs ?? 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, lines: jsonLines(r.stdout) };
}

/** The tiny model every CLI fault test trains on. */
export const TINY = { layers: 2, hidden: 32, heads: 2, intermediate: 64 };

/** Writes the toy task and a config over it; returns the config's file name (relative to dir). */
export function writeToyConfig(dir: string, overrides: Record<string, unknown> = {}, file = 'toy.adapter.json'): string {
  writeToyTask(dir);
  const cfg = {
    name: 'toy-houlsby',
    task: { name: 'toy', type: 'classification', train: 'data/train.jsonl', dev: 'data/dev.jsonl', textField: 'text', labelField: 'label' },
    model: tinyModelDir(TINY),
    method: { type: 'houlsby', bottleneck: 4 },
    training: { epochs: 2, batchSize: 16, learningRate: 3e-3, maxSeqLength: 16, seed: 1 },
    ...overrides,
  };
  fs.writeFileSync(path.join(dir, file), JSON.stringify(cfg, null, 2));
  return file;
}

/**
 * Starts `adapter-lab <args> --json` and calls `onLine` for every JSON line of its stdout as it comes; resolves
 * with the exit code (null when killed by a signal) and every line.
 */
export function cliLive(
  args: string[],
  cwd: string,
  onLine: (line: any, child: ChildProcess) => void = () => {},
): { child: ChildProcess; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; lines: any[]; stderr: string }> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd });
  const lines: any[] = [];
  let rest = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop() ?? '';
    for (const l of parts) {
      if (!l.startsWith('{')) continue;
      const line = JSON.parse(l);
      lines.push(line);
      onLine(line, child);
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; lines: any[]; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, lines, stderr })),
  );
  return { child, done };
}

/** The train losses of a run, in the order of metrics.jsonl (none before it exists). */
export function trainSteps(runDir: string): { step: number; loss: number }[] {
  const file = path.join(runDir, 'metrics.jsonl');
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l))
    .filter((m) => m.type === 'train')
    .map((m) => ({ step: m.step, loss: m.loss }));
}

/** Every file under `dir` (relative path -> base64 bytes), links as `-> target`. */
export function treeBytes(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isSymbolicLink()) out[path.relative(dir, p)] = `-> ${fs.readlinkSync(p)}`;
      else if (e.isDirectory()) walk(p);
      else out[path.relative(dir, p)] = fs.readFileSync(p).toString('base64');
    }
  };
  walk(dir);
  return out;
}

/** Paths of temp files (`*.tmp`) anywhere under dir. */
export function tempFiles(dir: string): string[] {
  return Object.keys(treeBytes(dir)).filter((f) => f.endsWith('.tmp'));
}
