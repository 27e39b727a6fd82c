/**
 * One child process of the engine's CLI, speaking the JSON-lines protocol (src/protocol/messages.ts) on
 * stdout. No vscode import: the queue and its tests use it as is.
 *
 * - stdout is split into lines (a line may arrive in several chunks); protocol lines become messages, any
 *   other line (a stray print, garbage) is passed on as text and never breaks the stream.
 * - stderr is kept as a bounded tail: the reason a dead process gives.
 * - kill() ends the whole process tree: SIGTERM to the process group (the CLI saves a checkpoint and ends
 *   its run as cancelled), then SIGKILL after a grace period if it is still there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { parseEngineLine, type EngineMessage } from '../../protocol/messages';

/** How to start the engine: an executable and the arguments before the command's own. */
export interface EngineLauncher {
  /** Usually process.execPath (Node, or VS Code's Electron run as Node). */
  command: string;
  /** Usually [<extension>/dist/cli.js]. */
  args: string[];
  env?: NodeJS.ProcessEnv;
}

export interface EngineExit {
  /** The exit code; null when a signal ended the process. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last lines of stderr (at most STDERR_TAIL_LINES). */
  stderrTail: string[];
  /** The process could not be started at all (spawn error). */
  spawnError?: string;
}

export interface EngineProcessHandlers {
  onMessage?(msg: EngineMessage): void;
  /** A stdout line that is not a protocol message. */
  onText?(line: string, stream: 'stdout' | 'stderr'): void;
}

export const STDERR_TAIL_LINES = 20;
const MAX_LINE = 1 << 20; // a "line" longer than 1 MiB without a newline is garbage: flushed as text

/** Splits a byte stream into lines; the rest after the last newline waits for the next chunk. */
export class LineSplitter {
  private rest = '';

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: string): void {
    const text = this.rest + chunk;
    const lines = text.split('\n');
    this.rest = lines.pop() ?? '';
    for (const l of lines) this.onLine(l.endsWith('\r') ? l.slice(0, -1) : l);
    if (this.rest.length > MAX_LINE) {
      this.onLine(this.rest);
      this.rest = '';
    }
  }

  end(): void {
    if (this.rest) this.onLine(this.rest);
    this.rest = '';
  }
}

export class EngineProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<EngineExit>;
  private readonly stderrTail: string[] = [];
  private killTimer: NodeJS.Timeout | undefined;
  private ended = false;

  constructor(launcher: EngineLauncher, commandArgs: string[], opts: { cwd: string }, handlers: EngineProcessHandlers = {}) {
    let spawnError: string | undefined;
    this.child = spawn(launcher.command, [...launcher.args, ...commandArgs], {
      cwd: opts.cwd,
      env: { ...process.env, ...launcher.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group on POSIX, so that cancel reaches everything it started.
      detached: process.platform !== 'win32',
      windowsHide: true,
    });
    const out = new LineSplitter((line) => {
      const msg = parseEngineLine(line);
      if (msg) handlers.onMessage?.(msg);
      else if (line.trim()) handlers.onText?.(line, 'stdout');
    });
    const err = new LineSplitter((line) => {
      if (!line.trim()) return;
      this.stderrTail.push(line);
      if (this.stderrTail.length > STDERR_TAIL_LINES) this.stderrTail.shift();
      handlers.onText?.(line, 'stderr');
    });
    this.child.stdout!.setEncoding('utf8').on('data', (c: string) => out.push(c));
    this.child.stderr!.setEncoding('utf8').on('data', (c: string) => err.push(c));
    this.exited = new Promise<EngineExit>((resolve) => {
      this.child.once('error', (e) => {
        // 'error' without 'close' happens when the executable cannot be started.
        spawnError = e.message;
        if (this.child.pid === undefined) {
          this.ended = true;
          resolve({ code: null, signal: null, stderrTail: [...this.stderrTail], spawnError });
        }
      });
      // 'close' comes after the streams are drained, so every line has been handled by then.
      this.child.once('close', (code, signal) => {
        out.end();
        err.end();
        this.ended = true;
        if (this.killTimer) clearTimeout(this.killTimer);
        resolve({ code, signal, stderrTail: [...this.stderrTail], spawnError });
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return !this.ended;
  }

  /** SIGTERM to the tree, then SIGKILL after `graceMs` unless it has ended. */
  kill(graceMs: number): void {
    if (this.ended) return;
    signalTree(this.child, 'SIGTERM');
    if (!this.killTimer) {
      this.killTimer = setTimeout(() => {
        if (!this.ended) signalTree(this.child, 'SIGKILL');
      }, graceMs);
      this.killTimer.unref?.();
    }
  }
}

function signalTree(child: ChildProcess, signal: NodeJS.Signals): void {
  const pid = child.pid;
  if (pid === undefined) return;
  if (process.platform === 'win32') {
    // No process groups: taskkill walks the tree (/T); a forced kill (/F) is the only kind it has.
    if (signal === 'SIGKILL') spawn('taskkill', ['/pid', String(pid), '/T', '/F'], { windowsHide: true, stdio: 'ignore' }).on('error', () => undefined);
    else child.kill(signal);
    return;
  }
  try {
    process.kill(-pid, signal); // the whole group
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}
