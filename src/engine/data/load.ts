/**
 * Turns a task's files into labelled examples: picks the text/pair/label fields, maps class names to
 * indices, checks every row, and splits dev/test off train with a fixed seed when the task has no such files.
 *
 * Bad rows are collected over all the task's files, not stopped at the first: without `skipBadRows` the load
 * fails listing every one (file:line: reason); with it they are skipped and listed, unless skipping would
 * remove more than {@link MAX_SKIPPED_FRACTION} of a file's rows (then the load fails, saying so). Dev/test rows
 * whose class never occurs in train are told apart from bad rows: the fix is in the training file.
 */
import * as path from 'path';
import type { DataSource, TaskConfig } from '../config/types';
import { UserInputError, locate } from '../errors';
import { Rng } from '../util/random';
import { readRows, type FieldValue, type RawRow } from './readers';
import type { Example, SkippedRow, TaskData } from './types';

/**
 * The most `skipBadRows` may drop from one file (train, dev or test): a quarter of its rows. Past it, the
 * data is more wrong than noisy (a shifted column, the wrong file, a train file missing classes), and a run
 * on what is left would measure something else.
 */
export const MAX_SKIPPED_FRACTION = 0.25;

/** How many rows a message lists before it says "and N more". */
export const ROWS_LISTED = 20;

/** Rows listed as `file:line: reason`, the first `limit` of them and a count of the rest. */
export function describeRows(rows: SkippedRow[], limit = ROWS_LISTED): string[] {
  const lines = rows.slice(0, limit).map((r) => locate(r.reason, { file: r.file, line: r.line }));
  if (rows.length > limit) lines.push(`... and ${rows.length - limit} more (${rows.length} in all)`);
  return lines;
}

/** "3 bad rows and 2 rows whose class is not seen in train". */
export function countRows(rows: SkippedRow[]): string {
  const bad = rows.filter((r) => r.kind === 'bad row').length;
  const unseen = rows.length - bad;
  const parts: string[] = [];
  if (bad) parts.push(`${bad} bad row${bad === 1 ? '' : 's'}`);
  if (unseen) parts.push(`${unseen} row${unseen === 1 ? '' : 's'} whose class is not seen in train`);
  return parts.join(' and ') || 'no rows';
}

/** The most skipped rows run.json keeps (its `skippedRows` has the full count). */
export const SKIPPED_ROWS_KEPT = 1000;

/** The log's account of skipped rows: how many of each kind, then each as file:line: reason. */
export function skippedReport(rows: SkippedRow[]): string {
  return [`skipped ${countRows(rows)} (task.skipBadRows):`, ...describeRows(rows).map((l) => `  ${l}`)].join('\n');
}

/**
 * Rows that stop a load, every one of them (the message lists the first {@link ROWS_LISTED}). A single bad row
 * reads `file:line: reason`, as any located error.
 */
export class DataError extends UserInputError {
  constructor(
    readonly rows: SkippedRow[],
    headline?: string,
  ) {
    const first = rows[0];
    const location = first ? { file: first.file, line: first.line } : undefined;
    const single = !headline && rows.length === 1;
    super(single ? first.reason : [headline ?? `${countRows(rows)}:`, ...describeRows(rows)].join('\n'), location, {
      locatedInDetail: !single,
    });
    this.name = 'DataError';
  }

  /** The rows as data for --json and run.json: the first {@link SKIPPED_ROWS_KEPT}, and how many in all. */
  rowsAsData(): { rows: SkippedRow[]; rowCount: number } {
    return { rows: this.rows.slice(0, SKIPPED_ROWS_KEPT), rowCount: this.rows.length };
  }
}

/** A row that passed the text checks; its label is still raw until the class list is known. */
interface PendingRow {
  line: number;
  text: string;
  textPair?: string;
  rawLabel: FieldValue;
}

class BadRow extends Error {
  constructor(
    readonly line: number,
    readonly reason: string,
    readonly field?: string,
    readonly kind: SkippedRow['kind'] = 'bad row',
  ) {
    super(reason);
  }
}

/** Every row that could not become an example, and how many rows each file had. */
class RowProblems {
  readonly rows: SkippedRow[] = [];
  private readonly seen = new Set<string>();
  private readonly totals = new Map<string, number>();

