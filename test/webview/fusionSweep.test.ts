/// <reference lib="dom" />
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { listRuns } from '../../src/engine/runs';
import { loadCompare, loadDrop, loadFusionAttention } from '../../src/extension/webviews/viewData';
import type { ViewData } from '../../src/protocol/webview';
import { canvasInk, openView, pngSize, waitFor, webviewSuite } from './harness';

/**
 * The Fusion Attention, AdapterDrop and (sweep-aware) Compare webviews rendered from real CLI runs
 * (test/fixtures/runs-fusion-sweep) in headless Chromium. UPDATE_SCREENSHOTS=1 refreshes media/screenshots/.
 */
const FIXTURES = path.resolve(__dirname, '../fixtures/runs-fusion-sweep');
const suite = webviewSuite(FIXTURES);

const runDir = (name: string) => listRuns(suite.runsDir).runs.find((r) => r.name === name)!.dir;

/** The centre of a matrix cell (row y, column x) of a canvas that publishes its chart area. */
async function cellCentre(page: Page, selector: string, y: number, x: number): Promise<{ x: number; y: number }> {
  const box = (await page.locator(selector).boundingBox())!;
  const { area, rows, columns } = await page.$eval(selector, (el) => ({
    area: (el as HTMLCanvasElement).dataset.chartArea!.split(',').map(Number),
    rows: Number((el as HTMLCanvasElement).dataset.rows),
    columns: Number((el as HTMLCanvasElement).dataset.columns),
  }));
  const [left, top, right, bottom] = area;
  return { x: box.x + left + ((x + 0.5) * (right - left)) / columns, y: box.y + top + ((y + 0.5) * (bottom - top)) / rows };
}

describe('Fusion attention webview', () => {
  it('draws the layers x adapters heatmap, shows a cell\'s value on hover, and the class selector switches the matrix', async () => {
    const dir = runDir('toy-fusion');
    const payload = (): ViewData => ({ view: 'fusion', ...loadFusionAttention(dir) });
    const data = loadFusionAttention(dir).data!;
    const host = await openView(suite.browser, suite.server, 'fusion', payload, { runDirs: [dir] }, suite.exportDir, { width: 900, height: 760 });
    const { page } = host;
    expect(host.received[0]).toEqual({ type: 'ready', view: 'fusion' });
    expect(await page.textContent('[data-testid="title"]')).toBe('Fusion attention: toy-fusion');

    const ink = await canvasInk(page, '[data-testid="fusion-chart"]');
    expect(ink.painted).toBeGreaterThan(20000);
    expect(ink.colours).toBeGreaterThan(3);
    expect(await page.getAttribute('[data-testid="fusion-chart"]', 'aria-label')).toContain('columns adapters toy-sentiment, toy-other, toy-third');

    // Every example first: the overall matrix.
    const cellText = (y: number, x: number) => page.textContent(`[data-testid="fusion-table"] td[data-cell="${y},${x}"]`);
    expect(await cellText(0, 0)).toBe(data.overall[0][0]!.toFixed(3));

    const at = await cellCentre(page, '[data-testid="fusion-chart"]', 1, 2);
    await page.mouse.move(at.x, at.y);
    const tooltip = page.locator('[data-testid="chart-tooltip"]');
    await tooltip.waitFor({ state: 'visible' });
    expect(await tooltip.textContent()).toBe(`layer 1, adapter toy-thirdattention: ${data.overall[1][2]!.toFixed(3)} (${(data.overall[1][2]! * 100).toFixed(1)}%)class: all classes`);
    await suite.screenshot(page, 'fusion-attention');

    // Class "pos": the table, the summary and the hovered value follow.
    await page.selectOption('[data-testid="class-select"]', '1');
    expect(await cellText(0, 0)).toBe(data.matrix[1][0][0]!.toFixed(3));
    expect(await cellText(0, 0)).not.toBe(data.matrix[0][0][0]!.toFixed(3));
    expect(await page.textContent('[data-testid="summary"]')).toContain(`pos, ${data.examples[1]} examples, ${data.tokens[1]} tokens`);
    await page.mouse.move(0, 0);
    const at2 = await cellCentre(page, '[data-testid="fusion-chart"]', 0, 0);
    await page.mouse.move(at2.x, at2.y);
    await page.locator('[data-testid="chart-tooltip"]').waitFor({ state: 'visible' });
    expect(await page.textContent('[data-testid="chart-tooltip"]')).toContain(`attention: ${data.matrix[1][0][0]!.toFixed(3)}`);
    expect(await page.textContent('[data-testid="chart-tooltip"]')).toContain('class: pos');

    // The class survives a reload (getState/setState), and the export writes a PNG of the chart.
    await page.reload();
    await page.waitForSelector('main[aria-busy="false"]');
    expect(await page.$eval('[data-testid="class-select"]', (el) => (el as HTMLSelectElement).value)).toBe('1');
    await page.click('[data-testid="export-png"]');
    await waitFor(() => host.exported.length === 1, 'the PNG export');
    expect(pngSize(host.exported[0]).width).toBeGreaterThan(100);
    expect(host.errors).toEqual([]);
    await page.close();
  });

  it('says why when a run has no fusion attention', async () => {
    const dir = runDir('toy-a-pfeiffer');
    const host = await openView(suite.browser, suite.server, 'fusion', () => ({ view: 'fusion', ...loadFusionAttention(dir) }), { runDirs: [dir] }, suite.exportDir);
    expect(await host.page.textContent('[data-testid="empty"]')).toMatch(/has no fusion attention/);
    expect(host.errors).toEqual([]);
    await host.page.close();
  });
});

