import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { listRuns } from '../../src/engine/runs';
import { loadCompare, loadLossCurves } from '../../src/extension/webviews/viewData';
import { buildRunsTree, type ConfigNode, type RunNode, type TaskNode } from '../../src/extension/runs/treeModel';
import { cliAsync } from '../helpers/cliRun';
import { tempDir, useBackend } from '../helpers/fixtures';
import { writeImageConfig } from '../helpers/imageTask';

/**
 * Image runs in the views that are not image-specific: the Runs tree, Loss Curves and Compare (with its trade-off
 * chart, which plots trainable % against the best dev metric) read real CLI-trained image runs as they read text ones.
 */
const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));

describe('image runs in the Runs tree, Loss Curves and Compare', () => {
  let dir = '';
  beforeAll(async () => {
    await useBackend();
    dir = tempDir();
    for (const [method, file] of [['residual-series', 'residual.adapter.json'], ['head', 'head.adapter.json']] as const) {
      const cfgFile = writeImageConfig(dir, { method: { type: method }, training: { epochs: 2 } }, file);
      const cfg = readJson(path.join(dir, cfgFile));
      fs.writeFileSync(path.join(dir, cfgFile), JSON.stringify({ ...cfg, name: `shapes-${method}` }));
      const r = await cliAsync(['train', cfgFile], dir);
      expect(r.code, r.stderr).toBe(0);
      // Image runs train on one thread unless asked (the ResNet family's defaultTrainingWorkers).
      expect(r.stdout).toMatch(/backend \w+, 1 worker\n/);
    }
  }, 240_000);

  it('lists both runs under their image task, with their best dev accuracy', () => {
    const listing = listRuns(path.join(dir, 'runs'));
    const tree = buildRunsTree(listing, [], [], new Map());
    const task = tree.find((n) => n.kind === 'task') as TaskNode;
    expect(task.label).toBe('shapes');
    expect(task.inputs).toBe('images');
    const runs = task.children.flatMap((c: ConfigNode) => c.children as RunNode[]);
    expect(runs.map((r) => r.run.name).sort()).toEqual(['shapes-head', 'shapes-residual-series']);
    for (const r of runs) expect(r.description).toContain(`accuracy ${readJson(path.join(r.run.dir, 'eval-dev.json')).metrics.accuracy.toFixed(4)}`);
  });

  it('Loss Curves: every training step and dev evaluation of metrics.jsonl; Compare: method, trainable parameters and best metric of each run', () => {
    const runs = listRuns(path.join(dir, 'runs')).runs;
    const curves = loadLossCurves(runs.map((r) => r.dir));
    for (const c of curves.runs) {
      const lines = fs.readFileSync(path.join(c.run.runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      expect(c.metric).toBe('accuracy');
      expect(c.train.map((p) => p.value)).toEqual(lines.filter((l) => l.type === 'train').map((l) => l.loss));
      expect(c.dev.map((p) => p.value)).toEqual(lines.filter((l) => l.type === 'eval').map((l) => l.accuracy));
      expect(c.train).toHaveLength(20); // 200 images in batches of 20, 2 epochs
    }
    const rows = loadCompare(runs).rows;
    expect(rows.map((r) => r.run.method).sort()).toEqual(['head', 'residual-series']);
    for (const row of rows) {
      const record = readJson(path.join(row.run.runDir, 'run.json'));
      expect(row.trainableParams).toBe(record.params.trainable);
      expect(row.trainablePercent).toBeCloseTo((100 * record.params.trainable) / record.params.base, 10);
      expect(row.best).toBe(readJson(path.join(row.run.runDir, 'eval-dev.json')).metrics.accuracy);
      expect(row.metric).toBe('accuracy');
    }
    // The head trains fewer parameters than residual adapters plus the head: the trade-off chart's x axis.
    const by = Object.fromEntries(rows.map((r) => [r.run.method, r]));
    expect(by.head.trainableParams!).toBeLessThan(by['residual-series'].trainableParams!);
  });
});
