/// <reference lib="dom" />
/**
 * End to end, an image task: in the same harness as workbench.e2e.ts (code-server + Chromium, the packaged .vsix,
 * a copy of examples/), a config of scikit-learn's 8 x 8 digits (examples/data/sklearn-digits) on
 * builtin:resnet-fashion with residual adapters, 24 steps, is trained from the palette (Adapter Lab: Train Adapter);
 * its run is done in the Runs tree under a task row with the image icon, and the Output channel's progress lines
 * say images/s. "Show Per-class Metrics" on the run shows the evaluation's ten classes and the confusion heatmap
 * (the training's own evaluation of an image run keeps them); "Show Image Predictions" opens the same view on its
 * Images tab: the images the evaluation kept (predictions-dev.json) drawn with their predicted and true classes,
 * then filtered to the misclassified, a true class, and a confusion-matrix cell clicked in the Values table.
 * Screenshots: test-results/e2e/image-task-*.png.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'vitest';
import { workbenchSuite } from './suite';
import { canvasInk, fail, until } from './workbench';
import { runFolders } from './workspace';

const IMAGE_CONFIG = 'digits-residual.adapter.json';
const DIGITS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

interface EvalFile {
  examples: number;
  metrics: Record<string, number>;
  classes: { labels: string[]; perClass: { label: string; precision: number; recall: number; f1: number; support: number }[]; confusion: number[][] };
}

interface GridFile {
  examples: number;
  misclassified: number;
  labels: string[];
  items: { index: number; true: number; predicted: number; confidence: number }[];
}

/** The digits config, written into the workspace copy: the IDX files of examples/data/sklearn-digits, a budget of seconds. */
function writeImageConfig(dir: string): void {
  const data = (split: string) => ({ images: `data/sklearn-digits/${split}-images-idx3-ubyte.gz`, labels: `data/sklearn-digits/${split}-labels-idx1-ubyte.gz` });
  const config = {
    $schema: '../schema/adapter-config.schema.json',
    name: 'digits-residual',
    task: { name: 'digits', type: 'image-classification', train: data('train'), dev: data('dev'), test: data('test'), labels: DIGITS },
    model: 'builtin:resnet-fashion',
    method: { type: 'residual-series' },
    training: { epochs: 1, maxSteps: 24, batchSize: 32, evalBatchSize: 64, evalEverySteps: 0 },
  };
  if (!fs.existsSync(path.join(dir, 'data', 'sklearn-digits', 'train-images-idx3-ubyte.gz'))) fail('examples/data/sklearn-digits copied into the workspace', fs.readdirSync(path.join(dir, 'data')).join(', '));
  fs.writeFileSync(path.join(dir, IMAGE_CONFIG), JSON.stringify(config, null, 2) + '\n');
}

