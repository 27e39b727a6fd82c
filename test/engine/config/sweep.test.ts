import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/engine/config/load';
import { expandSweep, sweepAxisPaths } from '../../../src/engine/config/sweep';
import type { ResolvedConfig } from '../../../src/engine/config/types';
import { SPEC_EXAMPLE, lineOf, tempWorkspace, writeConfig } from './helpers';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function load(text: string, rel = 'exp/x.adapter.json'): { cfg: ResolvedConfig; file: string; root: string } {
  const root = tempWorkspace();
  dirs.push(root);
  const file = writeConfig(root, rel, text);
  return { cfg: loadConfig(file), file, root };
}
function withSweep(sweep: string): string {
  return SPEC_EXAMPLE.replace(/"sweep": \{.*\}/, `"sweep": ${sweep}`);
}

describe('expandSweep', () => {
  it('2x2 grid: 4 configs, right values and names, stable order', () => {
    const { cfg } = load(withSweep('{ "training.learningRate": [3e-4, 1e-3],\n             "method.bottleneck": [8, 64] }'));
    const points = expandSweep(cfg);
    expect(points.map((p) => p.name)).toEqual([
      'spam-houlsby-64__lr=0.0003,bottleneck=8',
      'spam-houlsby-64__lr=0.0003,bottleneck=64',
      'spam-houlsby-64__lr=0.001,bottleneck=8',
      'spam-houlsby-64__lr=0.001,bottleneck=64',
    ]);
    expect(points.map((p) => [p.config.training.learningRate, p.config.method.bottleneck])).toEqual([
      [3e-4, 8],
      [3e-4, 64],
      [1e-3, 8],
      [1e-3, 64],
    ]);
    expect(points[2]!.assignment).toEqual({ 'training.learningRate': 1e-3, 'method.bottleneck': 8 });
    for (const p of points) {
      expect(p.config.sweep).toBeUndefined();
      expect(p.config.name).toBe('spam-houlsby-64');
      expect(p.config.configFile).toBe(cfg.configFile);
      expect(p.config.task.train).toBe(cfg.task.train);
      expect(p.config.training.epochs).toBe(3);
    }
    // the base config is untouched
    expect(cfg.training.learningRate).toBe(3e-4);
    expect(cfg.method.bottleneck).toBe(64);
  });

  it('the SPEC example expands to 3x3 = 9 runs', () => {
    const { cfg } = load(SPEC_EXAMPLE);
    expect(expandSweep(cfg)).toHaveLength(9);
  });

  it('no sweep: one point, the config itself', () => {
    const { cfg } = load(SPEC_EXAMPLE.replace(/,\s*"sweep": \{.*\}/, ''));
    const points = expandSweep(cfg);
    expect(points).toHaveLength(1);
    expect(points[0]!.name).toBe('spam-houlsby-64');
    expect(points[0]!.assignment).toEqual({});
    expect(points[0]!.config).toEqual(cfg);
  });

  it('defaults follow swept fields; swept bottleneck/reductionFactor replace each other', () => {
    const text = withSweep('{ "method.type": ["houlsby", "full"], "method.reductionFactor": [16] }').replace(', "learningRate": 3e-4', '');
    const { cfg, root } = load(text);
    const points = expandSweep(cfg);
    expect(points.map((p) => p.name)).toEqual(['spam-houlsby-64__type=houlsby,reductionFactor=16', 'spam-houlsby-64__type=full,reductionFactor=16']);
    expect(points[0]!.config.training.learningRate).toBe(3e-4);
    expect(points[1]!.config.training.learningRate).toBe(2e-5);
    expect(points[0]!.config.method.bottleneck).toBeUndefined();
    expect(points[0]!.config.method.reductionFactor).toBe(16);
    // a config read back from JSON (run.json) expands the same way where it can
    const fromJson = JSON.parse(JSON.stringify(cfg)) as ResolvedConfig;
    const again = expandSweep(fromJson);
    expect(again.map((p) => p.name)).toEqual(points.map((p) => p.name));
    expect(again[0]!.config.method.bottleneck).toBeUndefined();
    expect(again[0]!.config.task.train).toBe(path.join(root, 'exp/data/spam/train.jsonl'));
  });

  it('path-valued axes are resolved against the config folder', () => {
    const { cfg, root } = load(withSweep('{ "task.train": ["a.jsonl", "b.jsonl"] }'));
    const points = expandSweep(cfg);
    expect(points.map((p) => p.config.task.train)).toEqual([path.join(root, 'exp/a.jsonl'), path.join(root, 'exp/b.jsonl')]);
    expect(points[1]!.name).toBe('spam-houlsby-64__train=b.jsonl');
  });

  it('a bad axis path in the file is an error with its line', () => {
    const text = withSweep('{\n    "training.learningrate": [1e-4] }');
    const root = tempWorkspace();
    dirs.push(root);
    const file = writeConfig(root, 'x.adapter.json', text);
    expect(() => loadConfig(file)).toThrow(
      `${file}:${lineOf(text, '"training.learningrate"')}: sweep["training.learningrate"]: unknown sweep axis: no such field (did you mean "training.learningRate"?)`,
    );
  });

  it('a bad axis path given to expandSweep is an error naming it', () => {
    const { cfg } = load(SPEC_EXAMPLE);
    const bad = { ...cfg, sweep: { 'training.learningrate': [1e-4], 'method.bottleneck': [8] } };
    expect(() => expandSweep(bad)).toThrow(ConfigError);
    expect(() => expandSweep(bad)).toThrow(/sweep\["training\.learningrate"\]: unknown sweep axis "training\.learningrate".*did you mean "training\.learningRate"/);
    expect(() => expandSweep({ ...cfg, sweep: { 'method.bottleneck': [] } })).toThrow(/sweep\["method\.bottleneck"\]: must be a non-empty list/);
  });

  it('a sweep value of the wrong type is an error naming the axis', () => {
    const text = withSweep('{ "training.learningRate": [3e-4,\n      "fast"] }');
    const root = tempWorkspace();
    dirs.push(root);
    const file = writeConfig(root, 'x.adapter.json', text);
    expect(() => loadConfig(file)).toThrow(`${file}:${lineOf(text, '"fast"')}: sweep["training.learningRate"][1]: must be number, got "fast"`);

    const { cfg } = load(SPEC_EXAMPLE);
    const bad = { ...cfg, sweep: { 'method.bottleneck': [8, '64x'] } };
    expect(() => expandSweep(bad)).toThrow(/method\.bottleneck: must be integer, got "64x" \(from sweep axis "method\.bottleneck" = "64x"\)/);
  });

  it('combinations are validated (metric vs task type)', () => {
    const { cfg, file } = load(withSweep('{ "task.type": ["classification",\n  "regression"] }'));
    expect(() => expandSweep(cfg)).toThrow(/training\.metric: "accuracy" is a classification metric.*\(in sweep point spam-houlsby-64__type=regression\)/);
    expect(() => expandSweep(cfg)).toThrow(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+: training\\.metric`));
  });

  it('axis names are the schema fields', () => {
    const axes = sweepAxisPaths();
    expect(axes).toContain('training.learningRate');
    expect(axes).toContain('method.bottleneck');
    expect(axes).toContain('model');
    expect(axes).not.toContain('sweep');
  });
});
