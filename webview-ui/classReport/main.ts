/// <reference lib="dom" />
/**
 * Per-class metrics of a classification run, text or images, on one evaluated split (dev or test): a table of
 * each class's precision, recall, F1 and support with the macro and support-weighted averages, and the confusion
 * matrix as a heatmap (rows the true class, columns the predicted class, counts in the cells; "Normalise by row"
 * shows each true class's share instead, recall on the diagonal). The numbers are eval-<split>.json's, written by
 * `adapter-lab eval`; until a split has one, the view offers to evaluate it. The extension sends a new `init`
 * whenever an eval file changes.
 *
 * Image runs have a second tab, Images: the split's images the evaluation kept (predictions-<split>.json and its
 * sprite; the misclassified first) with their true and predicted classes, filtered to all, the misclassified, a
 * true class and/or a predicted class; clicking a confusion-matrix cell shows that cell's images. A tab here rather
 * than a view of its own: it is the same run, split and evaluation, and a cell of the matrix is the grid's filter.
 */
import { Chart } from 'chart.js';
import type { ClassReportData, ClassReportTab, EvalSplit, HostToWebview, ImagePredictions, SplitClassReport, ViewSubject } from '../../src/protocol/webview';
import { checkbox, clear, formatMetric, h } from '../shared/dom';
import { exportCsv, exportPng } from '../shared/exporting';
import { connect, post, savedState, saveState } from '../shared/host';
import { heatmap, type HeatCell } from '../shared/heatmap';
import { mix, readTheme } from '../shared/theme';
import { classAverages, confusionCells, confusionCsvRows, scoreCsvRows, topConfusions } from './model';
import { cellFilter, describeGrid, filterItems, NO_FILTER, validFilter, type GridFilter } from './imageGrid';

type Ui = { split: EvalSplit; normalise: boolean; showValues: boolean; tab: ClassReportTab; grid: GridFilter };

const saved = savedState<Ui>('classReport');
const ui: Ui = { split: 'dev', normalise: false, showValues: true, tab: 'scores', grid: NO_FILTER, ...saved?.ui };
let subject: ViewSubject = saved?.subject ?? { runDirs: [] };
let data: ClassReportData | null = null;
let chart: Chart<'matrix', HeatCell[]> | undefined;
const theme = readTheme();
const app = document.getElementById('app')!;
const LOW = 'rgb(128, 128, 128)';

const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
const save = () => saveState('classReport', subject, ui);

/** The report shown: the chosen split's, else the first evaluated one's. */
function currentReport(d: ClassReportData): SplitClassReport | undefined {
  return d.splits.find((s) => s.split === ui.split) ?? d.splits[0];
}

function evaluateButton(d: ClassReportData, split: EvalSplit): HTMLButtonElement {
  return h(
    'button',
    {
      type: 'button',
      'data-testid': `evaluate-${split}`,
      onclick: (e: Event) => {
        (e.target as HTMLButtonElement).disabled = true;
        post({ type: 'evaluate', runDir: d.run.runDir, split });
      },
    },
    `Evaluate on ${split}`,
  );
}

/** What the view says before a split is evaluated: why there is no report, and how to get one. */
function unevaluatedNote(d: ClassReportData, empty: boolean): HTMLElement | null {
  if (!d.unevaluated.length) return null;
  const splits = d.unevaluated.join(' and ');
  if (!d.canEvaluate) {
    const why = d.run.status === 'done' ? 'it has no trained adapter' : `it is ${d.run.status}`;
    return h('p', { className: empty ? 'placeholder' : 'hint', 'data-testid': empty ? 'empty' : 'unevaluated' }, `${d.run.name} has no per-class evaluation${empty ? '' : ` on ${splits}`} yet, and cannot be evaluated now: ${why}.`);
  }
  return h(
    'p',
    { className: empty ? 'placeholder' : 'hint', 'data-testid': empty ? 'empty' : 'unevaluated' },
    empty
      ? `${d.run.name} has no per-class evaluation yet: the evaluation at the end of training keeps only the overall metrics. Evaluate it (adapter-lab eval) to see each class's scores and the confusion matrix. `
      : `No per-class evaluation on ${splits} yet. `,
    ...d.unevaluated.map((s) => evaluateButton(d, s)),
  );
}

