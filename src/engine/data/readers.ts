/**
 * Reads task files (JSONL, CSV, TSV) into raw rows, each with the 1-based line it starts on, so that
 * every later complaint about a row can name the file and line. Turning rows into examples (fields,
 * labels, bad-row policy) is load.ts's job; this file only knows file formats.
 */
import * as fs from 'fs';
import * as path from 'path';
import { parse as parseCsv } from 'csv-parse/sync';
import { parseTree, type ParseError } from 'jsonc-parser';
import { UserInputError } from '../errors';

export type FieldValue = string | number | boolean | null;

export interface RawRow {
  /** 1-based line of the file on which the row starts. */
  line: number;
  fields: Record<string, FieldValue>;
  /** Set when the row could not be parsed (fields is then empty); load.ts decides whether to stop or skip. */
  error?: string;
}

export type FileFormat = 'jsonl' | 'csv' | 'tsv';

export interface ReadOptions {
  format?: 'auto' | FileFormat;
  /** CSV/TSV: first line is a header (default true); without one, fields are named "0", "1", ... */
  header?: boolean;
  /** How the file is named in messages (default: the path). Lets errors show the path as the config wrote it. */
  displayName?: string;
}

export interface ReadResult {
  rows: RawRow[];
  /** Column names from the header (CSV/TSV with a header), so a misspelt field can be caught once, not per row. */
  columns: string[] | null;
}

/** Picks the format from the option or, for 'auto', from the extension. */
export function detectFormat(file: string, format: ReadOptions['format'] = 'auto', displayName = file): FileFormat {
  if (format && format !== 'auto') return format;
  const ext = path.extname(file).toLowerCase();
  if (ext === '.jsonl' || ext === '.json' || ext === '.ndjson') return 'jsonl';
  if (ext === '.csv') return 'csv';
  if (ext === '.tsv') return 'tsv';
  throw new UserInputError(`cannot tell the format from the extension "${ext}"; set task.format to "jsonl", "csv" or "tsv"`, {
    file: displayName,
  });
}

export function readRows(file: string, opts: ReadOptions = {}): ReadResult {
  const name = opts.displayName ?? file;
  const format = detectFormat(file, opts.format, name);
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const what = code === 'ENOENT' ? 'file not found' : `cannot read file (${code ?? String(e)})`;
    throw new UserInputError(what, { file: name });
  }
  // A UTF-8 byte-order mark (Excel exports) would otherwise become part of the first column name.
  if (buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) buf = buf.subarray(3);
  const header = opts.header ?? true;
  if (format === 'jsonl') return { rows: readJsonl(buf.toString('utf8')), columns: null };
  if (format === 'csv') return readCsv(buf, header, name);
  return readTsv(buf.toString('utf8'), header, name);
}

function splitLines(text: string): string[] {
  // Accept \n and \r\n line ends alike.
  return text.split(/\r?\n/);
}

function toFields(obj: Record<string, unknown>): Record<string, FieldValue> {
  const fields: Record<string, FieldValue> = {};
  for (const [k, v] of Object.entries(obj)) {
    // Nested values are kept as their JSON text, so a wrong field choice shows up as odd text, not a crash.
    fields[k] = v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : JSON.stringify(v);
  }
  return fields;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readJsonl(text: string): RawRow[] {
  // A pretty-printed .json array is a common mistake for JSONL; read it rather than report every line as bad.
  if (text.trimStart().startsWith('[')) {
    const rows = readJsonArray(text);
    if (rows) return rows;
  }
  const rows: RawRow[] = [];
  splitLines(text).forEach((raw, i) => {
    if (raw.trim() === '') return;
    const line = i + 1;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      rows.push({ line, fields: {}, error: `unparseable JSON line (${(e as Error).message})` });
      return;
    }
    if (!isPlainObject(value)) {
      rows.push({ line, fields: {}, error: 'expected a JSON object on this line' });
      return;
    }
    rows.push({ line, fields: toFields(value) });
  });
  return rows;
}

/** A whole-file JSON array of objects; null when the text is not one (then it is read as JSONL). */
function readJsonArray(text: string): RawRow[] | null {
  const errors: ParseError[] = [];
  const root = parseTree(text, errors, { allowTrailingComma: false, disallowComments: true });
  if (!root || root.type !== 'array' || errors.length > 0) return null;
  const lineStarts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) lineStarts.push(i + 1);
  const lineOf = (offset: number): number => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
  const value = JSON.parse(text) as unknown[];
  return value.map((item, i) => {
    const line = lineOf(root.children![i].offset);
    return isPlainObject(item)
      ? { line, fields: toFields(item) }
      : { line, fields: {}, error: 'expected a JSON object as array element' };
  });
}

function namesFor(width: number): string[] {
  return Array.from({ length: width }, (_, i) => String(i));
}

