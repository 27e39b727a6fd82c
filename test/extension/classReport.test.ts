import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/engine/config/load';
import { accuracy, macroF1, perClassScores } from '../../src/engine/metrics/metrics';
import { createRun } from '../../src/engine/runs';
import { evalFilesSignature, loadClassReport } from '../../src/extension/webviews/viewData';
import type { ClassReportData, SplitClassReport } from '../../src/protocol/webview';
import { classAverages, confusionCells, confusionCsvRows, normaliseRows, scoreCsvRows, topConfusions } from '../../webview-ui/classReport/model';
import { evaluate, predictions, THREE_CLASSES, trainThreeClassRun } from '../helpers/classificationRun';
import { tempDir } from '../helpers/fixtures';

/**
 * The per-class view's data, from a real run: a three-class text task trained and evaluated by the CLI. The view's
 * numbers are checked against the CLI's own (its eval metrics, its predictions) and the engine's metric functions.
 */
let dir = '';
let runDir = '';
/** What the view read after training, before any `adapter-lab eval`. */
let afterTraining: { data: ClassReportData | null; missing?: string };
/** eval-dev.json as the training left it. */
let trainingEval: Record<string, unknown>;
let evalDev: Record<string, any>;
let evalTest: Record<string, any>;

beforeAll(async () => {
  dir = tempDir('adapter-lab-class-report-');
  runDir = await trainThreeClassRun(dir);
  afterTraining = loadClassReport(runDir);
  trainingEval = JSON.parse(fs.readFileSync(path.join(runDir, 'eval-dev.json'), 'utf8'));
  evalDev = await evaluate(runDir, 'dev');
  evalTest = await evaluate(runDir, 'test');
}, 300_000);

/** The (gold, predicted) class indices a report's confusion matrix counts, one pair per example. */
function pairsOf(r: SplitClassReport): { gold: number[]; predicted: number[] } {
  const gold: number[] = [];
  const predicted: number[] = [];
  r.confusion.forEach((row, t) => row.forEach((n, p) => Array.from({ length: n }, () => (gold.push(t), predicted.push(p)))));
  return { gold, predicted };
}

function report(split: 'dev' | 'test'): SplitClassReport {
  const { data, missing } = loadClassReport(runDir);
  expect(missing).toBeUndefined();
  const r = data!.splits.find((s) => s.split === split);
  expect(r, `a ${split} report`).toBeDefined();
  return r!;
}