/** Colour by count over the largest count (or by row share): zero grey, the most toward the theme's blue. */
function colourScale(max: number): (v: number) => string {
  return (v) => mix(LOW, theme.good, Math.sqrt(Math.min(1, Math.max(0, max > 0 ? v / max : 0))));
}

function buildChart(canvas: HTMLCanvasElement, host: HTMLElement, r: SplitClassReport): void {
  chart?.destroy();
  const k = r.labels.length;
  const cells = confusionCells(r.confusion, ui.normalise);
  const max = ui.normalise ? 1 : Math.max(0, ...cells.map((c) => c.count));
  Chart.defaults.color = theme.foreground;
  Chart.defaults.font.family = theme.font;
  canvas.dataset.rows = String(k);
  canvas.dataset.columns = String(k);
  canvas.dataset.normalised = String(ui.normalise);
  const byPosition = new Map(cells.map((c) => [`${c.y},${c.x}`, c]));
  chart = heatmap(canvas, {
    label: ui.normalise ? 'share of the true class' : 'examples',
    cells,
    columns: k,
    rows: k,
    color: colourScale(max),
    border: theme.background,
    font: theme.font,
    x: { title: 'predicted class', tick: (i) => r.labels[i] ?? '', autoSkip: false, maxRotation: 45 },
    y: { title: 'true class', tick: (i) => r.labels[i] ?? '', autoSkip: false },
    showValues: () => ui.showValues,
    onCellClick: r.images ? (c) => showCell(c.y, c.x) : undefined,
    formatValue: (v) => (ui.normalise ? `${Math.round(v * 100)}%` : String(v)),
    tooltip: {
      host,
      title: (c) => (c.x === c.y ? `${r.labels[c.y]}: predicted correctly` : `true ${r.labels[c.y]}, predicted ${r.labels[c.x]}`),
      lines: (c) => {
        const cell = byPosition.get(`${c.y},${c.x}`)!;
        const support = r.perClass[c.y]?.support ?? 0;
        return [`examples: ${cell.count}`, cell.rowShare === null ? `no ${r.labels[c.y]} examples in ${r.split}` : `${pct(cell.rowShare)} of the ${support} ${r.labels[c.y]} examples`];
      },
    },
  });
  canvas.setAttribute('aria-label', `Confusion matrix on ${r.split}, ${ui.normalise ? 'normalised by row' : 'counts'}: rows the true class, columns the predicted class, classes ${r.labels.join(', ')}`);
}

function scoreTable(r: SplitClassReport): HTMLElement {
  const avg = classAverages(r);
  const num = (v: number) => h('td', { className: 'num' }, formatMetric(v));
  const head = h(
    'tr',
    {},
    h('th', { scope: 'col' }, 'class'),
    ...['precision', 'recall', 'F1', 'support', 'predicted'].map((c) => h('th', { scope: 'col', className: 'num' }, c)),
  );
  const rows = r.perClass.map((c) =>
    h('tr', { 'data-testid': 'class-row', 'data-class': c.label }, h('th', { scope: 'row' }, c.label), num(c.precision), num(c.recall), num(c.f1), h('td', { className: 'num' }, String(c.support)), h('td', { className: 'num' }, String(c.predicted))),
  );
  const average = (name: string, testId: string, a: { precision: number; recall: number; f1: number; support: number }, title: string) =>
    h('tr', { className: 'average', 'data-testid': testId, title }, h('th', { scope: 'row' }, name), num(a.precision), num(a.recall), num(a.f1), h('td', { className: 'num' }, String(a.support)), h('td', {}, ''));
  return h(
    'table',
    { 'data-testid': 'class-table', 'aria-label': `precision, recall, F1 and support of each class on ${r.split}` },
    h('thead', {}, head),
    h(
      'tbody',
      {},
      ...rows,
      average('macro avg', 'macro-row', avg.macro, `unweighted mean over the ${avg.macroClasses} classes that occur in the labels or the predictions`),
      average('weighted avg', 'weighted-row', avg.weighted, 'mean weighted by each class\'s support'),
      h('tr', { className: 'average', 'data-testid': 'accuracy-row' }, h('th', { scope: 'row' }, 'accuracy'), h('td', {}, ''), h('td', {}, ''), num(avg.accuracy), h('td', { className: 'num' }, String(avg.macro.support)), h('td', {}, '')),
    ),
  );
}