/** Pairs a record with the column names; a different number of fields is a bad row, not a silent shift. */
function toRow(line: number, record: string[], columns: string[] | null): RawRow {
  const names = columns ?? namesFor(record.length);
  if (columns && record.length !== columns.length) {
    return { line, fields: {}, error: `has ${record.length} fields, the header has ${columns.length}` };
  }
  const fields: Record<string, FieldValue> = {};
  names.forEach((n, i) => (fields[n] = record[i]));
  return { line, fields };
}

function isBlankRecord(record: string[]): boolean {
  return record.every((f) => f.trim() === '');
}

function checkHeader(columns: string[], name: string): void {
  const seen = new Set<string>();
  for (const c of columns) {
    if (seen.has(c)) {
      throw new UserInputError(`duplicate column "${c}" in the header`, {
        file: name,
        line: 1,
      });
    }
    seen.add(c);
  }
}

function readCsv(buf: Buffer, header: boolean, name: string): ReadResult {
  // Line numbers come from byte offsets, not csv-parse's info.lines, which miscounts \r\n files and
  // reports the line a multi-line quoted record ends on; we want the line it starts on.
  const newlines: number[] = [];
  for (let i = 0; i < buf.length; i++) if (buf[i] === 10) newlines.push(i);
  const lineAt = (offset: number): number => {
    // 1 + number of newlines before offset.
    let lo = 0;
    let hi = newlines.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (newlines[mid] < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  };
  /** The first byte of a record that begins at or after `offset` (blank lines skipped). */
  const recordStart = (offset: number): number => {
    let o = offset;
    while (o < buf.length && (buf[o] === 10 || buf[o] === 13)) o++;
    return o;
  };

  // End offset (bytes) of each record, from the parser's context; the next record starts after it.
  const ends: number[] = [];
  let records: string[][];
  try {
    records = parseCsv(buf, {
      skip_empty_lines: true,
      // Rows with the wrong number of fields are reported per row by toRow, not as a fatal parse error.
      relax_column_count: true,
      // A quote inside an unquoted field is kept as text (like Python's csv), not a fatal error. The price: a
      // field that opens a quote and never closes it runs on into the rows below; strayQuote finds those.
      relax_quotes: true,
      on_record: (record: string[], context) => {
        ends.push(context.bytes);
        return record;
      },
    });
  } catch (e) {
    // Only structural errors reach here (an unclosed quote swallows the rest of the file): stop, naming where.
    const line = lineAt(recordStart(ends.length ? ends[ends.length - 1] : 0));
    const msg =
      (e as { code?: string }).code === 'CSV_QUOTE_NOT_CLOSED'
        ? 'unclosed quote in the record starting on this line'
        : `cannot parse CSV (${(e as Error).message})`;
    throw new UserInputError(msg, { file: name, line });
  }

  let columns: string[] | null = null;
  const rows: RawRow[] = [];
  for (let i = 0; i < records.length; i++) {
    const record = records[i];
    const begin = i === 0 ? 0 : ends[i - 1];
    const line = lineAt(recordStart(begin));
    if (isBlankRecord(record)) continue;
    if (header && columns === null) {
      columns = record.map((c) => c.trim());
      checkHeader(columns, name);
      continue;
    }
    const stray = strayQuote(record, buf.toString('utf8', begin, ends[i]));
    if (stray !== null) {
      const lastLine = lineAt(Math.max(0, ends[i] - 1));
      rows.push({
        line,
        fields: {},
        error: `unclosed quote: the field starting ${JSON.stringify(stray.slice(0, 30))} runs on to line ${lastLine}, taking in the rows between; close the quote (or double it, "")`,
      });
      continue;
    }
    rows.push(toRow(line, record, columns));
  }
  return { rows, columns };
}

/**
 * A field that spans lines without having been quoted: its opening quote was never closed where the field
 * should end, so (with relax_quotes) the parser read on into the next rows. A properly quoted field appears
 * in the record's raw text as `"` + the value with quotes doubled + `"`; a run-on field appears as itself.
 */
function strayQuote(record: string[], raw: string): string | null {
  for (const field of record) {
    if (!/[\r\n]/.test(field)) continue;
    if (!raw.includes(`"${field.replace(/"/g, '""')}"`)) return field;
  }
  return null;
}

function readTsv(text: string, header: boolean, name: string): ReadResult {
  // GLUE's TSVs contain stray double quotes that are part of the text, so no quote processing at all
  // (Python's csv.QUOTE_NONE): every tab separates, every line ends a record.
  let columns: string[] | null = null;
  const rows: RawRow[] = [];
  splitLines(text).forEach((raw, i) => {
    if (raw.trim() === '') return;
    const record = raw.split('\t');
    if (header && columns === null) {
      columns = record.map((c) => c.trim());
      checkHeader(columns, name);
      return;
    }
    rows.push(toRow(i + 1, record, columns));
  });
  return { rows, columns };
}
