/// <reference lib="dom" />
/**
 * Loss curves: train loss per step (raw, faint, and smoothed) and the dev metric at each evaluation, for one or
 * more runs overlaid, one colour per run; live while the runs train. Smoothing is TensorBoard's debiased
 * exponential moving average; the loss axis can be logarithmic.
 */
import { Chart, Legend, LinearScale, LineController, LineElement, LogarithmicScale, PointElement, Tooltip, type ChartDataset } from 'chart.js';
import type { AppendMessage, CurvePoint, HostToWebview, LossCurvesData, RunCurves, ViewSubject } from '../../src/protocol/webview';
import { checkbox, clear, formatMetric, h } from '../shared/dom';
import { exportCsv, exportPng } from '../shared/exporting';
import { connect, savedState, saveState } from '../shared/host';
import { smooth } from '../shared/smoothing';
import { readTheme, seriesColor, withAlpha } from '../shared/theme';
import { htmlTooltip } from '../shared/tooltip';

Chart.register(LineController, LineElement, PointElement, LinearScale, LogarithmicScale, Tooltip, Legend);

interface Ui {
  smoothing: number;
  logScale: boolean;
  showDev: boolean;
  hidden: string[];
}

const saved = savedState<Ui>('lossCurves');
let ui: Ui = { smoothing: 0.6, logScale: false, showDev: true, hidden: [], ...saved?.ui };
let subject: ViewSubject = saved?.subject ?? { runDirs: [] };
let runs: RunCurves[] = [];
let chart: Chart<'line', { x: number; y: number }[]> | undefined;
const theme = readTheme();
const app = document.getElementById('app')!;

function persist(): void {
  saveState('lossCurves', subject, ui);
}

function runLabel(r: RunCurves): string {
  return r.run.name;
}

function datasets(): ChartDataset<'line', { x: number; y: number }[]>[] {
  const out: ChartDataset<'line', { x: number; y: number }[]>[] = [];
  runs.forEach((r, i) => {
    const color = seriesColor(theme, i);
    const hidden = ui.hidden.includes(r.run.runDir);
    const xs = r.train.map((p) => p.step);
    const ys = r.train.map((p) => p.value);
    if (ui.smoothing > 0) {
      out.push({
        label: `${runLabel(r)} (train loss, raw)`,
        data: xs.map((x, k) => ({ x, y: ys[k] })),
        borderColor: withAlpha(color, 0.25),
        backgroundColor: withAlpha(color, 0.25),
        borderWidth: 1,
        pointRadius: 0,
        yAxisID: 'loss',
        hidden,
      });
    }
    const sm = smooth(ys, ui.smoothing);
    out.push({
      label: `${runLabel(r)} — train loss`,
      data: xs.map((x, k) => ({ x, y: sm[k] })),
      borderColor: color,
      backgroundColor: color,
      borderWidth: 2,
      pointRadius: 0,
      yAxisID: 'loss',
      hidden,
    });
    if (ui.showDev) {
      out.push({
        label: `${runLabel(r)} — dev ${r.metric}`,
        data: r.dev.map((p) => ({ x: p.step, y: p.value })),
        borderColor: color,
        backgroundColor: color,
        borderDash: [6, 4],
        borderWidth: 2,
        pointRadius: 4,
        pointStyle: 'rectRot',
        yAxisID: 'dev',
        hidden,
      });
    }
  });
  return out;
}

function metricNames(): string {
  return [...new Set(runs.map((r) => r.metric))].join(' / ') || 'metric';
}

