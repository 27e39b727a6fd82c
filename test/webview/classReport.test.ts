/// <reference lib="dom" />
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/engine/config/load';
import { createRun } from '../../src/engine/runs';
import { loadClassReport } from '../../src/extension/webviews/viewData';
import type { ViewData } from '../../src/protocol/webview';
import { classAverages } from '../../webview-ui/classReport/model';
import { evaluate, THREE_CLASSES, trainThreeClassRun } from '../helpers/classificationRun';
import { tempDir } from '../helpers/fixtures';
import { canvasInk, openView, pngSize, waitFor, webviewSuite } from './harness';

/**
 * The Per-class Metrics webview in headless Chromium, on a real three-class run of the CLI: first as the training
 * left it (no class report: the view offers to evaluate), then after `adapter-lab eval` on dev and test (the table,
 * the confusion heatmap, normalise by row, the split selector, exports, state across a reload), and for a
 * regression run. UPDATE_SCREENSHOTS=1 refreshes media/screenshots/per-class-metrics.png.
 */
const suite = webviewSuite(tempDir('adapter-lab-no-fixtures-'));
let work = '';
let runDir = '';

beforeAll(async () => {
  work = tempDir('adapter-lab-class-view-');
  runDir = await trainThreeClassRun(work);
}, 300_000);

const payload = (): ViewData => ({ view: 'classReport', ...loadClassReport(runDir) });

async function cellCentre(page: Page, y: number, x: number): Promise<{ x: number; y: number }> {
  const selector = '[data-testid="confusion-chart"]';
  const box = (await page.locator(selector).boundingBox())!;
  const { area, k } = await page.$eval(selector, (el) => ({ area: (el as HTMLCanvasElement).dataset.chartArea!.split(',').map(Number), k: Number((el as HTMLCanvasElement).dataset.rows) }));
  const [left, top, right, bottom] = area;
  return { x: box.x + left + ((x + 0.5) * (right - left)) / k, y: box.y + top + ((y + 0.5) * (bottom - top)) / k };
}

