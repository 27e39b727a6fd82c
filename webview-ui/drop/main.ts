/// <reference lib="dom" />
/**
 * The AdapterDrop trade-off (Rücklé et al. 2021): with the adapters of the lowest n layers dropped, the dev
 * metric (left axis) and the inference throughput in tokens per second (right axis), for n = 0..L. The
 * baseline (every adapter, n = 0) is a dashed line on the metric's axis. Hover a point for its values.
 */
import { Chart, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip } from 'chart.js';
import type { DropData, HostToWebview, ViewSubject } from '../../src/protocol/webview';
import { clear, formatMetric, h } from '../shared/dom';
import { exportCsv, exportPng } from '../shared/exporting';
import { connect, savedState, saveState } from '../shared/host';
import { readTheme } from '../shared/theme';
import { htmlTooltip } from '../shared/tooltip';

Chart.register(LineController, LineElement, PointElement, LinearScale, Tooltip, Legend);

type Ui = Record<string, never>;

const saved = savedState<Ui>('drop');
let subject: ViewSubject = saved?.subject ?? { runDirs: [] };
let data: DropData | null = null;
let chart: Chart<'line', { x: number; y: number }[]> | undefined;
const theme = readTheme();
const app = document.getElementById('app')!;

const tps = (v: number) => (v >= 1e4 ? `${(v / 1e3).toFixed(1)}k` : v.toFixed(0));

function speedup(d: DropData, v: number): string {
  const base = d.points.find((p) => p.n === 0)?.tokensPerSecond;
  return base ? `${(v / base).toFixed(2)}x` : '';
}

function buildChart(canvas: HTMLCanvasElement, host: HTMLElement, d: DropData): void {
  chart?.destroy();
  Chart.defaults.color = theme.foreground;
  Chart.defaults.font.family = theme.font;
  const [metricColour, speedColour] = [theme.series[0], theme.series[1]];
  const maxN = Math.max(...d.points.map((p) => p.n));
  chart = new Chart<'line', { x: number; y: number }[]>(canvas, {
    type: 'line',
    data: {
      datasets: [
        {
          label: `dev ${d.metric}`,
          data: d.points.map((p) => ({ x: p.n, y: p.value })),
          borderColor: metricColour,
          backgroundColor: metricColour,
          yAxisID: 'yMetric',
          pointRadius: 5,
          pointHoverRadius: 7,
        },
        {
          label: 'tokens / s',
          data: d.points.map((p) => ({ x: p.n, y: p.tokensPerSecond })),
          borderColor: speedColour,
          backgroundColor: speedColour,
          yAxisID: 'ySpeed',
          pointRadius: 5,
          pointHoverRadius: 7,
          pointStyle: 'rectRot',
        },
        {
          label: `baseline ${d.metric} (every adapter)`,
          data: [
            { x: 0, y: d.baseline },
            { x: maxN, y: d.baseline },
          ],
          borderColor: theme.foreground,
          backgroundColor: theme.foreground,
          borderDash: [6, 4],
          borderWidth: 1,
          yAxisID: 'yMetric',
          pointRadius: 0,
          pointHoverRadius: 0,
          pointHitRadius: 0,
        },
      ],
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: 'index', intersect: false },
      scales: {
        x: {
          type: 'linear',
          min: 0,
          max: maxN,
          ticks: { stepSize: 1, precision: 0 },
          title: { display: true, text: 'adapters dropped from the lowest n layers' },
          grid: { color: theme.grid },
        },
        yMetric: {
          type: 'linear',
          position: 'left',
          title: { display: true, text: `dev ${d.metric}`, color: metricColour },
          grid: { color: theme.grid },
        },
        ySpeed: {
          type: 'linear',
          position: 'right',
          beginAtZero: true,
          title: { display: true, text: 'inference tokens / s', color: speedColour },
          grid: { drawOnChartArea: false },
        },
      },
      plugins: {
        legend: { display: true, position: 'bottom', labels: { usePointStyle: true } },
        tooltip: {
          enabled: false,
          external: htmlTooltip(host, 'chart-tooltip'),
          filter: (item) => item.datasetIndex < 2,
          callbacks: {
            title: (items) => {
              const n = items[0] ? (items[0].raw as { x: number }).x : 0;
              return n === 0 ? 'n = 0: every adapter' : `n = ${n}: adapters of layers 0–${n - 1} dropped`;
            },
            label: (item) => {
              const y = (item.raw as { y: number }).y;
              if (item.datasetIndex === 0) {
                const diff = y - d.baseline;
                return `${d.metric}: ${formatMetric(y)} (${diff >= 0 ? '+' : '−'}${formatMetric(Math.abs(diff))} from baseline)`;
              }
              return `tokens/s: ${tps(y)} (${speedup(d, y)} of n = 0)`;
            },
          },
        },
      },
    },
  });
  canvas.setAttribute(
    'aria-label',
    `AdapterDrop trade-off of ${d.run.name}: ` + d.points.map((p) => `n ${p.n}: ${d.metric} ${formatMetric(p.value)}, ${tps(p.tokensPerSecond)} tokens/s`).join('; '),
  );
}

