/// <reference lib="dom" />
/**
 * AdapterFusion attention (Pfeiffer et al. 2021, figure 5): at each layer, the mean softmax weight the fusion
 * gives each fused adapter, over the real tokens of the dev examples of one class. A heatmap of layers (rows)
 * x fused adapters (columns), one per dev class (a selector; "all classes" is every example), each row summing
 * to 1. Hover a cell for its exact value.
 */
import { Chart } from 'chart.js';
import type { FusionAttentionData, HostToWebview, ViewSubject } from '../../src/protocol/webview';
import { checkbox, clear, h } from '../shared/dom';
import { exportCsv, exportPng } from '../shared/exporting';
import { connect, savedState, saveState } from '../shared/host';
import { mix, readTheme } from '../shared/theme';
import { heatmap, type HeatCell } from '../shared/heatmap';

/** x: adapter index; y: row index (into data.layers). */
type Cell = HeatCell;

/** `klass`: a class index, or -1 for every example (overall). */
type Ui = { klass: number; showValues: boolean };

const saved = savedState<Ui>('fusion');
let ui: Ui = { klass: -1, showValues: true, ...saved?.ui };
let subject: ViewSubject = saved?.subject ?? { runDirs: [] };
let data: FusionAttentionData | null = null;
let chart: Chart<'matrix', Cell[]> | undefined;
const theme = readTheme();
const app = document.getElementById('app')!;
const LOW = 'rgb(128, 128, 128)';

const fmt = (v: number) => v.toFixed(3);

function currentMatrix(d: FusionAttentionData): (number | null)[][] {
  return ui.klass >= 0 && ui.klass < d.classes.length ? d.matrix[ui.klass] : d.overall;
}

function className(d: FusionAttentionData): string {
  return ui.klass >= 0 && ui.klass < d.classes.length ? d.classes[ui.klass] : 'all classes';
}

function cells(m: (number | null)[][]): Cell[] {
  const out: Cell[] = [];
  m.forEach((row, y) => row.forEach((v, x) => v !== null && out.push({ x, y, v })));
  return out;
}

/** Attention 0 toward grey, 1 toward the theme's blue: the scale is fixed at [0, 1] so classes compare. */
function colorOf(v: number): string {
  return mix(LOW, theme.good, Math.sqrt(Math.min(1, Math.max(0, v))));
}

function buildChart(canvas: HTMLCanvasElement, host: HTMLElement, d: FusionAttentionData): void {
  chart?.destroy();
  const R = d.layers.length;
  const A = d.adapters.length;
  Chart.defaults.color = theme.foreground;
  Chart.defaults.font.family = theme.font;
  canvas.dataset.rows = String(R);
  canvas.dataset.columns = String(A);
  chart = heatmap(canvas, {
    label: 'fusion attention',
    cells: cells(currentMatrix(d)),
    columns: A,
    rows: R,
    color: colorOf,
    border: theme.background,
    font: theme.font,
    x: { title: 'fused adapter', tick: (i) => d.adapters[i] ?? '', autoSkip: false, maxRotation: 30 },
    y: { title: 'layer', tick: (i) => String(d.layers[i] ?? '') },
    showValues: () => ui.showValues,
    formatValue: fmt,
    tooltip: {
      host,
      title: (c) => `layer ${d.layers[c.y]}, adapter ${d.adapters[c.x]}`,
      lines: (c) => [`attention: ${fmt(c.v)} (${(c.v * 100).toFixed(1)}%)`, `class: ${className(d)}`],
    },
  });
  canvas.setAttribute(
    'aria-label',
    `Heatmap of the fusion attention of ${className(d)}: rows layers ${d.layers.join(', ')}, columns adapters ${d.adapters.join(', ')}`,
  );
}

function colourScale(): HTMLElement {
  const bar = h('div', { className: 'scale-bar', 'aria-hidden': 'true' });
  bar.style.background = `linear-gradient(to right, ${Array.from({ length: 11 }, (_, k) => colorOf(k / 10)).join(', ')})`;
  return h(
    'figure',
    { className: 'colour-scale', 'data-testid': 'colour-scale', 'aria-label': 'colour scale from 0 to 1' },
    bar,
    h('figcaption', {}, h('span', { 'data-testid': 'scale-min' }, '0'), h('span', {}, 'mean attention (each row sums to 1)'), h('span', { 'data-testid': 'scale-max' }, '1')),
  );
}

