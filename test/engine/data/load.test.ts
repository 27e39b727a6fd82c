import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import type { TaskConfig } from '../../../src/engine/config/types';
import { UserInputError } from '../../../src/engine/errors';
import { inferLabels, loadTaskData } from '../../../src/engine/data/load';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adapter-lab-load-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, content: string): string {
  const p = path.join(dir, name);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content);
  return name;
}

const jsonl = (rows: object[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

function task(over: Partial<TaskConfig>): TaskConfig {
  return { name: 't', type: 'classification', train: 'x', textField: 'text', labelField: 'label', ...over };
}

/** The UserInputError a load throws (fails the test when it does not throw one). */
function loadError(t: TaskConfig): UserInputError {
  try {
    loadTaskData(t, dir);
  } catch (e) {
    expect(e).toBeInstanceOf(UserInputError);
    return e as UserInputError;
  }
  throw new Error('expected loadTaskData to throw');
}

const spamTrain = write(
  'data/spam/train.jsonl',
  jsonl([
    { text: 'win money now', label: 'spam' },
    { text: 'lunch at noon?', label: 'ham' },
    { text: 'cheap pills', label: 'spam' },
  ]),
);

describe('loadTaskData: classification', () => {
  it('infers sorted class names from train and maps dev labels', () => {
    const dev = write('data/spam/dev-good.jsonl', jsonl([{ text: 'free prize', label: 'spam' }, { text: 'see you', label: 'ham' }]));
    const data = loadTaskData(task({ train: spamTrain, dev }), dir);
    expect(data.labels).toEqual(['ham', 'spam']);
    expect(data.train.map((e) => e.label)).toEqual([1, 0, 1]);
    expect(data.dev.map((e) => e.label)).toEqual([1, 0]);
    expect(data.train[1]).toEqual({ text: 'lunch at noon?', label: 0, source: { file: spamTrain, line: 2 } });
    expect(data.test).toEqual([]);
    expect(data.skipped).toEqual([]);
  });

  it('sorts numeric labels numerically (GLUE "0","1", and 2 before 10)', () => {
    expect(inferLabels(['1', '0', '1'])).toEqual(['0', '1']);
    expect(inferLabels(['10', '2', '1'])).toEqual(['1', '2', '10']);
    expect(inferLabels(['b', 'a', 'B'])).toEqual(['B', 'a', 'b']);
  });

  it('uses task.labels for index order, accepting names or indices', () => {
    const train = write('named/train.jsonl', jsonl([{ text: 'good', label: 'positive' }, { text: 'bad', label: 0 }, { text: 'fine', label: '1' }]));
    const data = loadTaskData(task({ train, dev: train, labels: ['negative', 'positive'] }), dir);
    expect(data.labels).toEqual(['negative', 'positive']);
    expect(data.train.map((e) => e.label)).toEqual([1, 0, 1]);
  });

  it('with numeric class names, a number is a name, not an index', () => {
    const train = write('stars/train.jsonl', jsonl([{ text: 'ok', label: 1 }, { text: 'great', label: 5 }]));
    const data = loadTaskData(task({ train, dev: train, labels: ['1', '2', '3', '4', '5'] }), dir);
    expect(data.train.map((e) => e.label)).toEqual([0, 4]);
  });

  it('reads text pairs', () => {
    const train = write('pairs/train.jsonl', jsonl([{ a: 'x', b: 'y', label: 'same' }, { a: 'p', b: 'q', label: 'diff' }]));
    const data = loadTaskData(task({ train, dev: train, textField: 'a', textPairField: 'b' }), dir);
    expect(data.train[0]).toMatchObject({ text: 'x', textPair: 'y', label: 1 });
  });

  it('reads GLUE TSV (MRPC) pairs with numeric labels', () => {
    const header = 'Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n';
    const train = write(
      'mrpc/train.tsv',
      header + '1\t1\t2\tHe said " hello .\tHe said hello .\n0\t3\t4\tA cat .\tA dog .\n',
    );
    const data = loadTaskData(task({ train, dev: train, textField: '#1 String', textPairField: '#2 String', labelField: 'Quality' }), dir);
    expect(data.labels).toEqual(['0', '1']);
    expect(data.train[0]).toMatchObject({ text: 'He said " hello .', textPair: 'He said hello .', label: 1, source: { line: 2 } });
  });

  it('reads headerless GLUE TSV (CoLA) by column index', () => {
    const train = write('cola/train.tsv', "gj04\t1\t\tOur friends won't buy this analysis, let alone the next one we propose.\ngj04\t0\t*\tThey drank the pub.\n");
    const data = loadTaskData(task({ train, dev: train, header: false, textField: '3', labelField: '1' }), dir);
    expect(data.labels).toEqual(['0', '1']);
    expect(data.train.map((e) => [e.text, e.label, e.source.line])).toEqual([
      ["Our friends won't buy this analysis, let alone the next one we propose.", 1, 1],
      ['They drank the pub.', 0, 2],
    ]);
  });

  it('stops on a misspelt column in a CSV header, even with skipBadRows', () => {
    const train = write('csv/train.csv', 'text,labl\nhi,a\n');
    const e = loadError(task({ train, dev: train, skipBadRows: true }));
    expect(e.message).toBe('csv/train.csv:1: no column "label" in the header (columns: text, labl)');
  });
});

describe('loadTaskData: bad rows', () => {
  const badDev = write(
    'data/spam/dev.jsonl',
    [
      JSON.stringify({ text: 'ok', label: 'ham' }), // 1
      JSON.stringify({ text: 'no label' }), // 2
      JSON.stringify({ text: 'typo', label: 'spma' }), // 3
      JSON.stringify({ text: '   ', label: 'ham' }), // 4
      '{"text": "broken",', // 5
      JSON.stringify({ label: 'ham' }), // 6
      JSON.stringify({ text: 'null label', label: null }), // 7
      JSON.stringify({ text: 'fine', label: 'spam' }), // 8
    ].join('\n'),
  );

  const cases: [string, string, RegExp][] = [
    ['missing label', jsonl([{ text: 'a', label: 'ham' }, { text: 'no label' }]), /:2: missing label in field "label"$/],
    ['unknown class', jsonl([{ text: 'a', label: 'spma' }]), /:1: unknown class "spma" in field "label" \(known: ham, spam\)$/],
    ['empty text', jsonl([{ text: 'a', label: 'ham' }, { text: '', label: 'ham' }]), /:2: empty text in field "text"$/],
    ['missing text', jsonl([{ body: 'a', label: 'ham' }]), /:1: missing text in field "text"$/],
    ['unparseable line', '{"text":"a","label":"ham"}\n{"text": "broken",\n', /:2: unparseable JSON line/],
  ];
  for (const [what, content, message] of cases) {
    it(`${what} in dev stops with file and line`, () => {
      const dev = write(`bad/${what.replace(/ /g, '-')}.jsonl`, content);
      const e = loadError(task({ train: spamTrain, dev }));
      expect(e.message).toMatch(new RegExp('^' + dev.replace(/[.]/g, '\\.') + message.source));
      expect(e.location?.file).toBe(dev);
    });
  }

  it('the message has the documented shape', () => {
    const e = loadError(task({ train: spamTrain, dev: badDev }));
    expect(e.message).toBe('data/spam/dev.jsonl:2: missing label in field "label"');
    expect(e.location).toEqual({ file: 'data/spam/dev.jsonl', line: 2, field: 'label' });
    const e2 = loadError(task({ train: spamTrain, dev: write('d3.jsonl', jsonl([{ text: 'typo', label: 'spma' }])) }));
    expect(e2.message).toBe('d3.jsonl:1: unknown class "spma" in field "label" (known: ham, spam)');
  });

  it('a label outside task.labels is bad in train too', () => {
    const train = write('tl/train.jsonl', jsonl([{ text: 'a', label: 'pos' }, { text: 'b', label: 'neutral' }]));
    const e = loadError(task({ train, dev: train, labels: ['neg', 'pos'] }));
    expect(e.message).toBe('tl/train.jsonl:2: unknown class "neutral" in field "label" (known: neg, pos)');
  });

  it('index out of range with task.labels is an unknown class', () => {
    const train = write('tl2/train.jsonl', jsonl([{ text: 'a', label: 2 }]));
    expect(loadError(task({ train, dev: train, labels: ['neg', 'pos'] })).message).toMatch(/:1: unknown class "2"/);
  });

  it('missing pair text', () => {
    const train = write('pairbad/train.jsonl', jsonl([{ a: 'x', b: 'y', label: 1 }, { a: 'x', label: 0 }, { a: 'x', b: ' ', label: 0 }, { a: 'p', b: 'q', label: 0 }]));
    const t = task({ train, dev: train, textField: 'a', textPairField: 'b' });
    expect(loadError(t).message).toBe('pairbad/train.jsonl:2: missing pair text in field "b"');
    const data = loadTaskData({ ...t, skipBadRows: true }, dir);
    expect(data.skipped.map((s) => [s.line, s.reason])).toEqual([
      [2, 'missing pair text in field "b"'],
      [3, 'empty pair text in field "b"'],
      [2, 'missing pair text in field "b"'],
      [3, 'empty pair text in field "b"'],
    ]);
  });

  it('skipBadRows skips and lists every kind of bad row', () => {
    const data = loadTaskData(task({ train: spamTrain, dev: badDev, skipBadRows: true }), dir);
    expect(data.dev.map((e) => e.source.line)).toEqual([1, 8]);
    expect(data.skipped).toHaveLength(6);
    expect(data.skipped.map((s) => s.line).sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 6, 7]);
    expect(data.skipped.every((s) => s.file === 'data/spam/dev.jsonl')).toBe(true);
    const reasons = data.skipped.map((s) => s.reason).join('\n');
    expect(reasons).toMatch(/missing label/);
    expect(reasons).toMatch(/unknown class "spma"/);
    expect(reasons).toMatch(/empty text/);
    expect(reasons).toMatch(/unparseable JSON/);
    expect(reasons).toMatch(/missing text/);
  });

  it('CSV bad row reports the line the record starts on', () => {
    const train = write('csvbad/train.csv', 'text,label\n"multi\nline\ntext",ham\n"another\none",\nok,spam\n');
    expect(loadError(task({ train, dev: train })).message).toBe('csvbad/train.csv:5: missing label in field "label"');
  });

  it('an empty training set is an error, also when every row was skipped', () => {
    const empty = write('empty/train.jsonl', '\n\n');
    expect(loadError(task({ train: empty, dev: spamTrain })).message).toBe('empty/train.jsonl: no training examples');
    const allBad = write('allbad/train.jsonl', jsonl([{ text: '' }, { text: 'x' }]));
    expect(loadError(task({ train: allBad, dev: spamTrain, skipBadRows: true })).message).toBe(
      'allbad/train.jsonl: no training examples (all 2 rows were bad and skipped)',
    );
  });

  it('a missing file names the file', () => {
    expect(loadError(task({ train: 'nope/train.jsonl', dev: spamTrain })).message).toBe('nope/train.jsonl: file not found');
  });
});

describe('loadTaskData: regression', () => {
  it('reads float targets and rejects non-numeric ones with file and line', () => {
    const train = write('reg/train.csv', 'sentence,score\nnice,4.5\nmeh,"2"\nawful,-1e-1\n');
    const data = loadTaskData(task({ type: 'regression', train, dev: train, textField: 'sentence', labelField: 'score' }), dir);
    expect(data.labels).toBeNull();
    expect(data.train.map((e) => e.label)).toEqual([4.5, 2, -0.1]);

    const bad = write('reg/bad.csv', 'sentence,score\nnice,4.5\nmeh,high\n');
    const e = loadError(task({ type: 'regression', train: bad, dev: train, textField: 'sentence', labelField: 'score' }));
    expect(e.message).toBe('reg/bad.csv:3: non-numeric regression target "high" in field "score"');
    const missing = write('reg/missing.jsonl', jsonl([{ sentence: 'a', score: 1 }, { sentence: 'b', score: null }, { sentence: 'c', score: true }]));
    const t = task({ type: 'regression', train: missing, dev: train, textField: 'sentence', labelField: 'score', skipBadRows: true });
    expect(loadTaskData(t, dir).skipped.map((s) => [s.line, s.reason])).toEqual([
      [2, 'missing regression target in field "score"'],
      [3, 'non-numeric regression target "true" in field "score"'],
    ]);
  });
});

describe('loadTaskData: seeded split', () => {
  const rows = Array.from({ length: 100 }, (_, i) => ({ text: `example ${i}`, label: i % 3 === 0 ? 'a' : 'b' }));
  const train = write('split/all.jsonl', jsonl(rows));
  const lines = (ex: { source: { line: number } }[]) => ex.map((e) => e.source.line);

  it('is reproducible, disjoint and covering', () => {
    const t = task({ train, split: { dev: 0.2, test: 0.1, seed: 7 } });
    const a = loadTaskData(t, dir);
    const b = loadTaskData(t, dir);
    expect(lines(a.train)).toEqual(lines(b.train));
    expect(lines(a.dev)).toEqual(lines(b.dev));
    expect(lines(a.test)).toEqual(lines(b.test));
    expect(a.dev).toHaveLength(20);
    expect(a.test).toHaveLength(10);
    expect(a.train).toHaveLength(70);
    const all = [...lines(a.train), ...lines(a.dev), ...lines(a.test)];
    expect(new Set(all).size).toBe(100);
    expect([...all].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    // Not simply the first or last rows.
    expect(lines(a.dev)).not.toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(lines(a.dev)).not.toEqual(Array.from({ length: 20 }, (_, i) => i + 81));
  });

  it('differs with another seed; seed defaults to 0', () => {
    const a = loadTaskData(task({ train, split: { dev: 0.2, seed: 7 } }), dir);
    const c = loadTaskData(task({ train, split: { dev: 0.2, seed: 8 } }), dir);
    expect(lines(a.dev)).not.toEqual(lines(c.dev));
    const d0 = loadTaskData(task({ train, split: { dev: 0.2 } }), dir);
    const d0b = loadTaskData(task({ train, split: { dev: 0.2, seed: 0 } }), dir);
    expect(lines(d0.dev)).toEqual(lines(d0b.dev));
    expect(d0.test).toEqual([]);
  });

  it('needs a dev set: a file or a split', () => {
    expect(loadError(task({ train })).message).toMatch(/has no dev set.*task\.split/);
  });

  it('rejects bad fractions', () => {
    expect(loadError(task({ train, split: { dev: 0 } })).message).toMatch(/split\.dev/);
    expect(loadError(task({ train, split: { dev: 0.6, test: 0.4 } })).message).toMatch(/below 1/);
    const tiny = write('split/tiny.jsonl', jsonl([{ text: 'a', label: 'x' }, { text: 'b', label: 'y' }]));
    expect(loadError(task({ train: tiny, split: { dev: 0.1, test: 0.1 } })).message).toMatch(/too few to split/);
  });
});

describe('loadTaskData: paths', () => {
  it('accepts absolute paths', () => {
    const data = loadTaskData(task({ train: path.join(dir, spamTrain), dev: path.join(dir, spamTrain) }), '/nonexistent');
    expect(data.train).toHaveLength(3);
  });
});
