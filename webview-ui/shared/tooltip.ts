/// <reference lib="dom" />
/**
 * Chart.js tooltips as an HTML element instead of canvas pixels: readable by screen readers and by tests,
 * themed by CSS. One element per chart, positioned over the hovered point.
 */
import type { Chart, TooltipModel } from 'chart.js';
import { h } from './dom';

export function htmlTooltip(container: HTMLElement, testId: string) {
  const el = h('div', { className: 'chart-tooltip', role: 'tooltip', 'data-testid': testId, 'aria-live': 'polite' });
  el.hidden = true;
  container.append(el);
  return (context: { chart: Chart; tooltip: TooltipModel<never> }) => {
    const { chart, tooltip } = context;
    if (tooltip.opacity === 0) {
      el.hidden = true;
      return;
    }
    while (el.firstChild) el.removeChild(el.firstChild);
    for (const line of tooltip.title ?? []) el.append(h('div', { className: 'tooltip-title' }, line));
    for (const item of tooltip.body ?? []) for (const line of item.lines) el.append(h('div', { className: 'tooltip-line' }, line));
    for (const line of tooltip.footer ?? []) el.append(h('div', { className: 'tooltip-footer' }, line));
    el.hidden = false;
    const canvas = chart.canvas;
    const left = canvas.offsetLeft + tooltip.caretX;
    const top = canvas.offsetTop + tooltip.caretY;
    // Keep it inside the chart: flip to the left of the point in the right half.
    const flip = tooltip.caretX > chart.width / 2;
    el.style.left = `${flip ? left - el.offsetWidth - 12 : left + 12}px`;
    el.style.top = `${Math.max(0, top - el.offsetHeight / 2)}px`;
  };
}