  /** A file read twice (the same file as train and dev) reports each of its rows once. */
  add(file: string, bad: BadRow): void {
    const key = `${file}\n${bad.line}\n${bad.reason}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.rows.push({ file, line: bad.line, reason: bad.reason, kind: bad.kind });
  }

  countRows(file: string, n: number): void {
    this.totals.set(file, n);
  }

  /** In file order (train, dev, test), then by line. */
  sorted(): SkippedRow[] {
    const order = [...this.totals.keys()];
    return [...this.rows].sort((a, b) => order.indexOf(a.file) - order.indexOf(b.file) || a.line - b.line);
  }

  inFile(file: string): number {
    return this.rows.filter((r) => r.file === file).length;
  }

  /** Without skipBadRows: fails listing every problem. With it: fails when a file loses too many rows. */
  settle(skip: boolean): void {
    if (this.rows.length === 0) return;
    const rows = this.sorted();
    if (!skip) {
      const unseen = rows.some((r) => r.kind === 'class not seen in train');
      const hints = [
        ...(rows.some((r) => r.kind === 'bad row') ? ['fix them, or set task.skipBadRows to skip them'] : []),
        ...(unseen ? ['a class not seen in train cannot be learnt: add examples of it to train, or fix the label'] : []),
      ];
      // A single bad row reads as any located error; a class not seen in train always says what that means.
      throw new DataError(rows, rows.length === 1 && !unseen ? undefined : `${countRows(rows)} (${hints.join('; ')}):`);
    }
    for (const [file, total] of this.totals) {
      const skipped = this.inFile(file);
      if (skipped > MAX_SKIPPED_FRACTION * total) {
        const inFile = rows.filter((r) => r.file === file);
        throw new DataError(
          inFile,
          `${file}: task.skipBadRows would skip ${skipped} of its ${total} rows (${countRows(inFile)}), more than ` +
            `${MAX_SKIPPED_FRACTION * 100}%: the run refuses to start on what is left. The rows:`,
        );
      }
    }
  }
}

function isMissing(v: FieldValue | undefined): v is null | undefined {
  return v === undefined || v === null;
}

function textOf(row: RawRow, field: string, what: string): string {
  const v = row.fields[field];
  if (isMissing(v)) throw new BadRow(row.line, `missing ${what} in field "${field}"`, field);
  const s = typeof v === 'string' ? v : String(v);
  if (s.trim() === '') throw new BadRow(row.line, `empty ${what} in field "${field}"`, field);
  return s;
}

function pendingRow(row: RawRow, task: TaskConfig): PendingRow {
  if (row.error) throw new BadRow(row.line, row.error);
  const text = textOf(row, task.textField, 'text');
  const textPair = task.textPairField ? textOf(row, task.textPairField, 'pair text') : undefined;
  const rawLabel = row.fields[task.labelField];
  const labelText = isMissing(rawLabel) ? '' : String(rawLabel).trim();
  if (labelText === '') {
    const what = task.type === 'regression' ? 'regression target' : 'label';
    throw new BadRow(row.line, `missing ${what} in field "${task.labelField}"`, task.labelField);
  }
  return { line: row.line, text, textPair, rawLabel: rawLabel ?? null };
}

function labelKey(v: FieldValue): string {
  return String(v).trim();
}

function isNumeric(s: string): boolean {
  return s.trim() !== '' && Number.isFinite(Number(s));
}

/** Class names from the training file: numeric labels (GLUE's "0","1") in numeric order, else sorted as text. */
export function inferLabels(values: string[]): string[] {
  const distinct = [...new Set(values)];
  if (distinct.length > 0 && distinct.every(isNumeric)) {
    return distinct.sort((a, b) => Number(a) - Number(b) || (a < b ? -1 : a > b ? 1 : 0));
  }
  return distinct.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Maps a raw label to a class index: by name, or (when the class names are not numbers) by index. */
function classIndexer(labels: string[], field: string, explicit: boolean): (line: number, v: FieldValue) => number {
  const byName = new Map(labels.map((l, i) => [l, i]));
  // With task.labels like ["negative","positive"], a file holding 0/1 means indices; with numeric names
  // (["1".."5"] star ratings) a number is a name, never an index. Names inferred from train never take
  // indices: a dev file with 0/1 against a train file with names is more likely a mistake.
  const numbersAreIndices = explicit && !labels.some(isNumeric);
  const known = labels.length > 20 ? `${labels.slice(0, 20).join(', ')}, ... (${labels.length} in all)` : labels.join(', ');
  return (line, v) => {
    const key = labelKey(v);
    const hit = byName.get(key);
    if (hit !== undefined) return hit;
    if (numbersAreIndices && /^\d+$/.test(key) && Number(key) < labels.length) return Number(key);
    // Inferred classes are train's own, so a miss is a dev/test row whose class train never has.
    if (!explicit) {
      throw new BadRow(line, `class "${key}" in field "${field}" is not seen in train (train's classes: ${known})`, field, 'class not seen in train');
    }
    throw new BadRow(line, `unknown class "${key}" in field "${field}" (task.labels: ${known})`, field);
  };
}

