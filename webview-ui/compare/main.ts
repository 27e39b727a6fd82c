/// <reference lib="dom" />
/**
 * Compare runs: a table (task, method, trainable %, best dev metric, time) that sorts and filters, and the
 * trade-off chart of Houlsby et al. (2019, figure 3): best dev metric against trained parameters on a log
 * axis, one colour per method. The chart shows the rows the table shows. A chosen dev metric marks the best
 * run per task (★; "Best run per task" shows only those, as Houlsby et al. picked the best on dev), and runs
 * that differ only by seed get their mean and spread in a table below.
 */
import { Chart, Legend, LinearScale, LogarithmicScale, PointElement, ScatterController, Tooltip, type ChartDataset } from 'chart.js';
import type { CompareData, CompareRow, HostToWebview, ViewSubject } from '../../src/protocol/webview';
import { checkbox, clear, formatCount, formatDuration, formatMetric, formatPercent, h } from '../shared/dom';
import { exportCsv, exportPng } from '../shared/exporting';
import { connect, post, savedState, saveState } from '../shared/host';
import { availableMetrics, bestPerTask, metricOf, seedGroups } from '../shared/runStats';
import { readTheme, seriesColor } from '../shared/theme';
import { htmlTooltip } from '../shared/tooltip';

Chart.register(ScatterController, PointElement, LinearScale, LogarithmicScale, Tooltip, Legend);

type SortKey = 'name' | 'task' | 'method' | 'trainablePercent' | 'trainableParams' | 'best' | 'chosen' | 'durationMs' | 'status' | 'createdAt';

interface Ui {
  sort: SortKey;
  descending: boolean;
  filter: string;
  task: string; // '' = every task
  /** The dev metric that picks the best run per task ('' = the most common one). */
  metric: string;
  /** Show only the best run of each task. */
  bestOnly: boolean;
}

interface Point {
  x: number;
  y: number;
  row: CompareRow;
}

const COLUMNS: { key: SortKey; label: string; numeric?: boolean }[] = [
  { key: 'name', label: 'Run' },
  { key: 'task', label: 'Task' },
  { key: 'method', label: 'Method' },
  { key: 'trainablePercent', label: 'Trainable %', numeric: true },
  { key: 'trainableParams', label: 'Trained params', numeric: true },
  { key: 'best', label: 'Best dev metric', numeric: true },
  { key: 'chosen', label: 'Chosen metric', numeric: true },
  { key: 'durationMs', label: 'Time', numeric: true },
  { key: 'status', label: 'Status' },
];

const saved = savedState<Ui>('compare');
let ui: Ui = { sort: 'best', descending: true, filter: '', task: '', metric: '', bestOnly: false, ...saved?.ui };
let subject: ViewSubject = saved?.subject ?? { runDirs: [] };
let rows: CompareRow[] = [];
let chart: Chart<'scatter', Point[]> | undefined;
const theme = readTheme();
const app = document.getElementById('app')!;

function persist(): void {
  saveState('compare', subject, ui);
}

function value(r: CompareRow, key: SortKey): string | number | null {
  switch (key) {
    case 'name':
    case 'task':
    case 'method':
    case 'status':
      return r.run[key];
    case 'createdAt':
      return r.createdAt;
    case 'chosen':
      return metricOf(r, chosenMetric());
    default:
      return r[key];
  }
}

function chosenMetric(): string {
  const metrics = availableMetrics(rows);
  return ui.metric && metrics.includes(ui.metric) ? ui.metric : (metrics[0] ?? '');
}

/** The rows the filters keep, before "best run per task". */
function filteredRows(): CompareRow[] {
  const q = ui.filter.trim().toLowerCase();
  return rows.filter((r) => (!ui.task || r.run.task === ui.task) && (!q || [r.run.name, r.run.task, r.run.method, r.run.status, r.metric ?? ''].some((s) => s.toLowerCase().includes(q))));
}

