/// <reference lib="dom" />
/**
 * Layer-removal ablation (Houlsby et al. 2019, section 3.6): the dev metric when the adapters of layers i..j
 * are removed, as an upper-triangular L x L heatmap. Rows: first removed layer i; columns: last removed layer
 * j; the diagonal removes one layer, the corner (0, L-1) removes every adapter. Hover a cell for its exact
 * value and its drop from the baseline (every adapter in place).
 */
import { Chart } from 'chart.js';
import type { AblationData, HostToWebview, ViewSubject } from '../../src/protocol/webview';
import { checkbox, clear, formatMetric, h } from '../shared/dom';
import { exportCsv, exportPng } from '../shared/exporting';
import { connect, savedState, saveState } from '../shared/host';
import { mix, readTheme } from '../shared/theme';
import { heatmap, type HeatCell } from '../shared/heatmap';

/** x: last removed layer j; y: first removed layer i. */
type Cell = HeatCell;

type Ui = { showValues: boolean };

const saved = savedState<Ui>('ablation');
let ui: Ui = { showValues: true, ...saved?.ui };
let subject: ViewSubject = saved?.subject ?? { runDirs: [] };
let data: AblationData | null = null;
let chart: Chart<'matrix', Cell[]> | undefined;
const theme = readTheme();
const app = document.getElementById('app')!;
const NEUTRAL = 'rgb(128, 128, 128)';

function cells(d: AblationData): Cell[] {
  const out: Cell[] = [];
  d.matrix.forEach((row, i) => row.forEach((v, j) => v !== null && j >= i && out.push({ x: j, y: i, v })));
  return out;
}

function range(d: AblationData): { min: number; max: number } {
  const values = [d.baseline, ...cells(d).map((c) => c.v)];
  return { min: Math.min(...values), max: Math.max(...values) };
}

/** Low values (large drops) toward the theme's red, values at the top of the range toward its blue. */
function colorOf(v: number, min: number, max: number): string {
  const t = max > min ? (v - min) / (max - min) : 1;
  return t < 0.5 ? mix(theme.bad, NEUTRAL, t * 2) : mix(NEUTRAL, theme.good, (t - 0.5) * 2);
}

function spanText(i: number, j: number, L: number): string {
  if (i === 0 && j === L - 1) return `every layer's adapters removed (layers 0–${L - 1})`;
  return i === j ? `layer ${i}'s adapters removed` : `layers ${i}–${j}'s adapters removed`;
}

function buildChart(canvas: HTMLCanvasElement, host: HTMLElement, d: AblationData): void {
  chart?.destroy();
  const L = d.numLayers;
  const { min, max } = range(d);
  Chart.defaults.color = theme.foreground;
  Chart.defaults.font.family = theme.font;
  canvas.dataset.layers = String(L);
  chart = heatmap(canvas, {
    label: `dev ${d.metric}`,
    cells: cells(d),
    columns: L,
    rows: L,
    color: (v) => colorOf(v, min, max),
    border: theme.background,
    font: theme.font,
    x: { title: 'last removed layer', tick: String },
    y: { title: 'first removed layer', tick: String },
    showValues: () => ui.showValues,
    formatValue: (v, width) => v.toFixed(width < 48 ? 2 : 3),
    tooltip: {
      host,
      title: (c) => spanText(c.y, c.x, L),
      lines: (c) => {
        const drop = d.baseline - c.v;
        return [
          `first removed layer ${c.y}, last removed layer ${c.x}`,
          `${d.metric}: ${formatMetric(c.v)}`,
          `drop from baseline: ${drop >= 0 ? '' : '+'}${formatMetric(Math.abs(drop))}${drop < 0 ? ' (better)' : ''} (baseline ${formatMetric(d.baseline)})`,
        ];
      },
    },
  });
}

function colourScale(d: AblationData): HTMLElement {
  const { min, max } = range(d);
  const bar = h('div', { className: 'scale-bar', 'aria-hidden': 'true' });
  const stops = Array.from({ length: 11 }, (_, k) => colorOf(min + ((max - min) * k) / 10, min, max));
  bar.style.background = `linear-gradient(to right, ${stops.join(', ')})`;
  const marker = h('div', { className: 'scale-marker', title: 'baseline' });
  marker.style.left = `${max > min ? (100 * (d.baseline - min)) / (max - min) : 100}%`;
  bar.append(marker);
  return h(
    'figure',
    { className: 'colour-scale', 'data-testid': 'colour-scale', 'aria-label': `colour scale from ${formatMetric(min)} to ${formatMetric(max)}` },
    bar,
    h('figcaption', {}, h('span', { 'data-testid': 'scale-min' }, formatMetric(min)), h('span', {}, `${d.metric} (▼ baseline)`), h('span', { 'data-testid': 'scale-max' }, formatMetric(max))),
  );
}