function valuesTable(d: FusionAttentionData): HTMLElement {
  const m = currentMatrix(d);
  const head = h('tr', {}, h('th', { scope: 'col' }, 'layer'), ...d.adapters.map((a) => h('th', { scope: 'col' }, a)));
  const rows = m.map((row, y) => h('tr', {}, h('th', { scope: 'row' }, String(d.layers[y])), ...row.map((v, x) => h('td', { 'data-cell': `${y},${x}` }, v === null ? '—' : fmt(v)))));
  return h(
    'details',
    { className: 'values' },
    h('summary', {}, 'Values'),
    h('table', { 'data-testid': 'fusion-table', 'aria-label': `mean fusion attention of ${className(d)} per layer and adapter` }, h('thead', {}, head), h('tbody', {}, ...rows)),
  );
}

function csvRows(d: FusionAttentionData): unknown[][] {
  const out: unknown[][] = [];
  const emit = (name: string, m: (number | null)[][]) => m.forEach((row, y) => row.forEach((v, x) => out.push([name, d.layers[y], d.adapters[x], v])));
  emit('all', d.overall);
  d.classes.forEach((c, k) => emit(c, d.matrix[k]));
  return out;
}

function render(missing?: string): void {
  clear(app);
  app.setAttribute('aria-busy', 'false');
  if (!data) {
    app.append(h('header', {}, h('h1', { 'data-testid': 'title' }, 'Fusion attention')), h('p', { className: 'placeholder', 'data-testid': 'empty' }, missing ?? 'No fusion attention to show.'));
    return;
  }
  const d = data;
  if (ui.klass >= d.classes.length) ui.klass = -1;
  const examples = ui.klass >= 0 ? d.examples[ui.klass] : d.examples.reduce((a, b) => a + b, 0);
  const tokens = ui.klass >= 0 ? d.tokens[ui.klass] : d.tokens.reduce((a, b) => a + b, 0);
  const box = h('section', { className: 'chart-box square' });
  const canvas = h('canvas', { 'data-testid': 'fusion-chart', role: 'img' });
  box.append(canvas);
  const select = h(
    'select',
    {
      'aria-label': 'Dev class',
      'data-testid': 'class-select',
      onchange: (e: Event) => {
        ui.klass = Number((e.target as HTMLSelectElement).value);
        saveState('fusion', subject, ui);
        render();
      },
    },
    h('option', { value: '-1', selected: ui.klass === -1 }, 'All classes'),
    ...d.classes.map((c, k) => h('option', { value: String(k), selected: ui.klass === k }, `class ${c} (${d.examples[k] ?? 0} examples)`)),
  );
  app.append(
    h(
      'header',
      {},
      h('h1', { 'data-testid': 'title' }, `Fusion attention: ${d.run.name}`),
      h(
        'div',
        { className: 'toolbar', role: 'toolbar', 'aria-label': 'Heatmap options' },
        h('label', {}, 'Class', select),
        checkbox('Values in cells', 'show-values', ui.showValues, (on) => {
          ui.showValues = on;
          saveState('fusion', subject, ui);
          chart?.update('none');
        }),
        h('span', { className: 'spacer' }),
        h('button', { type: 'button', 'data-testid': 'export-png', onclick: () => chart && exportPng(chart, theme.background, `fusion-attention-${d.run.name}.png`) }, 'Export PNG'),
        h('button', { type: 'button', 'data-testid': 'export-csv', onclick: () => exportCsv(`fusion-attention-${d.run.name}.csv`, ['class', 'layer', 'adapter', 'attention'], csvRows(d)) }, 'Export CSV'),
      ),
    ),
    h(
      'p',
      { className: 'baseline', 'data-testid': 'summary' },
      `Where the fusion of ${d.run.name} (${d.run.task}) looks on ${d.split}: ${className(d)}, ${examples} examples, ${tokens} tokens. `,
      `${d.adapters.length} fused adapters over ${d.layers.length} layers; each row sums to 1.`,
    ),
    box,
    colourScale(),
    valuesTable(d),
  );
  buildChart(canvas, box, d);
}

connect('fusion', (msg: HostToWebview) => {
  if (msg.type === 'init' && msg.payload.view === 'fusion') {
    data = msg.payload.data;
    subject = msg.subject;
    saveState('fusion', subject, ui);
    render(msg.payload.missing);
  } else if (msg.type === 'exported' || msg.type === 'notice') {
    const el = h('p', { className: 'notice', role: 'status', 'data-testid': 'notice' }, msg.type === 'exported' ? `Exported to ${msg.file}` : msg.message);
    app.append(el);
    setTimeout(() => el.remove(), 6000);
  }
});