/** Run folders of the best run of each task (among the filtered rows) by the chosen metric. */
function bestDirs(): Set<string> {
  return new Set([...bestPerTask(filteredRows(), chosenMetric()).values()].map((r) => r.run.runDir));
}

function visibleRows(): CompareRow[] {
  const best = bestDirs();
  const out = filteredRows().filter((r) => !ui.bestOnly || best.has(r.run.runDir));
  const dir = ui.descending ? -1 : 1;
  return out.sort((a, b) => {
    const va = value(a, ui.sort);
    const vb = value(b, ui.sort);
    if (va === null && vb === null) return 0;
    if (va === null) return 1; // missing values last, whichever the direction
    if (vb === null) return -1;
    return (typeof va === 'number' && typeof vb === 'number' ? va - vb : String(va).localeCompare(String(vb))) * dir;
  });
}

function methods(): string[] {
  return [...new Set(rows.map((r) => r.run.method))].sort();
}

function datasets(visible: CompareRow[]): ChartDataset<'scatter', Point[]>[] {
  return methods().map((m, i) => ({
    label: m,
    data: visible.filter((r) => r.run.method === m && r.best !== null && r.trainableParams !== null && r.trainableParams > 0).map((r) => ({ x: r.trainableParams!, y: r.best!, row: r })),
    backgroundColor: seriesColor(theme, i),
    borderColor: seriesColor(theme, i),
    pointRadius: 6,
    pointHoverRadius: 8,
  }));
}

function buildChart(canvas: HTMLCanvasElement, host: HTMLElement, visible: CompareRow[]): void {
  chart?.destroy();
  Chart.defaults.color = theme.foreground;
  Chart.defaults.font.family = theme.font;
  const metricsShown = [...new Set(visible.map((r) => r.metric).filter(Boolean))].join(' / ');
  chart = new Chart<'scatter', Point[]>(canvas, {
    type: 'scatter',
    data: { datasets: datasets(visible) },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      scales: {
        x: {
          type: 'logarithmic',
          title: { display: true, text: 'trained parameters (log scale)' },
          grid: { color: theme.grid },
          // Label 1, 2 and 5 times a power of ten only: the log axis' other ticks would overlap.
          ticks: {
            callback: (v) => {
              const n = Number(v);
              const lead = n / Math.pow(10, Math.floor(Math.log10(n)));
              return [1, 2, 5].some((k) => Math.abs(lead - k) < 1e-6) ? formatCount(n) : '';
            },
          },
        },
        y: { type: 'linear', title: { display: true, text: `best dev ${metricsShown || 'metric'}` }, grid: { color: theme.grid } },
      },
      plugins: {
        legend: { display: true, position: 'bottom', labels: { usePointStyle: true } },
        tooltip: {
          enabled: false,
          external: htmlTooltip(host, 'chart-tooltip'),
          callbacks: {
            title: (items) => (items[0] ? (items[0].raw as Point).row.run.name : ''),
            label: (item) => {
              const r = (item.raw as Point).row;
              return [`${r.run.method} on ${r.run.task}`, `${r.metric}: ${formatMetric(r.best)}`, `trained: ${formatCount(r.trainableParams)} (${formatPercent(r.trainablePercent)})`];
            },
          },
        },
      },
    },
  });
  canvas.setAttribute('aria-label', `Trade-off chart: best dev metric against trained parameters, ${visible.length} runs, methods ${methods().join(', ')}`);
}

