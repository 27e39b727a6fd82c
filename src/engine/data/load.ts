/**
 * Turns a task's files into labelled examples: picks the text/pair/label fields, maps class names to
 * indices, checks every row (a bad row stops the load with file:line, or is skipped and counted when the
 * task says `skipBadRows`), and splits dev/test off train with a fixed seed when the task has no such files.
 */
import * as path from 'path';
import type { TaskConfig } from '../config/types';
import { UserInputError, locate } from '../errors';
import { Rng } from '../util/random';
import { readRows, type FieldValue, type RawRow } from './readers';
import type { Example, SkippedRow, TaskData } from './types';

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
  ) {
    super(reason);
  }
}

/** Collects bad rows: throws on the first one, or records it when skipping is allowed. */
class BadRowPolicy {
  readonly skipped: SkippedRow[] = [];
  constructor(private readonly skip: boolean) {}

  report(file: string, bad: BadRow): void {
    if (!this.skip) {
      throw new UserInputError(locate(bad.reason, { file, line: bad.line }), { file, line: bad.line, field: bad.field });
    }
    this.skipped.push({ file, line: bad.line, reason: bad.reason });
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
    throw new BadRow(line, `unknown class "${key}" in field "${field}" (known: ${known})`, field);
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
function readPending(ref: FileRef, task: TaskConfig, policy: BadRowPolicy): PendingRow[] {
  const { rows, columns } = readRows(ref.abs, { format: task.format, header: task.header, displayName: ref.name });
  if (columns) {
    // A misspelt field name is a config mistake, not a bad row: say so once, even with skipBadRows.
    for (const field of [task.textField, task.textPairField, task.labelField]) {
      if (field && !columns.includes(field)) {
        throw new UserInputError(
          locate(`no column "${field}" in the header (columns: ${columns.join(', ')})`, { file: ref.name, line: 1 }),
          { file: ref.name, line: 1, field },
        );
      }
    }
  }
  const out: PendingRow[] = [];
  for (const row of rows) {
    try {
      out.push(pendingRow(row, task));
    } catch (e) {
      if (!(e instanceof BadRow)) throw e;
      policy.report(ref.name, e);
    }
  }
  return out;
}

function toExamples(
  ref: FileRef,
  pending: PendingRow[],
  labelOf: (line: number, v: FieldValue) => number,
  policy: BadRowPolicy,
): Example[] {
  const out: Example[] = [];
  for (const p of pending) {
    try {
      const ex: Example = { text: p.text, label: labelOf(p.line, p.rawLabel), source: { file: ref.name, line: p.line } };
      if (p.textPair !== undefined) ex.textPair = p.textPair;
      out.push(ex);
    } catch (e) {
      if (!(e instanceof BadRow)) throw e;
      policy.report(ref.name, e);
    }
  }
  return out;
}

function checkFraction(v: number | undefined, name: string, allowZero: boolean): number {
  const x = v ?? 0;
  if (!Number.isFinite(x) || x < 0 || x >= 1 || (!allowZero && x === 0)) {
    throw new UserInputError(`task.split.${name} must be a fraction ${allowZero ? 'in [0, 1)' : 'in (0, 1)'}, got ${v}`, {
      field: `/task/split/${name}`,
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
      field: '/task/split',
    });
  }
  const pick = (idx: number[]) => idx.sort((a, b) => a - b).map((i) => examples[i]);
  return {
    dev: pick(order.slice(0, nDev)),
    test: pick(order.slice(nDev, nDev + nTest)),
    train: pick(order.slice(nDev + nTest)),
  };
}

export function loadTaskData(task: TaskConfig, baseDir: string): TaskData {
  const policy = new BadRowPolicy(task.skipBadRows ?? false);
  const trainRef = fileRef(task.train, baseDir);
  const devRef = task.dev ? fileRef(task.dev, baseDir) : null;
  const testRef = task.test ? fileRef(task.test, baseDir) : null;
  if (!devRef && !task.split) {
    throw new UserInputError(
      `task "${task.name}" has no dev set: give task.dev (a file), or task.split (e.g. {"dev": 0.1}) to split one off train`,
      { field: '/task/dev' },
    );
  }
  // Validate fractions before reading anything, so a config mistake is reported first.
  const fractions = {
    dev: devRef ? 0 : checkFraction(task.split?.dev, 'dev', false),
    test: testRef ? 0 : checkFraction(task.split?.test, 'test', true),
  };
  if (fractions.dev + fractions.test >= 1) {
    throw new UserInputError('task.split.dev + task.split.test must be below 1', { field: '/task/split' });
  }

  const trainPending = readPending(trainRef, task, policy);
  let labels: string[] | null = null;
  let labelOf: (line: number, v: FieldValue) => number;
  if (task.type === 'classification') {
    const explicit = !!task.labels && task.labels.length > 0;
    labels = explicit ? task.labels!.map((l) => String(l).trim()) : inferLabels(trainPending.map((p) => labelKey(p.rawLabel)));
    const dup = labels.find((l, i) => labels!.indexOf(l) !== i);
    if (dup !== undefined) {
      throw new UserInputError(`task.labels lists "${dup}" twice`, { field: '/task/labels' });
    }
    if (!explicit && labels.length === 1) {
      throw new UserInputError(
        locate(`only one class ("${labels[0]}") in field "${task.labelField}"; a classifier needs at least two`, {
          file: trainRef.name,
        }),
        { file: trainRef.name, field: task.labelField },
      );
    }
    labelOf = classIndexer(labels, task.labelField, explicit);
  } else {
    labelOf = (line, v) => regressionTarget(line, v, task.labelField);
  }

  let train = toExamples(trainRef, trainPending, labelOf, policy);
  const skippedIn = (ref: FileRef) => policy.skipped.filter((s) => s.file === ref.name).length;
  if (train.length === 0) {
    const skipped = skippedIn(trainRef);
    throw new UserInputError(
      locate(`no training examples${skipped ? ` (all ${skipped} rows were bad and skipped)` : ''}`, { file: trainRef.name }),
      { file: trainRef.name },
    );
  }
  let dev: Example[] = [];
  let test: Example[] = [];
  if (devRef) {
    dev = toExamples(devRef, readPending(devRef, task, policy), labelOf, policy);
    if (dev.length === 0) {
      const skipped = skippedIn(devRef);
      throw new UserInputError(
        locate(`no dev examples${skipped ? ` (all ${skipped} rows were bad and skipped)` : ''}`, { file: devRef.name }),
        { file: devRef.name },
      );
    }
  }
  if (testRef) test = toExamples(testRef, readPending(testRef, task, policy), labelOf, policy);

  if (fractions.dev > 0 || fractions.test > 0) {
    const parts = splitExamples(train, fractions, task.split?.seed ?? 0);
    train = parts.train;
    if (!devRef) dev = parts.dev;
    if (!testRef) test = parts.test;
  }
  return { train, dev, test, labels, skipped: policy.skipped };
}
