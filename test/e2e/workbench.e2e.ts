/// <reference lib="dom" />
/**
 * End to end: the packaged extension (.vsix) in a real VS Code workbench (code-server), driven in Chromium as a
 * person would use it, on a copy of examples/ (configs cut to a small budget for speed: see workspace.ts).
 *
 *   1. Train Adapter from the palette's quick pick: the run appears in the Runs tree, goes queued -> running ->
 *      done, and shows its best dev metric.
 *   2. Show Loss Curves on that run: the canvas is drawn, the legend names the run.
 *   3. Explorer context menu on the config, Evaluate Adapter: the result shows.
 *   4. Run Layer Ablation, then Show Ablation Heatmap: the matrix is drawn; hovering a cell shows its value.
 *   5. A second run, cancelled: its status becomes cancelled, its folder keeps a checkpoint.
 *   6. Reload the window: the runs are still listed with their statuses.
 *   7. An invalid config (a wrong type in a field): a diagnostic in the editor, and Train Adapter reports the
 *      field instead of starting.
 *
 * Screenshots of every step go to test-results/e2e/<step>.png (a failed step: <step>-FAILED.png), with
 * code-server's log and the extension's output channel beside them. Needs scripts/e2e/setup.sh first
 * (`npm run test:e2e` runs it); without what it installs the suite fails, never skips.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from 'vitest';
import { ARTIFACTS, checkInstalled, ROOT, startCodeServer, type CodeServer } from './codeServer';
import { canvasInk, Expectation, fail, until, Workbench, type Seen } from './workbench';
import { BROKEN_CONFIG, CANCEL_CONFIG, makeWorkspace, runFolders, TRAIN_CONFIG, vsixHasBuiltinModel, type E2eWorkspace } from './workspace';

const rel = (p: string) => path.relative(ROOT, p);
const logFile = path.join(ARTIFACTS, 'e2e.log');
const started = Date.now();
function log(line: string): void {
  const text = `[e2e ${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${line}`;
  console.log(text);
  fs.appendFileSync(logFile, text + '\n');
}

let tmpRoot = '';
let ws: E2eWorkspace;
let server: CodeServer | undefined;
let wb: Workbench | undefined;
let setupError: Error | undefined;

/** What earlier steps produced, for the later ones. */
const state: { trainedRunDir?: string; trainedRunName?: string; trainedRowPrefix?: string; cancelledRunDir?: string } = {};

/**
 * Runs one step: a screenshot when it passes; when it fails, a screenshot and an error that says which step,
 * what was expected, what was seen, and where the screenshot and logs are.
 */
async function step(name: string, body: (wb: Workbench) => Promise<void>): Promise<void> {
  if (setupError || !wb) throw new Error(`${name} FAILED: the workbench did not start, so the step could not run:\n  ${setupError?.message ?? 'unknown'}\n  screenshot (if any): ${rel(path.join(ARTIFACTS, '00-workbench-FAILED.png'))}`);
  const t0 = Date.now();
  log(`${name}: start`);
  try {
    await body(wb);
  } catch (err) {
    const shot = await wb.screenshot(`${name}-FAILED`).catch((e: Error) => `(no screenshot: ${e.message})`);
    saveOutputs();
    const e = err as Error;
    const what = e instanceof Expectation ? `expected ${e.expected}\n  saw ${e.seen}` : (e.stack ?? e.message);
    const message = `${name} FAILED after ${((Date.now() - t0) / 1000).toFixed(1)} s:\n  ${what}\n  screenshot: ${rel(shot)}\n  logs: ${rel(path.join(ARTIFACTS, 'adapter-lab-output.log'))}, ${rel(path.join(ARTIFACTS, 'code-server.log'))}`;
    log(message);
    throw new Error(message);
  }
  // Let a notification that just appeared finish sliding in before the picture.
  await new Promise((r) => setTimeout(r, 700));
  const shot = await wb.screenshot(name);
  log(`${name}: passed in ${((Date.now() - t0) / 1000).toFixed(1)} s; screenshot ${rel(shot)}`);
}