function regressionTarget(line: number, v: FieldValue, field: string): number {
  const key = labelKey(v);
  if (typeof v === 'boolean' || !isNumeric(key)) {
    throw new BadRow(line, `non-numeric regression target "${key}" in field "${field}"`, field);
  }
  return Number(key);
}

interface FileRef {
  /** Absolute path to read. */
  abs: string;
  /** The path as the config wrote it, for messages. */
  name: string;
}

function fileRef(p: string, baseDir: string): FileRef {
  return { abs: path.isAbsolute(p) ? p : path.resolve(baseDir, p), name: p };
}

/** Reads a file and checks its text fields, leaving labels raw. */
function readPending(ref: FileRef, task: TaskConfig, problems: RowProblems): PendingRow[] {
  const { rows, columns } = readRows(ref.abs, { format: task.format, header: task.header, displayName: ref.name });
  if (columns) {
    // A misspelt field name is a config mistake, not a bad row: say so once, even with skipBadRows.
    for (const field of [task.textField, task.textPairField, task.labelField]) {
      if (field && !columns.includes(field)) {
        throw new UserInputError(`no column "${field}" in the header (columns: ${columns.join(', ')})`, { file: ref.name, line: 1, field });
      }
    }
  }
  problems.countRows(ref.name, rows.length);
  const out: PendingRow[] = [];
  for (const row of rows) {
    try {
      out.push(pendingRow(row, task));
    } catch (e) {
      if (!(e instanceof BadRow)) throw e;
      problems.add(ref.name, e);
    }
  }
  return out;
}

function toExamples(ref: FileRef, pending: PendingRow[], labelOf: (line: number, v: FieldValue) => number, problems: RowProblems): Example[] {
  const out: Example[] = [];
  for (const p of pending) {
    try {
      const ex: Example = { text: p.text, label: labelOf(p.line, p.rawLabel), source: { file: ref.name, line: p.line } };
      if (p.textPair !== undefined) ex.textPair = p.textPair;
      out.push(ex);
    } catch (e) {
      if (!(e instanceof BadRow)) throw e;
      problems.add(ref.name, e);
    }
  }
  return out;
}

/** A class seen this few times (and in at most 1% of train) is more likely a typo than a class. */
const RARE_CLASS_COUNT = 5;

/** What looks wrong in classes inferred from train: a class seen a handful of times, decimals as classes. */
function classWarnings(ref: FileRef, pending: PendingRow[], labels: string[], field: string): string[] {
  const warnings: string[] = [];
  const linesOf = new Map<string, number[]>();
  for (const p of pending) {
    const key = labelKey(p.rawLabel);
    linesOf.set(key, [...(linesOf.get(key) ?? []), p.line]);
  }
  const fractional = labels.filter((l) => isNumeric(l) && !Number.isInteger(Number(l)));
  if (fractional.length > 0) {
    warnings.push(
      `${ref.name}: field "${field}" holds numbers with decimals (${fractional.slice(0, 5).join(', ')}${fractional.length > 5 ? ', ...' : ''}), ` +
        `and a classification task made ${labels.length} classes of its values; if they are scores, set task.type to "regression"`,
    );
    return warnings; // every decimal value would also be a rare class: one warning says it
  }
  for (const label of labels) {
    const lines = linesOf.get(label) ?? [];
    if (lines.length < RARE_CLASS_COUNT && lines.length <= 0.01 * pending.length) {
      warnings.push(
        `${ref.name}: class "${label}" occurs only ${lines.length} time${lines.length === 1 ? '' : 's'} in ${pending.length} rows ` +
          `(line${lines.length === 1 ? '' : 's'} ${lines.join(', ')}): check field "${field}" there for a mistyped label, ` +
          `or list the classes in task.labels so that a typo is an error`,
      );
    }
  }
  return warnings;
}

function checkFraction(v: number | undefined, name: string, allowZero: boolean): number {
  const x = v ?? 0;
  if (!Number.isFinite(x) || x < 0 || x >= 1 || (!allowZero && x === 0)) {
    throw new UserInputError(`must be a fraction ${allowZero ? 'in [0, 1)' : 'in (0, 1)'}, got ${v}`, {
      field: `task.split.${name}`,
    });
  }
  return x;
}

/**
 * Seeded split of train into train/dev/test. Each part keeps file order, so the split is easy to inspect;
 * the same seed always gives the same parts.
 */
