import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import schema from '../../../schema/adapter-config.schema.json';
import { catalogEntry, catalogLearningRate, learningRateSummary, METHOD_NAMES, methodsForTaskType, TASK_TYPE_FAMILY } from '../../../src/engine/methods/catalog';
import { implementedMethods } from '../../../src/engine/methods/registry';
import { familyFor, TASK_TYPES } from '../../../src/engine/families';
import { METHODS as NEW_EXPERIMENT_METHODS, methodBlock } from '../../../src/extension/configs/newExperiment';
import { resolveConfig } from '../../../src/engine/config/load';
import { tempDir, tinyModelDir, toyConfig, toyModel, useBackend } from '../../helpers/fixtures';
// @ts-expect-error: a plain .mjs module of the results script, without types
import { METHODS as RESULT_ROWS } from '../../../scripts/results-methods.mjs';

const ROOT = path.resolve(__dirname, '../../..');
type MethodSchema = { properties: Record<string, { enum?: string[]; enumDescriptions?: string[] }> };
const methodSchema = (schema as unknown as { properties: { method: MethodSchema } }).properties.method;

describe('the method catalog is the one list of methods', () => {
  it('the schema, the catalog, the registry and New Experiment list the same methods', () => {
    expect(methodSchema.properties.type.enum).toEqual(METHOD_NAMES);
    expect(methodSchema.properties.type.enumDescriptions).toHaveLength(METHOD_NAMES.length);
    // The text family's registry implements exactly the catalog's methods that name it.
    expect([...implementedMethods].sort()).toEqual(METHOD_NAMES.filter((n) => catalogEntry(n).families.includes('bert')).sort());
    // Every method has a family, and every family implements exactly the catalog's methods that name it.
    for (const name of METHOD_NAMES) expect(catalogEntry(name).families.length, name).toBeGreaterThan(0);
    for (const taskType of TASK_TYPES) {
      const family = familyFor(taskType);
      expect(family.name, taskType).toBe(TASK_TYPE_FAMILY[taskType]);
      expect([...family.methods].sort(), family.name).toEqual([...methodsForTaskType(taskType)].sort());
    }
    // New Experiment offers every method that needs no other input, with the catalog's description and block.
    expect(NEW_EXPERIMENT_METHODS.map((m) => m.type)).toEqual(METHOD_NAMES.filter((n) => catalogEntry(n).newExperiment));
    for (const m of NEW_EXPERIMENT_METHODS) expect(m.description).toBe(catalogEntry(m.type).description);
    expect(NEW_EXPERIMENT_METHODS.map((m) => m.type)).toEqual(expect.arrayContaining(['lora', 'ia3', 'residual-series', 'residual-parallel', 'batchnorm', 'scratch']));
  });

  it('the task types of the schema are the families\', and each family\'s methods are the ones a config of its task type may name', () => {
    const taskSchema = (schema as unknown as { properties: { task: { properties: { type: { enum: string[] } } } } }).properties.task.properties.type;
    expect([...taskSchema.enum].sort()).toEqual([...TASK_TYPES].sort());
    expect(Object.keys(TASK_TYPE_FAMILY).sort()).toEqual([...TASK_TYPES].sort());
    const dir = tempDir();
    const image = { name: 'img', type: 'image-classification', train: { images: 'x.idx', labels: 'y.idx' } };
    const text = { name: 't', type: 'classification', train: 'train.jsonl', textField: 'text', labelField: 'label' };
    expect(resolveConfig({ name: 'x', task: image, model: 'builtin:resnet-fashion', method: { type: 'residual-series' } }, null, dir).training.learningRate).toBe(1e-2);
    // A method of both families takes each family's own default learning rate.
    expect(resolveConfig({ name: 'x', task: image, model: 'builtin:resnet-fashion', method: { type: 'full' } }, null, dir).training.learningRate).toBe(catalogLearningRate('full', 'image-classification'));
    expect(resolveConfig({ name: 'x', task: text, model: 'builtin:tiny-bert', method: { type: 'full' } }, null, dir).training.learningRate).toBe(2e-5);
    expect(catalogLearningRate('full', 'image-classification')).toBe(1e-3);
    // A method of the other family is refused, naming the field and the methods that apply.
    expect(() => resolveConfig({ name: 'x', task: image, model: 'builtin:resnet-fashion', method: { type: 'houlsby' } }, null, dir)).toThrow(/method\.type: method "houlsby" does not apply to image-classification tasks; they can use full, head, residual-series/);
    expect(() => resolveConfig({ name: 'x', task: text, model: 'builtin:tiny-bert', method: { type: 'batchnorm' } }, null, dir)).toThrow(/method\.type: method "batchnorm" does not apply to classification tasks/);
  });

  it("every method's options are properties of the schema's method block", () => {
    const props = Object.keys(methodSchema.properties);
    for (const name of METHOD_NAMES) for (const option of catalogEntry(name).options) expect(props, `${name}.${option}`).toContain(option);
    for (const name of METHOD_NAMES) for (const key of Object.keys(catalogEntry(name).defaults)) expect(catalogEntry(name).options, `${name} default ${key}`).toContain(key);
  });

  it("the schema's default learning rates are the catalog's", () => {
    const text = (schema as unknown as { properties: { training: { properties: { learningRate: { description: string } } } } }).properties.training.properties.learningRate.description;
    expect(text).toContain(`Default: ${learningRateSummary()}.`);
  });

  it('config/load fills in the catalog\'s defaults and learning rate for every method', () => {
    const dir = tempDir();
    for (const name of METHOD_NAMES) {
      const extra = name === 'top-k' ? { k: 1 } : name === 'fusion' ? { adapters: ['a'] } : {};
      const family = catalogEntry(name).families[0];
      const task = family === 'bert' ? { name: 't', type: 'classification', train: 'train.jsonl', textField: 'text', labelField: 'label' } : { name: 't', type: 'image-classification', train: 'images' };
      const cfg = resolveConfig({ name: 'x', task, model: 'builtin:tiny-bert', method: { type: name, ...extra } }, null, dir);
      expect(cfg.training.learningRate, name).toBe(catalogEntry(name).learningRate);
      for (const [key, value] of Object.entries(catalogEntry(name).defaults)) expect((cfg.method as unknown as Record<string, unknown>)[key], `${name}.${key}`).toEqual(value);
    }
  });

  it('every text method New Experiment offers has a row in `npm run results`, and every row is a catalog method', () => {
    const rows = RESULT_ROWS as { method: { type: string } }[];
    for (const row of rows) expect(METHOD_NAMES).toContain(row.method.type);
    // The results table is of text tasks so far; the image methods' table (the Visual Decathlon) is another script's.
    for (const m of NEW_EXPERIMENT_METHODS.filter((n) => catalogEntry(n.type).families.includes('bert'))) expect(rows.map((r) => r.method.type), m.type).toContain(m.type);
  });

  it("the README's method table lists the catalog's methods with their learning rates and AdapterHub classes", () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Methods'), readme.indexOf('\n## ', readme.indexOf('## Methods') + 1));
    const rows = section.split('\n').filter((l) => /^\| `[^`]+` \|/.test(l)).filter((l) => !l.startsWith('| `method.type`')).map((l) => l.split('|').map((c) => c.trim()));
    expect(rows.map((r) => r[1].replace(/`/g, ''))).toEqual(METHOD_NAMES);
    for (const r of rows) {
      const entry = catalogEntry(r[1].replace(/`/g, '') as (typeof METHOD_NAMES)[number]);
      expect(r[4], `${r[1]} learning rate`).toBe(entry.learningRate.toExponential());
      expect(r[5].replace(/`/g, ''), `${r[1]} AdapterHub class`).toBe(entry.adapterHub && entry.kind !== 'fusion' ? entry.adapterHub.configClass : entry.kind === 'fusion' ? 'DynamicFusionConfig' : '');
    }
  });
});

