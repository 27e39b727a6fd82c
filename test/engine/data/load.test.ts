import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import type { TaskConfig } from '../../../src/engine/config/types';
import { UserInputError } from '../../../src/engine/errors';
import { DataError, MAX_SKIPPED_FRACTION, inferLabels, loadTaskData } from '../../../src/engine/data/load';

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
    ['class not seen in train', jsonl([{ text: 'a', label: 'spma' }]), /:1: class "spma" in field "label" is not seen in train \(train's classes: ham, spam\)$/],
    ['empty text', jsonl([{ text: 'a', label: 'ham' }, { text: '', label: 'ham' }]), /:2: empty text in field "text"$/],
    ['missing text', jsonl([{ body: 'a', label: 'ham' }]), /:1: missing text in field "text"$/],
    ['unparseable line', '{"text":"a","label":"ham"}\n{"text": "broken",\n', /:2: unparseable JSON line/],
  ];
  for (const [what, content, message] of cases) {
    it(`${what} in dev stops with file and line`, () => {
      const dev = write(`bad/${what.replace(/ /g, '-')}.jsonl`, content);
      const e = loadError(task({ train: spamTrain, dev }));
      expect(e.message).toMatch(new RegExp('^(.*\n)?' + dev.replace(/[.]/g, '\\.') + message.source));
      expect(e.location?.file).toBe(dev);
    });
  }

  it('the message has the documented shape: one bad row, file:line: reason', () => {
    const e = loadError(task({ train: spamTrain, dev: write('d1.jsonl', jsonl([{ text: 'ok', label: 'ham' }, { text: 'no label' }])) }));
    expect(e.message).toBe('d1.jsonl:2: missing label in field "label"');
    expect(e.location).toEqual({ file: 'd1.jsonl', line: 2 });
  });

  it('lists every bad row of every file, not only the first, each with file, line and reason', () => {
    const train = write('many/train.jsonl', jsonl([{ text: 'a', label: 'ham' }, { text: '' , label: 'spam' }, { text: 'b', label: 'spam' }]));
    const e = loadError(task({ train, dev: badDev }));
    expect(e).toBeInstanceOf(DataError);
    expect(e.message).toBe(
      [
        '6 bad rows and 1 row whose class is not seen in train (fix them, or set task.skipBadRows to skip them; a class not seen in train cannot be learnt: add examples of it to train, or fix the label):',
        'many/train.jsonl:2: empty text in field "text"',
        'data/spam/dev.jsonl:2: missing label in field "label"',
        'data/spam/dev.jsonl:3: class "spma" in field "label" is not seen in train (train\'s classes: ham, spam)',
        'data/spam/dev.jsonl:4: empty text in field "text"',
        'data/spam/dev.jsonl:5: unparseable JSON line (Expected double-quoted property name in JSON at position 18)',
        'data/spam/dev.jsonl:6: missing text in field "text"',
        'data/spam/dev.jsonl:7: missing label in field "label"',
      ].join('\n'),
    );
    expect(e.location).toEqual({ file: 'many/train.jsonl', line: 2 });
    expect((e as DataError).rows.map((r) => r.kind)).toEqual(['bad row', 'bad row', 'class not seen in train', 'bad row', 'bad row', 'bad row', 'bad row']);
  });

  it('past the first 20 rows, the message counts the rest; the error keeps them all', () => {
    const rows = Array.from({ length: 30 }, (_, i) => (i % 2 ? { text: `t${i}`, label: 'ham' } : { text: `t${i}` }));
    const e = loadError(task({ train: spamTrain, dev: write('many/dev.jsonl', jsonl(rows)) })) as DataError;
    const lines = e.message.split('\n');
    expect(lines[0]).toBe('15 bad rows (fix them, or set task.skipBadRows to skip them):');
    expect(lines).toHaveLength(1 + 15);
    const e2 = loadError(task({ train: spamTrain, dev: write('many/dev2.jsonl', jsonl([...rows, ...rows, ...rows])) })) as DataError;
    const lines2 = e2.message.split('\n');
    expect(lines2).toHaveLength(1 + 20 + 1);
    expect(lines2[21]).toBe('... and 25 more (45 in all)');
    expect(e2.rows).toHaveLength(45);
  });

  it('a label outside task.labels is bad in train too', () => {
    const train = write('tl/train.jsonl', jsonl([{ text: 'a', label: 'pos' }, { text: 'b', label: 'neutral' }]));
    const e = loadError(task({ train, dev: train, labels: ['neg', 'pos'] }));
    expect(e.message).toBe('tl/train.jsonl:2: unknown class "neutral" in field "label" (task.labels: neg, pos)');
  });

  it('index out of range with task.labels is an unknown class', () => {
    const train = write('tl2/train.jsonl', jsonl([{ text: 'a', label: 2 }]));
    expect(loadError(task({ train, dev: train, labels: ['neg', 'pos'] })).message).toMatch(/:1: unknown class "2"/);
  });

  it('missing pair text', () => {
    const train = write('pairbad/train.jsonl', jsonl([{ a: 'x', b: 'y', label: 1 }, { a: 'x', label: 0 }, { a: 'x', b: ' ', label: 0 }, { a: 'p', b: 'q', label: 0 }]));
    const t = task({ train, dev: train, textField: 'a', textPairField: 'b' });
    expect(loadError(t).message).toBe(
      '2 bad rows (fix them, or set task.skipBadRows to skip them):\npairbad/train.jsonl:2: missing pair text in field "b"\npairbad/train.jsonl:3: empty pair text in field "b"',
    );
  });

  it('skipBadRows skips and lists every kind of bad row, telling a class not seen in train apart', () => {
    // 6 problems in 26 rows: under a quarter.
    const longDev = write('data/spam/dev-long.jsonl', fs.readFileSync(path.join(dir, badDev), 'utf8') + '\n' + jsonl(Array.from({ length: 18 }, (_, i) => ({ text: `fine ${i}`, label: 'ham' }))));
    const data = loadTaskData(task({ train: spamTrain, dev: longDev, skipBadRows: true }), dir);
    expect(data.dev.map((e) => e.source.line).slice(0, 2)).toEqual([1, 8]);
    expect(data.dev).toHaveLength(20);
    expect(data.skipped.map((s) => [s.line, s.kind])).toEqual([
      [2, 'bad row'],
      [3, 'class not seen in train'],
      [4, 'bad row'],
      [5, 'bad row'],
      [6, 'bad row'],
      [7, 'bad row'],
    ]);
    expect(data.skipped.every((s) => s.file === 'data/spam/dev-long.jsonl')).toBe(true);
    const reasons = data.skipped.map((s) => s.reason).join('\n');
    expect(reasons).toMatch(/missing label/);
    expect(reasons).toMatch(/class "spma" in field "label" is not seen in train/);
    expect(reasons).toMatch(/empty text/);
    expect(reasons).toMatch(/unparseable JSON/);
    expect(reasons).toMatch(/missing text/);
  });

  it(`skipBadRows refuses to start when it would drop more than ${MAX_SKIPPED_FRACTION * 100}% of a file, listing the reasons`, () => {
    // The gutted-dev case: a few bad train rows, and a train file lacking a class most of dev has.
    const train = write('gutted/train.csv', 'text,label\nw1,a\nw2,b\n,a\nw3,\nw4,a\nw5,b\nw6,a\nw7,b\nw8,a\nw9,b\nw10,a\nw11,b\nw12,a\n');
    const devRows = Array.from({ length: 20 }, (_, i) => `d${i},${i < 3 ? 'a' : 'c'}`);
    const dev = write('gutted/dev.csv', 'text,label\n' + devRows.join('\n') + '\n');
    const e = loadError(task({ train, dev, skipBadRows: true })) as DataError;
    expect(e).toBeInstanceOf(DataError);
    const lines = e.message.split('\n');
    expect(lines[0]).toBe(
      'gutted/dev.csv: task.skipBadRows would skip 17 of its 20 rows (17 rows whose class is not seen in train), more than 25%: the run refuses to start on what is left. The rows:',
    );
    expect(lines[1]).toBe('gutted/dev.csv:5: class "c" in field "label" is not seen in train (train\'s classes: a, b)');
    expect(lines).toHaveLength(1 + 17);
    expect(e.location).toEqual({ file: 'gutted/dev.csv', line: 5 });
    // Train's own 2 bad rows of 13 are within the limit: with a dev set that has train's classes, the load goes on.
    const goodDev = write('gutted/dev-ok.csv', 'text,label\n' + devRows.map((r) => r.replace(/,c$/, ',b')).join('\n') + '\n');
    const data = loadTaskData(task({ train, dev: goodDev, skipBadRows: true }), dir);
    expect(data.skipped).toEqual([
      { file: 'gutted/train.csv', line: 4, reason: 'empty text in field "text"', kind: 'bad row' },
      { file: 'gutted/train.csv', line: 5, reason: 'missing label in field "label"', kind: 'bad row' },
    ]);
    expect(data.dev).toHaveLength(20);
  });

  it('CSV bad row reports the line the record starts on', () => {
    const train = write('csvbad/train.csv', 'text,label\n"multi\nline\ntext",ham\n"another\none",\nok,spam\n');
    expect(loadError(task({ train, dev: train })).message).toBe('csvbad/train.csv:5: missing label in field "label"');
  });

  it('an unclosed quote in the middle of a CSV is a bad row at its line, not two rows merged into one', () => {
    const train = write('csvquote/train.csv', 'text,label\nfine,ham\n"never closed,spam\n"next",ham\nlast,spam\n');
    expect(loadError(task({ train, dev: train })).message).toMatch(/^csvquote\/train\.csv:3: unclosed quote: the field starting .* runs on to line 4/);
  });

  it('an empty training set is an error, also when every row was skipped', () => {
    const empty = write('empty/train.jsonl', '\n\n');
    expect(loadError(task({ train: empty, dev: spamTrain })).message).toBe('empty/train.jsonl: no training examples');
    const allBad = write('allbad/train.jsonl', jsonl([{ text: '' }, { text: 'x' }]));
    expect(loadError(task({ train: allBad, dev: spamTrain, skipBadRows: true })).message).toBe(
      'allbad/train.jsonl: no training examples: all 2 rows are bad\nallbad/train.jsonl:1: empty text in field "text"\nallbad/train.jsonl:2: missing label in field "label"',
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
    const good = Array.from({ length: 6 }, (_, i) => ({ sentence: `g${i}`, score: i }));
    const missing = write('reg/missing.jsonl', jsonl([{ sentence: 'a', score: 1 }, { sentence: 'b', score: null }, { sentence: 'c', score: true }, ...good]));
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

describe('loadTaskData: warnings on classes that load but look wrong', () => {
  it('numbers with decimals as classes: says they became classes and points to regression', () => {
    const rows = Array.from({ length: 30 }, (_, i) => ({ text: `t${i}`, label: (i % 6) * 0.5 }));
    const train = write('floats/train.jsonl', jsonl(rows));
    const data = loadTaskData(task({ train, dev: train }), dir);
    expect(data.labels).toEqual(['0', '0.5', '1', '1.5', '2', '2.5']);
    expect(data.warnings).toEqual([
      'floats/train.jsonl: field "label" holds numbers with decimals (0.5, 1.5, 2.5), and a classification task made 6 classes of its values; if they are scores, set task.type to "regression"',
    ]);
    // Whole numbers are ordinary class names (GLUE's 0/1).
    const ints = write('floats/ints.jsonl', jsonl(rows.map((r, i) => ({ ...r, label: i % 2 }))));
    expect(loadTaskData(task({ train: ints, dev: ints }), dir).warnings).toEqual([]);
  });

  it('a class seen only a handful of times in a large train file: names it, its lines and what to check', () => {
    const rows = Array.from({ length: 200 }, (_, i) => ({ text: `t${i}`, label: i % 2 ? 'pos' : 'neg' }));
    rows[41] = { text: 'typo', label: 'not_a_class' };
    const train = write('rare/train.jsonl', jsonl(rows));
    const data = loadTaskData(task({ train, dev: train }), dir);
    expect(data.labels).toEqual(['neg', 'not_a_class', 'pos']);
    expect(data.warnings).toEqual([
      'rare/train.jsonl: class "not_a_class" occurs only 1 time in 200 rows (line 42): check field "label" there for a mistyped label, or list the classes in task.labels so that a typo is an error',
    ]);
    // With the classes listed, the typo is an error, not a class.
    expect(loadError(task({ train, dev: train, labels: ['neg', 'pos'] })).message).toBe(
      'rare/train.jsonl:42: unknown class "not_a_class" in field "label" (task.labels: neg, pos)',
    );
    // A small file with few examples per class is not flagged: 1 in 3 is a class, not a typo.
    expect(loadTaskData(task({ train: spamTrain, dev: spamTrain }), dir).warnings).toEqual([]);
  });
});