/** The matrix as a table too: the canvas is invisible to screen readers. */
function valuesTable(d: AblationData): HTMLElement {
  const L = d.numLayers;
  const head = h('tr', {}, h('th', { scope: 'col' }, 'first \\ last'), ...Array.from({ length: L }, (_, j) => h('th', { scope: 'col' }, String(j))));
  const rows = d.matrix.map((row, i) => h('tr', {}, h('th', { scope: 'row' }, String(i)), ...row.map((v, j) => h('td', { 'data-cell': `${i},${j}` }, j >= i && v !== null ? formatMetric(v) : ''))));
  return h(
    'details',
    { className: 'values' },
    h('summary', {}, 'Values'),
    h('table', { 'data-testid': 'ablation-table', 'aria-label': `dev ${d.metric} with the adapters of layers first..last removed` }, h('thead', {}, head), h('tbody', {}, ...rows)),
  );
}

function csvRows(d: AblationData): unknown[][] {
  return cells(d).map((c) => [c.y, c.x, c.v, d.baseline - c.v]);
}

function render(missing?: string): void {
  clear(app);
  app.setAttribute('aria-busy', 'false');
  if (!data) {
    app.append(h('header', {}, h('h1', { 'data-testid': 'title' }, 'Ablation heatmap')), h('p', { className: 'placeholder', 'data-testid': 'empty' }, missing ?? 'No ablation to show.'));
    return;
  }
  const d = data;
  const adapters = d.adapterLayers.length && d.adapterLayers.length < d.numLayers ? ` Adapters in layers ${d.adapterLayers.join(', ')}.` : '';
  app.append(
    h(
      'header',
      {},
      h('h1', { 'data-testid': 'title' }, `Ablation heatmap: ${d.run.name}`),
      h(
        'div',
        { className: 'toolbar', role: 'toolbar', 'aria-label': 'Heatmap options' },
        checkbox('Values in cells', 'show-values', ui.showValues, (on) => {
          ui.showValues = on;
          saveState('ablation', subject, ui);
          chart?.update('none');
        }),
        h('span', { className: 'spacer' }),
        h('button', { type: 'button', 'data-testid': 'export-png', onclick: () => chart && exportPng(chart, theme.background, `ablation-${d.run.name}.png`) }, 'Export PNG'),
        h('button', { type: 'button', 'data-testid': 'export-csv', onclick: () => exportCsv(`ablation-${d.run.name}.csv`, ['first_removed_layer', 'last_removed_layer', d.metric, 'drop_from_baseline'], csvRows(d)) }, 'Export CSV'),
      ),
    ),
    h(
      'p',
      { className: 'baseline', 'data-testid': 'baseline' },
      h('strong', {}, 'Baseline'),
      ` (every adapter in place): ${d.metric} ${formatMetric(d.baseline)} on ${d.split}${d.examples ? ` (${d.examples} examples)` : ''}. `,
      `${d.run.method} on ${d.run.task}, ${d.numLayers} layers.${adapters}`,
    ),
  );
  const box = h('section', { className: 'chart-box square' });
  const canvas = h('canvas', {
    'data-testid': 'ablation-chart',
    role: 'img',
    'aria-label': `Heatmap of dev ${d.metric} with the adapters of layers i to j removed; rows: first removed layer, columns: last removed layer`,
  });
  box.append(canvas);
  app.append(box, colourScale(d), valuesTable(d));
  buildChart(canvas, box, d);
}

connect('ablation', (msg: HostToWebview) => {
  if (msg.type === 'init' && msg.payload.view === 'ablation') {
    data = msg.payload.data;
    subject = msg.subject;
    saveState('ablation', subject, ui);
    render(msg.payload.missing);
  } else if (msg.type === 'exported' || msg.type === 'notice') {
    const el = h('p', { className: 'notice', role: 'status', 'data-testid': 'notice' }, msg.type === 'exported' ? `Exported to ${msg.file}` : msg.message);
    app.append(el);
    setTimeout(() => el.remove(), 6000);
  }
});
