/// <reference lib="dom" />
/**
 * End to end, the Per-class Metrics view: in the same harness as workbench.e2e.ts (code-server + Chromium, the
 * packaged .vsix, a copy of examples/ cut to a small budget), the spam task (classes ham and spam) is trained from
 * the palette; the Runs tree's task row carries the text icon; "Show Per-class Metrics" from
 * the run's context menu opens the view, which says the run has no per-class evaluation yet; its "Evaluate on dev"
 * button queues the evaluation, and the view redraws from the eval-dev.json it writes: the table's rows are that
 * file's classes and scores, the confusion heatmap is drawn, and "Normalise by row" puts each class's recall on the
 * diagonal; an `adapter-lab eval --split test` run outside the editor then adds the test split to the view.
 * Screenshots: test-results/e2e/class-report-*.png.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'vitest';
import { ROOT } from './codeServer';
import { workbenchSuite } from './suite';
import { canvasInk, fail, until } from './workbench';
import { runFolders, TRAIN_CONFIG } from './workspace';

interface EvalFile {
  examples: number;
  metrics: Record<string, number>;
  classes?: { labels: string[]; perClass: { label: string; precision: number; recall: number; f1: number; support: number }[]; confusion: number[][] };
}

describe.sequential('the Per-class Metrics view in a real VS Code workbench', () => {
  const suite = workbenchSuite('class-report', {
    config: TRAIN_CONFIG,
  });

  test('train a text classifier, open Show Per-class Metrics on its run, evaluate from the view, see its classes and confusion matrix', async () => {
    const { ws, log, wb: w } = suite;
    try {
      const done = await w.trainFromPalette(TRAIN_CONFIG, 8 * 60_000);
      const folder = runFolders(ws).find((f) => f.record.status === 'done');
      if (!folder) fail('a done run folder', runFolders(ws).map((f) => `${f.record.name}: ${f.record.status}`).join(', ') || 'none');
      const runDir = folder.dir;
      const rowPrefix = done.slice(0, done.indexOf(', done, ') + ', done, '.length);
      log(`trained ${runDir}: ${JSON.stringify(done)}`);

      // The task's icon says text (image tasks get another); the run row is the usual one.
      const taskRow = w.rowLocator('task spam, ');
      const icons = await taskRow.locator('.codicon').evaluateAll((els) => els.map((e) => e.className));
      if (!icons.some((c) => /\bcodicon-symbol-text\b/.test(c))) fail('the spam task row to carry the text icon (codicon-symbol-text)', `icons: ${icons.join(' | ') || 'none'}`);

      await w.rowContextMenu(rowPrefix, 'Show Per-class Metrics');
      const frame = await w.webview('classReport');
      await until('an editor tab titled "Per-class: spam-houlsby-64"', async () => {
        const tabs = await w.tabTitles();
        return { ok: tabs.includes('Per-class: spam-houlsby-64'), seen: `tabs: ${tabs.join(', ') || 'none'}` };
      }, 20_000);
      // The training's own evaluation keeps the metrics only: the view says so and offers to evaluate.
      const empty = await until('the view saying the run has no per-class evaluation yet, with "Evaluate on dev"', async () => {
        const text = ((await frame.locator('[data-testid="empty"]').textContent().catch(() => '')) ?? '').trim();
        const button = await frame.locator('[data-testid="evaluate-dev"]').isVisible().catch(() => false);
        return { ok: text.includes('has no per-class evaluation yet') && button, value: text, seen: `text "${text}", button ${button}` };
      }, 30_000);
      log(`before eval: ${JSON.stringify(empty)}`);
      await w.screenshot('class-report-01-no-eval');

      await frame.click('[data-testid="evaluate-dev"]');
      const file = path.join(runDir, 'eval-dev.json');
      const evalDev = await until(`${file} with a class report, written by the evaluation the view asked for`, async () => {
        let parsed: EvalFile | undefined;
        try {
          parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as EvalFile;
        } catch {
          parsed = undefined;
        }
        return { ok: !!parsed?.classes, value: parsed, seen: parsed ? 'eval-dev.json without classes' : 'no readable eval-dev.json' };
      }, 5 * 60_000, 500);
      const classes = evalDev!.classes!;
      // The task's classes: its training file's labels, sorted (the config names none).
      const trainRows = fs.readFileSync(path.join(ws.dir, 'data', 'spam', 'train.jsonl'), 'utf8').split('\n').filter(Boolean);
      const labels = [...new Set(trainRows.map((l) => String(JSON.parse(l).label)))].sort();
      if (classes.labels.join(',') !== labels.join(',')) fail(`the spam task's classes ${labels.join(', ')}`, classes.labels.join(', '));
      const k = labels.length;

      // The view follows the file: its table is the file's classes and scores.
      const expectedRows = classes.perClass.map((c) => [c.label, c.precision.toFixed(4), c.recall.toFixed(4), c.f1.toFixed(4), String(c.support)].join(' '));
      await until(`the table's rows to be eval-dev.json's: ${expectedRows.join(' | ')}`, async () => {
        const rows = await frame.$$eval('[data-testid="class-row"]', (trs) => trs.map((tr) => Array.from(tr.children).slice(0, 5).map((c) => c.textContent ?? '').join(' '))).catch(() => [] as string[]);
        return { ok: rows.join('|') === expectedRows.join('|'), seen: rows.join(' | ') || 'no table' };
      }, 60_000);
      const macro = await frame.$$eval('[data-testid="macro-row"] td', (tds) => tds.map((td) => td.textContent ?? ''));
      if (macro[2] !== evalDev!.metrics.macroF1.toFixed(4)) fail(`the macro average F1 to be the evaluation's macroF1 ${evalDev!.metrics.macroF1.toFixed(4)}`, JSON.stringify(macro));
      await until(`the confusion heatmap drawn (a painted canvas of ${k} x ${k} cells)`, async () => {
        const ink = await canvasInk(frame, '[data-testid="confusion-chart"]');
        const rows = await frame.getAttribute('[data-testid="confusion-chart"]', 'data-rows');
        return { ok: ink.painted > 5000 && ink.colours >= 3 && rows === String(k), seen: `canvas ${ink.width}x${ink.height}, ${ink.painted} painted pixels, ${ink.colours} colours, data-rows ${rows}` };
      }, 30_000);
      for (let t = 0; t < k; t++) {
        for (let p = 0; p < k; p++) {
          const text = (await frame.textContent(`[data-testid="confusion-table"] td[data-cell="${t},${p}"]`))?.trim();
          if (text !== String(classes.confusion[t][p])) fail(`the matrix cell (true ${classes.labels[t]}, predicted ${classes.labels[p]}) to show ${classes.confusion[t][p]}`, JSON.stringify(text));
        }
      }
      await w.screenshot('class-report-02-evaluated');

      await frame.check('[data-testid="normalise"]');
      for (let t = 0; t < k; t++) {
        const c = classes.perClass[t];
        const expected = c.support ? `${(100 * c.recall).toFixed(1)}%` : '—';
        const text = (await frame.textContent(`[data-testid="confusion-table"] td[data-cell="${t},${t}"]`))?.trim();
        if (text !== expected) fail(`normalised by row, the diagonal cell of ${c.label} to be its recall ${expected}`, JSON.stringify(text));
      }
      await w.screenshot('class-report-03-normalised');

      // Evaluated outside the editor (as from a terminal): the view follows eval-test.json as it appears.
      const cliEval = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'adapter-lab.js'), 'eval', runDir, '--split', 'test', '--json'], { encoding: 'utf8', timeout: 5 * 60_000 });
      if (cliEval.status !== 0) fail('adapter-lab eval <run> --split test to succeed', `exit ${cliEval.status}: ${(cliEval.stderr ?? '').slice(-2000)}`);
      const evalTest = JSON.parse(fs.readFileSync(path.join(runDir, 'eval-test.json'), 'utf8')) as EvalFile;
      await until('the split selector to offer test, and no "Evaluate on test" any more', async () => {
        const options = await frame.$$eval('[data-testid="split-select"] option', (os) => os.map((o) => (o as HTMLOptionElement).value)).catch(() => [] as string[]);
        const offered = await frame.locator('[data-testid="evaluate-test"]').count();
        return { ok: options.includes('test') && offered === 0, seen: `split options: ${options.join(', ') || 'none'}; Evaluate on test buttons: ${offered}` };
      }, 60_000);
      await frame.selectOption('[data-testid="split-select"]', 'test');
      const summary = (await frame.textContent('[data-testid="summary"]')) ?? '';
      const expectedSummary = `, test: ${evalTest.examples} examples, accuracy ${evalTest.metrics.accuracy.toFixed(4)}`;
      if (!summary.includes(expectedSummary)) fail(`the summary to say "${expectedSummary}" (eval-test.json)`, JSON.stringify(summary));
      await w.screenshot('class-report-04-test-split');
      log(`evaluated: ${classes.labels.join(', ')}; confusion ${JSON.stringify(classes.confusion)}; macro F1 ${macro[2]}`);

      // A run trained outside the editor appears in the tree. The runs folder did not exist when the workbench
      // started (the tree's watcher then watches its parent for it, and the folder itself once it appears).
      const before = runFolders(ws).length;
      const cliTrain = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'adapter-lab.js'), 'train', path.join(ws.dir, TRAIN_CONFIG), '--runs-dir', ws.runsDir, '--max-steps', '2', '--json'], { encoding: 'utf8', timeout: 5 * 60_000 });
      if (cliTrain.status !== 0) fail('adapter-lab train <config> --max-steps 2 outside the editor to succeed', `exit ${cliTrain.status}: ${(cliTrain.stderr ?? '').slice(-2000)}`);
      if (runFolders(ws).length !== before + 1) fail('one more run folder after the CLI run', `${runFolders(ws).length} (was ${before})`);
      await until('two done runs of the spam config in the Runs tree (the second trained by the CLI)', async () => {
        const rows = await w.rows();
        const doneRuns = rows.filter((r) => /^run .*, done, /.test(r));
        return { ok: doneRuns.length === 2, seen: rows.join(' | ') };
      }, 60_000);
    } catch (err) {
      await w.screenshot('class-report-FAILED').catch(() => undefined);
      throw err;
    }
  });
});