/** The extension's output channel and the browser console's errors, beside the screenshots. */
function saveOutputs(): void {
  try {
    if (server) fs.writeFileSync(path.join(ARTIFACTS, 'adapter-lab-output.log'), server.extensionOutput());
    if (wb) fs.writeFileSync(path.join(ARTIFACTS, 'browser-console-errors.log'), wb.consoleErrors.join('\n') + '\n');
  } catch {
    // best effort
  }
}

function requireState<K extends keyof typeof state>(key: K, from: string): NonNullable<(typeof state)[K]> {
  const v = state[key];
  if (v === undefined) fail(`the result of ${from}`, `nothing: ${from} did not complete`);
  return v as NonNullable<(typeof state)[K]>;
}

const runRows = (rows: string[]) => rows.filter((r) => r.startsWith('run '));
const listRows = (rows: string[]) => (rows.length ? rows.map((r) => JSON.stringify(r)).join(', ') : 'no rows');

/** A run folder's run.json, read fresh. */
function readRun(dir: string): { name: string; status: string; best?: { metric: string; value: number } } {
  return JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8'));
}

/** The run row's aria-label prefix: `run <label>, ` where label is the creation time or a sweep point's name. */
function rowLabelOf(dir: string, configName: string): string {
  const r = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as { name: string; createdAt: string };
  if (r.name !== configName) return r.name;
  const d = new Date(r.createdAt);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

describe.sequential('Adapter Lab in a real VS Code workbench (code-server + Chromium)', () => {
  beforeAll(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    // The artifacts folder is not the project's: keep git from listing it.
    fs.writeFileSync(path.join(ROOT, 'test-results', '.gitignore'), '*\n');
    // This spec's artifacts of an earlier run (not the other specs': they share the folder).
    const mine = /^(\d\d-.*\.png|e2e\.log|adapter-lab-output\.log|browser-console-errors\.log|code-server\.log)$/;
    for (const f of fs.readdirSync(ARTIFACTS)) if (mine.test(f)) fs.rmSync(path.join(ARTIFACTS, f));
    log(`screenshots and logs go to ${rel(ARTIFACTS)}/`);
    try {
      const { vsix } = checkInstalled();
      tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'adapter-lab-e2e-'));
      ws = makeWorkspace(tmpRoot, vsixHasBuiltinModel(vsix));
      log(`workspace: a copy of examples/ in ${ws.dir}; model: ${ws.modelNote}; configs cut to a small budget (workspace.ts)`);
      server = await startCodeServer(ws.dir, tmpRoot, log, { logName: 'code-server.log' });
      wb = await Workbench.open(server.url, log);
      log(`workbench open at ${server.url}`);
      // The extension's contributions arrive from the (remote) extension host: its activity-bar item first.
      await until('the "Adapter Lab" item in the activity bar', async () => {
        const items = await wb!.page.locator('.part.activitybar .action-item .action-label').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? ''));
        return { ok: items.some((i) => i.startsWith('Adapter Lab')), seen: `activity bar: ${items.join(', ')}` };
      }, 120_000);
      // The extension activates on the workspace's *.adapter.json files; its Runs view lists the configs.
      await wb.focusRunsView();
      await until(
        `the Runs view listing the workspace's configs (a row "config ${TRAIN_CONFIG}, no runs yet")`,
        async () => {
          const rows = await wb!.rows();
          return { ok: rows.includes(`config ${TRAIN_CONFIG}, no runs yet`), seen: listRows(rows) };
        },
        120_000,
      );
      // A wider side bar, so that the screenshots show the rows' descriptions.
      await wb.widenSideBar(560);
      log(`ready: ${rel(await wb.screenshot('00-workbench'))}`);
    } catch (err) {
      setupError = err as Error;
      if (wb) await wb.screenshot('00-workbench-FAILED').catch(() => undefined);
      saveOutputs();
      log(`setup FAILED: ${(err as Error).message}`);
      // Not rethrown: vitest would then report the steps as skipped. Each step fails with this instead.
    }
  });

  afterAll(async () => {
    saveOutputs();
    await wb?.close();
    await server?.stop();
    if (tmpRoot) fs.rmSync(tmpRoot, { recursive: true, force: true });
    log(`done; screenshots and logs in ${rel(ARTIFACTS)}/`);
  });

  test('1. Train Adapter from the palette: queued -> running -> done, with its best dev metric', async () => {
    await step('01-train', async (wb) => {
      const configName = ws.configNames[TRAIN_CONFIG];
      const t0 = Date.now();
      await wb.command('Adapter Lab: Train Adapter');
      await wb.pick('Adapter Lab: choose an experiment config', TRAIN_CONFIG);

      let runningShot = '';
      const done = await until(
        `a run of ${TRAIN_CONFIG} in the Runs tree with status done and its best dev metric ("run <created>, done, accuracy 0.1234 · ...")`,
        async () => {
          const rows = await wb.rows();
          if (!runningShot && rows.some((r) => /^run .*, running, /.test(r))) runningShot = await wb.screenshot('01-train-running');
          const row = rows.find((r) => /^run .*, done, accuracy \d\.\d{4}\b/.test(r));
          return { ok: !!row && rows.includes(`config ${TRAIN_CONFIG}, 1 run`), value: row, seen: listRows(rows) };
        },
        8 * 60_000,
        200,
      );
      // The run on disk is the one the tree shows.
      const folders = runFolders(ws);
      if (folders.length !== 1) fail('exactly one run folder after one training', `${folders.length}: ${folders.map((f) => path.basename(f.dir)).join(', ')}`);
      const dir = folders[0].dir;
      const run = readRun(dir);
      const label = rowLabelOf(dir, configName);
      if (!run.best || run.status !== 'done') fail('run.json with status done and a best dev metric', JSON.stringify(run).slice(0, 300));
      const expectedPrefix = `run ${label}, done, ${run.best.metric} ${run.best.value.toFixed(4)}`;
      if (!done!.startsWith(expectedPrefix)) fail(`the row to start with "${expectedPrefix}" (from ${rel(dir)}/run.json)`, JSON.stringify(done));

      // queued -> running -> done, as the tree showed it (the recorder saw every row label as it appeared).
      const seen = (await wb.seen(t0)).filter((s) => s.kind === 'row');
      const first = (re: RegExp): Seen | undefined => seen.find((s) => re.test(s.text));
      const queued = first(new RegExp(`^run ${label}, queued\\b`)) ?? first(new RegExp(`^Train ${configName}\\b.*queued`));
      const running = first(new RegExp(`^run ${label}, running\\b`));
      const finished = first(new RegExp(`^run ${label}, done\\b`));
      // The rows of this run (and its queued job) as they changed status: the first label of each status.
      const statusOf = (text: string) => (text.startsWith('Train ') ? 'queued job' : (/^run [^,]*, (\w+)/.exec(text)?.[1] ?? '?'));
      const timeline = seen
        .filter((s) => s.text.startsWith(`run ${label}`) || s.text.startsWith(`Train ${configName}`))
        .filter((s, i, all) => all.findIndex((o) => statusOf(o.text) === statusOf(s.text)) === i)
        .map((s) => `+${((s.t - t0) / 1000).toFixed(1)}s ${JSON.stringify(s.text)}`);
      if (!queued || !running || !finished || !(queued.t <= running.t && running.t <= finished.t)) {
        fail('the run shown queued, then running, then done', timeline.join('; ') || 'no row of the run');
      }
      log(`01-train: the tree showed ${timeline.join(' -> ')}`);
      if (runningShot) log(`01-train: screenshot while training: ${rel(runningShot)}`);
      state.trainedRunDir = dir;
      state.trainedRunName = run.name;
      state.trainedRowPrefix = `run ${label}, `;
      await wb.notification(`the notification "Train ${configName} finished: best dev ..."`, (n) => n.startsWith(`Train ${configName} finished: best dev ${run.best!.metric}`), t0, 30_000);
    });
  });

  test('2. Show Loss Curves on that run: canvas drawn, legend names the run', async () => {
    await step('02-loss-curves', async (wb) => {
      const rowPrefix = requireState('trainedRowPrefix', 'step 1');
      const dir = requireState('trainedRunDir', 'step 1');
      const name = requireState('trainedRunName', 'step 1');
      await wb.focusRunsView();
      await wb.rowAction(rowPrefix, 'Show Loss Curves');
      const frame = await wb.webview('lossCurves');
      await until('an editor tab titled "Loss Curves"', async () => {
        const tabs = await wb.tabTitles();
        return { ok: tabs.includes('Loss Curves'), seen: `tabs: ${tabs.join(', ') || 'none'}` };
      }, 20_000);
      await until(`the loss chart drawn (a canvas with thousands of painted pixels in several colours)`, async () => {
        const ink = await canvasInk(frame, '[data-testid="loss-chart"]');
        return { ok: ink.painted > 2000 && ink.colours >= 3, seen: `canvas ${ink.width}x${ink.height}, ${ink.painted} painted pixels, ${ink.colours} colours` };
      }, 30_000);
      const items = await frame.$$eval('[data-testid="legend-item"]', (els) =>
        els.map((e) => ({ dir: e.getAttribute('data-run-dir'), name: e.querySelector('.legend-name')?.textContent ?? '', status: e.querySelector('[data-testid="run-status"]')?.textContent ?? '' })),
      );
      const item = items.find((i) => i.dir === dir);
      if (!item || item.name !== name || item.status !== 'done') fail(`a legend item for ${rel(dir)} named "${name}", status done`, JSON.stringify(items));
      log(`02-loss-curves: legend ${JSON.stringify(items)}`);
    });
  });

  test('3. Explorer context menu on the config, Evaluate Adapter: the result shows', async () => {
    await step('03-evaluate', async (wb) => {
      const dir = requireState('trainedRunDir', 'step 1');
      const name = requireState('trainedRunName', 'step 1');
      const t0 = Date.now();
      await wb.showExplorer();
      await wb.explorerContextMenu(TRAIN_CONFIG, 'Evaluate Adapter');
      await wb.pick(`Evaluate ${name} on`, 'dev');
      const note = await wb.notification(`the notification "Evaluate ${name} on dev: accuracy ..."`, (n) => n.startsWith(`Evaluate ${name} on dev: `), t0, 5 * 60_000);
      const file = path.join(dir, 'eval-dev.json');
      if (!fs.existsSync(file)) fail(`${rel(file)} written by the evaluation`, `no such file; the notification said ${JSON.stringify(note)}`);
      const evalResult = JSON.parse(fs.readFileSync(file, 'utf8')) as { metrics?: Record<string, number> };
      const acc = evalResult.metrics?.accuracy;
      if (acc === undefined || !note.includes(`accuracy ${acc.toFixed(4)}`)) fail(`the notification to show accuracy ${acc?.toFixed(4)} (eval-dev.json)`, JSON.stringify(note));
      log(`03-evaluate: ${JSON.stringify(note)}`);
    });
  });

  test('4. Run Layer Ablation, then Show Ablation Heatmap: matrix drawn, a hovered cell shows its value', async () => {
    await step('04-ablation', async (wb) => {
      const dir = requireState('trainedRunDir', 'step 1');
      const name = requireState('trainedRunName', 'step 1');
      const t0 = Date.now();
      await wb.command('Adapter Lab: Run Layer Ablation');
      await wb.pick('Adapter Lab: Run Layer Ablation', name);
      await wb.notification(`the notification "Layer ablation of ${name} finished."`, (n) => n.startsWith(`Layer ablation of ${name} finished`), t0, 8 * 60_000);
      const ablation = JSON.parse(fs.readFileSync(path.join(dir, 'ablation.json'), 'utf8')) as { matrix: (number | null)[][]; metric: string; baseline: number };
      const L = ablation.matrix.length;

      await wb.command('Adapter Lab: Show Ablation Heatmap');
      await wb.pick('Adapter Lab: Show Ablation Heatmap', name);
      const frame = await wb.webview('ablation');
      await until(`an editor tab titled "Ablation: ${name}"`, async () => {
        const tabs = await wb.tabTitles();
        return { ok: tabs.includes(`Ablation: ${name}`), seen: `tabs: ${tabs.join(', ') || 'none'}` };
      }, 20_000);
      const geometry = await until('the heatmap drawn (painted canvas with data-chart-area and data-layers)', async () => {
        const ink = await canvasInk(frame, '[data-testid="ablation-chart"]');
        const attrs = await frame.$eval('[data-testid="ablation-chart"]', (c) => ({ area: c.getAttribute('data-chart-area'), layers: c.getAttribute('data-layers') }));
        const ok = ink.painted > 2000 && ink.colours >= 3 && !!attrs.area && attrs.layers === String(L);
        return { ok, value: attrs, seen: `canvas ${ink.width}x${ink.height}, ${ink.painted} painted pixels, ${ink.colours} colours, data-chart-area=${attrs.area}, data-layers=${attrs.layers} (ablation.json has ${L} layers)` };
      }, 30_000);
      // Hover the top-right cell: adapters of layers 0..L-1 removed (every adapter).
      const [left, top, right, bottom] = geometry!.area!.split(',').map(Number);
      const [row, col] = [0, L - 1];
      const x = left + ((col + 0.5) * (right - left)) / L;
      const y = top + ((row + 0.5) * (bottom - top)) / L;
      const value = ablation.matrix[row][col]!;
      const expectedValue = `${ablation.metric}: ${value.toFixed(4)}`;
      const canvas = frame.locator('[data-testid="ablation-chart"]');
      const tooltip = await until(`a tooltip for the cell (first ${row}, last ${col}) saying "${expectedValue}" when hovered`, async () => {
        await canvas.hover({ position: { x, y } });
        const tip = frame.locator('[data-testid="chart-tooltip"]');
        const visible = await tip.isVisible();
        const text = visible ? ((await tip.innerText()) ?? '').replace(/\s+/g, ' ') : '';
        return { ok: visible && text.includes(`first removed layer ${row}, last removed layer ${col}`) && text.includes(expectedValue), value: text, seen: visible ? `tooltip "${text}"` : 'no tooltip' };
      }, 20_000, 500);
      const cellText = (await frame.locator(`[data-testid="ablation-table"] td[data-cell="${row},${col}"]`).textContent())?.trim();
      if (cellText !== value.toFixed(4)) fail(`the values table to show ${value.toFixed(4)} for (${row}, ${col})`, JSON.stringify(cellText));
      log(`04-ablation: ${L} layers; hovered (${row}, ${col}): ${JSON.stringify(tooltip)}`);
    });
  });

  test('5. A second run, cancelled: status cancelled, its folder keeps a checkpoint', async () => {
    await step('05-cancel', async (wb) => {
      const configName = ws.configNames[CANCEL_CONFIG];
      const t0 = Date.now();
      await wb.focusRunsView();
      await wb.command('Adapter Lab: Train Adapter');
      await wb.pick('Adapter Lab: choose an experiment config', CANCEL_CONFIG);
      const runningRow = await until(`the second run (${CANCEL_CONFIG}) training, with its progress ("run <created>, running, N% ...")`, async () => {
        const rows = await wb.rows();
        const folder = runFolders(ws).find((f) => f.record.name === configName);
        const label = folder ? rowLabelOf(folder.dir, configName) : undefined;
        const row = label ? rows.find((r) => new RegExp(`^run ${label}, running, \\d+% `).test(r)) : undefined;
        return { ok: !!row, value: row, seen: listRows(runRows(rows)) };
      }, 5 * 60_000, 200);
      await wb.screenshot('05-cancel-running');
      const folder = runFolders(ws).find((f) => f.record.name === configName)!;
      const label = rowLabelOf(folder.dir, configName);
      log(`05-cancel: cancelling ${JSON.stringify(runningRow)}`);
      const cancelSeen = async () => (await wb.rows()).some((r) => r.startsWith(`run ${label}, cancelled`)) || /\bcancelled at step \d+/.test(server!.extensionOutput());
      await wb.rowAction(`run ${label}, running, `, 'Cancel Run', { what: 'the engine to report the run cancelled', check: cancelSeen, withinMs: 8_000 });
      await until(`the run's row to say cancelled ("run ${label}, cancelled, ...")`, async () => {
        const rows = await wb.rows();
        return { ok: rows.some((r) => r.startsWith(`run ${label}, cancelled`)), seen: listRows(runRows(rows)) };
      }, 60_000);
      const run = readRun(folder.dir);
      if (run.status !== 'cancelled') fail(`${rel(folder.dir)}/run.json with status cancelled`, `status ${run.status}`);
      const ckpt = path.join(folder.dir, 'checkpoint', 'state.json');
      if (!fs.existsSync(ckpt)) fail(`a checkpoint in the cancelled run's folder (${rel(ckpt)})`, `${fs.readdirSync(folder.dir).join(', ')}`);
      const ckptFiles = fs.readdirSync(path.join(folder.dir, 'checkpoint'));
      // Cancelled with a checkpoint: the tree offers Resume.
      const row = wb.rowLocator(`run ${label}, cancelled`);
      await until('the inline button "Resume Run" on the cancelled run', async () => {
        await row.hover();
        const labels = await row.locator('.actions .action-label').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? ''));
        return { ok: labels.some((l) => l.startsWith('Resume Run')), seen: `buttons: ${labels.join(', ') || 'none'}` };
      }, 10_000);
      await wb.notification(`the notification "Train ${configName} was cancelled; its checkpoint is saved."`, (n) => n.startsWith(`Train ${configName} was cancelled`), t0, 30_000);
      state.cancelledRunDir = folder.dir;
      log(`05-cancel: ${rel(folder.dir)} cancelled; checkpoint: ${ckptFiles.join(', ')}`);
    });
  });

  test('6. Reload the window: the runs are still listed with their statuses', async () => {
    await step('06-reload', async (wb) => {
      const trained = requireState('trainedRunDir', 'step 1');
      const cancelled = requireState('cancelledRunDir', 'step 5');
      const expected = [
        `run ${rowLabelOf(trained, ws.configNames[TRAIN_CONFIG])}, done, `,
        `run ${rowLabelOf(cancelled, ws.configNames[CANCEL_CONFIG])}, cancelled`,
      ];
      const before = (await wb.rows()).length;
      const load = wb.page.waitForEvent('load', { timeout: 60_000 });
      await wb.command('Developer: Reload Window');
      await load;
      await wb.waitForWorkbench();
      await wb.focusRunsView();
      await until(`after the reload, rows starting ${expected.map((e) => JSON.stringify(e)).join(' and ')}`, async () => {
        const rows = await wb.rows();
        return { ok: expected.every((e) => rows.some((r) => r.startsWith(e))), seen: listRows(rows) };
      }, 120_000);
      log(`06-reload: ${before} rows before, listed again: ${listRows(runRows(await wb.rows()))}`);
    });
  });

  test('7. An invalid config: a diagnostic in the editor; Train Adapter reports the field instead of starting', async () => {
    await step('07-invalid-config', async (wb) => {
      const broken = path.join(ws.dir, BROKEN_CONFIG);
      const cfg = JSON.parse(fs.readFileSync(path.join(ws.dir, TRAIN_CONFIG), 'utf8'));
      cfg.name = 'broken-batch-size';
      cfg.training.batchSize = 'thirty-two'; // a string where the schema wants an integer
      const text = JSON.stringify(cfg, null, 2) + '\n';
      fs.writeFileSync(broken, text);
      const line = text.split('\n').findIndex((l) => l.includes('"batchSize"')) + 1;
      const runsBefore = runFolders(ws).length;

      // Open it as a person would: Go to File.
      await wb.command('Go to File...');
      await wb.typeInQuickInput(BROKEN_CONFIG);
      await wb.pick(undefined, BROKEN_CONFIG);
      await until(`an editor on ${BROKEN_CONFIG}`, async () => {
        const t = await wb.activeTabTitle();
        return { ok: t === BROKEN_CONFIG, seen: `active tab "${t}"` };
      }, 20_000);
      await until('an error squiggle in the editor', async () => {
        const n = await wb.page.locator('.part.editor .monaco-editor .squiggly-error').count();
        return { ok: n > 0, seen: `${n} error squiggles` };
      }, 60_000);
      // The diagnostic itself, with its source and line, in the Problems panel.
      await wb.command('View: Focus Problems (Errors, Warnings, Infos)');
      const problem = await until(`a problem "training.batchSize: must be integer ..." from Adapter Lab at line ${line}`, async () => {
        const labels = await wb.page.locator('.markers-panel .monaco-list-row').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? e.textContent ?? ''));
        const hit = labels.find((l) => l.includes('training.batchSize: must be integer') && l.includes('Adapter Lab') && l.includes(`line ${line} `));
        return { ok: !!hit, value: hit, seen: labels.length ? labels.map((l) => JSON.stringify(l)).join('; ') : 'no problems listed' };
      }, 60_000);
      log(`07-invalid-config: problem ${JSON.stringify(problem)}`);
      await wb.screenshot('07-invalid-config-diagnostic');

      const t0 = Date.now();
      await wb.command('Adapter Lab: Train Adapter');
      await wb.pick('Adapter Lab: choose an experiment config', BROKEN_CONFIG);
      const note = await wb.notification(
        `the error "${BROKEN_CONFIG}:${line}: training.batchSize: must be integer ... Fix the config to train it."`,
        (n) => n.startsWith(`${BROKEN_CONFIG}:${line}: training.batchSize: must be integer`) && n.includes('Fix the config to train it'),
        t0,
        30_000,
      );
      // Nothing started: no run folder, no queued or running job, the config still has no runs.
      await new Promise((r) => setTimeout(r, 3000));
      const runsAfter = runFolders(ws);
      if (runsAfter.length !== runsBefore) fail(`no new run folder (${runsBefore} before)`, `${runsAfter.length}: ${runsAfter.map((f) => path.basename(f.dir)).join(', ')}`);
      await wb.focusRunsView();
      await until(`the Runs tree to list "config ${BROKEN_CONFIG}, no runs yet" and no queued job`, async () => {
        const rows = await wb.rows();
        const started = (await wb.seen(t0)).filter((s) => s.kind === 'row' && /broken-batch-size/.test(s.text) && /queued|running/.test(s.text));
        return { ok: rows.includes(`config ${BROKEN_CONFIG}, no runs yet`) && !started.length, seen: `${listRows(rows)}${started.length ? `; rows seen: ${started.map((s) => s.text).join(', ')}` : ''}` };
      }, 30_000);
      log(`07-invalid-config: Train reported ${JSON.stringify(note)}`);
    });
  });
});