function buildChart(canvas: HTMLCanvasElement, tooltipHost: HTMLElement): void {
  chart?.destroy();
  Chart.defaults.color = theme.foreground;
  Chart.defaults.font.family = theme.font;
  Chart.defaults.borderColor = theme.grid;
  chart = new Chart<'line', { x: number; y: number }[]>(canvas, {
    type: 'line',
    data: { datasets: datasets() },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      parsing: false,
      normalized: true,
      interaction: { mode: 'nearest', intersect: false, axis: 'x' },
      scales: {
        x: { type: 'linear', title: { display: true, text: 'step' }, grid: { color: theme.grid } },
        loss: {
          type: ui.logScale ? 'logarithmic' : 'linear',
          position: 'left',
          title: { display: true, text: ui.logScale ? 'train loss (log scale)' : 'train loss' },
          grid: { color: theme.grid },
        },
        dev: {
          type: 'linear',
          position: 'right',
          display: ui.showDev,
          title: { display: true, text: `dev ${metricNames()}` },
          grid: { drawOnChartArea: false },
        },
      },
      plugins: {
        legend: { display: false, labels: { filter: (item) => !String(item.text).endsWith('(train loss, raw)') } },
        tooltip: {
          enabled: false,
          external: htmlTooltip(tooltipHost, 'chart-tooltip'),
          filter: (item) => !String(item.dataset.label).endsWith('(train loss, raw)'),
          callbacks: {
            title: (items) => (items.length ? `step ${items[0].parsed.x}` : ''),
            label: (item) => `${item.dataset.label}: ${formatMetric(item.parsed.y)}`,
          },
        },
      },
    },
  });
}

function refreshChart(): void {
  if (!chart) return;
  chart.data.datasets = datasets();
  const scales = chart.options.scales!;
  scales.loss = { ...scales.loss, type: ui.logScale ? 'logarithmic' : 'linear', title: { display: true, text: ui.logScale ? 'train loss (log scale)' : 'train loss' } } as never;
  (scales.dev as { display?: boolean }).display = ui.showDev;
  (scales.dev as { title?: unknown }).title = { display: true, text: `dev ${metricNames()}` };
  chart.update('none');
  describeChart();
}

function describeChart(): void {
  const canvas = chart?.canvas;
  if (!canvas) return;
  const parts = runs.map((r) => {
    const last = r.train[r.train.length - 1];
    const best = r.dev.length ? Math.max(...r.dev.map((p) => p.value)) : undefined;
    return `${r.run.name}: ${r.train.length} steps${last ? `, last loss ${formatMetric(last.value)}` : ''}${best !== undefined ? `, best dev ${r.metric} ${formatMetric(best)}` : ''}`;
  });
  canvas.setAttribute('aria-label', `Loss curves. ${parts.join('; ')}`);
}

function legend(): HTMLElement {
  const list = h('ul', { className: 'legend', 'data-testid': 'legend', 'aria-label': 'Runs' });
  runs.forEach((r, i) => {
    const color = seriesColor(theme, i);
    const hidden = ui.hidden.includes(r.run.runDir);
    const swatch = h('span', { className: 'swatch', 'aria-hidden': 'true' });
    swatch.style.background = color;
    const last = r.train[r.train.length - 1];
    const status = r.run.status === 'running' && last && r.totalSteps ? `running ${Math.round((100 * last.step) / r.totalSteps)}%` : r.run.status;
    const item = h(
      'li',
      { className: `legend-item${hidden ? ' hidden' : ''}`, 'data-testid': 'legend-item', 'data-run-dir': r.run.runDir },
      h(
        'button',
        {
          type: 'button',
          'aria-pressed': String(!hidden),
          title: hidden ? 'Show this run' : 'Hide this run',
          onclick: () => {
            ui.hidden = hidden ? ui.hidden.filter((d) => d !== r.run.runDir) : [...ui.hidden, r.run.runDir];
            persist();
            render();
          },
        },
        swatch,
        h('span', { className: 'legend-name' }, r.run.name),
      ),
      h('span', { className: 'legend-meta' }, `${r.run.method} · ${r.run.task} · `, h('span', { className: `status status-${r.run.status}`, 'data-testid': 'run-status' }, status)),
    );
    list.append(item);
  });
  return list;
}

function csvRows(): unknown[][] {
  const rows: unknown[][] = [];
  for (const r of runs) {
    const sm = smooth(
      r.train.map((p) => p.value),
      ui.smoothing,
    );
    r.train.forEach((p, k) => rows.push([r.run.name, r.run.method, r.run.task, 'train_loss', p.epoch, p.step, p.value, sm[k]]));
    for (const p of r.dev) rows.push([r.run.name, r.run.method, r.run.task, `dev_${r.metric}`, p.epoch, p.step, p.value, '']);
  }
  return rows;
}

