import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir, tinyModelDir, writeToyTask } from '../helpers/fixtures';
import { cliAsync as cli } from '../helpers/cliRun';

/**
 * Results a user can read from the terminal: eval's per-class scores and confusion matrix, predict naming the
 * classes, `list` and `compare` over run folders, and the README's command list against `--help`. The built bin
 * in child processes, on real run folders.
 */
const ROOT = path.resolve(__dirname, '../..');


function writeConfig(dir: string, name: string, method: object): string {
  const cfg = {
    name,
    task: { name: 'toy', type: 'classification', train: 'data/train.jsonl', dev: 'data/dev.jsonl', textField: 'text', labelField: 'label' },
    model: tinyModelDir({ layers: 2, hidden: 32, heads: 2, intermediate: 64 }),
    method,
    training: { epochs: 1, batchSize: 16, learningRate: 3e-3, maxSeqLength: 16, seed: 1, maxSteps: 6 },
    runsDir: 'runs',
  };
  fs.writeFileSync(path.join(dir, `${name}.adapter.json`), JSON.stringify(cfg, null, 2));
  return `${name}.adapter.json`;
}

const readJson = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8'));

describe('results from the terminal', () => {
  let dir: string;
  let houlsbyRun: string;
  let headRun: string;

  beforeAll(async () => {
    dir = tempDir();
    writeToyTask(dir);
    const train = async (config: string) => {
      const r = await cli(['train', config, '--json'], dir);
      expect(r.code, r.stderr).toBe(0);
      return r.lines[r.lines.length - 1].runDir as string;
    };
    houlsbyRun = await train(writeConfig(dir, 'toy-houlsby', { type: 'houlsby', bottleneck: 4 }));
    headRun = await train(writeConfig(dir, 'toy-head', { type: 'head' }));
  }, 120_000);

  it('eval: per-class precision, recall, F1 and the confusion matrix, consistent with the labels and the accuracy', async () => {
    const r = await cli(['eval', houlsbyRun, '--json'], dir);
    expect(r.code, r.stderr).toBe(0);
    const result = r.lines.find((l) => l.type === 'result');
    const { labels, perClass, confusion } = result.classes;
    expect(labels).toEqual(['neg', 'pos']);
    // Rows are true classes: each row sums to that class's count in the dev file.
    const dev = fs.readFileSync(path.join(dir, 'data/dev.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).label);
    expect(confusion.map((row: number[]) => row.reduce((a, b) => a + b, 0))).toEqual(labels.map((l: string) => dev.filter((x) => x === l).length));
    expect(perClass.map((c: { support: number }) => c.support)).toEqual(confusion.map((row: number[]) => row[0] + row[1]));
    const correct = confusion[0][0] + confusion[1][1];
    expect(result.metrics.accuracy).toBeCloseTo(correct / dev.length, 12);
    for (const [c, s] of perClass.entries()) {
      const predicted = confusion[0][c] + confusion[1][c];
      expect(s.label).toBe(labels[c]);
      expect(s.precision).toBeCloseTo(predicted ? confusion[c][c] / predicted : 0, 12);
      expect(s.recall).toBeCloseTo(confusion[c][c] / s.support, 12);
      expect(s.f1).toBeCloseTo((2 * confusion[c][c]) / (s.support + predicted), 12);
    }
    // The same in eval-dev.json, and as a table on the terminal.
    expect(readJson(path.join(houlsbyRun, 'eval-dev.json')).classes).toEqual(result.classes);
    const terminal = await cli(['eval', houlsbyRun], dir);
    expect(terminal.stdout).toMatch(/^class\s+precision\s+recall\s+f1\s+support$/m);
    expect(terminal.stdout).toMatch(new RegExp(`^neg\\s+${perClass[0].precision.toFixed(4)}\\s+${perClass[0].recall.toFixed(4)}\\s+${perClass[0].f1.toFixed(4)}\\s+${perClass[0].support}$`, 'm'));
    expect(terminal.stdout).toMatch(new RegExp(`^pos\\s+${confusion[1][0]}\\s+${confusion[1][1]}$`, 'm'));
  });

  it('predict names the classes, in the order of the probabilities', async () => {
    const r = await cli(['predict', houlsbyRun, '--input', 'data/dev.jsonl', '--json'], dir);
    expect(r.code, r.stderr).toBe(0);
    const predictions = r.lines.filter((l) => l.type === 'prediction');
    expect(predictions).toHaveLength(48);
    for (const p of predictions) {
      expect(p.labels).toEqual(['neg', 'pos']);
      const best = p.probabilities.indexOf(Math.max(...p.probabilities));
      expect(p.prediction).toBe(p.labels[best]);
    }
  });

  it('predict on an input file with bad rows lists every one of them, exit 2', async () => {
    fs.writeFileSync(path.join(dir, 'bad-input.jsonl'), '{"text": "good film"}\n{"text": ""}\n{"txt": "typo"}\n{"text": "fine"}\n{broken\n');
    const r = await cli(['predict', houlsbyRun, '--input', 'bad-input.jsonl'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      [
        'error: 3 bad rows:',
        'bad-input.jsonl:2: missing or empty text in field "text"',
        'bad-input.jsonl:3: missing or empty text in field "text"',
        'bad-input.jsonl:5: unparseable JSON line',
      ].join('\n'),
    );
  });

  it('list: every run of the runs folder with name, status, method, task, metric and step', async () => {
    const r = await cli(['list', 'runs', '--json'], dir);
    expect(r.code, r.stderr).toBe(0);
    const result = r.lines.find((l) => l.type === 'result');
    expect(result.runsDir).toBe(path.join(dir, 'runs'));
    const byName = Object.fromEntries(result.runs.map((x: { name: string }) => [x.name, x]));
    expect(Object.keys(byName).sort()).toEqual(['toy-head', 'toy-houlsby']);
    for (const [name, runDir, method] of [
      ['toy-houlsby', houlsbyRun, 'houlsby'],
      ['toy-head', headRun, 'head'],
    ]) {
      const record = readJson(path.join(runDir, 'run.json'));
      expect(byName[name]).toMatchObject({ dir: runDir, status: 'done', method, task: 'toy', metric: 'accuracy', value: record.best.value, step: 6 });
    }
    // The terminal table; with no argument, the workspace's .adapter-lab/runs (here empty).
    const terminal = await cli(['list', 'runs'], dir);
    expect(terminal.stdout).toMatch(/^name\s+status\s+method\s+task\s+metric\s+step$/m);
    const houlsby = readJson(path.join(houlsbyRun, 'run.json'));
    expect(terminal.stdout).toMatch(new RegExp(`^toy-houlsby\\s+done\\s+houlsby\\s+toy\\s+accuracy ${houlsby.best.value.toFixed(4)}\\s+6$`, 'm'));
    fs.mkdirSync(path.join(dir, '.adapter-lab'), { recursive: true });
    expect((await cli(['list'], dir)).stdout).toContain(`no runs in ${path.join(dir, '.adapter-lab', 'runs')}`);
  });

  it('compare: the runs side by side, with parameter counts and dev metrics', async () => {
    const r = await cli(['compare', houlsbyRun, headRun, '--json'], dir);
    expect(r.code, r.stderr).toBe(0);
    const rows = r.lines.find((l) => l.type === 'result').runs;
    expect(rows.map((x: { run: { name: string } }) => x.run.name)).toEqual(['toy-houlsby', 'toy-head']);
    for (const [row, runDir] of [
      [rows[0], houlsbyRun],
      [rows[1], headRun],
    ]) {
      const record = readJson(path.join(runDir, 'run.json'));
      expect(row).toMatchObject({ trainableParams: record.params.trainable, baseParams: record.params.base, best: record.best.value, metric: 'accuracy' });
      expect(row.devMetrics.accuracy).toBe(record.best.value);
    }
    expect(rows[0].trainableParams).toBeGreaterThan(rows[1].trainableParams);
    const terminal = await cli(['compare', houlsbyRun, headRun], dir);
    expect(terminal.stdout).toMatch(/^run\s+method\s+task\s+status\s+trainable\s+% of base\s+dev accuracy\s+dev loss\s+dev macroF1\s+dev matthews$/m);
    expect(terminal.stdout).toMatch(new RegExp(`^toy-head\\s+head\\s+toy\\s+done\\s+${rows[1].trainableParams.toLocaleString('en-US')}\\s+${rows[1].trainablePercent.toFixed(2)}%`, 'm'));
    // A path that is no run is bad input.
    expect((await cli(['compare', 'nowhere'], dir)).code).toBe(2);
  });
});

describe('the README command list', () => {
  it('names exactly the commands of --help', async () => {
    const commandsIn = (text: string) => new Set([...text.matchAll(/^\s*adapter-lab ([a-z-]+)/gm)].map((m) => m[1]));
    const help = (await cli(['--help'], process.cwd())).stdout;
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## The command line'));
    const block = section.slice(section.indexOf('```sh'), section.indexOf('```', section.indexOf('```sh') + 5));
    const fromHelp = commandsIn(help);
    expect(fromHelp.size).toBeGreaterThan(10);
    expect([...commandsIn(block)].sort()).toEqual([...fromHelp].sort());
  });
});