/** The matrix as a table too: the canvas is invisible to screen readers. */
function confusionTable(r: SplitClassReport): HTMLElement {
  const cells = confusionCells(r.confusion, ui.normalise);
  const head = h('tr', {}, h('th', { scope: 'col' }, 'true \\ predicted'), ...r.labels.map((l) => h('th', { scope: 'col' }, l)));
  const rows = r.confusion.map((row, t) =>
    h(
      'tr',
      {},
      h('th', { scope: 'row' }, r.labels[t]),
      ...row.map((_, p) => {
        const c = cells[t * r.labels.length + p];
        const value = ui.normalise ? (c.rowShare === null ? '—' : pct(c.rowShare)) : String(c.count);
        if (!r.images) return h('td', { 'data-cell': `${t},${p}` }, value);
        return h('td', { 'data-cell': `${t},${p}` }, h('button', { type: 'button', className: 'link', title: `Show the images of true ${r.labels[t]}, predicted ${r.labels[p]}`, onclick: () => showCell(t, p) }, value));
      }),
    ),
  );
  return h(
    'details',
    { className: 'values' },
    h('summary', {}, 'Values'),
    h('table', { 'data-testid': 'confusion-table', 'aria-label': `confusion matrix on ${r.split}: rows the true class, columns the predicted class` }, h('thead', {}, head), h('tbody', {}, ...rows)),
  );
}

function summary(d: ClassReportData, r: SplitClassReport): HTMLElement {
  const when = r.time ? ` Evaluated ${new Date(r.time).toLocaleString()}.` : '';
  const top = topConfusions(r, 3);
  const confused = top.length ? ` Most often confused: ${top.map((c) => `${c.trueLabel} as ${c.predictedLabel} (${c.count}, ${pct(c.rowShare)})`).join('; ')}.` : ' No confusions.';
  const acc = r.metrics.accuracy ?? classAverages(r).accuracy;
  const macroF1 = r.metrics.macroF1;
  return h(
    'p',
    { className: 'baseline', 'data-testid': 'summary' },
    `${d.run.method} on ${d.run.task} (${d.inputs}, ${r.labels.length} classes), ${r.split}: ${r.examples} examples, accuracy ${formatMetric(acc)}${macroF1 !== undefined ? `, macro F1 ${formatMetric(macroF1)}` : ''}.${when}${confused}`,
  );
}

function render(missing?: string): void {
  clear(app);
  app.setAttribute('aria-busy', 'false');
  chart?.destroy();
  chart = undefined;
  if (!data) {
    app.append(h('header', {}, h('h1', { 'data-testid': 'title' }, 'Per-class metrics')), h('p', { className: 'placeholder', 'data-testid': 'empty' }, missing ?? 'No run to show.'));
    return;
  }
  const d = data;
  const r = currentReport(d);
  if (!r) {
    app.append(h('header', {}, h('h1', { 'data-testid': 'title' }, `Per-class metrics: ${d.run.name}`)), unevaluatedNote(d, true) ?? h('p', { className: 'placeholder', 'data-testid': 'empty' }, `${d.run.name}'s task has no split to evaluate.`));
    return;
  }
  const split = h(
    'select',
    {
      'aria-label': 'Evaluated split',
      'data-testid': 'split-select',
      onchange: (e: Event) => {
        ui.split = (e.target as HTMLSelectElement).value as EvalSplit;
        save();
        render();
      },
    },
    ...d.splits.map((s) => h('option', { value: s.split, selected: s.split === r.split }, `${s.split} (${s.examples} examples)`)),
  );
  const box = h('section', { className: 'chart-box square' });
  const canvas = h('canvas', { 'data-testid': 'confusion-chart', role: 'img' });
  box.append(canvas);
  app.append(
    h(
      'header',
      {},
      h('h1', { 'data-testid': 'title' }, `Per-class metrics: ${d.run.name}`),
      h(
        'div',
        { className: 'toolbar', role: 'toolbar', 'aria-label': 'Per-class metrics options' },
        h('label', {}, 'Split', split),
        checkbox('Normalise by row', 'normalise', ui.normalise, (on) => {
          ui.normalise = on;
          save();
          render();
        }),
        checkbox('Values in cells', 'show-values', ui.showValues, (on) => {
          ui.showValues = on;
          save();
          chart?.update('none');
        }),
        h('span', { className: 'spacer' }),
        h('button', { type: 'button', 'data-testid': 'export-png', onclick: () => chart && exportPng(chart, theme.background, `confusion-${d.run.name}-${r.split}.png`) }, 'Export PNG'),
        h('button', { type: 'button', 'data-testid': 'export-csv', onclick: () => exportCsv(`per-class-${d.run.name}-${r.split}.csv`, ['class', 'precision', 'recall', 'f1', 'support', 'predicted'], scoreCsvRows(r)) }, 'Export CSV'),
        h('button', { type: 'button', 'data-testid': 'export-confusion-csv', onclick: () => exportCsv(`confusion-${d.run.name}-${r.split}.csv`, ['true_class', 'predicted_class', 'count', 'row_share'], confusionCsvRows(r)) }, 'Export Matrix CSV'),
      ),
    ),
    summary(d, r),
  );
  const note = unevaluatedNote(d, false);
  if (note) app.append(note);
  const tab = d.inputs === 'images' ? ui.tab : 'scores';
  if (d.inputs === 'images') app.append(tabBar(tab));
  if (tab === 'images') {
    app.append(imagesTab(d, r));
    return;
  }
  app.append(
    scoreTable(r),
    h('h2', { className: 'section' }, `Confusion matrix (${r.split}${ui.normalise ? ', normalised by row' : ''})`),
    ...(r.images ? [h('p', { className: 'hint' }, 'Click a cell to see its images.')] : []),
    box,
    confusionTable(r),
  );
  buildChart(canvas, box, r);
}