function valuesTable(d: DropData): HTMLElement {
  return h(
    'table',
    { 'data-testid': 'drop-table', 'aria-label': 'AdapterDrop points' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col', className: 'num' }, 'n dropped'), h('th', { scope: 'col', className: 'num' }, `dev ${d.metric}`), h('th', { scope: 'col', className: 'num' }, 'tokens / s'), h('th', { scope: 'col', className: 'num' }, 'speed-up'))),
    h(
      'tbody',
      {},
      ...d.points.map((p) =>
        h(
          'tr',
          { 'data-testid': 'drop-row' },
          h('td', { className: 'num' }, String(p.n)),
          h('td', { className: 'num' }, formatMetric(p.value)),
          h('td', { className: 'num' }, tps(p.tokensPerSecond)),
          h('td', { className: 'num' }, speedup(d, p.tokensPerSecond)),
        ),
      ),
    ),
  );
}

function render(missing?: string): void {
  clear(app);
  app.setAttribute('aria-busy', 'false');
  if (!data) {
    app.append(h('header', {}, h('h1', { 'data-testid': 'title' }, 'AdapterDrop trade-off')), h('p', { className: 'placeholder', 'data-testid': 'empty' }, missing ?? 'No AdapterDrop measurement to show.'));
    return;
  }
  const d = data;
  const box = h('section', { className: 'chart-box' });
  const canvas = h('canvas', { 'data-testid': 'drop-chart', role: 'img' });
  box.append(canvas);
  app.append(
    h(
      'header',
      {},
      h('h1', { 'data-testid': 'title' }, `AdapterDrop trade-off: ${d.run.name}`),
      h(
        'div',
        { className: 'toolbar', role: 'toolbar', 'aria-label': 'Export' },
        h('span', { className: 'spacer' }),
        h('button', { type: 'button', 'data-testid': 'export-png', onclick: () => chart && exportPng(chart, theme.background, `adapterdrop-${d.run.name}.png`) }, 'Export PNG'),
        h('button', { type: 'button', 'data-testid': 'export-csv', onclick: () => exportCsv(`adapterdrop-${d.run.name}.csv`, ['n_dropped', d.metric, 'tokens_per_second'], d.points.map((p) => [p.n, p.value, p.tokensPerSecond])) }, 'Export CSV'),
      ),
    ),
    h(
      'p',
      { className: 'baseline', 'data-testid': 'baseline' },
      h('strong', {}, 'Baseline'),
      ` (every adapter): ${d.metric} ${formatMetric(d.baseline)} on ${d.split}${d.examples ? ` (${d.examples} examples)` : ''}. `,
      `${d.run.method} on ${d.run.task}, ${d.numLayers} layers${d.backend ? `, measured on ${d.backend}` : ''}${d.time ? ` at ${d.time.replace('T', ' ').slice(0, 19)}` : ''}.`,
    ),
    box,
    valuesTable(d),
  );
  buildChart(canvas, box, d);
}

connect('drop', (msg: HostToWebview) => {
  if (msg.type === 'init' && msg.payload.view === 'drop') {
    data = msg.payload.data;
    subject = msg.subject;
    saveState('drop', subject, {} as Ui);
    render(msg.payload.missing);
  } else if (msg.type === 'exported' || msg.type === 'notice') {
    const el = h('p', { className: 'notice', role: 'status', 'data-testid': 'notice' }, msg.type === 'exported' ? `Exported to ${msg.file}` : msg.message);
    app.append(el);
    setTimeout(() => el.remove(), 6000);
  }
});