describe('AdapterDrop trade-off webview', () => {
  it('draws the metric and tokens/s against n on two axes with the baseline, and shows values on hover', async () => {
    const dir = runDir('toy-sweep__lr=0.02,seed=1');
    const data = loadDrop(dir).data!;
    const host = await openView(suite.browser, suite.server, 'drop', () => ({ view: 'drop', ...loadDrop(dir) }), { runDirs: [dir] }, suite.exportDir, { width: 1000, height: 700 });
    const { page } = host;
    expect(await page.textContent('[data-testid="title"]')).toBe('AdapterDrop trade-off: toy-sweep__lr=0.02,seed=1');
    const ink = await canvasInk(page, '[data-testid="drop-chart"]');
    expect(ink.painted).toBeGreaterThan(5000);
    expect(ink.colours).toBeGreaterThan(5);
    expect(await page.textContent('[data-testid="baseline"]')).toContain(`accuracy ${data.baseline.toFixed(4)} on dev (48 examples)`);
    expect(await page.$$eval('[data-testid="drop-row"]', (rows) => rows.length)).toBe(3);
    expect(await page.getAttribute('[data-testid="drop-chart"]', 'aria-label')).toContain('n 2: accuracy');

    const box = (await page.locator('[data-testid="drop-chart"]').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.4);
    const tooltip = page.locator('[data-testid="chart-tooltip"]');
    await tooltip.waitFor({ state: 'visible' });
    const text = (await tooltip.textContent())!;
    expect(text).toMatch(/^n = 1: adapters of layers 0–0 dropped/);
    expect(text).toContain(`accuracy: ${data.points[1].value.toFixed(4)}`);
    expect(text).toMatch(/tokens\/s: \d+ \([\d.]+x of n = 0\)/);
    await page.mouse.move(0, 0);
    await suite.screenshot(page, 'adapterdrop');
    expect(host.errors).toEqual([]);
    await page.close();
  });
});

describe('Compare webview with a sweep', () => {
  it('marks the best run per task by the chosen dev metric, filters to them, and shows the mean and spread over seeds', async () => {
    const runs = listRuns(suite.runsDir).runs;
    const payload = (): ViewData => ({ view: 'compare', data: loadCompare(runs) });
    const rows = loadCompare(runs).rows;
    const host = await openView(suite.browser, suite.server, 'compare', payload, { runDirs: [] }, suite.exportDir, { width: 1200, height: 1000 });
    const { page } = host;
    expect(await page.$eval('[data-testid="metric-select"]', (el) => (el as HTMLSelectElement).value)).toBe('accuracy');
    const best = await page.$$eval('[data-testid="compare-row"][data-best="true"]', (els) => els.map((e) => e.getAttribute('data-run-dir')));
    expect(best).toHaveLength(3); // one per task
    const sentimentBest = Math.max(...rows.filter((r) => r.run.task === 'toy-sentiment').map((r) => r.devMetrics.accuracy));
    expect(best.map((d) => rows.find((r) => r.run.runDir === d)!).find((r) => r.run.task === 'toy-sentiment')!.devMetrics.accuracy).toBe(sentimentBest);

    const seedRows = page.locator('[data-testid="seed-row"]');
    expect(await seedRows.count()).toBe(2);
    const first = (await seedRows.first().textContent())!;
    expect(first).toMatch(/^toy-sweep \(learningRate=0\.0\d+\)toy-sentiment2: [12], [12][\d.]+± [\d.]+[\d.]+ – [\d.]+$/);
    await suite.screenshot(page, 'compare-sweep');

    await page.check('[data-testid="best-only"]');
    expect(await page.locator('[data-testid="compare-row"]').count()).toBe(3);
    await page.selectOption('[data-testid="metric-select"]', 'loss');
    expect(await page.locator('[data-testid="seed-table"] h2, section.seeds h2').first().textContent()).toContain('dev loss');
    const lossBest = Math.min(...rows.filter((r) => r.run.task === 'toy-sentiment').map((r) => r.devMetrics.loss));
    const shown = await page.$$eval('[data-testid="compare-row"]', (els) => els.map((e) => e.getAttribute('data-run-dir')));
    expect(shown.map((d) => rows.find((r) => r.run.runDir === d)!).find((r) => r.run.task === 'toy-sentiment')!.devMetrics.loss).toBe(lossBest);
    expect(host.errors).toEqual([]);
    await page.close();
  });
});
