import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, checkAgainstModel, findWorkspaceRoot, loadConfig, methodSizeWarnings, resolveConfig, bottleneckSize } from '../../../src/engine/config/load';
import { UserInputError } from '../../../src/engine/errors';
import { SPEC_EXAMPLE, lineOf, tempWorkspace, writeConfig } from './helpers';

const dirs: string[] = [];
function ws(): string {
  const d = tempWorkspace();
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** Loads a config expecting a ConfigError; returns it. */
function loadError(file: string): ConfigError {
  try {
    loadConfig(file);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toBeInstanceOf(UserInputError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

const MINIMAL = (over: { task?: string; method?: string; training?: string; extra?: string } = {}) => `{
  // a comment: configs are JSON with comments
  "name": "t",
  "task": {
    "name": "spam",
    "type": "classification",
    "train": "train.jsonl",
    "textField": "text",
    "labelField": "label"${over.task ?? ''}
  },
  "model": "builtin:tiny-bert",
  "method": {
    "type": "houlsby"${over.method ?? ''}
  },
  "training": {
    "epochs": 2${over.training ?? ''}
  }${over.extra ?? ''}
}
`;

describe('loadConfig: the SPEC example', () => {
  it('validates and resolves: paths absolute, defaults filled', () => {
    const root = ws();
    const file = writeConfig(root, 'experiments/spam.adapter.json', SPEC_EXAMPLE);
    const cfg = loadConfig(file);
    const dir = path.join(root, 'experiments');
    expect(cfg.configFile).toBe(file);
    expect(cfg.name).toBe('spam-houlsby-64');
    expect(cfg.task).toMatchObject({
      name: 'spam',
      type: 'classification',
      train: path.join(dir, 'data/spam/train.jsonl'),
      dev: path.join(dir, 'data/spam/dev.jsonl'),
      test: path.join(dir, 'data/spam/test.jsonl'),
      format: 'auto',
      header: true,
      textField: 'text',
      textPairField: null,
      labelField: 'label',
      skipBadRows: false,
      split: null,
      labels: null,
    });
    expect(cfg.model).toBe('builtin:tiny-bert');
    expect(cfg.method).toEqual({
      type: 'houlsby',
      bottleneck: 64,
      nonLinearity: 'gelu',
      initStd: 0.01,
      trainLayerNorm: true,
      leaveOut: [],
      dropLowest: 0,
    });
    expect(cfg.training).toEqual({
      epochs: 3,
      batchSize: 32,
      learningRate: 3e-4,
      warmupRatio: 0.1,
      weightDecay: 0.01,
      maxGradNorm: 1.0,
      dropout: null,
      maxSeqLength: 128,
      seed: 42,
      metric: 'accuracy',
      evalEverySteps: 0,
      cacheFrozenLayers: true,
      evalBatchSize: 128,
      maxSteps: null,
    });
    expect(cfg.runsDir).toBe(path.join(root, '.adapter-lab', 'runs'));
    expect(cfg.sweep).toEqual({ 'training.learningRate': [3e-5, 3e-4, 3e-3], 'method.bottleneck': [8, 64, 256] });
    // the resolved config survives a JSON round trip (it is stored in run.json) and resolves to itself
    const again = resolveConfig(JSON.parse(JSON.stringify({ ...cfg, configFile: undefined })), file, dir);
    expect(again).toEqual(cfg);
  });

  it('fills method-dependent defaults', () => {
    const root = ws();
    const base = JSON.parse(SPEC_EXAMPLE.replace(/\/\/.*$/gm, ''));
    delete base.sweep;
    base.training = {};
    const resolve = (method: object, task: object = {}) =>
      resolveConfig({ ...base, method, task: { ...base.task, ...task } }, null, root);
    expect(resolve({ type: 'houlsby' }).training.learningRate).toBe(3e-4);
    expect(resolve({ type: 'pfeiffer' }).method).toMatchObject({ bottleneck: 64, trainLayerNorm: true, nonLinearity: 'gelu' });
    expect(resolve({ type: 'houlsby', reductionFactor: 16 }).method.bottleneck).toBeUndefined();
    expect(resolve({ type: 'adapterbias' }).method).toMatchObject({ trainLayerNorm: true, sharedAlpha: false, l0Lambda: 0 });
    expect(resolve({ type: 'adapterbias' }).method.bottleneck).toBeUndefined();
    expect(resolve({ type: 'full' }).training.learningRate).toBe(2e-5);
    expect(resolve({ type: 'top-k', k: 2 }).training.learningRate).toBe(2e-5);
    for (const type of ['head', 'bitfit', 'layernorm']) {
      const c = resolve({ type });
      expect(c.training.learningRate).toBe(1e-3);
      expect(c.method.trainLayerNorm).toBe(false);
    }
    const reg = resolve({ type: 'houlsby' }, { type: 'regression' });
    expect(reg.training.metric).toBe('pearson');
    const fusion = resolve({ type: 'fusion', adapters: ['runs/a', '/abs/b'] });
    expect(fusion.method.adapters).toEqual([path.join(root, 'runs/a'), '/abs/b']);
    const local = resolveConfig({ ...base, model: 'models/bert', runsDir: 'out/runs', method: { type: 'houlsby' } }, null, root);
    expect(local.model).toBe(path.join(root, 'models/bert'));
    expect(local.runsDir).toBe(path.join(root, 'out/runs'));
    expect(local.configFile).toBeNull();
  });

  it('finds the workspace for the default runsDir', () => {
    const root = ws();
    fs.mkdirSync(path.join(root, 'a/b/c'), { recursive: true });
    fs.writeFileSync(path.join(root, 'a/package.json'), '{}');
    expect(findWorkspaceRoot(path.join(root, 'a/b/c'))).toBe(path.join(root, 'a'));
    const file = writeConfig(root, 'a/b/c/x.adapter.json', MINIMAL());
    expect(loadConfig(file).runsDir).toBe(path.join(root, 'a', '.adapter-lab', 'runs'));
    expect(findWorkspaceRoot(path.join(root, 'x'))).toBe(root);
  });

  it('accepts a $schema key, comments and trailing commas', () => {
    const root = ws();
    const text = MINIMAL({ extra: ',\n  "$schema": "../schema/adapter-config.schema.json",' });
    expect(loadConfig(writeConfig(root, 'x.adapter.json', text)).name).toBe('t');
  });
});

describe('loadConfig: errors name the file, the line and the field', () => {
  it('wrong type', () => {
    const root = ws();
    const text = MINIMAL({ training: ',\n    "learningRate": "fast"' });
    const file = writeConfig(root, 'x.adapter.json', text);
    const err = loadError(file);
    expect(err.message).toBe(`${file}:${lineOf(text, '"learningRate"')}: training.learningRate: must be number, got "fast"`);
    expect(err.location).toEqual({ file, line: lineOf(text, '"learningRate"'), field: 'training.learningRate' });
  });

  it('unknown key (typo), with a suggestion', () => {
    const root = ws();
    const text = MINIMAL({ training: ',\n    "learningrate": 0.001' });
    const file = writeConfig(root, 'x.adapter.json', text);
    expect(loadError(file).message).toBe(
      `${file}:${lineOf(text, '"learningrate"')}: training.learningrate: unknown field (did you mean "learningRate"?)`,
    );
  });

  it('missing required field: the line of the parent object', () => {
    const root = ws();
    const text = MINIMAL().replace('    "labelField": "label"', '    "labelFeld": "label"');
    const file = writeConfig(root, 'x.adapter.json', text);
    const err = loadError(file);
    expect(err.problems).toHaveLength(2);
    expect(err.message).toContain(`${file}:${lineOf(text, '"task"')}: task.labelField: is required`);
    expect(err.message).toContain(`${file}:${lineOf(text, '"labelFeld"')}: task.labelFeld: unknown field (did you mean "labelField"?)`);
  });

  it('out-of-range numbers', () => {
    const root = ws();
    const text = MINIMAL({ training: ',\n    "warmupRatio": 1.5,\n    "dropout": 1', method: ',\n    "bottleneck": 0' });
    const file = writeConfig(root, 'x.adapter.json', text);
    const lines = loadError(file).message.split('\n');
    expect(lines).toEqual([
      `${file}:${lineOf(text, '"bottleneck"')}: method.bottleneck: must be >= 1, got 0`,
      `${file}:${lineOf(text, '"warmupRatio"')}: training.warmupRatio: must be <= 1, got 1.5`,
      `${file}:${lineOf(text, '"dropout"')}: training.dropout: must be < 1, got 1`,
    ]);
  });

  it('epochs must be an integer >= 1; leaveOut items integers >= 0', () => {
    const root = ws();
    const text = MINIMAL({ method: ',\n    "leaveOut": [0,\n      -1]' }).replace('"epochs": 2', '"epochs": 1.5');
    const file = writeConfig(root, 'x.adapter.json', text);
    const msg = loadError(file).message;
    expect(msg).toContain(`${file}:${lineOf(text, '-1]')}: method.leaveOut[1]: must be >= 0, got -1`);
    expect(msg).toContain(`${file}:${lineOf(text, '"epochs"')}: training.epochs: must be integer, got 1.5`);
  });

  it('bad enum, with a suggestion', () => {
    const root = ws();
    const text = MINIMAL().replace('"type": "houlsby"', '"type": "housby"');
    const file = writeConfig(root, 'x.adapter.json', text);
    const msg = loadError(file).message;
    expect(msg).toMatch(new RegExp(`^${escape(file)}:${lineOf(text, '"housby"')}: method\\.type: must be one of "houlsby", "pfeiffer", .*"scratch", got "housby" \\(did you mean "houlsby"\\?\\)$`));
  });

  it('method rules: top-k needs k, fusion needs adapters, not both bottleneck and reductionFactor', () => {
    const root = ws();
    let text = MINIMAL().replace('"type": "houlsby"', '"type": "top-k"');
    let file = writeConfig(root, 'a.adapter.json', text);
    expect(loadError(file).message).toBe(`${file}:${lineOf(text, '"method"')}: method.k: is required for method "top-k"`);
    text = MINIMAL().replace('"type": "houlsby"', '"type": "fusion"');
    file = writeConfig(root, 'b.adapter.json', text);
    expect(loadError(file).message).toBe(`${file}:${lineOf(text, '"method"')}: method.adapters: is required for method "fusion"`);
    text = MINIMAL({ method: ',\n    "bottleneck": 8,\n    "reductionFactor": 16' });
    file = writeConfig(root, 'c.adapter.json', text);
    expect(loadError(file).message).toBe(
      `${file}:${lineOf(text, '"reductionFactor"')}: method.reductionFactor: give either "bottleneck" or "reductionFactor", not both`,
    );
  });

  it('metric must fit the task type', () => {
    const root = ws();
    let text = MINIMAL({ training: ',\n    "metric": "pearson"' });
    let file = writeConfig(root, 'a.adapter.json', text);
    expect(loadError(file).message).toMatch(new RegExp(`^${escape(file)}:${lineOf(text, '"metric"')}: training\\.metric: "pearson" is a regression metric`));
    text = MINIMAL({ training: ',\n    "metric": "macroF1"' }).replace('"classification"', '"regression"');
    file = writeConfig(root, 'b.adapter.json', text);
    expect(loadError(file).message).toMatch(/training\.metric: "macroF1" is a classification metric/);
    text = MINIMAL({ training: ',\n    "metric": "spearman"' }).replace('"classification"', '"regression"');
    expect(loadConfig(writeConfig(root, 'c.adapter.json', text)).training.metric).toBe('spearman');
  });

  it('split fractions in (0, 1)', () => {
    const root = ws();
    const text = MINIMAL({ task: ',\n    "split": { "dev": 0, "test": 1 }' });
    const file = writeConfig(root, 'x.adapter.json', text);
    const msg = loadError(file).message;
    expect(msg).toContain(`${file}:${lineOf(text, '"split"')}: task.split.dev: must be > 0, got 0`);
    expect(msg).toContain('task.split.test: must be < 1, got 1');
  });

  it('JSON syntax errors give line and column', () => {
    const root = ws();
    const text = '{\n  "name": "t",\n  "task": { "name": "x" "type": "classification" }\n}\n';
    const file = writeConfig(root, 'x.adapter.json', text);
    const err = loadError(file);
    expect(err.message.split('\n')[0]).toBe(`${file}:3:25: syntax error: comma expected`);
    expect(err.problems[0]).toMatchObject({ line: 3, column: 25 });
  });

  it('an empty file, a missing file, a non-object, duplicate keys', () => {
    const root = ws();
    expect(loadError(writeConfig(root, 'e.adapter.json', '')).message).toMatch(/e\.adapter\.json:1:1: syntax error/);
    expect(() => loadConfig(path.join(root, 'nope.adapter.json'))).toThrow(/nope\.adapter\.json: cannot read the config: no such file/);
    expect(loadError(writeConfig(root, 'a.adapter.json', '[1, 2]')).message).toMatch(/a\.adapter\.json:1: the config must be a JSON object, got an array/);
    const text = MINIMAL({ training: ',\n    "epochs": 3' });
    const file = writeConfig(root, 'd.adapter.json', text);
    expect(loadError(file).message).toBe(`${file}:${lineOf(text, '"epochs": 3')}:5: training.epochs: duplicate key (given more than once)`);
  });

  it('resolveConfig (no source text) names the file and the field without a line', () => {
    expect(() => resolveConfig({ name: 't' }, 'cfg.adapter.json', '/tmp')).toThrow(/^cfg\.adapter\.json: task: is required$/m);
  });
});

describe('loadConfig: nesting too deep for any config', () => {
  it('is a ConfigError naming the file, line and field, not a stack overflow', () => {
    const root = ws();
    const depth = 20000;
    const text = '{\n  "name": "t",\n  "task": ' + '{"a":'.repeat(depth) + '1' + '}'.repeat(depth) + '\n}\n';
    const file = writeConfig(root, 'deep.adapter.json', text);
    const err = loadError(file);
    // The 33rd open bracket: the root, task's object, and 31 levels of "a"; task's object is at column 11.
    expect(err.message).toBe(`${file}:3:${11 + 5 * 31}: task${'.a'.repeat(31)}: nested more than 32 levels deep; no config field goes this deep`);
    expect(err.problems[0]).toMatchObject({ line: 3, field: `task${'.a'.repeat(31)}` });
  });

  it('counts array items in the field it names', () => {
    const root = ws();
    const text = '{"sweep": {"x": [1, ' + '['.repeat(40) + ']'.repeat(40) + ']}}';
    const file = writeConfig(root, 'deep2.adapter.json', text);
    expect(loadError(file).problems[0].field).toBe(`sweep.x[1]${'[0]'.repeat(29)}`);
  });
});

describe('checkAgainstModel', () => {
  it('checks layer indexes and per-layer lists against the model', () => {
    const root = ws();
    const text = MINIMAL({ method: ',\n    "leaveOut": [0, 5],\n    "bottleneckPerLayer": [8, 8, 8]' });
    const file = writeConfig(root, 'x.adapter.json', text);
    const cfg = loadConfig(file);
    expect(() => checkAgainstModel(cfg, 6, 128)).toThrow(/bottleneckPerLayer: must have one entry per layer \(6\), got 3/);
    let err: unknown;
    try {
      checkAgainstModel(cfg, 4, 128);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toContain(`${file}:${lineOf(text, '"leaveOut"')}: method.leaveOut[1]: layer 5 does not exist; the model has 4 layers (0..3)`);
    expect(() => checkAgainstModel({ ...cfg, method: { ...cfg.method, leaveOut: [], bottleneckPerLayer: undefined } }, 4, 128)).not.toThrow();
  });

  it('refuses a leaveOut of every layer (it would train LayerNorms only), naming the field', () => {
    const root = ws();
    const text = MINIMAL({ method: ',\n    "leaveOut": [3, 2, 1, 0]' });
    const file = writeConfig(root, 'x.adapter.json', text);
    const cfg = loadConfig(file);
    expect(() => checkAgainstModel(cfg, 4, 128)).toThrow(
      `${file}:${lineOf(text, '"leaveOut"')}: method.leaveOut: leaves out every layer (the model has 4 layers (0..3)): houlsby would add nothing and train only LayerNorms and the head; keep some layers, or use method "layernorm" or "head" if that is the aim`,
    );
    expect(() => checkAgainstModel(cfg, 5, 128)).not.toThrow();
    // Methods without per-layer modules ignore leaveOut.
    expect(() => checkAgainstModel({ ...cfg, method: { ...cfg.method, type: 'bitfit' } }, 4, 128)).not.toThrow();
  });

  it('refuses a written maxSeqLength above the model\'s max_position_embeddings, naming the field', () => {
    const root = ws();
    const text = MINIMAL({ training: ',\n    "maxSeqLength": 100000' });
    const file = writeConfig(root, 'x.adapter.json', text);
    const cfg = loadConfig(file);
    expect(() => checkAgainstModel(cfg, 4, 128, { maxPositions: 512 })).toThrow(
      `${file}:${lineOf(text, '"maxSeqLength"')}: training.maxSeqLength: must be at most the model's max_position_embeddings, 512 (it has no position embedding past that)`,
    );
    expect(() => checkAgainstModel({ ...cfg, training: { ...cfg.training, maxSeqLength: 512 } }, 4, 128, { maxPositions: 512 })).not.toThrow();
  });

  it('refuses a bottleneck that makes one adapter bigger than the whole base model, before allocating it', () => {
    const root = ws();
    const text = MINIMAL({ method: ',\n    "bottleneck": 20000000' });
    const file = writeConfig(root, 'x.adapter.json', text);
    const cfg = loadConfig(file);
    expect(() => checkAgainstModel(cfg, 4, 256, { baseParams: 2_000_000 })).toThrow(
      `${file}:${lineOf(text, '"bottleneck"')}: method.bottleneck: gives an adapter with m = 20000000, 2md + d + m = 10,260,000,256 parameters (d = 256), more than the whole base model (2,000,000); a bottleneck is meant to be well below d`,
    );
    // 2·1000·256 + 256 + 1000 = 513,256: allowed (a warning once built, see methodSizeWarnings).
    expect(() => checkAgainstModel({ ...cfg, method: { ...cfg.method, bottleneck: 1000 } }, 4, 256, { baseParams: 2_000_000 })).not.toThrow();
  });

  it('methodSizeWarnings flags a parameter-efficient method that trains most of the model, saying what to check', () => {
    const root = ws();
    const cfg = loadConfig(writeConfig(root, 'x.adapter.json', MINIMAL({ method: ',\n    "bottleneck": 1000' })));
    expect(methodSizeWarnings(cfg, { trainable: 4_135_000, base: 2_662_000, trainablePercent: 155.3 }, 256)).toEqual([
      "method houlsby trains 155.3% of the base model's parameters (4,135,000 of 2,662,000), more than 50%: check method.bottleneck (1000), meant to be well below the hidden size d = 256",
    ]);
    expect(methodSizeWarnings(cfg, { trainable: 100_000, base: 2_662_000, trainablePercent: 3.8 }, 256)).toEqual([]);
    expect(methodSizeWarnings({ ...cfg, method: { ...cfg.method, type: 'full' } }, { trainable: 2_662_000, base: 2_662_000, trainablePercent: 100 }, 256)).toEqual([]);
  });

  it('bottleneckSize', () => {
    const m = { type: 'houlsby' as const, nonLinearity: 'gelu' as const, initStd: 0.01, trainLayerNorm: true, leaveOut: [], dropLowest: 0 };
    expect(bottleneckSize({ ...m, reductionFactor: 16 }, 0, 768)).toBe(48);
    expect(bottleneckSize({ ...m, bottleneck: 8, bottleneckPerLayer: [4, 2] }, 1, 768)).toBe(2);
    expect(bottleneckSize({ ...m, bottleneck: 8 }, 3, 768)).toBe(8);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
