/** CSV text for the webviews' exports (kept free of the page's globals, so it can be tested on its own). */

/**
 * One CSV cell. Text that a spreadsheet would run as a formula (a run named `=HYPERLINK(...)`: cells starting
 * with =, +, -, @, tab or carriage return) gets a leading apostrophe, so it opens as the text it is; numbers
 * are written as numbers (a negative one is not text).
 */
export function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : String(v);
  if (typeof v !== 'number' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(header: string[], rows: unknown[][]): string {
  return [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\n') + '\n';
}