function controls(): HTMLElement {
  const smoothingValue = h('output', { 'data-testid': 'smoothing-value' }, ui.smoothing.toFixed(2));
  const slider = h('input', {
    type: 'range',
    min: 0,
    max: 0.99,
    step: 0.01,
    value: ui.smoothing,
    'aria-label': 'Smoothing',
    'data-testid': 'smoothing',
    oninput: (e: Event) => {
      ui.smoothing = Number((e.target as HTMLInputElement).value);
      smoothingValue.textContent = ui.smoothing.toFixed(2);
      persist();
      refreshChart();
    },
  });
  const check = (label: string, testId: string, value: boolean, set: (v: boolean) => void) =>
    checkbox(label, testId, value, (on) => {
      set(on);
      persist();
      refreshChart();
    });
  return h(
    'div',
    { className: 'toolbar', role: 'toolbar', 'aria-label': 'Loss curve options' },
    h('label', { className: 'slider' }, 'Smoothing ', slider, smoothingValue),
    check('Log scale', 'log-scale', ui.logScale, (v) => (ui.logScale = v)),
    check('Dev metric', 'show-dev', ui.showDev, (v) => (ui.showDev = v)),
    h('span', { className: 'spacer' }),
    h('button', { type: 'button', 'data-testid': 'export-png', onclick: () => chart && exportWithLegend() }, 'Export PNG'),
    h('button', { type: 'button', 'data-testid': 'export-csv', onclick: () => exportCsv('loss-curves.csv', ['run', 'method', 'task', 'series', 'epoch', 'step', 'value', 'smoothed'], csvRows()) }, 'Export CSV'),
  );
}

/** The PNG carries its legend (on the page the legend is HTML, which a PNG of the canvas would lose). */
function exportWithLegend(): void {
  if (!chart) return;
  chart.options.plugins!.legend!.display = true;
  chart.update('none');
  exportPng(chart, theme.background, 'loss-curves.png');
  chart.options.plugins!.legend!.display = false;
  chart.update('none');
}

function render(): void {
  clear(app);
  app.setAttribute('aria-busy', 'false');
  const title = runs.length === 1 ? `Loss curves: ${runs[0].run.name}` : `Loss curves: ${runs.length} runs`;
  app.append(h('header', {}, h('h1', { 'data-testid': 'title' }, title), controls()));
  if (!runs.length) {
    app.append(h('p', { className: 'placeholder', 'data-testid': 'empty' }, 'No runs to plot. Pick runs in the Runs view and choose "Show Loss Curves".'));
    chart?.destroy();
    chart = undefined;
    return;
  }
  const body = h('section', { className: 'chart-box' });
  const canvas = h('canvas', { 'data-testid': 'loss-chart', role: 'img' });
  body.append(canvas);
  app.append(body, legend());
  if (runs.every((r) => !r.train.length && !r.dev.length)) app.append(h('p', { className: 'placeholder' }, 'No metrics yet: the curves appear as the runs train.'));
  buildChart(canvas, body);
  describeChart();
}

function append(msg: AppendMessage): void {
  const r = runs.find((x) => x.run.runDir === msg.runDir);
  if (!r) return;
  const add = (into: CurvePoint[], pts: CurvePoint[]) => {
    const lastStep = into.length ? into[into.length - 1].step : -Infinity;
    for (const p of pts) if (p.step > lastStep || into.length === 0) into.push(p);
  };
  add(r.train, msg.train);
  add(r.dev, msg.dev);
  if (msg.totalSteps) r.totalSteps = msg.totalSteps;
  const statusChanged = r.run.status !== msg.status;
  r.run.status = msg.status;
  if (statusChanged) render();
  else refreshChart();
}

function init(data: LossCurvesData, s: ViewSubject): void {
  runs = data.runs;
  subject = s;
  persist();
  render();
}

connect('lossCurves', (msg: HostToWebview) => {
  if (msg.type === 'init' && msg.payload.view === 'lossCurves') init(msg.payload.data, msg.subject);
  else if (msg.type === 'append') append(msg);
  else if (msg.type === 'exported') notice(`Exported to ${msg.file}`);
  else if (msg.type === 'notice') notice(msg.message);
});

function notice(text: string): void {
  const el = h('p', { className: 'notice', role: 'status', 'data-testid': 'notice' }, text);
  app.append(el);
  setTimeout(() => el.remove(), 6000);
}