describe("the catalog's size rules are the parameters each method adds", () => {
  beforeAll(useBackend);
  const modelOptions = { layers: 3, hidden: 24, heads: 2, intermediate: 40 };
  const shape = { d: 24, L: 3, intermediate: 40 };
  const settings: Record<string, unknown>[] = [
    { type: 'houlsby', bottleneck: 5 },
    { type: 'houlsby', bottleneckPerLayer: [2, 7, 3], leaveOut: [1] },
    { type: 'pfeiffer', reductionFactor: 5 },
    { type: 'adapterbias' },
    { type: 'adapterbias', sharedAlpha: true, l0Lambda: 0.1, leaveOut: [0] },
    { type: 'lora' },
    { type: 'lora', r: 3, attnMatrices: ['q', 'k', 'v'], intermediateLora: true, outputLora: true, leaveOut: [2] },
    { type: 'ia3' },
    { type: 'ia3', attnMatrices: ['q'], intermediateLora: false, outputLora: true },
    { type: 'parallel' },
    { type: 'parallel', bottleneckPerLayer: [2, 7, 3], leaveOut: [1], scaling: 2 },
    { type: 'prefix-tuning', prefixLength: 4, bottleneckSize: 6 },
    { type: 'prefix-tuning', prefixLength: 3, flat: true, leaveOut: [0] },
    { type: 'bitfit' },
    { type: 'layernorm' },
    { type: 'top-k', k: 2 },
    { type: 'full' },
    { type: 'head' },
  ];
  for (const method of settings) {
    it(`${JSON.stringify(method)}`, () => {
      const dir = tempDir();
      const model = toyModel(dir, tinyModelDir(modelOptions), method);
      const added = [...model.method.params.values()].reduce((n, v) => n + v.size, 0);
      const resolved = toyConfig(dir, tinyModelDir(modelOptions), { method }).method as unknown as Record<string, unknown>;
      expect(added).toBe(catalogEntry(method.type as 'lora').addedParams(shape, resolved));
      model.dispose();
    });
  }
  it('LoRA and (IA)³ by formula: 2rdL for query and value; (2d + f)L for keys, values and the intermediate', () => {
    expect(catalogEntry('lora').addedParams(shape, { r: 8, attnMatrices: ['q', 'v'] })).toBe(2 * 8 * 2 * 24 * 3);
    expect(catalogEntry('ia3').addedParams(shape, { attnMatrices: ['k', 'v'], intermediateLora: true })).toBe((2 * 24 + 40) * 3);
  });
  it('New Experiment blocks are the catalog\'s', () => {
    expect(methodBlock('lora')).toEqual({ type: 'lora', r: 8, alpha: 8, attnMatrices: ['q', 'v'], leaveOut: [] });
  });
});
