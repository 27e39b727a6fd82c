/**
 * The conventional VS Code extension integration suite (@vscode/test-electron + mocha), for contributors whose
 * machine can download VS Code:
 *
 *   npm run test:integration                 # downloads VS Code stable into .vscode-test/ (once), runs the suite
 *   VSCODE_VERSION=1.100.3 npm run test:integration
 *   VSCODE_EXECUTABLE=/path/to/code npm run test:integration    # an installed VS Code, no download
 *   npm run test:integration -- --code-server                    # the same suite in code-server's extension host
 *
 * It loads this checkout as the extension under development (dist/, built here first), opens a copy of examples/
 * (configs cut to a small budget, as in the end-to-end suite) and runs test/integration/suite/*.integration.ts
 * with mocha in the extension host, against the VS Code API.
 *
 * Where VS Code cannot be downloaded (no internet, as on this project's CI machines) it says so and exits 1 without
 * running anything. There the end-to-end suite (test/e2e/, `npm run test:e2e`, part of `npm test`) is what CI
 * runs: a real VS Code workbench (code-server, from the npm registry) driven in Chromium. `--code-server` runs
 * this mocha suite in that same code-server (after scripts/e2e/setup.sh), loaded as a development extension.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { build } from 'esbuild';
import { ROOT, startCodeServer } from '../e2e/codeServer';
import { CHROMIUM, CHROMIUM_ARGS } from '../e2e/workbench';
import { BROKEN_CONFIG, CANCEL_CONFIG, checkoutHasBuiltinModel, makeWorkspace, TRAIN_CONFIG } from '../e2e/workspace';

const DOWNLOAD_HOST = 'update.code.visualstudio.com';
const OUT_DIR = path.join(ROOT, 'out', 'integration');
const SUITE_TIMEOUT_MS = 15 * 60_000;

function say(line: string): void {
  console.log(`integration: ${line}`);
}

/** Whether VS Code's download server answers (any HTTP status counts), within a few seconds. */
function canReach(host: string, timeoutMs = 8_000): Promise<{ ok: boolean; why: string }> {
  return new Promise((resolve) => {
    const req = https.request({ host, path: '/api/releases/stable', method: 'HEAD', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve({ ok: true, why: `HTTP ${res.statusCode}` });
    });
    req.on('timeout', () => {
      req.destroy();
      resolve({ ok: false, why: `no answer within ${timeoutMs / 1000} s` });
    });
    req.on('error', (err) => resolve({ ok: false, why: err.message }));
    req.end();
  });
}

/** dist/ (the extension under development) and the suite, bundled into out/integration/. */
async function buildAll(): Promise<void> {
  say('building the extension (scripts/build.mjs) and the suite');
  execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
  fs.rmSync(OUT_DIR, { recursive: true, force: true });
  const suiteDir = path.join(__dirname, 'suite');
  await build({
    entryPoints: fs.readdirSync(suiteDir).filter((f) => f.endsWith('.ts')).map((f) => path.join(suiteDir, f)),
    outdir: OUT_DIR,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node18',
    sourcemap: 'inline',
    external: ['vscode', 'mocha'],
    logLevel: 'warning',
  });
}

const TEST_ENV = {
  ADAPTER_LAB_IT_TRAIN_CONFIG: TRAIN_CONFIG,
  ADAPTER_LAB_IT_CANCEL_CONFIG: CANCEL_CONFIG,
  ADAPTER_LAB_IT_BROKEN_CONFIG: BROKEN_CONFIG,
};

async function inVsCodeDesktop(tmpRoot: string, workspace: string): Promise<number> {
  const executable = process.env.VSCODE_EXECUTABLE;
  const userData = path.join(tmpRoot, 'user-data');
  fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
  fs.writeFileSync(path.join(userData, 'User', 'settings.json'), JSON.stringify({ 'workbench.startupEditor': 'none', 'security.workspace.trust.enabled': false, 'telemetry.telemetryLevel': 'off', 'update.mode': 'none' }));
  // Loaded here, not at the top: only a machine that can run the suite needs it.
  const { runTests } = await import('@vscode/test-electron');
  try {
    await runTests({
      version: process.env.VSCODE_VERSION ?? 'stable',
      vscodeExecutablePath: executable,
      extensionDevelopmentPath: ROOT,
      extensionTestsPath: path.join(OUT_DIR, 'index.js'),
      extensionTestsEnv: TEST_ENV,
      launchArgs: [workspace, '--user-data-dir', userData, '--disable-extensions', '--disable-workspace-trust', '--skip-welcome', '--skip-release-notes', '--disable-gpu'],
    });
    say('passed');
    return 0;
  } catch (err) {
    say(`FAILED: ${(err as Error).message}`);
    return 1;
  }
}

