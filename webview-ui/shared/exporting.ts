/// <reference lib="dom" />
/**
 * Exports: the page makes the file's content (a PNG of a chart on the theme's background, a CSV of the
 * data) and hands it to the extension, which asks where to save it (webviews cannot write files).
 */
import type { Chart } from 'chart.js';
import { post } from './host';
import { toCsv } from './csv';

export { csvCell, toCsv } from './csv';

/** The chart as a PNG data: URL, on an opaque background (a transparent PNG is unreadable elsewhere). */
export function chartPng(chart: Chart, background: string): string {
  const src = chart.canvas;
  const out = document.createElement('canvas');
  out.width = src.width;
  out.height = src.height;
  const ctx = out.getContext('2d')!;
  ctx.fillStyle = background;
  ctx.fillRect(0, 0, out.width, out.height);
  ctx.drawImage(src, 0, 0);
  return out.toDataURL('image/png');
}

export function exportPng(chart: Chart, background: string, fileName: string): void {
  post({ type: 'export', format: 'png', fileName, data: chartPng(chart, background) });
}

export function exportCsv(fileName: string, header: string[], rows: unknown[][]): void {
  post({ type: 'export', format: 'csv', fileName, data: toCsv(header, rows) });
}
