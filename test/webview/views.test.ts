/// <reference lib="dom" />
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { listRuns } from '../../src/engine/runs';
import { loadAblation, loadCompare, loadLossCurves } from '../../src/extension/webviews/viewData';
import type { AblationData, ViewData } from '../../src/protocol/webview';
import { canvasInk, openView, pngSize, waitFor, webviewSuite } from './harness';

/**
 * Each webview rendered from fixture runs (real CLI runs, test/fixtures/runs) in headless Chromium, checked for
 * what a person sees: a drawn chart, a legend naming the runs, hover values, exports that produce files,
 * state that survives a reload, and no CSP violation or script error. Set UPDATE_SCREENSHOTS=1 to refresh
 * the README's screenshots in media/screenshots/.
 */
const FIXTURES = path.resolve(__dirname, '../fixtures/runs');
const suite = webviewSuite(FIXTURES);

const runDir = (method: string) => listRuns(suite.runsDir).runs.find((r) => r.method === method)!.dir;

describe('Loss curves webview', () => {
  const methods = ['houlsby', 'full', 'bitfit'];
  const payload = (): ViewData => ({ view: 'lossCurves', data: loadLossCurves(methods.map(runDir)) });

  it('draws the curves, names every run in the legend, shows values on hover and exports PNG and CSV', async () => {
    const host = await openView(suite.browser, suite.server, 'lossCurves', payload, { runDirs: methods.map(runDir) }, suite.exportDir);
    const { page } = host;
    expect(host.received[0]).toEqual({ type: 'ready', view: 'lossCurves' });

    const ink = await canvasInk(page, '[data-testid="loss-chart"]');
    expect(ink.painted).toBeGreaterThan(5000);
    expect(ink.colours).toBeGreaterThan(10);

    const legend = await page.$$eval('[data-testid="legend-item"] .legend-name', (els) => els.map((e) => e.textContent));
    expect(legend).toEqual(['toy-houlsby', 'toy-full', 'toy-bitfit']);
    expect(await page.textContent('[data-testid="title"]')).toBe('Loss curves: 3 runs');
    expect(await page.getAttribute('[data-testid="loss-chart"]', 'aria-label')).toMatch(/toy-houlsby: \d+ steps, last loss [\d.]+, best dev accuracy [\d.]+/);

    const box = (await page.locator('[data-testid="loss-chart"]').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5);
    const tooltip = page.locator('[data-testid="chart-tooltip"]');
    await tooltip.waitFor({ state: 'visible' });
    expect(await tooltip.textContent()).toMatch(/^step \d+.*toy-houlsby — train loss: [\d.]+/);
    await suite.screenshot(page, 'loss-curves');

    await page.click('[data-testid="export-png"]');
    await page.click('[data-testid="export-csv"]');
    await waitFor(() => host.exported.length === 2, 'two exports');
    const png = pngSize(host.exported[0]);
    expect(png).toEqual({ width: ink.width, height: ink.height });
    const csv = fs.readFileSync(host.exported[1], 'utf8').trim().split('\n');
    expect(csv[0]).toBe('run,method,task,series,epoch,step,value,smoothed');
    const points = payload().data as { runs: { train: unknown[]; dev: unknown[] }[] };
    expect(csv).toHaveLength(1 + points.runs.reduce((n, r) => n + r.train.length + r.dev.length, 0));
    expect(csv[1]).toMatch(/^toy-houlsby,houlsby,toy-sentiment,train_loss,0,1,[\d.]+,[\d.]+$/);
    // The host writes the file, then tells the page, which shows the notice: poll until the message has arrived.
    await expect.poll(() => page.locator('[data-testid="notice"]').last().textContent(), { timeout: 10_000 }).toContain('loss-curves.csv');
    expect(host.errors).toEqual([]);
    await page.close();
  });

  it('hides a run from its legend entry, and keeps smoothing, log scale and hidden runs across a reload', async () => {
    const host = await openView(suite.browser, suite.server, 'lossCurves', payload, { runDirs: methods.map(runDir) }, suite.exportDir);
    const { page } = host;
    const before = await canvasInk(page, '[data-testid="loss-chart"]');
    await page.locator('[data-testid="smoothing"]').fill('0.9');
    await page.check('[data-testid="log-scale"]');
    await page.click('[data-testid="legend-item"]:nth-child(2) button');
    expect(await page.getAttribute('[data-testid="legend-item"]:nth-child(2) button', 'aria-pressed')).toBe('false');
    const after = await canvasInk(page, '[data-testid="loss-chart"]');
    expect(after.painted).not.toBe(before.painted);

    await page.reload();
    await page.waitForSelector('main[aria-busy="false"]');
    expect(await page.inputValue('[data-testid="smoothing"]')).toBe('0.9');
    expect(await page.isChecked('[data-testid="log-scale"]')).toBe(true);
    expect(await page.getAttribute('[data-testid="legend-item"]:nth-child(2) button', 'aria-pressed')).toBe('false');
    expect(host.received.filter((m) => m.type === 'ready')).toHaveLength(2);
    expect(host.errors).toEqual([]);
    await page.close();
  });

  it('grows live as points are appended while a run trains', async () => {
    const dir = runDir('houlsby');
    const host = await openView(suite.browser, suite.server, 'lossCurves', payload, { runDirs: [dir] }, suite.exportDir);
    const { page } = host;
    const steps = async () => Number(/(\d+) steps/.exec((await page.getAttribute('[data-testid="loss-chart"]', 'aria-label'))!)![1]);
    const n = await steps();
    await host.send({ type: 'append', runDir: dir, status: 'running', train: [{ step: 10_000, epoch: 9, value: 0.01 }], dev: [{ step: 10_000, epoch: 9, value: 0.99 }] });
    await page.waitForFunction((expected) => document.querySelector('[data-testid="loss-chart"]')?.getAttribute('aria-label')?.includes(`${expected} steps`), n + 1);
    expect(await steps()).toBe(n + 1);
    expect(await page.textContent('[data-testid="run-status"]')).toBe('running');
    expect(await page.getAttribute('[data-testid="loss-chart"]', 'aria-label')).toContain('best dev accuracy 0.9900');
    await page.close();
  });
});

