/**
 * code-server for the end-to-end suite: VS Code's workbench served on a loopback port, with a throwaway user-data
 * folder and extensions folder, the packaged .vsix installed with --install-extension, and a workspace open.
 * scripts/e2e/setup.sh installs code-server and builds the .vsix; this module only uses them, and fails
 * (saying what to run) when they are missing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '../..');
export const ARTIFACTS = path.join(ROOT, 'test-results', 'e2e');
export const CODE_SERVER_VERSION = process.env.ADAPTER_LAB_E2E_CODE_SERVER_VERSION ?? '4.100.3';
export const EXTENSION_ID = 'adapter-lab.adapter-lab';

export function codeServerDir(): string {
  // The same default as scripts/e2e/setup.sh.
  const cache = process.env.ADAPTER_LAB_E2E_CACHE ?? path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'adapter-lab-e2e');
  return path.join(cache, `code-server-${CODE_SERVER_VERSION}`);
}

export function vsixPath(): string {
  return path.join(ARTIFACTS, 'adapter-lab.vsix');
}

/** What setup.sh should have provided; throws with what is missing and how to get it. */
export function checkInstalled(opts: { vsix: boolean } = { vsix: true }): { entry: string; vsix: string } {
  const dir = codeServerDir();
  const entry = path.join(dir, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
  const problems: string[] = [];
  if (!fs.existsSync(path.join(dir, '.complete')) || !fs.existsSync(entry)) problems.push(`code-server ${CODE_SERVER_VERSION} is not installed in ${dir}`);
  if (opts.vsix && !fs.existsSync(vsixPath())) problems.push(`the packaged extension ${vsixPath()} is missing`);
  if (!fs.existsSync('/usr/bin/chromium') && !process.env.CHROMIUM_PATH) problems.push('/usr/bin/chromium is missing');
  if (problems.length) throw new Error(`the end-to-end suite cannot run: ${problems.join('; ')}. Run: bash scripts/e2e/setup.sh (npm run test:e2e runs it first).`);
  return { entry, vsix: vsixPath() };
}

export interface CodeServer {
  url: string;
  port: number;
  userDataDir: string;
  extensionsDir: string;
  workspace: string;
  logFile: string;
  /** The extension's output channel ("Adapter Lab") as written to the logs so far, or ''. */
  extensionOutput(): string;
  stop(): Promise<void>;
}

/** User settings: nothing that steals focus or reaches for the network. */
const USER_SETTINGS = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'security.workspace.trust.enabled': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'chat.commandCenter.enabled': false,
  'git.enabled': false,
  'window.commandCenter': false,
  'editor.hover.delay': 300,
  'files.watcherExclude': { '**/node_modules/**': true },
};

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs: number }): { code: number | null; out: string } {
  const r = spawnSync(cmd, args, { env: opts.env, encoding: 'utf8', timeout: opts.timeoutMs });
  return { code: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? `\n${r.error.message}` : ''}` };
}

/**
 * Installs the .vsix into a fresh extensions folder (unless `installVsix` is false: the integration suite loads
 * the checkout as a development extension instead), then starts code-server on 127.0.0.1 (a free port it picks)
 * with `workspace` open, and resolves once it listens. Everything it writes is under `tmpRoot`.
 */
export async function startCodeServer(
  workspace: string,
  tmpRoot: string,
  log: (line: string) => void,
  // The log's name in test-results/e2e/; by default from tmpRoot's name, so that specs do not overwrite each other's.
  { installVsix = true, logName = `code-server-${path.basename(tmpRoot).replace(/-[A-Za-z0-9]{6}$/, '')}.log` }: { installVsix?: boolean; logName?: string } = {},
): Promise<CodeServer> {
  const { entry, vsix } = checkInstalled({ vsix: installVsix });
  const userDataDir = path.join(tmpRoot, 'user-data');
  const extensionsDir = path.join(tmpRoot, 'extensions');
  fs.mkdirSync(path.join(userDataDir, 'User'), { recursive: true });
  fs.mkdirSync(extensionsDir, { recursive: true });
  fs.writeFileSync(path.join(userDataDir, 'User', 'settings.json'), JSON.stringify(USER_SETTINGS, null, 2));
  // code-server's own config file (it would otherwise write ~/.config/code-server/config.yaml).
  const config = path.join(tmpRoot, 'code-server.yaml');
  fs.writeFileSync(config, 'auth: none\ncert: false\n');
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: path.join(tmpRoot, 'xdg-config'), XDG_DATA_HOME: path.join(tmpRoot, 'xdg-data') };
  delete env.ELECTRON_RUN_AS_NODE;
  delete env.VSCODE_IPC_HOOK_CLI;
  const common = ['--config', config, '--user-data-dir', userDataDir, '--extensions-dir', extensionsDir];

  if (installVsix) {
    const install = run(process.execPath, [entry, ...common, '--install-extension', vsix], { env, timeoutMs: 180_000 });
    if (install.code !== 0 || !/successfully installed/i.test(install.out)) {
      throw new Error(`code-server --install-extension ${vsix} failed (exit ${install.code}):\n${install.out.slice(-3000)}`);
    }
    const installed = fs.readdirSync(extensionsDir).filter((n) => n.startsWith(`${EXTENSION_ID}-`));
    if (!installed.length) throw new Error(`--install-extension said it installed ${vsix}, but ${extensionsDir} has no ${EXTENSION_ID}-* folder (it has: ${fs.readdirSync(extensionsDir).join(', ')})`);
    log(`installed ${path.basename(vsix)} as ${installed.join(', ')}`);
  }

  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const logFile = path.join(ARTIFACTS, logName);
  const logFd = fs.openSync(logFile, 'w');
  const args = [entry, ...common, '--bind-addr', '127.0.0.1:0', '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override', '--ignore-last-opened', workspace];
  // Its own process group, so that stop() ends the extension host and every engine process it started.
  const child: ChildProcess = spawn(process.execPath, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`code-server did not start listening within 120 s; its output:\n${output.slice(-3000)}`)), 120_000);
    const onData = (b: Buffer) => {
      fs.writeSync(logFd, b);
      output += b.toString();
      const m = /HTTP server listening on https?:\/\/127\.0\.0\.1:(\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`code-server exited (${signal ?? `code ${code}`}) before listening; its output:\n${output.slice(-3000)}`));
    });
  });
  // Keep logging after start.
  child.stdout!.removeAllListeners('data');
  child.stderr!.removeAllListeners('data');
  child.stdout!.on('data', (b: Buffer) => fs.writeSync(logFd, b));
  child.stderr!.on('data', (b: Buffer) => fs.writeSync(logFd, b));
  child.removeAllListeners('exit');
  const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`;
  log(`code-server ${CODE_SERVER_VERSION} (pid ${child.pid}) listening on 127.0.0.1:${port}; log: ${path.relative(ROOT, logFile)}`);

  return {
    url,
    port,
    userDataDir,
    extensionsDir,
    workspace,
    logFile,
    extensionOutput: () => readOutputChannel(userDataDir),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        killGroup(child.pid!, 'SIGTERM');
        const timedOut = await Promise.race([exited.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 10_000))]);
        if (timedOut) killGroup(child.pid!, 'SIGKILL');
      }
      killGroup(child.pid!, 'SIGKILL');
      // Engine processes run in process groups of their own (the run queue stops a job's whole tree): end any
      // still running from this server's throwaway extension folder (by pid; nothing else matches that path).
      for (const pid of processesMentioning(tmpRoot)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
      fs.closeSync(logFd);
    },
  };
}

/** Pids of this machine's processes whose command line contains `text` (Linux /proc). */
function processesMentioning(text: string): number[] {
  if (!fs.existsSync('/proc')) return [];
  const pids: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(text)) pids.push(Number(name));
    } catch {
      // exited, or not ours to read
    }
  }
  return pids;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** The "Adapter Lab" output channel, from the extension host's log files (the newest session's). */
export function readOutputChannel(userDataDir: string): string {
  const logs = path.join(userDataDir, 'logs');
  const found: { file: string; mtime: number }[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 6 || !fs.existsSync(dir)) return;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p, depth + 1);
      else if (/Adapter Lab\.log$/.test(e.name)) found.push({ file: p, mtime: fs.statSync(p).mtimeMs });
    }
  };
  walk(logs, 0);
  return found
    .sort((a, b) => a.mtime - b.mtime)
    .map((f) => fs.readFileSync(f.file, 'utf8'))
    .join('\n');
}