function table(visible: CompareRow[]): HTMLElement {
  const head = h(
    'tr',
    {},
    ...COLUMNS.map((c) =>
      h(
        'th',
        { scope: 'col', 'aria-sort': ui.sort === c.key ? (ui.descending ? 'descending' : 'ascending') : 'none', className: c.numeric ? 'num' : '' },
        h(
          'button',
          {
            type: 'button',
            'data-testid': `sort-${c.key}`,
            onclick: () => {
              if (ui.sort === c.key) ui.descending = !ui.descending;
              else {
                ui.sort = c.key;
                ui.descending = !!c.numeric;
              }
              persist();
              render();
            },
          },
          c.label,
          ui.sort === c.key ? (ui.descending ? ' ▼' : ' ▲') : '',
        ),
      ),
    ),
  );
  const best = bestDirs();
  const metric = chosenMetric();
  const body = visible.map((r) =>
    h(
      'tr',
      {
        'data-testid': 'compare-row',
        'data-run-dir': r.run.runDir,
        'data-best': best.has(r.run.runDir) ? 'true' : undefined,
        className: best.has(r.run.runDir) ? 'best' : '',
        tabindex: 0,
        title: 'Double-click: loss curves',
        ondblclick: () => post({ type: 'openRun', runDir: r.run.runDir, show: 'lossCurves' }),
      },
      // The ★ of the best run is drawn by CSS (tr.best), so the cell's text stays the run's name.
      h('td', { 'data-col': 'name', title: best.has(r.run.runDir) ? `best dev ${metric} of ${r.run.task}` : undefined, 'aria-description': best.has(r.run.runDir) ? `best dev ${metric} of ${r.run.task}` : undefined }, r.run.name),
      h('td', { 'data-col': 'task' }, r.run.task),
      h('td', { 'data-col': 'method' }, r.run.method),
      h('td', { 'data-col': 'trainablePercent', className: 'num' }, formatPercent(r.trainablePercent)),
      h('td', { 'data-col': 'trainableParams', className: 'num' }, formatCount(r.trainableParams)),
      h('td', { 'data-col': 'best', className: 'num' }, r.best !== null ? `${r.metric} ${formatMetric(r.best)}` : '—'),
      h('td', { 'data-col': 'chosen', className: 'num' }, formatMetric(metricOf(r, metric))),
      h('td', { 'data-col': 'durationMs', className: 'num' }, formatDuration(r.durationMs)),
      h('td', { 'data-col': 'status' }, h('span', { className: `status status-${r.run.status}` }, r.run.status)),
    ),
  );
  return h('table', { className: 'compare', 'data-testid': 'compare-table', 'aria-label': 'Runs' }, h('thead', {}, head), h('tbody', {}, ...body));
}

/** Mean and spread over seeds of the filtered runs that differ only by seed. */
function seedTable(): HTMLElement | null {
  const metric = chosenMetric();
  const groups = seedGroups(filteredRows(), metric);
  if (!groups.length) return null;
  const head = h(
    'tr',
    {},
    ...['Runs differing only by seed', 'Task', 'Seeds', `Mean dev ${metric}`, 'Std (n−1)', 'Min – max'].map((t, i) => h('th', { scope: 'col', className: i >= 3 ? 'num' : '' }, t)),
  );
  const body = groups.map((g) =>
    h(
      'tr',
      { 'data-testid': 'seed-row', 'data-n': g.n },
      h('td', { 'data-col': 'group' }, g.label),
      h('td', { 'data-col': 'task' }, g.task),
      h('td', { 'data-col': 'seeds' }, `${g.n}: ${g.seeds.map((s) => (s === null ? '?' : String(s))).join(', ')}`),
      h('td', { 'data-col': 'mean', className: 'num' }, formatMetric(g.mean)),
      h('td', { 'data-col': 'std', className: 'num' }, `± ${formatMetric(g.std)}`),
      h('td', { 'data-col': 'range', className: 'num' }, `${formatMetric(g.min)} – ${formatMetric(g.max)}`),
    ),
  );
  return h(
    'section',
    { className: 'seeds' },
    h('h2', {}, `Mean and spread over seeds (dev ${metric})`),
    h('table', { className: 'compare', 'data-testid': 'seed-table', 'aria-label': `Mean and spread of dev ${metric} over seeds` }, h('thead', {}, head), h('tbody', {}, ...body)),
  );
}

function csv(visible: CompareRow[]): void {
  exportCsv(
    'compare-runs.csv',
    ['run', 'task', 'method', 'trainable_percent', 'trained_params', 'base_params', 'metric', 'best_dev', 'duration_ms', 'status', 'created_at', 'run_dir'],
    visible.map((r) => [r.run.name, r.run.task, r.run.method, r.trainablePercent, r.trainableParams, r.baseParams, r.metric, r.best, r.durationMs, r.run.status, r.createdAt, r.run.runDir]),
  );
}