/**
 * The same suite in code-server's (Node) extension host: the workbench is opened in Chromium with the checkout as
 * the development extension and out/integration/index.js as the tests (VS Code web's `payload` parameters).
 * The suite writes its results beside itself (results.json); the environment variables of TEST_ENV are not
 * passed (the suite's defaults are the same names).
 */
async function inCodeServer(tmpRoot: string, workspace: string): Promise<number> {
  const server = await startCodeServer(workspace, tmpRoot, say, { installVsix: false, logName: 'code-server-integration.log' });
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  try {
    const authority = `127.0.0.1:${server.port}`;
    const payload = JSON.stringify([
      ['extensionDevelopmentPath', `vscode-remote://${authority}${ROOT}`],
      ['extensionTestsPath', `vscode-remote://${authority}${path.join(OUT_DIR, 'index.js')}`],
    ]);
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`http://${authority}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(payload)}`);
    const results = path.join(OUT_DIR, 'results.json');
    const deadline = Date.now() + SUITE_TIMEOUT_MS;
    while (!fs.existsSync(results) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1000));
    if (!fs.existsSync(results)) {
      say(`FAILED: no results from the suite within ${SUITE_TIMEOUT_MS / 60_000} minutes (code-server log: ${path.relative(ROOT, server.logFile)})`);
      return 1;
    }
    const r = JSON.parse(fs.readFileSync(results, 'utf8')) as { passes: number; failures: number; duration: number; passed: string[]; failed: string[] };
    for (const t of r.passed) say(`  ✓ ${t}`);
    for (const t of r.failed) say(`  ✗ ${t}`);
    say(`${r.passes} passed, ${r.failures} failed (${(r.duration / 1000).toFixed(1)} s) in code-server's extension host`);
    return r.failures || !r.passes ? 1 : 0;
  } finally {
    await browser.close();
    await server.stop();
  }
}

async function main(): Promise<number> {
  const codeServer = process.argv.includes('--code-server');
  if (!codeServer && !process.env.VSCODE_EXECUTABLE) {
    const cached = fs.existsSync(path.join(ROOT, '.vscode-test')) && fs.readdirSync(path.join(ROOT, '.vscode-test')).some((n) => n.startsWith('vscode-'));
    const reach = await canReach(DOWNLOAD_HOST);
    if (!reach.ok && !cached) {
      say(`NOT RUN: this suite needs VS Code desktop, downloaded from https://${DOWNLOAD_HOST} by @vscode/test-electron, and that cannot be reached from here (${reach.why}).`);
      say('Give it an installed VS Code with VSCODE_EXECUTABLE=/path/to/code, or run it where VS Code can be downloaded,');
      say('or run the same suite in code-server: bash scripts/e2e/setup.sh && npm run test:integration -- --code-server.');
      say('Without internet the end-to-end suite is what runs: npm run test:e2e (part of npm test, and what CI runs) drives a real VS Code workbench (code-server) in Chromium.');
      return 1;
    }
    if (!reach.ok) say(`${DOWNLOAD_HOST} cannot be reached (${reach.why}); using the VS Code already in .vscode-test/`);
  }
  await buildAll();
  const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'adapter-lab-integration-'));
  try {
    const ws = makeWorkspace(tmpRoot, checkoutHasBuiltinModel());
    say(`workspace: a copy of examples/ in ${ws.dir}; model: ${ws.modelNote}`);
    return codeServer ? await inCodeServer(tmpRoot, ws.dir) : await inVsCodeDesktop(tmpRoot, ws.dir);
  } finally {
    fs.rmSync(tmpRoot, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
