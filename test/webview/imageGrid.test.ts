/// <reference lib="dom" />
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadClassReport } from '../../src/extension/webviews/viewData';
import { readIdx } from '../../src/engine/data/images/idx';
import type { ClassReportTab, ViewData } from '../../src/protocol/webview';
import { cliAsync } from '../helpers/cliRun';
import { tempDir, useBackend } from '../helpers/fixtures';
import { trainImageRun } from '../helpers/imageTask';
import { openView, waitFor, webviewSuite } from './harness';

/**
 * The Per-class Metrics view's Images tab in headless Chromium, on a real image run trained by the CLI: the tiles
 * drawn from the evaluation's sprite (pixel for pixel the task's IDX images), their labels, the filters, a
 * confusion-matrix cell opening its images, the state across a reload; and a run evaluated before grids existed.
 * UPDATE_SCREENSHOTS=1 refreshes media/screenshots/image-predictions.png.
 */
const suite = webviewSuite(tempDir('adapter-lab-no-fixtures-'));
let work = '';
let runDir = '';

beforeAll(async () => {
  await useBackend();
  work = tempDir('adapter-lab-image-grid-view-');
  runDir = await trainImageRun(work, { training: { epochs: 1 } });
}, 120_000);

const payload = (dir: string, tab?: ClassReportTab) => (): ViewData => ({ view: 'classReport', ...loadClassReport(dir), ...(tab ? { tab } : {}) });

const tiles = (page: Page) =>
  page.$$eval('[data-testid="grid-tile"]', (els) =>
    els.map((el) => ({
      index: Number(el.getAttribute('data-index')),
      true: el.getAttribute('data-true'),
      predicted: el.getAttribute('data-predicted'),
      caption: el.querySelector('figcaption')!.textContent,
    })),
  );

/** The grey values of the first `n` tile canvases, once drawn. */
async function tilePixels(page: Page, n: number): Promise<number[][]> {
  await page.waitForFunction((count) => Array.from(document.querySelectorAll('[data-testid="grid-tile"] canvas')).slice(0, count).every((c) => (c as HTMLCanvasElement).dataset.drawn === 'true'), n);
  return page.$$eval(
    '[data-testid="grid-tile"] canvas',
    (els, count) =>
      els.slice(0, count).map((el) => {
        const c = el as HTMLCanvasElement;
        const { data } = c.getContext('2d')!.getImageData(0, 0, c.width, c.height);
        const grey: number[] = [];
        for (let i = 0; i < data.length; i += 4) grey.push(data[i]);
        return grey;
      }),
    n,
  );
}