let filterFocused = false;

function render(): void {
  const visible = visibleRows();
  const tasks = [...new Set(rows.map((r) => r.run.task))].sort();
  clear(app);
  app.setAttribute('aria-busy', 'false');
  const filter = h('input', {
    type: 'search',
    placeholder: 'Filter runs (name, task, method, status)',
    'aria-label': 'Filter runs',
    'data-testid': 'filter',
    value: ui.filter,
    oninput: (e: Event) => {
      ui.filter = (e.target as HTMLInputElement).value;
      filterFocused = true;
      persist();
      render();
    },
  });
  const taskSelect = h(
    'select',
    {
      'aria-label': 'Task',
      'data-testid': 'task-filter',
      onchange: (e: Event) => {
        ui.task = (e.target as HTMLSelectElement).value;
        persist();
        render();
      },
    },
    h('option', { value: '' }, 'All tasks'),
    ...tasks.map((t) => h('option', { value: t, selected: t === ui.task }, t)),
  );
  const metric = chosenMetric();
  const metricSelect = h(
    'select',
    {
      'aria-label': 'Dev metric that picks the best run',
      'data-testid': 'metric-select',
      onchange: (e: Event) => {
        ui.metric = (e.target as HTMLSelectElement).value;
        persist();
        render();
      },
    },
    ...availableMetrics(rows).map((m) => h('option', { value: m, selected: m === metric }, `dev ${m}`)),
  );
  const bestOnly = checkbox('Best run per task', 'best-only', ui.bestOnly, (on) => {
    ui.bestOnly = on;
    persist();
    render();
  });
  app.append(
    h(
      'header',
      {},
      h('h1', { 'data-testid': 'title' }, `Compare runs (${visible.length} of ${rows.length})`),
      h(
        'div',
        { className: 'toolbar', role: 'toolbar', 'aria-label': 'Filters' },
        filter,
        taskSelect,
        h('label', {}, 'Best by', metricSelect),
        bestOnly,
        h('span', { className: 'spacer' }),
        h('button', { type: 'button', 'data-testid': 'export-png', onclick: () => chart && exportPng(chart, theme.background, 'tradeoff.png') }, 'Export PNG'),
        h('button', { type: 'button', 'data-testid': 'export-csv', onclick: () => csv(visible) }, 'Export CSV'),
      ),
    ),
  );
  if (!rows.length) {
    app.append(h('p', { className: 'placeholder', 'data-testid': 'empty' }, 'No runs yet. Train an adapter, then compare it here.'));
    return;
  }
  const box = h('section', { className: 'chart-box' });
  const canvas = h('canvas', { 'data-testid': 'tradeoff-chart', role: 'img' });
  box.append(canvas);
  if (tasks.length > 1 && !ui.task) app.append(h('p', { className: 'hint' }, 'Runs of several tasks are shown: pick a task to compare their metrics on one scale.'));
  app.append(box, table(visible));
  const seeds = seedTable();
  if (seeds) app.append(seeds);
  buildChart(canvas, box, visible);
  if (filterFocused) {
    filter.focus();
    filter.setSelectionRange(filter.value.length, filter.value.length);
    filterFocused = false;
  }
}

function init(data: CompareData, s: ViewSubject): void {
  rows = data.rows;
  subject = s;
  persist();
  render();
}

connect('compare', (msg: HostToWebview) => {
  if (msg.type === 'init' && msg.payload.view === 'compare') init(msg.payload.data, msg.subject);
  else if (msg.type === 'exported' || msg.type === 'notice') {
    const el = h('p', { className: 'notice', role: 'status', 'data-testid': 'notice' }, msg.type === 'exported' ? `Exported to ${msg.file}` : msg.message);
    app.append(el);
    setTimeout(() => el.remove(), 6000);
  }
});
