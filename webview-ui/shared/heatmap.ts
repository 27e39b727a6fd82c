/// <reference lib="dom" />
/**
 * A grid heatmap on chart.js's matrix chart, as the ablation and fusion views draw theirs: one cell per value at
 * integer (column, row), rows top to bottom, a tick at every cell centre, each cell's value written in it when
 * the cell is big enough, an HTML tooltip, and the plot area published on the canvas (`data-chart-area`) so
 * tests and assistive tools can find a cell.
 */
import { Chart, LinearScale, Tooltip, type Plugin } from 'chart.js';
import { MatrixController, MatrixElement } from 'chartjs-chart-matrix';
import { htmlTooltip } from './tooltip';

Chart.register(MatrixController, MatrixElement, LinearScale, Tooltip);

export interface HeatCell {
  /** Column index. */
  x: number;
  /** Row index (row 0 at the top). */
  y: number;
  v: number;
}

export interface HeatmapSpec {
  label: string;
  cells: HeatCell[];
  columns: number;
  rows: number;
  color: (v: number) => string;
  /** Cell borders (the page background). */
  border: string;
  font: string;
  x: AxisSpec;
  y: AxisSpec;
  /** Whether to write values into the cells (read at every draw), and how. */
  showValues: () => boolean;
  formatValue: (v: number, cellWidth: number) => string;
  tooltip: { host: HTMLElement; title: (c: HeatCell) => string; lines: (c: HeatCell) => string[] };
  /** Called with the cell clicked, if any. */
  onCellClick?: (c: HeatCell) => void;
}

export interface AxisSpec {
  title: string;
  tick: (index: number) => string;
  autoSkip?: boolean;
  maxRotation?: number;
}

/** Publishes the plot area on the canvas. */
const publishGeometry: Plugin<'matrix'> = {
  id: 'publishGeometry',
  afterRender(c) {
    const a = c.chartArea;
    c.canvas.dataset.chartArea = [a.left, a.top, a.right, a.bottom].map((v) => v.toFixed(1)).join(',');
  },
};

export function heatmap(canvas: HTMLCanvasElement, spec: HeatmapSpec): Chart<'matrix', HeatCell[]> {
  const cellValues: Plugin<'matrix'> = {
    id: 'cellValues',
    afterDatasetsDraw(c) {
      if (!spec.showValues()) return;
      const ctx = c.ctx;
      ctx.save();
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.font = `11px ${spec.font}`;
      c.getDatasetMeta(0).data.forEach((el, k) => {
        const { width, height } = el as unknown as { width: number; height: number };
        if (width < 34 || height < 14) return;
        const { x, y } = (el as unknown as { getCenterPoint(final: boolean): { x: number; y: number } }).getCenterPoint(true);
        ctx.fillStyle = '#ffffff';
        ctx.fillText(spec.formatValue((c.data.datasets[0].data as HeatCell[])[k].v, width), x, y);
      });
      ctx.restore();
    },
  };
  // One tick per cell, at the cell centres (the axes run from -0.5 to n - 0.5, so built-in ticks miss them).
  const axis = (a: AxisSpec, n: number) => ({
    type: 'linear' as const,
    min: -0.5,
    max: n - 0.5,
    offset: false,
    ticks: { callback: (v: string | number) => a.tick(Number(v)), ...(a.autoSkip !== undefined ? { autoSkip: a.autoSkip } : {}), ...(a.maxRotation !== undefined ? { maxRotation: a.maxRotation } : {}) },
    afterBuildTicks: (scale: { ticks: { value: number }[] }) => {
      scale.ticks = Array.from({ length: n }, (_, i) => ({ value: i }));
    },
    grid: { display: false },
    title: { display: true, text: a.title },
  });
  return new Chart<'matrix', HeatCell[]>(canvas, {
    type: 'matrix',
    data: {
      datasets: [
        {
          label: spec.label,
          data: spec.cells,
          backgroundColor: (ctx) => {
            const c = ctx.raw as HeatCell | undefined;
            return c ? spec.color(c.v) : 'transparent';
          },
          borderColor: spec.border,
          borderWidth: 1,
          width: ({ chart: c }) => (c.chartArea ? c.chartArea.width / spec.columns - 1 : 0),
          height: ({ chart: c }) => (c.chartArea ? c.chartArea.height / spec.rows - 1 : 0),
        },
      ],
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      ...(spec.onCellClick
        ? {
            onClick: (_e: unknown, elements: { index: number }[], c: Chart) => {
              const cell = elements[0] && (c.data.datasets[0].data as HeatCell[])[elements[0].index];
              if (cell) spec.onCellClick!(cell);
            },
          }
        : {}),
      scales: { x: { ...axis(spec.x, spec.columns), position: 'top' }, y: { ...axis(spec.y, spec.rows), reverse: true } },
      plugins: {
        tooltip: {
          enabled: false,
          external: htmlTooltip(spec.tooltip.host, 'chart-tooltip'),
          callbacks: {
            title: (items) => {
              const c = items[0]?.raw as HeatCell | undefined;
              return c ? spec.tooltip.title(c) : '';
            },
            label: (item) => spec.tooltip.lines(item.raw as HeatCell),
          },
        },
      },
    },
    plugins: [cellValues, publishGeometry],
  });
}