describe('Per-class metrics webview', () => {
  it('before any evaluation: says why there is no report and asks the extension to evaluate a split; the new init shows it', async () => {
    const host = await openView(suite.browser, suite.server, 'classReport', payload, { runDirs: [runDir] }, suite.exportDir);
    const { page } = host;
    expect(host.received[0]).toEqual({ type: 'ready', view: 'classReport' });
    expect(await page.textContent('[data-testid="title"]')).toBe('Per-class metrics: three-class');
    expect(await page.textContent('[data-testid="empty"]')).toContain('three-class has no per-class evaluation yet');
    expect(await page.textContent('[data-testid="evaluate-test"]')).toBe('Evaluate on test');

    await page.click('[data-testid="evaluate-dev"]');
    await waitFor(() => host.received.some((m) => m.type === 'evaluate'), 'an evaluate message');
    expect(host.received.find((m) => m.type === 'evaluate')).toEqual({ type: 'evaluate', runDir, split: 'dev' });
    expect(await page.isDisabled('[data-testid="evaluate-dev"]')).toBe(true);

    // What the extension does then: adapter-lab eval writes eval-dev.json, the view is sent its new data.
    await evaluate(runDir, 'dev');
    await host.send({ type: 'init', payload: payload(), subject: { runDirs: [runDir] } });
    await page.waitForSelector('[data-testid="class-table"]');
    expect(await page.$$eval('[data-testid="class-row"]', (rows) => rows.map((r) => r.getAttribute('data-class')))).toEqual(THREE_CLASSES);
    // dev is done; test is still offered.
    expect(await page.textContent('[data-testid="unevaluated"]')).toContain('No per-class evaluation on test yet.');
    expect(await page.isVisible('[data-testid="evaluate-test"]')).toBe(true);
    // An evaluation that fails writes nothing: when its job ends the extension sends the same data again, and the
    // button the click disabled can be clicked again.
    await page.click('[data-testid="evaluate-test"]');
    expect(await page.isDisabled('[data-testid="evaluate-test"]')).toBe(true);
    await host.send({ type: 'init', payload: payload(), subject: { runDirs: [runDir] } });
    await page.waitForSelector('[data-testid="evaluate-test"]:not([disabled])');
    expect(host.errors).toEqual([]);
    await page.close();
  });

  it('after adapter-lab eval: the table with averages, the confusion heatmap with counts, hover, normalise by row, splits, exports', async () => {
    // Whatever the test before did: both splits evaluated.
    for (const split of loadClassReport(runDir).data!.unevaluated) await evaluate(runDir, split);
    const data = loadClassReport(runDir).data!;
    const dev = data.splits.find((s) => s.split === 'dev')!;
    const test = data.splits.find((s) => s.split === 'test')!;
    const host = await openView(suite.browser, suite.server, 'classReport', payload, { runDirs: [runDir] }, suite.exportDir, { width: 1000, height: 1100 });
    const { page } = host;

    // The table: one row per class with its scores, then the averages.
    const cells = (testId: string) => page.$$eval(`[data-testid="${testId}"] td`, (tds) => tds.map((td) => td.textContent ?? ''));
    const rows = await page.$$eval('[data-testid="class-row"]', (trs) => trs.map((tr) => Array.from(tr.children).map((c) => c.textContent ?? '')));
    expect(rows).toEqual(dev.perClass.map((c) => [c.label, c.precision.toFixed(4), c.recall.toFixed(4), c.f1.toFixed(4), String(c.support), String(c.predicted)]));
    const avg = classAverages(dev);
    expect(await cells('macro-row')).toEqual([avg.macro.precision.toFixed(4), avg.macro.recall.toFixed(4), dev.metrics.macroF1.toFixed(4), '60', '']);
    expect(await cells('weighted-row')).toEqual([avg.weighted.precision.toFixed(4), avg.weighted.recall.toFixed(4), avg.weighted.f1.toFixed(4), '60', '']);
    expect((await cells('accuracy-row'))[2]).toBe(dev.metrics.accuracy.toFixed(4));
    expect(await page.textContent('[data-testid="summary"]')).toContain(`houlsby on three-class (text, 3 classes), dev: 60 examples, accuracy ${dev.metrics.accuracy.toFixed(4)}, macro F1 ${dev.metrics.macroF1.toFixed(4)}.`);
    expect(await page.isVisible('[data-testid="unevaluated"]')).toBe(false);

    // The heatmap: drawn, rows true and columns predicted, counts in the values table.
    const ink = await canvasInk(page, '[data-testid="confusion-chart"]');
    expect(ink.painted).toBeGreaterThan(20_000);
    expect(await page.getAttribute('[data-testid="confusion-chart"]', 'aria-label')).toBe(`Confusion matrix on dev, counts: rows the true class, columns the predicted class, classes ${THREE_CLASSES.join(', ')}`);
    const tableCell = (t: number, p: number) => page.textContent(`[data-testid="confusion-table"] td[data-cell="${t},${p}"]`);
    for (let t = 0; t < 3; t++) for (let p = 0; p < 3; p++) expect(await tableCell(t, p)).toBe(String(dev.confusion[t][p]));

    // Hover the cell (true 1, predicted 2): its count and its share of the true class.
    const tooltip = page.locator('[data-testid="chart-tooltip"]');
    let at = await cellCentre(page, 1, 2);
    await page.mouse.move(at.x, at.y);
    await tooltip.waitFor({ state: 'visible' });
    const share = dev.perClass[1].support ? `${((100 * dev.confusion[1][2]) / dev.perClass[1].support).toFixed(1)}% of the ${dev.perClass[1].support} ${THREE_CLASSES[1]} examples` : `no ${THREE_CLASSES[1]} examples in dev`;
    expect(await tooltip.textContent()).toBe(`true ${THREE_CLASSES[1]}, predicted ${THREE_CLASSES[2]}examples: ${dev.confusion[1][2]}${share}`);
    at = await cellCentre(page, 0, 0);
    await page.mouse.move(at.x, at.y);
    await page.waitForFunction(() => document.querySelector('[data-testid="chart-tooltip"]')?.textContent?.includes('predicted correctly'));
    expect(await tooltip.textContent()).toContain(`${THREE_CLASSES[0]}: predicted correctlyexamples: ${dev.confusion[0][0]}`);
    await suite.screenshot(page, 'per-class-metrics');

    // Normalise by row: the table shows each true class's shares, the diagonal its recall; the canvas redraws.
    await page.check('[data-testid="normalise"]');
    expect(await page.getAttribute('[data-testid="confusion-chart"]', 'data-normalised')).toBe('true');
    expect(await page.getAttribute('[data-testid="confusion-chart"]', 'aria-label')).toContain('normalised by row');
    for (let t = 0; t < 3; t++) {
      const support = dev.perClass[t].support;
      expect(await tableCell(t, t)).toBe(support ? `${(100 * dev.perClass[t].recall).toFixed(1)}%` : '—');
    }
    const normalisedInk = await canvasInk(page, '[data-testid="confusion-chart"]');
    expect(normalisedInk.painted).toBeGreaterThan(20_000);

    // The test split, and the choices kept across a reload.
    await page.selectOption('[data-testid="split-select"]', 'test');
    expect(await page.textContent('[data-testid="summary"]')).toContain(`, test: 45 examples, accuracy ${test.metrics.accuracy.toFixed(4)}`);
    await page.reload();
    await page.waitForSelector('main[aria-busy="false"]');
    expect(await page.inputValue('[data-testid="split-select"]')).toBe('test');
    expect(await page.isChecked('[data-testid="normalise"]')).toBe(true);
    expect(await tableCell(0, 0)).toBe(test.perClass[0].support ? `${(100 * test.perClass[0].recall).toFixed(1)}%` : '—');

    // Exports: the per-class table, the matrix, the picture.
    await page.click('[data-testid="export-csv"]');
    await page.click('[data-testid="export-confusion-csv"]');
    await page.click('[data-testid="export-png"]');
    await waitFor(() => host.exported.length === 3, 'three exports');
    const scores = fs.readFileSync(host.exported[0], 'utf8').trim().split('\n');
    expect(path.basename(host.exported[0])).toBe('per-class-three-class-test.csv');
    expect(scores[0]).toBe('class,precision,recall,f1,support,predicted');
    expect(scores.map((l) => l.split(',')[0])).toEqual(['class', ...THREE_CLASSES, 'macro avg', 'weighted avg']);
    expect(scores[1]).toBe([THREE_CLASSES[0], test.perClass[0].precision, test.perClass[0].recall, test.perClass[0].f1, test.perClass[0].support, test.perClass[0].predicted].join(','));
    const matrix = fs.readFileSync(host.exported[1], 'utf8').trim().split('\n');
    expect(matrix[0]).toBe('true_class,predicted_class,count,row_share');
    expect(matrix.slice(1).reduce((n, l) => n + Number(l.split(',')[2]), 0)).toBe(45);
    expect(pngSize(host.exported[2]).width).toBe((await canvasInk(page, '[data-testid="confusion-chart"]')).width);
    expect(host.errors).toEqual([]);
    await page.close();
  });

  it('a regression run: says the view is for classification runs', async () => {
    const ws = tempDir('adapter-lab-class-view-regression-');
    const raw = {
      name: 'scores',
      task: { name: 'scores', type: 'regression', train: 'data/train.jsonl', dev: 'data/dev.jsonl', textField: 'text', labelField: 'score' },
      model: 'builtin:tiny-bert',
      method: { type: 'houlsby', bottleneck: 8 },
    };
    const run = createRun(path.join(ws, 'runs'), resolveConfig(raw, path.join(ws, 'scores.adapter.json'), ws));
    const host = await openView(suite.browser, suite.server, 'classReport', () => ({ view: 'classReport', ...loadClassReport(run.dir) }), { runDirs: [run.dir] }, suite.exportDir);
    expect(await host.page.textContent('[data-testid="empty"]')).toMatch(/^scores is a regression run: per-class metrics and a confusion matrix are for classification runs/);
    expect(host.errors).toEqual([]);
    await host.page.close();
  });
});