describe.sequential('an image task in a real VS Code workbench', () => {
  const suite = workbenchSuite('image-task', {
    prepare: (ws) => writeImageConfig(ws.dir),
    config: IMAGE_CONFIG,
  });

  test('train digits from the palette; the run under an image task; Per-class Metrics; Show Image Predictions with filters', async () => {
    const { ws, server, log, wb: w } = suite;
    try {
      const started = Date.now();
      const done = await w.trainFromPalette(IMAGE_CONFIG, 4 * 60_000);
      const folder = runFolders(ws).find((f) => f.record.status === 'done' && f.record.name.startsWith('digits-residual'));
      if (!folder) fail('a done run folder of digits-residual', runFolders(ws).map((f) => `${f.record.name}: ${f.record.status}`).join(', ') || 'none');
      const runDir = folder.dir;
      const runName = folder.record.name;
      const rowPrefix = done.slice(0, done.indexOf(', done, ') + ', done, '.length);
      log(`trained ${runDir} in ${((Date.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify(done)}`);

      // The task row carries the image icon.
      const taskRow = w.rowLocator('task digits, ');
      const icons = await taskRow.locator('.codicon').evaluateAll((els) => els.map((e) => e.className));
      if (!icons.some((c) => /\bcodicon-file-media\b/.test(c))) fail('the digits task row to carry the image icon (codicon-file-media)', `icons: ${icons.join(' | ') || 'none'}`);
      // The training's progress, as the Output channel tells it: images per second, not tokens.
      const progress = await until('the Output channel\'s progress line "step 24/24 loss ... images/s"', async () => {
        const line = server.extensionOutput().split('\n').find((l) => /step 24\/24 loss \d+\.\d{4} \d+ images\/s/.test(l));
        return { ok: !!line, value: line, seen: server.extensionOutput().split('\n').filter((l) => /step \d+\/\d+/.test(l)).slice(-3).join(' | ') || 'no progress lines' };
      }, 20_000);
      log(`progress: ${progress}`);

      const evalDev = JSON.parse(fs.readFileSync(path.join(runDir, 'eval-dev.json'), 'utf8')) as EvalFile;
      const grid = JSON.parse(fs.readFileSync(path.join(runDir, 'predictions-dev.json'), 'utf8')) as GridFile;
      if (evalDev.classes?.labels.join(',') !== DIGITS.join(',')) fail('eval-dev.json with the ten digit classes', JSON.stringify(evalDev.classes?.labels));

      // Per-class Metrics: the training's evaluation already has the classes and the matrix.
      await w.rowContextMenu(rowPrefix, 'Show Per-class Metrics');
      const frame = await w.webview('classReport');
      await until(`an editor tab titled "Per-class: ${runName}"`, async () => {
        const tabs = await w.tabTitles();
        return { ok: tabs.includes(`Per-class: ${runName}`), seen: `tabs: ${tabs.join(', ') || 'none'}` };
      }, 20_000);
      const expectedRows = evalDev.classes.perClass.map((c) => [c.label, c.precision.toFixed(4), c.recall.toFixed(4), c.f1.toFixed(4), String(c.support)].join(' '));
      await until(`the table's rows to be eval-dev.json's: ${expectedRows.join(' | ')}`, async () => {
        const rows = await frame.$$eval('[data-testid="class-row"]', (trs) => trs.map((tr) => Array.from(tr.children).slice(0, 5).map((c) => c.textContent ?? '').join(' '))).catch(() => [] as string[]);
        return { ok: rows.join('|') === expectedRows.join('|'), seen: rows.join(' | ') || 'no table' };
      }, 30_000);
      const summary = (await frame.textContent('[data-testid="summary"]')) ?? '';
      if (!summary.includes(`residual-series on digits (images, 10 classes), dev: ${evalDev.examples} examples, accuracy ${evalDev.metrics.accuracy.toFixed(4)}`)) fail('the summary to name the image task, its 10 classes and its dev accuracy', JSON.stringify(summary));
      await until('the confusion heatmap drawn (a painted canvas of 10 x 10 cells)', async () => {
        const ink = await canvasInk(frame, '[data-testid="confusion-chart"]');
        const rows = await frame.getAttribute('[data-testid="confusion-chart"]', 'data-rows');
        return { ok: ink.painted > 5000 && ink.colours >= 3 && rows === '10', seen: `canvas ${ink.width}x${ink.height}, ${ink.painted} painted pixels, ${ink.colours} colours, data-rows ${rows}` };
      }, 30_000);
      for (let t = 0; t < 10; t++) {
        const text = (await frame.textContent(`[data-testid="confusion-table"] td[data-cell="${t},${t}"]`))?.trim();
        if (text !== String(evalDev.classes.confusion[t][t])) fail(`the matrix's diagonal cell of ${t} to show ${evalDev.classes.confusion[t][t]}`, JSON.stringify(text));
      }
      if ((await frame.getAttribute('[data-testid="tab-scores"]', 'aria-selected')) !== 'true') fail('the Scores tab selected', 'another');
      await w.screenshot('image-task-01-per-class');

      // Show Image Predictions: the same view, on its Images tab.
      await w.rowContextMenu(rowPrefix, 'Show Image Predictions');
      const kept = grid.items.length;
      await until(`the Images tab with ${kept} tiles, all drawn`, async () => {
        const selected = await frame.getAttribute('[data-testid="tab-images"]', 'aria-selected').catch(() => null);
        const tiles = await frame.$$eval('[data-testid="grid-tile"] canvas', (cs) => cs.map((c) => (c as HTMLCanvasElement).dataset.drawn === 'true')).catch(() => [] as boolean[]);
        return { ok: selected === 'true' && tiles.length === kept && tiles.every(Boolean), seen: `Images tab selected: ${selected}; ${tiles.length} tiles, ${tiles.filter(Boolean).length} drawn` };
      }, 30_000);
      // Images drawn: the first tiles have ink of several greys (digits, not blank squares).
      for (let k = 0; k < 3; k++) {
        const ink = await canvasInk(frame, `[data-testid="grid-tile"]:nth-child(${k + 1}) canvas`);
        if (ink.painted !== 28 * 28 || ink.colours < 3) fail(`tile ${k + 1} drawn: 28 x 28 painted pixels of several greys`, JSON.stringify(ink));
      }
      // Labels: each tile says its predicted and true class, as predictions-dev.json has them (misclassified first).
      const tiles = await frame.$$eval('[data-testid="grid-tile"]', (els) => els.map((el) => ({ index: Number(el.getAttribute('data-index')), true: el.getAttribute('data-true'), predicted: el.getAttribute('data-predicted'), caption: (el.querySelector('figcaption')?.textContent ?? '').trim() })));
      grid.items.forEach((item, k) => {
        const tile = tiles[k];
        const wrong = item.true !== item.predicted;
        const caption = `${wrong ? '✗' : '✓'} ${DIGITS[item.predicted]} ${Math.round(item.confidence * 100)}%${wrong ? `true ${DIGITS[item.true]}` : ''}`;
        if (tile.index !== item.index || tile.caption !== caption) fail(`tile ${k + 1} to be dev example ${item.index} captioned "${caption}"`, JSON.stringify(tile));
      });
      const summaryText = (await frame.textContent('[data-testid="grid-summary"]'))?.trim();
      log(`grid: ${summaryText}`);
      await w.screenshot('image-task-02-images');

      // Filters: the misclassified, then the misclassified of one true class.
      const wrongKept = grid.items.filter((i) => i.true !== i.predicted);
      await frame.selectOption('[data-testid="grid-show"]', 'misclassified');
      await until(`${wrongKept.length} misclassified tiles`, async () => {
        const shown = await frame.$$eval('[data-testid="grid-tile"]', (els) => els.map((el) => el.classList.contains('wrong')));
        return { ok: shown.length === wrongKept.length && shown.every(Boolean), seen: `${shown.length} tiles, ${shown.filter(Boolean).length} marked wrong` };
      }, 10_000);
      const digit = [...new Set(wrongKept.map((i) => i.true))].sort((a, b) => wrongKept.filter((i) => i.true === b).length - wrongKept.filter((i) => i.true === a).length)[0];
      if (digit === undefined) fail('at least one misclassified dev image after 24 steps', 'none');
      await frame.selectOption('[data-testid="grid-true"]', DIGITS[digit]);
      const expectedTrue = wrongKept.filter((i) => i.true === digit).map((i) => i.index);
      await until(`the misclassified tiles of true ${digit}: examples ${expectedTrue.join(', ')}`, async () => {
        const shown = await frame.$$eval('[data-testid="grid-tile"]', (els) => els.map((el) => `${el.getAttribute('data-index')}:${el.getAttribute('data-true')}`));
        return { ok: shown.join(',') === expectedTrue.map((i) => `${i}:${DIGITS[digit]}`).join(','), seen: shown.join(', ') || 'no tiles' };
      }, 10_000);
      await w.screenshot('image-task-03-filtered');

      // A confusion-matrix cell: the most frequent confusion, clicked in the Values table of the Scores tab.
      const pairs = new Map<string, number>();
      for (const i of wrongKept) pairs.set(`${i.true},${i.predicted}`, (pairs.get(`${i.true},${i.predicted}`) ?? 0) + 1);
      const [cell] = [...pairs.entries()].sort((a, b) => b[1] - a[1])[0];
      await frame.click('[data-testid="grid-clear"]');
      await frame.click('[data-testid="tab-scores"]');
      await frame.click('details.values summary');
      await frame.click(`[data-testid="confusion-table"] td[data-cell="${cell}"] button`);
      const [t, p] = cell.split(',').map(Number);
      const expectedCell = grid.items.filter((i) => i.true === t && i.predicted === p).map((i) => i.index);
      await until(`the Images tab showing cell (true ${t}, predicted ${p}): examples ${expectedCell.join(', ')}`, async () => {
        const shown = await frame.$$eval('[data-testid="grid-tile"]', (els) => els.map((el) => `${el.getAttribute('data-index')}:${el.getAttribute('data-true')}>${el.getAttribute('data-predicted')}`)).catch(() => [] as string[]);
        return { ok: shown.join(',') === expectedCell.map((i) => `${i}:${t}>${p}`).join(','), seen: shown.join(', ') || 'no tiles' };
      }, 10_000);
      const cellSummary = (await frame.textContent('[data-testid="grid-summary"]'))?.trim();
      if (!cellSummary?.startsWith(`${expectedCell.length} of ${kept} images (true ${t}, predicted ${p})`)) fail(`the grid's summary to say the cell's ${expectedCell.length} images`, JSON.stringify(cellSummary));
      await w.screenshot('image-task-04-confusion-cell');
      log(`cell (true ${t}, predicted ${p}): ${expectedCell.length} images; ${cellSummary}`);
    } catch (err) {
      await w.screenshot('image-task-FAILED').catch(() => undefined);
      throw err;
    }
  });
});
