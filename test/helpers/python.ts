/**
 * Debian's Python with Debian's PyTorch: the independent side of the interop tests. scripts/ensure-test-deps.sh
 * (the `pretest` script) installs python3-torch; it lives in /usr/bin/python3's dist-packages, which a python3
 * earlier on PATH (pyenv, a venv) does not see, so the tests name the interpreter. ADAPTER_LAB_TEST_PYTHON
 * points elsewhere for a machine whose torch is installed another way.
 */
import { spawn, spawnSync } from 'node:child_process';

export const PYTHON = process.env.ADAPTER_LAB_TEST_PYTHON ?? '/usr/bin/python3';

/** Runs a Python script (given as source) with args; throws with its stderr when it exits non-zero. */
export function runPython(source: string, args: string[] = [], opts: { cwd?: string; timeoutMs?: number } = {}): string {
  const r = spawnSync(PYTHON, ['-c', source, ...args], { cwd: opts.cwd, encoding: 'utf8', timeout: opts.timeoutMs ?? 120_000, maxBuffer: 256 * 1024 * 1024 });
  if (r.error) throw new Error(`${PYTHON} could not run (${r.error.message}); run bash scripts/ensure-test-deps.sh as root to install Debian's python3-torch`);
  if (r.status !== 0) throw new Error(`${PYTHON} exited ${r.status}:\n${(r.stderr ?? '').slice(-4000)}`);
  return r.stdout;
}

/**
 * A child process awaited (stdout, stderr, exit status), for tests whose child processes add up to minutes: a test
 * that blocks its vitest worker in spawnSync for a minute fails the run ("Timeout calling onTaskUpdate").
 */
export function runAsync(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // The environment as it is when the child starts (process.env by default), as spawnSync takes it.
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** runPython, awaited (see runAsync). */
export async function runPythonAsync(source: string, args: string[] = [], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<string> {
  let r;
  try {
    r = await runAsync(PYTHON, ['-c', source, ...args], { cwd: opts.cwd, timeoutMs: opts.timeoutMs });
  } catch (err) {
    throw new Error(`${PYTHON} could not run (${(err as Error).message}); run bash scripts/ensure-test-deps.sh as root to install Debian's python3-torch`);
  }
  if (r.status !== 0) throw new Error(`${PYTHON} exited ${r.status}:\n${r.stderr.slice(-4000)}`);
  return r.stdout;
}
