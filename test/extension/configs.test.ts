import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/engine/config/load';
import { configFileName, METHODS, newExperimentText } from '../../src/extension/configs/newExperiment';
import { problemMessage, problemRange, validateConfigText } from '../../src/extension/configs/validate';
import { tempDir } from '../helpers/fixtures';
import { catalogEntry, catalogLearningRate } from '../../src/engine/methods/catalog';

const EXAMPLES = path.resolve(__dirname, '../../examples');

describe('config diagnostics', () => {
  it('finds nothing wrong with the example configs', () => {
    for (const f of fs.readdirSync(EXAMPLES).filter((f) => f.endsWith('.adapter.json'))) {
      const file = path.join(EXAMPLES, f);
      expect(validateConfigText(fs.readFileSync(file, 'utf8'), file), f).toEqual([]);
    }
  });

  it('locates a wrong value on its line and field, as the engine reports it', () => {
    const text = fs.readFileSync(path.join(EXAMPLES, 'spam-houlsby.adapter.json'), 'utf8').replace('"learningRate": 1e-3', '"learningRate": -1');
    const file = path.join(EXAMPLES, 'spam-houlsby.adapter.json');
    const problems = validateConfigText(text, file);
    expect(problems).toHaveLength(1);
    const p = problems[0];
    expect(p.field).toBe('training.learningRate');
    const lineNo = text.split('\n').findIndex((l) => l.includes('"learningRate": -1')) + 1;
    expect(p.line).toBe(lineNo);
    const r = problemRange(text, p);
    expect(r.line).toBe(lineNo - 1);
    expect(text.split('\n')[r.line].slice(r.start, r.end)).toBe('"learningRate": -1,');
    expect(problemMessage(p)).toMatch(/^training\.learningRate: /);
  });

  it('reports syntax errors with line and column, and an unknown key with its name', () => {
    const file = '/w/x.adapter.json';
    const syntax = validateConfigText('{\n  "name": "x",\n  "task": {\n}', file);
    expect(syntax[0].message).toMatch(/syntax error/);
    expect(syntax[0].line).toBeGreaterThan(0);
    const range = problemRange('{\n  "name": "x",\n  "task": {\n}', syntax[0]);
    expect(range.end).toBeGreaterThan(range.start);
    const unknown = validateConfigText(
      JSON.stringify({ name: 'x', task: { name: 't', type: 'classification', train: 'a.jsonl', textField: 'text', labelField: 'label' }, model: 'builtin:tiny-bert', method: { type: 'houlsby', botleneck: 8 } }, null, 2),
      file,
    );
    expect(unknown.some((p) => /botleneck/.test(p.message + (p.field ?? '')))).toBe(true);
  });
});

describe('New Experiment', () => {
  it('writes a valid config for every method, from an example config of another folder', () => {
    const target = tempDir();
    const base = path.join(EXAMPLES, 'spam-houlsby.adapter.json');
    for (const m of METHODS) {
      const file = path.join(target, configFileName(`spam-${m.type}`, new Set()));
      fs.writeFileSync(file, newExperimentText({ name: `spam-${m.type}`, method: m.type, baseText: fs.readFileSync(base, 'utf8'), baseDir: EXAMPLES, targetDir: target }));
      const cfg = loadConfig(file);
      expect(cfg.method.type).toBe(m.type);
      if (!catalogEntry(m.type).families.includes('bert')) {
        // An image method does not take a text task: it starts from the image starter, on the built-in network.
        expect([cfg.task.type, cfg.model, cfg.training.learningRate]).toEqual(['image-classification', 'builtin:resnet-fashion', catalogLearningRate(m.type, 'image-classification')]);
        continue;
      }
      // The data paths still point at the example's files.
      expect(cfg.task.train).toBe(path.join(EXAMPLES, 'data/spam/train.jsonl'));
      expect(fs.existsSync(cfg.task.train as string)).toBe(true);
    }
  });

  it('keeps an image config\'s task (its IDX pair rebased) for an image method, and takes the family\'s learning rate', () => {
    const baseDir = tempDir();
    const target = tempDir();
    const baseText = JSON.stringify({ name: 'digits', task: { name: 'digits', type: 'image-classification', train: { images: 'd/train-images.idx', labels: 'd/train-labels.idx' }, split: { dev: 0.2 } }, model: 'net', method: { type: 'batchnorm' }, training: { epochs: 2 } });
    const file = path.join(target, 'x.adapter.json');
    fs.writeFileSync(file, newExperimentText({ name: 'digits-full', method: 'full', baseText, baseDir, targetDir: target }));
    const cfg = loadConfig(file);
    expect(cfg.task.train).toEqual({ images: path.join(baseDir, 'd/train-images.idx'), labels: path.join(baseDir, 'd/train-labels.idx') });
    expect([cfg.model, cfg.training.epochs, cfg.training.learningRate]).toEqual([path.join(baseDir, 'net'), 2, 1e-3]);
  });

  it('writes a template that validates when there is no config to start from', () => {
    const target = tempDir();
    const file = path.join(target, 'x.adapter.json');
    fs.writeFileSync(file, newExperimentText({ name: 'my-task-pfeiffer', method: 'pfeiffer', targetDir: target }));
    expect(loadConfig(file).name).toBe('my-task-pfeiffer');
  });

  it('picks a file name that is free', () => {
    expect(configFileName('spam houlsby/64', new Set())).toBe('spam-houlsby-64.adapter.json');
    expect(configFileName('a', new Set(['a.adapter.json', 'a-2.adapter.json']))).toBe('a-3.adapter.json');
  });
});