describe('Ablation heatmap webview', () => {
  const payload = (): ViewData => {
    const { data, missing } = loadAblation(runDir('houlsby'));
    return { view: 'ablation', data, missing };
  };

  it('draws the upper triangle with a colour scale and shows a cell\'s exact value and drop from the baseline on hover', async () => {
    const host = await openView(suite.browser, suite.server, 'ablation', payload, { runDirs: [runDir('houlsby')] }, suite.exportDir, { width: 900, height: 900 });
    const { page } = host;
    const data = payload().data as AblationData;
    const L = data.numLayers;

    const ink = await canvasInk(page, '[data-testid="ablation-chart"]');
    expect(ink.painted).toBeGreaterThan(20_000);
    expect(await page.textContent('[data-testid="baseline"]')).toContain(`Baseline (every adapter in place): accuracy ${data.baseline.toFixed(4)} on dev`);
    expect(await page.getAttribute('[data-testid="ablation-chart"]', 'aria-label')).toContain('rows: first removed layer, columns: last removed layer');
    expect(await page.textContent('[data-testid="scale-min"]')).toBe(Math.min(data.baseline, ...data.matrix.flat().filter((v): v is number => v !== null)).toFixed(4));

    const area = (await page.getAttribute('[data-testid="ablation-chart"]', 'data-chart-area'))!.split(',').map(Number);
    const box = (await page.locator('[data-testid="ablation-chart"]').boundingBox())!;
    const cellCentre = (i: number, j: number) => ({
      x: box.x + area[0] + ((j + 0.5) * (area[2] - area[0])) / L,
      y: box.y + area[1] + ((i + 0.5) * (area[3] - area[1])) / L,
    });
    const tooltip = page.locator('[data-testid="chart-tooltip"]');
    const v01 = data.matrix[0][1]!;
    let p = cellCentre(0, 1);
    await page.mouse.move(p.x, p.y);
    await tooltip.waitFor({ state: 'visible' });
    const text = (await tooltip.textContent())!;
    expect(text).toContain("layers 0–1's adapters removed");
    expect(text).toContain('first removed layer 0, last removed layer 1');
    expect(text).toContain(`accuracy: ${v01.toFixed(4)}`);
    const drop = data.baseline - v01;
    expect(text).toContain(`drop from baseline: ${drop >= 0 ? '' : '+'}${Math.abs(drop).toFixed(4)}`);

    p = cellCentre(0, L - 1);
    await page.mouse.move(p.x, p.y);
    await page.waitForFunction(() => document.querySelector('[data-testid="chart-tooltip"]')?.textContent?.includes('every layer'));
    expect(await tooltip.textContent()).toContain(`accuracy: ${data.matrix[0][L - 1]!.toFixed(4)}`);
    await suite.screenshot(page, 'ablation-heatmap');

    // Below the diagonal there is no cell and no tooltip.
    p = cellCentre(L - 1, 0);
    await page.mouse.move(p.x, p.y);
    await tooltip.waitFor({ state: 'hidden' });

    const cells = await page.$$eval('[data-testid="ablation-table"] td', (tds) => tds.filter((td) => td.textContent).length);
    expect(cells).toBe((L * (L + 1)) / 2);

    await page.click('[data-testid="export-csv"]');
    await page.click('[data-testid="export-png"]');
    await waitFor(() => host.exported.length === 2, 'two exports');
    const csv = fs.readFileSync(host.exported[0], 'utf8').trim().split('\n');
    expect(csv[0]).toBe('first_removed_layer,last_removed_layer,accuracy,drop_from_baseline');
    expect(csv).toHaveLength(1 + (L * (L + 1)) / 2);
    expect(csv).toContain(`0,1,${v01},${data.baseline - v01}`);
    expect(pngSize(host.exported[1]).width).toBe(ink.width);
    expect(host.errors).toEqual([]);
    await page.close();
  });

  it('says what to do when the run has no ablation yet', async () => {
    const dir = runDir('bitfit');
    const host = await openView(suite.browser, suite.server, 'ablation', () => ({ view: 'ablation', ...loadAblation(dir) }), { runDirs: [dir] }, suite.exportDir);
    expect(await host.page.textContent('[data-testid="empty"]')).toContain('has no layer ablation yet: run "Adapter Lab: Run Layer Ablation"');
    await host.page.close();
  });
});

