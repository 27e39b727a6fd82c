/// <reference lib="dom" />
/**
 * Colours from VS Code's theme (CSS variables the webview host defines), with fallbacks for a page shown
 * outside VS Code (the webview tests). Chart.js draws on a canvas, so it needs the resolved values.
 */
export function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

export interface Theme {
  foreground: string;
  background: string;
  grid: string;
  font: string;
  series: string[];
  bad: string;
  good: string;
}

export function readTheme(): Theme {
  const foreground = cssVar('--vscode-foreground', '#cccccc');
  return {
    foreground,
    background: cssVar('--vscode-editor-background', '#1e1e1e'),
    grid: cssVar('--vscode-editorWidget-border', 'rgba(128,128,128,0.25)'),
    font: cssVar('--vscode-font-family', 'system-ui, sans-serif'),
    series: [
      cssVar('--vscode-charts-blue', '#3794ff'),
      cssVar('--vscode-charts-orange', '#d18616'),
      cssVar('--vscode-charts-green', '#89d185'),
      cssVar('--vscode-charts-purple', '#b180d7'),
      cssVar('--vscode-charts-red', '#f14c4c'),
      cssVar('--vscode-charts-yellow', '#cca700'),
    ],
    bad: cssVar('--vscode-charts-red', '#f14c4c'),
    good: cssVar('--vscode-charts-blue', '#3794ff'),
  };
}

/** The i-th series colour; past the theme's six, evenly spaced hues. */
export function seriesColor(theme: Theme, i: number): string {
  if (i < theme.series.length) return theme.series[i];
  return `hsl(${Math.round((i * 137.508) % 360)}, 60%, 60%)`;
}

/** Parses #rgb, #rrggbb, rgb() or rgba() into [r, g, b]. */
export function parseColor(c: string): [number, number, number] {
  const s = c.trim();
  let m = /^#([0-9a-f]{3})$/i.exec(s);
  if (m) return [0, 1, 2].map((i) => parseInt(m![1][i] + m![1][i], 16)) as [number, number, number];
  m = /^#([0-9a-f]{6})([0-9a-f]{2})?$/i.exec(s);
  if (m) return [0, 2, 4].map((i) => parseInt(m![1].slice(i, i + 2), 16)) as [number, number, number];
  m = /^rgba?\(([^)]+)\)$/i.exec(s);
  if (m) {
    const [r, g, b] = m[1].split(/[\s,/]+/).map(Number);
    return [r || 0, g || 0, b || 0];
  }
  return [128, 128, 128];
}

export function withAlpha(c: string, a: number): string {
  const [r, g, b] = parseColor(c);
  return `rgba(${r}, ${g}, ${b}, ${a})`;
}

/** Linear interpolation between two colours, t in [0, 1]. */
export function mix(a: string, b: string, t: number): string {
  const ca = parseColor(a);
  const cb = parseColor(b);
  const u = Math.min(1, Math.max(0, t));
  const [r, g, bl] = ca.map((v, i) => Math.round(v + (cb[i] - v) * u));
  return `rgb(${r}, ${g}, ${bl})`;
}