/** Image runs: the tabs Scores (the table and the matrix) and Images (the prediction grid). */
function tabBar(current: ClassReportTab): HTMLElement {
  const tab = (id: ClassReportTab, label: string) =>
    h(
      'button',
      {
        type: 'button',
        role: 'tab',
        className: id === current ? 'tab selected' : 'tab',
        'aria-selected': String(id === current),
        'data-testid': `tab-${id}`,
        onclick: () => {
          ui.tab = id;
          save();
          render();
        },
      },
      label,
    );
  return h('div', { className: 'tabs', role: 'tablist', 'aria-label': 'Per-class metrics tabs' }, tab('scores', 'Scores and confusion matrix'), tab('images', 'Images'));
}

/** A confusion-matrix cell clicked: the Images tab, filtered to that cell. */
function showCell(trueClass: number, predictedClass: number): void {
  ui.tab = 'images';
  ui.grid = cellFilter(trueClass, predictedClass);
  save();
  render();
}

function imagesTab(d: ClassReportData, r: SplitClassReport): HTMLElement {
  const section = h('section', { className: 'images', 'data-testid': 'images-tab' });
  const p = r.images;
  if (!p) {
    section.append(
      h(
        'p',
        { className: 'placeholder', 'data-testid': 'no-images' },
        r.imagesProblem ?? `${d.run.name}'s evaluation on ${r.split} kept no images (it was evaluated before Adapter Lab kept them). Evaluate it again to see them. `,
        ...(!r.imagesProblem && d.canEvaluate ? [evaluateButton(d, r.split)] : []),
      ),
    );
    return section;
  }
  const f = validFilter(ui.grid, p.labels);
  const setFilter = (next: Partial<GridFilter>) => {
    ui.grid = { ...f, ...next };
    save();
    render();
  };
  const classSelect = (testId: string, label: string, value: number | null, onPick: (v: number | null) => void) =>
    h(
      'label',
      {},
      label,
      h(
        'select',
        { 'data-testid': testId, onchange: (e: Event) => onPick((e.target as HTMLSelectElement).value === '' ? null : Number((e.target as HTMLSelectElement).value)) },
        h('option', { value: '', selected: value === null }, 'any'),
        ...p.labels.map((l, i) => h('option', { value: String(i), selected: value === i }, l)),
      ),
    );
  const shown = filterItems(p.items, f);
  section.append(
    h(
      'div',
      { className: 'toolbar', role: 'toolbar', 'aria-label': 'Image filters' },
      h(
        'label',
        {},
        'Show',
        h(
          'select',
          { 'data-testid': 'grid-show', onchange: (e: Event) => setFilter({ show: (e.target as HTMLSelectElement).value as GridFilter['show'] }) },
          h('option', { value: 'all', selected: f.show === 'all' }, 'all'),
          h('option', { value: 'misclassified', selected: f.show === 'misclassified' }, 'misclassified'),
        ),
      ),
      classSelect('grid-true', 'True class', f.trueClass, (v) => setFilter({ trueClass: v })),
      classSelect('grid-predicted', 'Predicted class', f.predictedClass, (v) => setFilter({ predictedClass: v })),
      h('button', { type: 'button', 'data-testid': 'grid-clear', disabled: f.show === 'all' && f.trueClass === null && f.predictedClass === null, onclick: () => setFilter(NO_FILTER) }, 'Clear filters'),
    ),
    h('p', { className: 'baseline', 'data-testid': 'grid-summary' }, describeGrid(p, f, shown.length, r.split)),
  );
  if (!shown.length) {
    section.append(h('p', { className: 'placeholder', 'data-testid': 'grid-empty' }, 'No image matches these filters.'));
    return section;
  }
  const grid = h('div', { className: 'image-grid', 'data-testid': 'image-grid', role: 'list' });
  const canvases: { canvas: HTMLCanvasElement; tile: number }[] = [];
  for (const { item, tile } of shown) {
    const canvas = h('canvas', { width: p.tile.width, height: p.tile.height, 'aria-hidden': 'true' });
    canvases.push({ canvas, tile });
    const wrong = item.true !== item.predicted;
    const confidence = `${Math.round(item.confidence * 100)}%`;
    grid.append(
      h(
        'figure',
        {
          className: wrong ? 'tile wrong' : 'tile',
          role: 'listitem',
          'data-testid': 'grid-tile',
          'data-index': String(item.index),
          'data-true': p.labels[item.true],
          'data-predicted': p.labels[item.predicted],
          title: `${item.source}\n${r.split} example ${item.index}: true ${p.labels[item.true]}, predicted ${p.labels[item.predicted]} (${confidence})`,
          'aria-label': `example ${item.index}: true ${p.labels[item.true]}, predicted ${p.labels[item.predicted]}, ${confidence}`,
        },
        canvas,
        h(
          'figcaption',
          {},
          h('span', { className: 'predicted', 'data-testid': 'tile-predicted' }, `${wrong ? '✗' : '✓'} ${p.labels[item.predicted]} ${confidence}`),
          wrong ? h('span', { className: 'true', 'data-testid': 'tile-true' }, `true ${p.labels[item.true]}`) : null,
        ),
      ),
    );
  }
  section.append(grid);
  drawTiles(p, canvases);
  return section;
}

