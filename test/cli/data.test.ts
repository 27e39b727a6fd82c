import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { listRuns } from '../../src/engine/runs';
import { tempDir, tinyModelDir, writeToyTask } from '../helpers/fixtures';
import { cliAsync as cli } from '../helpers/cliRun';

/**
 * Bad data and bad configs as a user meets them through `adapter-lab train`: the built bin in a child process,
 * on real files. What must hold: every bad row named with file, line and reason (terminal, --json, run.json),
 * exit 2, and each location printed once.
 */


function writeConfig(dir: string, over: { task?: object; method?: object; training?: object } = {}): string {
  const cfg = {
    name: 'data-check',
    task: { name: 'toy', type: 'classification', train: 'data/train.jsonl', dev: 'data/dev.jsonl', textField: 'text', labelField: 'label', ...over.task },
    model: tinyModelDir({ layers: 2, hidden: 32, heads: 2, intermediate: 64 }),
    method: { type: 'houlsby', bottleneck: 4, ...over.method },
    training: { epochs: 1, batchSize: 16, maxSeqLength: 16, seed: 1, ...over.training },
    runsDir: 'runs',
  };
  fs.writeFileSync(path.join(dir, 'c.adapter.json'), JSON.stringify(cfg, null, 2));
  return 'c.adapter.json';
}

/** "d.csv:9: d.csv:9: ..." : a location given twice on one line. */
const DOUBLED_LOCATION = /(\S+:\d+: )\1/;

/** The gutted-dev case of issue 15: a few malformed train rows, and a train file lacking the class most of dev has. */
function writeGuttedTask(dir: string): void {
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  const train = ['text,label', ...Array.from({ length: 40 }, (_, i) => `good word ${i},${i % 2 ? 'a' : 'b'}`)];
  // Lines 7-9: an empty text, an empty label, and a quote that runs on until the quoted field of line 11.
  train.splice(6, 0, ',a', 'no label here,', '"never closed,b', 'swallowed,a', '"quoted",b');
  fs.writeFileSync(path.join(dir, 'data', 'train.csv'), train.join('\n') + '\n');
  const dev = ['text,label', ...Array.from({ length: 40 }, (_, i) => `dev word ${i},${i < 5 ? 'a' : 'c'}`)];
  fs.writeFileSync(path.join(dir, 'data', 'dev.csv'), dev.join('\n') + '\n');
}

