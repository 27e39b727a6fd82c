/// <reference lib="dom" />
/**
 * End to end, sweeps: in the same harness as workbench.e2e.ts (code-server + Chromium, the packaged .vsix, a copy
 * of examples/ cut to a small budget), a config with a seed axis (2 points) is run with "Adapter Lab: Run Sweep"
 * from the palette; the Runs tree shows a sweep node "sweep <name> (2 runs)" whose points end done; then
 * "Adapter Lab: Compare Runs" opens the Compare view with the best run marked and the mean over the 2 seeds.
 * Screenshots: test-results/e2e/sweep-*.png.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseJsonc } from 'jsonc-parser';
import { describe, test } from 'vitest';
import { workbenchSuite } from './suite';
import { fail, until } from './workbench';
import { runFolders, TRAIN_CONFIG } from './workspace';

const SWEEP_CONFIG = 'spam-seeds.adapter.json';

let sweepName = '';

describe.sequential('Adapter Lab sweeps in a real VS Code workbench', () => {
  const suite = workbenchSuite('sweep', {
    prepare: (ws) => {
      // The small training config of the main suite, with a seed axis: two runs that differ only by seed.
      const base = parseJsonc(fs.readFileSync(path.join(ws.dir, TRAIN_CONFIG), 'utf8')) as Record<string, unknown>;
      sweepName = `${base.name as string}-seeds`;
      fs.writeFileSync(path.join(ws.dir, SWEEP_CONFIG), JSON.stringify({ ...base, name: sweepName, sweep: { 'training.seed': [1, 2] } }, null, 2) + '\n');
    },
    config: SWEEP_CONFIG,
  });

  test('Run Sweep from the palette: a sweep node with its 2 points done, then the Compare view with the mean over seeds', async () => {
    const { ws, wb: w } = suite;
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