describe('per-class view data', () => {
  it('after training alone: no report yet, both splits to evaluate, and the run can be evaluated', () => {
    expect(afterTraining.missing).toBeUndefined();
    const d = afterTraining.data!;
    expect(d.run.name).toBe('three-class');
    expect(d.taskType).toBe('classification');
    expect(d.inputs).toBe('text');
    expect(d.splits).toEqual([]);
    expect(d.unevaluated).toEqual(['dev', 'test']);
    expect(d.canEvaluate).toBe(true);
    // The training did write eval-dev.json, without a class report: the view must not mistake it for one.
    expect(trainingEval.metrics).toBeDefined();
    expect(trainingEval.classes).toBeUndefined();
  });

  it('after adapter-lab eval: each split\'s labels in index order, counts that match the CLI\'s predictions', async () => {
    const { data } = loadClassReport(runDir);
    expect(data!.splits.map((s) => s.split)).toEqual(['dev', 'test']);
    expect(data!.unevaluated).toEqual([]);
    const dev = report('dev');
    expect(dev.labels).toEqual(THREE_CLASSES); // the config's order, not sorted
    expect(dev.examples).toBe(60);
    expect(dev.metrics).toEqual(evalDev.metrics);
    expect(report('test').examples).toBe(45);
    expect(report('test').metrics).toEqual(evalTest.metrics);
    expect(dev.time).toMatch(/^\d{4}-\d\d-\d\dT/);

    // The confusion matrix counts what `adapter-lab predict` predicts for each dev row, against its gold label.
    const devRows = fs.readFileSync(path.join(dir, 'data', 'dev.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).label as string);
    const predicted = await predictions(runDir, path.join(dir, 'data', 'dev.jsonl'));
    const expected = THREE_CLASSES.map((t) => THREE_CLASSES.map((p) => devRows.filter((g, i) => g === t && predicted[i] === p).length));
    expect(dev.confusion).toEqual(expected);
    dev.perClass.forEach((c, i) => {
      expect(c.label).toBe(THREE_CLASSES[i]);
      expect(c.support).toBe(devRows.filter((g) => g === c.label).length);
      expect(c.predicted).toBe(predicted.filter((p) => p === c.label).length);
    });
  });

  it('averages: macro F1 and accuracy are the evaluation\'s own; support-weighted recall is accuracy', () => {
    for (const split of ['dev', 'test'] as const) {
      const r = report(split);
      const avg = classAverages(r);
      const { gold, predicted } = pairsOf(r);
      expect(avg.macro.f1).toBeCloseTo(r.metrics.macroF1, 12);
      expect(avg.macro.f1).toBeCloseTo(macroF1(predicted, gold, r.labels.length), 12);
      expect(avg.accuracy).toBeCloseTo(r.metrics.accuracy, 12);
      expect(avg.accuracy).toBeCloseTo(accuracy(predicted, gold), 12);
      expect(avg.weighted.recall).toBeCloseTo(avg.accuracy, 12);
      expect(avg.macro.support).toBe(r.examples);
      // Each class's row is the engine's perClassScores of the same predictions.
      const scores = perClassScores(predicted, gold, r.labels.length);
      r.perClass.forEach((c, i) => {
        expect(c.precision).toBeCloseTo(scores[i].precision, 12);
        expect(c.recall).toBeCloseTo(scores[i].recall, 12);
        expect(c.f1).toBeCloseTo(scores[i].f1, 12);
      });
      const present = r.perClass.filter((c) => c.support + c.predicted > 0);
      expect(avg.macroClasses).toBe(present.length);
      expect(avg.macro.precision).toBeCloseTo(present.reduce((s, c) => s + c.precision, 0) / present.length, 12);
      expect(avg.weighted.f1).toBeCloseTo(r.perClass.reduce((s, c) => s + c.f1 * c.support, 0) / r.examples, 12);
    }
  });

  it('macro average leaves out a class absent from labels and predictions, and counts one only predicted as 0', () => {
    // The engine's own report of predictions where class 2 never occurs and class 3 is only predicted.
    const gold = [0, 0, 1, 1, 1, 0];
    const predicted = [0, 3, 1, 1, 0, 0];
    const labels = ['a', 'b', 'c', 'd'];
    const scores = perClassScores(predicted, gold, labels.length);
    const confusion = labels.map((_, t) => labels.map((__, p) => gold.filter((g, i) => g === t && predicted[i] === p).length));
    const avg = classAverages({ perClass: scores.map((s, i) => ({ label: labels[i], ...s })), confusion });
    expect(avg.macroClasses).toBe(3);
    expect(avg.macro.f1).toBeCloseTo(macroF1(predicted, gold, labels.length), 12);
    expect(avg.accuracy).toBeCloseTo(accuracy(predicted, gold), 12);
  });

  it('normalised by row: each true class\'s row sums to 1 and its diagonal is its recall; empty rows are null', () => {
    const r = report('dev');
    const shares = normaliseRows(r.confusion);
    shares.forEach((row, t) => {
      if (r.perClass[t].support === 0) return expect(row.every((v) => v === null)).toBe(true);
      expect(row.reduce((a, b) => a! + b!, 0)).toBeCloseTo(1, 12);
      expect(row[t]).toBeCloseTo(r.perClass[t].recall, 12);
    });
    expect(normaliseRows([[0, 0], [1, 3]])).toEqual([[null, null], [0.25, 0.75]]);

    const k = r.labels.length;
    const counts = confusionCells(r.confusion, false);
    const normalised = confusionCells(r.confusion, true);
    expect(counts).toHaveLength(k * k);
    for (const c of counts) expect(c.v).toBe(r.confusion[c.y][c.x]);
    for (const c of normalised) expect(c.v).toBeCloseTo(shares[c.y][c.x] ?? 0, 12);
  });

  it('the most frequent confusions leave out the diagonal, most first', () => {
    const r = report('dev');
    const top = topConfusions(r, 100);
    const offDiagonal = r.confusion.flatMap((row, t) => row.filter((n, p) => p !== t && n > 0));
    expect(top.map((c) => c.count)).toEqual([...offDiagonal].sort((a, b) => b - a));
    for (const c of top) expect(c.trueLabel).not.toBe(c.predictedLabel);
    expect(topConfusions(r, 1).length).toBe(Math.min(1, offDiagonal.length));
  });

  it('CSV exports: a row per class then the two averages; a row per cell of the matrix', () => {
    const r = report('test');
    const rows = scoreCsvRows(r);
    expect(rows.map((x) => x[0])).toEqual([...THREE_CLASSES, 'macro avg', 'weighted avg']);
    expect(rows[0]).toEqual([r.perClass[0].label, r.perClass[0].precision, r.perClass[0].recall, r.perClass[0].f1, r.perClass[0].support, r.perClass[0].predicted]);
    const cells = confusionCsvRows(r);
    expect(cells).toHaveLength(9);
    expect(cells.reduce((n, c) => n + (c[2] as number), 0)).toBe(r.examples);
  });

  it('the eval files\' signature (what the open view polls) changes when one is written, and only then', () => {
    const copy = path.join(tempDir('adapter-lab-class-report-signature-'), 'run');
    fs.cpSync(runDir, copy, { recursive: true });
    fs.rmSync(path.join(copy, 'eval-test.json'));
    const before = evalFilesSignature(copy);
    // eval-dev, predictions-dev, eval-test, predictions-test: a text run has no prediction grids.
    expect(before).toMatch(/^\d+:[\d.]+\|-\|-\|-$/);
    expect(evalFilesSignature(copy)).toBe(before);
    fs.copyFileSync(path.join(runDir, 'eval-test.json'), path.join(copy, 'eval-test.json'));
    const after = evalFilesSignature(copy);
    expect(after).not.toBe(before);
    expect(after.split('|')[0]).toBe(before.split('|')[0]);
  });

  it('a regression run says so instead of showing a report', () => {
    const ws = tempDir('adapter-lab-class-report-regression-');
    const raw = {
      name: 'scores',
      task: { name: 'scores', type: 'regression', train: 'data/train.jsonl', dev: 'data/dev.jsonl', textField: 'text', labelField: 'score' },
      model: 'builtin:tiny-bert',
      method: { type: 'houlsby', bottleneck: 8 },
    };
    fs.mkdirSync(path.join(ws, 'data'));
    const run = createRun(path.join(ws, 'runs'), resolveConfig(raw, path.join(ws, 'scores.adapter.json'), ws));
    const { data, missing } = loadClassReport(run.dir);
    expect(data).toBeNull();
    expect(missing).toMatch(/^scores is a regression run: per-class metrics and a confusion matrix are for classification runs/);
  });

  it('a run still queued cannot be evaluated yet; a malformed class report is named with what is wrong', () => {
    const ws = tempDir('adapter-lab-class-report-queued-');
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'three-class.adapter.json'), 'utf8'));
    const run = createRun(path.join(ws, 'runs'), resolveConfig(cfg, path.join(dir, 'three-class.adapter.json'), dir));
    const queued = loadClassReport(run.dir).data!;
    expect(queued).toMatchObject({ splits: [], unevaluated: ['dev', 'test'], canEvaluate: false });

    const broken = path.join(ws, 'broken');
    fs.cpSync(runDir, broken, { recursive: true });
    const file = path.join(broken, 'eval-test.json');
    const evalJson = JSON.parse(fs.readFileSync(file, 'utf8'));
    evalJson.classes.confusion.pop();
    fs.writeFileSync(file, JSON.stringify(evalJson));
    expect(loadClassReport(broken)).toEqual({ data: null, missing: `${file}: classes.confusion is not a 3 x 3 matrix of counts` });
    fs.writeFileSync(file, '{"classes": ');
    expect(loadClassReport(broken).missing).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is unreadable: `));
  });
});
