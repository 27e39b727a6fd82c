import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPretrainConfig } from '../../../src/engine/pretrain/config';
import { ConfigError } from '../../../src/engine/config/load';
import { tempDir, tinyPretrainConfig, writeTinyCorpus } from './helpers';

function writeConfig(dir: string, value: unknown, name = 'pretrain.json'): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  return file;
}

function problemsOf(fn: () => unknown): { field?: string; line?: number; message: string }[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('pretrain config', () => {
  const dir = tempDir();
  writeTinyCorpus(dir);

  it('loads a valid config, fills defaults and resolves paths against the config file', () => {
    const cfg = loadPretrainConfig(writeConfig(dir, tinyPretrainConfig()));
    expect(cfg.train).toEqual([path.join(dir, 'train.txt')]);
    expect(cfg.heldout).toBe(path.join(dir, 'heldout.txt'));
    expect(cfg.output).toBe(path.join(dir, 'model'));
    expect(cfg.checkpointDir).toBe(path.join(dir, 'model', 'checkpoint'));
    expect(cfg.model.hiddenAct).toBe('quick_gelu');
    expect(cfg.model.dropout).toBe(0.1);
    expect(cfg.training.weightDecay).toBe(0.01);
    expect(cfg.training.maxGradNorm).toBe(1);
    expect(cfg.training.maskProbability).toBe(0.15);
    expect(cfg.vocab).toBeNull();
  });

  it('accepts comments and trailing commas', () => {
    const text = '// recipe\n' + JSON.stringify(tinyPretrainConfig(), null, 2).replace(/\n}$/, ',\n}');
    expect(loadPretrainConfig(writeConfig(dir, text, 'commented.json')).name).toBe('tiny');
  });

  it('names every bad field, with its line, and says what is wrong', () => {
    const raw = tinyPretrainConfig({ vocabSize: 'many', colour: 'blue', heldout: 'nope.txt' }, { steps: 0, learningRate: -1, batchSize: 2.5 });
    delete (raw.model as Record<string, unknown>).heads;
    const file = writeConfig(dir, raw, 'bad.json');
    const problems = problemsOf(() => loadPretrainConfig(file));
    const byField = new Map(problems.map((p) => [p.field, p]));
    expect(byField.get('vocabSize')?.message).toMatch(/integer/);
    expect(byField.get('colour')?.message).toMatch(/unknown field/);
    expect(byField.get('heldout')?.message).toMatch(/file not found/);
    expect(byField.get('training.steps')?.message).toMatch(/integer >= 1/);
    expect(byField.get('training.learningRate')?.message).toMatch(/number > 0/);
    expect(byField.get('training.batchSize')?.message).toMatch(/got 2.5/);
    expect(byField.get('model.heads')?.message).toMatch(/missing/);
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    const stepsLine = byField.get('training.steps')!.line!;
    expect(lines[stepsLine - 1]).toContain('"steps"');
    try {
      loadPretrainConfig(file);
    } catch (err) {
      expect((err as Error).message).toContain(`${file}:${stepsLine}: training.steps: must be an integer >= 1, got 0`);
    }
  });

  it('checks fields against each other', () => {
    const raw = tinyPretrainConfig({ model: { layers: 2, hidden: 30, heads: 4, intermediate: 64, maxPositions: 16 } }, { warmupSteps: 100, maxSeqLength: 24 });
    const problems = problemsOf(() => loadPretrainConfig(writeConfig(dir, raw, 'cross.json')));
    expect(problems.map((p) => p.field).sort()).toEqual(['model.heads', 'training.maxSeqLength', 'training.warmupSteps']);
  });

  it('reports invalid JSON with its line', () => {
    const problems = problemsOf(() => loadPretrainConfig(writeConfig(dir, '{\n  "name": "x",\n  "train": [\n}', 'broken.json')));
    expect(problems[0].message).toMatch(/invalid JSON/);
    expect(problems[0].line).toBe(4);
  });

  it('takes a fixed vocabulary instead of learning one, and checks it', () => {
    fs.writeFileSync(path.join(dir, 'vocab.txt'), ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'the', 'whale'].join('\n') + '\n');
    const cfg = loadPretrainConfig(writeConfig(dir, { ...tinyPretrainConfig({ vocab: 'vocab.txt' }), vocabSize: undefined }, 'fixed.json'));
    expect(cfg.vocab).toBe(path.join(dir, 'vocab.txt'));
    expect(cfg.vocabSize).toBe(7);
    fs.writeFileSync(path.join(dir, 'bad-vocab.txt'), 'the\nwhale\n');
    const problems = problemsOf(() => loadPretrainConfig(writeConfig(dir, tinyPretrainConfig({ vocab: 'bad-vocab.txt' }), 'bad-fixed.json')));
    expect(problems.map((p) => p.field)).toContain('vocab');
  });
});