export function splitExamples(
  examples: Example[],
  fractions: { dev: number; test: number },
  seed: number,
): { train: Example[]; dev: Example[]; test: Example[] } {
  const n = examples.length;
  const order = new Rng(seed).shuffle(examples.map((_, i) => i));
  // At least one example in each part asked for, so a tiny file does not give an empty dev set.
  const nDev = fractions.dev > 0 ? Math.max(1, Math.round(n * fractions.dev)) : 0;
  const nTest = fractions.test > 0 ? Math.max(1, Math.round(n * fractions.test)) : 0;
  if (n - nDev - nTest < 1) {
    throw new UserInputError(`only ${n} usable training rows: too few to split off dev${nTest ? ' and test' : ''}`, {
      field: 'task.split',
    });
  }
  const pick = (idx: number[]) => idx.sort((a, b) => a - b).map((i) => examples[i]);
  return {
    dev: pick(order.slice(0, nDev)),
    test: pick(order.slice(nDev, nDev + nTest)),
    train: pick(order.slice(nDev + nTest)),
  };
}

/** A text task's data file (the schema allows only a path there; an IDX pair is an image task's). */
function textFile(source: DataSource, field: string): string {
  if (typeof source !== 'string') throw new UserInputError('a text task reads its data from a file (.jsonl, .json, .csv or .tsv), not an IDX pair', { field });
  return source;
}

export function loadTaskData(task: TaskConfig, baseDir: string): TaskData {
  const skip = task.skipBadRows ?? false;
  const problems = new RowProblems();
  const trainRef = fileRef(textFile(task.train, 'task.train'), baseDir);
  const devRef = task.dev ? fileRef(textFile(task.dev, 'task.dev'), baseDir) : null;
  const testRef = task.test ? fileRef(textFile(task.test, 'task.test'), baseDir) : null;
  if (!devRef && !task.split) {
    throw new UserInputError(
      `task "${task.name}" has no dev set: give task.dev (a file), or task.split (e.g. {"dev": 0.1}) to split one off train`,
      { field: 'task.dev' },
    );
  }
  // Validate fractions before reading anything, so a config mistake is reported first.
  const fractions = {
    dev: devRef ? 0 : checkFraction(task.split?.dev, 'dev', false),
    test: testRef ? 0 : checkFraction(task.split?.test, 'test', true),
  };
  if (fractions.dev + fractions.test >= 1) {
    throw new UserInputError('dev + test must be below 1', { field: 'task.split' });
  }

  const trainPending = readPending(trainRef, task, problems);
  if (trainPending.length === 0) {
    // Nothing to learn from, and no classes to check dev against: say so before anything else.
    const bad = problems.sorted();
    if (bad.length) throw new DataError(bad, `${trainRef.name}: no training examples: all ${bad.length} rows are bad`);
    throw new UserInputError('no training examples', { file: trainRef.name });
  }
  const devPending = devRef ? readPending(devRef, task, problems) : [];
  const testPending = testRef ? readPending(testRef, task, problems) : [];
  let labels: string[] | null = null;
  let labelOf: (line: number, v: FieldValue) => number;
  const warnings: string[] = [];
  if (task.type === 'classification') {
    const explicit = !!task.labels && task.labels.length > 0;
    labels = explicit ? task.labels!.map((l) => String(l).trim()) : inferLabels(trainPending.map((p) => labelKey(p.rawLabel)));
    const dup = labels.find((l, i) => labels!.indexOf(l) !== i);
    if (dup !== undefined) {
      throw new UserInputError(`lists "${dup}" twice`, { field: 'task.labels' });
    }
    if (!explicit && labels.length === 1) {
      throw new UserInputError(`only one class ("${labels[0]}") in field "${task.labelField}"; a classifier needs at least two`, {
        file: trainRef.name,
        field: task.labelField,
      });
    }
    if (!explicit) warnings.push(...classWarnings(trainRef, trainPending, labels, task.labelField));
    labelOf = classIndexer(labels, task.labelField, explicit);
  } else {
    labelOf = (line, v) => regressionTarget(line, v, task.labelField);
  }

  let train = toExamples(trainRef, trainPending, labelOf, problems);
  let dev = devRef ? toExamples(devRef, devPending, labelOf, problems) : [];
  let test = testRef ? toExamples(testRef, testPending, labelOf, problems) : [];
  problems.settle(skip);

  // (Skipping stopped above at a quarter of any file, so only a file with no rows at all is empty here.)
  if (train.length === 0) throw new UserInputError('no training examples', { file: trainRef.name });
  if (devRef && dev.length === 0) throw new UserInputError('no dev examples', { file: devRef.name });

  if (fractions.dev > 0 || fractions.test > 0) {
    const parts = splitExamples(train, fractions, task.split?.seed ?? 0);
    train = parts.train;
    if (!devRef) dev = parts.dev;
    if (!testRef) test = parts.test;
  }
  return { train, dev, test, labels, skipped: problems.sorted(), warnings };
}
