/// <reference lib="dom" />
/**
 * End to end, sweeps: in the same harness as workbench.e2e.ts (code-server + Chromium, the packaged .vsix, a copy
 * of examples/ cut to a small budget), a config with a seed axis (2 points) is run with "Adapter Lab: Run Sweep"
 * from the palette; the Runs tree shows a sweep node "sweep <name> (2 runs)" whose points end done; then
 * "Adapter Lab: Compare Runs" opens the Compare view with the best run marked and the mean over the 2 seeds.
 * Screenshots: test-results/e2e/sweep-*.png.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse as parseJsonc } from 'jsonc-parser';
import { afterAll, beforeAll, describe, test } from 'vitest';
import { ARTIFACTS, checkInstalled, startCodeServer, type CodeServer } from './codeServer';
import { fail, until, Workbench } from './workbench';
import { makeWorkspace, runFolders, TRAIN_CONFIG, vsixHasBuiltinModel, type E2eWorkspace } from './workspace';

const SWEEP_CONFIG = 'spam-seeds.adapter.json';
const log = (line: string) => {
  console.log(`[e2e sweep] ${line}`);
  fs.appendFileSync(path.join(ARTIFACTS, 'e2e-sweep.log'), line + '\n');
};

let tmpRoot = '';
let ws: E2eWorkspace;
let server: CodeServer | undefined;
let wb: Workbench | undefined;
let sweepName = '';

describe.sequential('Adapter Lab sweeps in a real VS Code workbench', () => {
  beforeAll(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const { vsix } = checkInstalled();
    tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'adapter-lab-e2e-sweep-'));
    ws = makeWorkspace(tmpRoot, vsixHasBuiltinModel(vsix));
    // The small training config of the main suite, with a seed axis: two runs that differ only by seed.
    const base = parseJsonc(fs.readFileSync(path.join(ws.dir, TRAIN_CONFIG), 'utf8')) as Record<string, unknown>;
    sweepName = `${base.name as string}-seeds`;
    fs.writeFileSync(path.join(ws.dir, SWEEP_CONFIG), JSON.stringify({ ...base, name: sweepName, sweep: { 'training.seed': [1, 2] } }, null, 2) + '\n');
    server = await startCodeServer(ws.dir, tmpRoot, log);
    wb = await Workbench.open(server.url, log);
    await wb.focusRunsView();
    await until(`the Runs view listing "config ${SWEEP_CONFIG}, no runs yet"`, async () => {
      const rows = await wb!.rows();
      return { ok: rows.includes(`config ${SWEEP_CONFIG}, no runs yet`), seen: rows.join(' | ') };
    }, 180_000);
    await wb.widenSideBar(560);
  });

  afterAll(async () => {
    if (server) fs.writeFileSync(path.join(ARTIFACTS, 'adapter-lab-output-sweep.log'), server.extensionOutput());
    await wb?.close();
    await server?.stop();
    if (tmpRoot) fs.rmSync(tmpRoot, { recursive: true, force: true });
  });

  test('Run Sweep from the palette: a sweep node with its 2 points done, then the Compare view with the mean over seeds', async () => {
    const w = wb!;
    try {
      await w.command('Adapter Lab: Run Sweep');
      await w.pick('Adapter Lab: choose an experiment config', SWEEP_CONFIG);
      await until(
        `a row "sweep ${sweepName} (2 runs), best accuracy ..." and its 2 points done`,
        async () => {
          const rows = await w.rows();
          const node = rows.find((r) => r.startsWith(`sweep ${sweepName} (2 runs), best accuracy `));
          const done = rows.filter((r) => /^run seed=[12], done, /.test(r));
          return { ok: !!node && done.length === 2, seen: rows.join(' | ') };
        },
        10 * 60_000,
        300,
      );
      const points = runFolders(ws).filter((f) => f.record.name.startsWith(`${sweepName}__`));
      if (points.length !== 2 || points.some((p) => p.record.status !== 'done')) fail('2 sweep run folders, done', points.map((p) => `${p.record.name}: ${p.record.status}`).join(', '));
      await w.screenshot('sweep-01-tree');

      await w.command('Adapter Lab: Compare Runs');
      const frame = await w.webview('compare');
      await until('the Compare view with a seed row "… 2: 1, 2 …" and a best run marked', async () => {
        const seeds = await frame.locator('[data-testid="seed-row"]').allTextContents();
        const best = await frame.locator('[data-testid="compare-row"][data-best="true"]').count();
        return { ok: seeds.some((s) => s.startsWith(sweepName) && /2: [12], [12]/.test(s)) && best >= 1, seen: `seed rows: ${seeds.join(' | ') || 'none'}; best rows: ${best}` };
      }, 60_000);
      await w.screenshot('sweep-02-compare');
    } catch (err) {
      await w.screenshot('sweep-FAILED').catch(() => undefined);
      throw err;
    }
  });
});