describe('Per-class metrics: the Images tab', () => {
  it('opened on Images (Show Image Predictions): every kept image drawn with its labels, misclassified first; the filters narrow it', async () => {
    const dev = loadClassReport(runDir).data!.splits[0];
    const p = dev.images!;
    const host = await openView(suite.browser, suite.server, 'classReport', payload(runDir, 'images'), { runDirs: [runDir] }, suite.exportDir, { width: 1000, height: 900 });
    const { page } = host;
    await page.waitForSelector('[data-testid="image-grid"]');
    expect(await page.getAttribute('[data-testid="tab-images"]', 'aria-selected')).toBe('true');
    expect(await page.textContent('[data-testid="grid-summary"]')).toBe('60 of 60 images; the evaluation kept all 60 dev examples.');

    const shown = await tiles(page);
    expect(shown.map((t) => t.index)).toEqual(p.items.map((i) => i.index));
    shown.forEach((t, k) => {
      const item = p.items[k];
      expect([t.true, t.predicted]).toEqual([p.labels[item.true], p.labels[item.predicted]]);
      const confidence = `${Math.round(item.confidence * 100)}%`;
      expect(t.caption).toBe(item.true === item.predicted ? `✓ ${p.labels[item.predicted]} ${confidence}` : `✗ ${p.labels[item.predicted]} ${confidence}true ${p.labels[item.true]}`);
    });
    expect(await page.$$eval('[data-testid="grid-tile"].wrong', (els) => els.length)).toBe(p.misclassified);

    // The pixels: each tile is its example's image in dev-images.idx.
    const idx = readIdx(path.join(work, 'dev-images.idx'));
    const drawn = await tilePixels(page, 60);
    drawn.forEach((grey, k) => expect(grey, `tile ${k}`).toEqual(Array.from(idx.data.subarray(p.items[k].index * 64, (p.items[k].index + 1) * 64))));

    await page.selectOption('[data-testid="grid-show"]', 'misclassified');
    expect((await tiles(page)).every((t) => t.true !== t.predicted)).toBe(true);
    expect((await tiles(page)).length).toBe(p.misclassified);
    await page.selectOption('[data-testid="grid-true"]', 'square');
    const squareWrong = dev.perClass[2].support - dev.confusion[2][2];
    expect((await tiles(page)).map((t) => t.true)).toEqual(Array(squareWrong).fill('square'));
    expect(await page.textContent('[data-testid="grid-summary"]')).toBe(`${squareWrong} of 60 images (misclassified, true square); the evaluation kept all 60 dev examples.`);
    await page.click('[data-testid="grid-clear"]');
    await page.selectOption('[data-testid="grid-predicted"]', 'rows');
    expect((await tiles(page)).length).toBe(dev.perClass[0].predicted);
    expect((await tiles(page)).every((t) => t.predicted === 'rows')).toBe(true);
    await suite.screenshot(page, 'image-predictions');

    // The filter and the tab are kept across a reload.
    await page.reload();
    await page.waitForSelector('[data-testid="image-grid"]');
    expect(await page.$eval('[data-testid="grid-predicted"]', (s) => (s as HTMLSelectElement).selectedOptions[0].textContent)).toBe('rows');
    expect((await tiles(page)).length).toBe(dev.perClass[0].predicted);
    expect(host.errors).toEqual([]);
    await page.close();
  });

  it("a confusion-matrix cell, clicked on the chart or in the Values table, opens that cell's images", async () => {
    const dev = loadClassReport(runDir).data!.splits[0];
    // The cell with the most misclassified examples.
    let cell = [0, 1];
    for (let t = 0; t < 3; t++) for (let q = 0; q < 3; q++) if (t !== q && dev.confusion[t][q] > dev.confusion[cell[0]][cell[1]]) cell = [t, q];
    const [t, q] = cell;
    expect(dev.confusion[t][q]).toBeGreaterThan(0);
    const host = await openView(suite.browser, suite.server, 'classReport', payload(runDir, 'scores'), { runDirs: [runDir] }, suite.exportDir, { width: 1000, height: 1100 });
    const { page } = host;
    await page.waitForSelector('[data-testid="confusion-chart"][data-chart-area]');
    expect(await page.getAttribute('[data-testid="tab-scores"]', 'aria-selected')).toBe('true');

    // On the chart: the centre of cell (t, q).
    const box = (await page.locator('[data-testid="confusion-chart"]').boundingBox())!;
    const area = (await page.getAttribute('[data-testid="confusion-chart"]', 'data-chart-area'))!.split(',').map(Number);
    const [left, top, right, bottom] = area;
    await page.mouse.click(box.x + left + ((q + 0.5) * (right - left)) / 3, box.y + top + ((t + 0.5) * (bottom - top)) / 3);
    await page.waitForSelector('[data-testid="image-grid"]');
    const fromChart = await tiles(page);
    expect(fromChart.length).toBe(dev.confusion[t][q]);
    expect(fromChart.every((x) => x.true === dev.labels[t] && x.predicted === dev.labels[q])).toBe(true);

    // In the Values table: the diagonal cell of class 1.
    await page.click('[data-testid="grid-clear"]');
    await page.click('[data-testid="tab-scores"]');
    await page.click('details.values summary');
    await page.click('[data-testid="confusion-table"] td[data-cell="1,1"] button');
    await page.waitForSelector('[data-testid="image-grid"]');
    const fromTable = await tiles(page);
    expect(fromTable.length).toBe(dev.confusion[1][1]);
    expect(fromTable.every((x) => x.true === dev.labels[1] && x.predicted === dev.labels[1])).toBe(true);
    expect(host.errors).toEqual([]);
    await page.close();
  });

  it('a run evaluated without a grid offers to evaluate again; the grid appears with the new init', async () => {
    const dir = path.join(tempDir(), 'run');
    fs.cpSync(runDir, dir, { recursive: true });
    fs.rmSync(path.join(dir, 'predictions-dev.json'));
    const host = await openView(suite.browser, suite.server, 'classReport', payload(dir, 'images'), { runDirs: [dir] }, suite.exportDir);
    const { page } = host;
    expect(await page.textContent('[data-testid="no-images"]')).toContain("shapes-residual's evaluation on dev kept no images");
    await page.click('[data-testid="no-images"] [data-testid="evaluate-dev"]');
    await waitFor(() => host.received.some((m) => m.type === 'evaluate'), 'an evaluate message');
    expect(host.received.find((m) => m.type === 'evaluate')).toEqual({ type: 'evaluate', runDir: dir, split: 'dev' });
    const evaluated = await cliAsync(['eval', dir, '--split', 'dev', '--json'], work);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    await host.send({ type: 'init', payload: payload(dir)(), subject: { runDirs: [dir] } });
    await page.waitForSelector('[data-testid="image-grid"]');
    expect((await tiles(page)).length).toBe(60);
    expect(host.errors).toEqual([]);
    await page.close();
  }, 60_000);
});