describe('Compare webview', () => {
  const payload = (): ViewData => ({ view: 'compare', data: loadCompare(listRuns(suite.runsDir).runs) });

  it('draws the trade-off chart and a table that sorts and filters', async () => {
    const host = await openView(suite.browser, suite.server, 'compare', payload, { runDirs: [] }, suite.exportDir, { width: 1100, height: 900 });
    const { page } = host;
    const ink = await canvasInk(page, '[data-testid="tradeoff-chart"]');
    expect(ink.painted).toBeGreaterThan(5000);
    expect(await page.getAttribute('[data-testid="tradeoff-chart"]', 'aria-label')).toMatch(/5 runs, methods bitfit, full, head, houlsby, pfeiffer/);

    const column = (col: string) => page.$$eval(`[data-testid="compare-row"] td[data-col="${col}"]`, (tds) => tds.map((td) => td.textContent!));
    expect(await column('name')).toHaveLength(5);

    await page.click('[data-testid="sort-trainablePercent"]');
    await page.click('[data-testid="sort-trainablePercent"]'); // numeric columns sort descending first; again: ascending
    expect(await page.getAttribute('th:has([data-testid="sort-trainablePercent"])', 'aria-sort')).toBe('ascending');
    expect(await column('method')).toEqual(['head', 'bitfit', 'pfeiffer', 'houlsby', 'full']);
    const pct = (await column('trainablePercent')).map((s) => parseFloat(s));
    expect(pct).toEqual([...pct].sort((a, b) => a - b));
    await suite.screenshot(page, 'compare');

    await page.fill('[data-testid="filter"]', 'houlsby');
    expect(await column('name')).toEqual(['toy-houlsby']);
    expect(await page.textContent('[data-testid="title"]')).toBe('Compare runs (1 of 5)');

    // Sort and filter are kept across a reload.
    await page.reload();
    await page.waitForSelector('main[aria-busy="false"]');
    expect(await page.inputValue('[data-testid="filter"]')).toBe('houlsby');
    expect(await column('name')).toEqual(['toy-houlsby']);

    await page.fill('[data-testid="filter"]', '');
    await page.click('[data-testid="export-csv"]');
    await waitFor(() => host.exported.length === 1, 'the CSV export');
    const csv = fs.readFileSync(host.exported[0], 'utf8').trim().split('\n');
    expect(csv[0]).toBe('run,task,method,trainable_percent,trained_params,base_params,metric,best_dev,duration_ms,status,created_at,run_dir');
    expect(csv).toHaveLength(6);

    await page.dblclick('[data-testid="compare-row"]');
    await waitFor(() => host.received.some((m) => m.type === 'openRun'), 'openRun');
    expect(host.received.find((m) => m.type === 'openRun')).toMatchObject({ show: 'lossCurves' });
    expect(host.errors).toEqual([]);
    await page.close();
  });
});