/** Draws each tile from the sprite (decoded once per sprite); the canvas's data-drawn says it is done. */
let sprite: { url: string; image: HTMLImageElement; ready: Promise<void> } | undefined;
function drawTiles(p: ImagePredictions, canvases: { canvas: HTMLCanvasElement; tile: number }[]): void {
  if (sprite?.url !== p.spriteUrl) {
    const image = new Image();
    const ready = new Promise<void>((resolve, reject) => {
      image.onload = () => resolve();
      image.onerror = () => reject(new Error('the sprite of the image grid could not be decoded'));
    });
    image.src = p.spriteUrl;
    sprite = { url: p.spriteUrl, image, ready };
  }
  const { image, ready } = sprite;
  const { width, height, columns } = p.tile;
  ready.then(
    () => {
      for (const { canvas, tile } of canvases) {
        const ctx = canvas.getContext('2d')!;
        ctx.drawImage(image, (tile % columns) * width, Math.floor(tile / columns) * height, width, height, 0, 0, width, height);
        canvas.dataset.drawn = 'true';
      }
    },
    (err: Error) => app.append(h('p', { className: 'notice', role: 'status', 'data-testid': 'notice' }, err.message)),
  );
}

connect('classReport', (msg: HostToWebview) => {
  if (msg.type === 'init' && msg.payload.view === 'classReport') {
    data = msg.payload.data;
    if (msg.payload.tab) ui.tab = msg.payload.tab;
    subject = msg.subject;
    save();
    render(msg.payload.missing);
  } else if (msg.type === 'exported' || msg.type === 'notice') {
    const el = h('p', { className: 'notice', role: 'status', 'data-testid': 'notice' }, msg.type === 'exported' ? `Exported to ${msg.file}` : msg.message);
    app.append(el);
    setTimeout(() => el.remove(), 6000);
  }
});