describe('adapter-lab train: bad data', () => {
  it('skipBadRows that would gut dev: refused with exit 2 and every reason, in the terminal, --json and run.json', async () => {
    const dir = tempDir();
    writeGuttedTask(dir);
    const config = writeConfig(dir, { task: { train: 'data/train.csv', dev: 'data/dev.csv', skipBadRows: true } });

    const json = await cli(['train', config, '--json'], dir);
    expect(json.code, json.stderr).toBe(2);
    const error = json.lines.find((l) => l.type === 'error');
    const dev = path.join(dir, 'data/dev.csv');
    expect(error.message.split('\n')[0]).toBe(
      `${dev}: task.skipBadRows would skip 35 of its 40 rows (35 rows whose class is not seen in train), more than 25%: the run refuses to start on what is left. The rows:`,
    );
    expect(error.rowCount).toBe(35);
    expect(error.rows).toHaveLength(35);
    expect(error.rows[0]).toEqual({
      file: dev,
      line: 7,
      reason: 'class "c" in field "label" is not seen in train (train\'s classes: a, b)',
      kind: 'class not seen in train',
    });
    expect(error).toMatchObject({ file: dev, line: 7, exitCode: 2 });
    const [run] = listRuns(path.join(dir, 'runs')).runs;
    expect(run.status).toBe('failed');
    expect(run.error?.exitCode).toBe(2);
    expect(run.error?.rowCount).toBe(35);
    expect(run.error?.rows?.map((r) => r.line)).toEqual(Array.from({ length: 35 }, (_, i) => i + 7));

    const terminal = await cli(['train', config], dir);
    expect(terminal.code).toBe(2);
    expect(terminal.stderr).toContain(`error: ${dev}: task.skipBadRows would skip 35 of its 40 rows`);
    expect(terminal.stderr).toContain(`\n${dev}:7: class "c" in field "label" is not seen in train (train's classes: a, b)\n`);
    expect(terminal.stderr).toContain('\n... and 15 more (35 in all)\n');
    expect(terminal.stderr).not.toMatch(DOUBLED_LOCATION);
  });

  it('without skipBadRows: every bad row of every file listed once, each location printed once', async () => {
    const dir = tempDir();
    writeGuttedTask(dir);
    const config = writeConfig(dir, { task: { train: 'data/train.csv', dev: 'data/train.csv' } });
    const r = await cli(['train', config], dir);
    expect(r.code).toBe(2);
    const train = path.join(dir, 'data/train.csv');
    expect(r.stderr).toContain(
      [
        'error: 3 bad rows (fix them, or set task.skipBadRows to skip them):',
        `${train}:7: empty text in field "text"`,
        `${train}:8: missing label in field "label"`,
        `${train}:9: unclosed quote: the field starting "\\"never closed,b\\nswallowed,a\\n\\"q" runs on to line 11, taking in the rows between; close the quote (or double it, "")`,
      ].join('\n'),
    );
    expect(r.stderr).not.toMatch(DOUBLED_LOCATION);
    // One bad row: the plain file:line: reason, once.
    fs.writeFileSync(path.join(dir, 'data', 'one.csv'), 'text,label\nfine,a\nalso fine,b\nno label,\n');
    const one = await cli(['train', writeConfig(dir, { task: { train: 'data/one.csv', dev: 'data/one.csv' } })], dir);
    expect(one.code).toBe(2);
    expect(one.stderr).toContain(`error: ${path.join(dir, 'data/one.csv')}:4: missing label in field "label"\n`);
  });

  it('rows skipped within the limit are listed with file, line and reason in the terminal, --json and run.json', async () => {
    const dir = tempDir();
    writeToyTask(dir);
    fs.appendFileSync(path.join(dir, 'data', 'train.jsonl'), '{"text": "broken",\n{"text": "", "label": "pos"}\n');
    const config = writeConfig(dir, { task: { skipBadRows: true }, training: { maxSteps: 1 } });
    const r = await cli(['train', config, '--json'], dir);
    expect(r.code, r.stderr).toBe(0);
    const log = r.lines.find((l) => l.type === 'log' && l.rows);
    expect(log.level).toBe('warn');
    const train = path.join(dir, 'data/train.jsonl');
    expect(log.message).toBe(
      [
        'skipped 2 bad rows (task.skipBadRows):',
        `  ${train}:193: unparseable JSON line (Expected double-quoted property name in JSON at position 18)`,
        `  ${train}:194: empty text in field "text"`,
      ].join('\n'),
    );
    expect(log.rows.map((x: { line: number }) => x.line)).toEqual([193, 194]);
    const [run] = listRuns(path.join(dir, 'runs')).runs;
    expect(run.skippedRows).toBe(2);
    expect(run.skipped).toEqual(log.rows);
    expect(run.skipped?.[1]).toEqual({ file: train, line: 194, reason: 'empty text in field "text"', kind: 'bad row' });
  });

  it('warns about decimal labels on classification and a method training most of the model, saying what to check', async () => {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, 'data'));
    const rows = Array.from({ length: 40 }, (_, i) => JSON.stringify({ text: `good film ${i}`, label: [0.5, 1.25, 3][i % 3] }));
    fs.writeFileSync(path.join(dir, 'data', 'train.jsonl'), rows.join('\n') + '\n');
    const config = writeConfig(dir, { task: { dev: 'data/train.jsonl' }, method: { bottleneck: 64 }, training: { maxSteps: 1 } });
    const r = await cli(['train', config], dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      `warn: ${path.join(dir, 'data/train.jsonl')}: field "label" holds numbers with decimals (0.5, 1.25), and a classification task made 3 classes of its values; if they are scores, set task.type to "regression"\n`,
    );
    expect(r.stderr).toMatch(/warn: method houlsby trains \d+\.\d% of the base model's parameters \([\d,]+ of [\d,]+\), more than 50%: check method\.bottleneck \(64\), meant to be well below the hidden size d = 32\n/);
    const [run] = listRuns(path.join(dir, 'runs')).runs;
    expect(run.warnings).toHaveLength(2);
  });
});

describe('adapter-lab train: configs that used to crash', () => {
  it('a bottleneck too big to allocate is exit 2 naming the config file and field, before any run folder', async () => {
    const dir = tempDir();
    writeToyTask(dir);
    const config = writeConfig(dir, { method: { bottleneck: 20000000 } });
    const r = await cli(['train', config, '--json'], dir);
    expect(r.code).toBe(2);
    const error = r.lines.find((l) => l.type === 'error');
    expect(error.message).toMatch(/c\.adapter\.json:\d+: method\.bottleneck: gives an adapter with m = 20000000, .* more than the whole base model/);
    expect(error.message).not.toMatch(/Invalid typed array length/);
  });

  it('a deeply nested config is exit 2 naming the file, line and field', async () => {
    const dir = tempDir();
    const text = '{"name": "x", "task": ' + '{"a": '.repeat(20000) + '1' + '}'.repeat(20000) + '}';
    fs.writeFileSync(path.join(dir, 'deep.adapter.json'), text);
    const r = await cli(['train', 'deep.adapter.json'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: ${path.join(dir, 'deep.adapter.json')}:1:${23 + 6 * 31}: task${'.a'.repeat(31)}: nested more than 32 levels deep`);
  });
});
