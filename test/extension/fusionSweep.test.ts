import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { listRuns } from '../../src/engine/runs';
import { isAdapterFolder } from '../../src/engine/model/fusionIo';
import { sweepJob } from '../../src/extension/runs/jobs';
import { buildRunsTree, isTrainedAdapterFolder, type ConfigNode, type RunNode, type SweepNode, type TaskNode } from '../../src/extension/runs/treeModel';
import { loadCompare, loadDrop, loadFusionAttention } from '../../src/extension/webviews/viewData';
import { availableMetrics, bestPerTask, seedGroups } from '../../webview-ui/shared/runStats';
import { tempDir } from '../helpers/fixtures';

/**
 * The tree, the view data and the Compare statistics from real run folders of the real CLI
 * (test/fixtures/runs-fusion-sweep, made by makeFusionSweepFixtures.ts): three Pfeiffer adapters, an
 * AdapterFusion of them, a 2 x 2 sweep (learning rate x seed) and `adapter-lab drop` on one sweep point.
 */
const FIXTURES = path.resolve(__dirname, '../fixtures/runs-fusion-sweep');

function runsFolder(): string {
  const dir = path.join(tempDir('adapter-lab-fusion-sweep-'), 'runs');
  fs.cpSync(FIXTURES, dir, { recursive: true });
  return dir;
}

const byName = (runs: ReturnType<typeof listRuns>['runs'], name: string) => runs.find((r) => r.name === name)!;

describe('the Runs tree with sweeps and fusion runs', () => {
  it('groups a sweep launch under one sweep node inside its config node, points in grid order', () => {
    const listing = listRuns(runsFolder());
    expect(listing.problems).toEqual([]);
    const tree = buildRunsTree(listing, []);
    const task = tree.find((n): n is TaskNode => n.kind === 'task' && n.label === 'toy-sentiment')!;
    // toy-a-pfeiffer, toy-fusion and toy-sweep: 2 + 4 runs
    expect(task.description).toBe('3 configs, 6 runs');
    const config = task.children.find((c): c is ConfigNode => c.label === 'toy-sweep')!;
    expect(config.children).toHaveLength(1);
    const sweep = config.children[0] as SweepNode;
    expect(sweep.kind).toBe('sweep');
    expect(sweep.label).toBe('sweep toy-sweep (4 runs)');
    expect(sweep.contextValue).toBe('adapterLab.sweep');
    expect(sweep.children.map((c) => c.label)).toEqual(['lr=0.02,seed=1', 'lr=0.02,seed=2', 'lr=0.003,seed=1', 'lr=0.003,seed=2']);
    expect(sweep.children.map((c) => c.run.sweep!.index)).toEqual([0, 1, 2, 3]);
    expect(sweep.description).toMatch(/^best accuracy [\d.]+ \(lr=/);
    expect(sweep.tooltip).toContain('axes: training.learningRate, training.seed');
    expect(sweep.children[0].tooltip).toContain('sweep toy-sweep: training.learningRate = 0.02, training.seed = 1 (point 1 of 4)');
    // Runs that are not sweep points stay directly under their config.
    const fusion = task.children.find((c) => c.label === 'toy-fusion')!;
    expect(fusion.children.map((c) => c.kind)).toEqual(['run']);
  });

  it('keeps a sweep job\'s state off its points (their run.json say it) and marks the sweep node active', () => {
    const listing = listRuns(runsFolder());
    const dirs = listing.runs.filter((r) => r.sweep).map((r) => r.dir);
    const tree = buildRunsTree(listing, [], [{ jobId: 7, state: 'running', label: 'Sweep toy-sweep', configFile: '/workspace/toy-sweep.adapter.json', runDirs: dirs, fraction: 0.5, sweep: true }]);
    const task = tree.find((n): n is TaskNode => n.kind === 'task' && n.label === 'toy-sentiment')!;
    const config = task.children.find((c) => c.label === 'toy-sweep')!;
    expect(config.children).toHaveLength(1); // no pending row for a started sweep
    const sweep = config.children[0] as SweepNode;
    expect(sweep.contextValue).toBe('adapterLab.sweep active');
    for (const point of sweep.children) {
      expect(point.icon.codicon).toBe('pass');
      expect(point.description).not.toMatch(/^50%/);
    }
  });

  it('detects a fusion run\'s adapter folder as the engine does, and flags fusion, drop and sweep runs', () => {
    const runs = listRuns(runsFolder()).runs;
    for (const r of runs) expect(isTrainedAdapterFolder(path.join(r.dir, 'adapter'))).toBe(isAdapterFolder(path.join(r.dir, 'adapter')));
    const tree = buildRunsTree({ runs, problems: [] }, []);
    const all: RunNode[] = [];
    const walk = (nodes: unknown[]) => nodes.forEach((n) => ((n as RunNode).kind === 'run' ? all.push(n as RunNode) : walk((n as { children?: unknown[] }).children ?? [])));
    walk(tree);
    const ctx = (name: string) => all.find((n) => n.run.name === name)!.contextValue.split(' ');
    expect(ctx('toy-fusion')).toEqual(expect.arrayContaining(['status:done', 'adapter', 'fusion']));
    expect(ctx('toy-fusion')).not.toContain('drop');
    expect(ctx('toy-sweep__lr=0.02,seed=1')).toEqual(expect.arrayContaining(['adapter', 'drop', 'sweep']));
    expect(ctx('toy-a-pfeiffer')).not.toContain('sweep');
  });

  it('runs a sweep as one CLI job taking the queue\'s concurrency as --jobs, at most the grid size', () => {
    const o = { backend: 'auto' as const, runsDir: '/ws/.adapter-lab/runs' };
    expect(sweepJob('/ws/s.adapter.json', 's', 4, 2, o)).toMatchObject({
      kind: 'sweep',
      args: ['sweep', '/ws/s.adapter.json', '--jobs', '2', '--runs-dir', '/ws/.adapter-lab/runs'],
      slots: 2,
      configFile: '/ws/s.adapter.json',
      label: 'Sweep s (4 runs, 2 at a time)',
    });
    expect(sweepJob('/ws/s.adapter.json', 's', 2, 8, { ...o, backend: 'wasm' })).toMatchObject({ args: ['sweep', '/ws/s.adapter.json', '--jobs', '2', '--runs-dir', '/ws/.adapter-lab/runs', '--backend', 'wasm'], slots: 2 });
  });
});

describe('view data of the fusion, drop and compare views', () => {
  it('reads fusion-attention.json: layers x adapters per class, rows summing to 1, classes that differ', () => {
    const runs = listRuns(runsFolder()).runs;
    const { data, missing } = loadFusionAttention(byName(runs, 'toy-fusion').dir);
    expect(missing).toBeUndefined();
    expect(data!.adapters).toEqual(['toy-sentiment', 'toy-other', 'toy-third']);
    expect(data!.classes).toEqual(['neg', 'pos']);
    expect(data!.layers).toEqual([0, 1]);
    for (const m of [...data!.matrix, data!.overall]) {
      expect(m).toHaveLength(2);
      for (const row of m) expect(row.reduce((a: number, v) => a + (v ?? 0), 0)).toBeCloseTo(1, 5);
    }
    expect(data!.matrix[0][0][0]!).not.toBeCloseTo(data!.matrix[1][0][0]!, 4);
    expect(data!.examples.reduce((a, b) => a + b, 0)).toBe(48);
    expect(loadFusionAttention(byName(runs, 'toy-a-pfeiffer').dir)).toEqual({ data: null, missing: expect.stringContaining('has no fusion attention') });
  });

  it('reads drop.json: n = 0..L with the metric and tokens/s, the baseline at n = 0', () => {
    const runs = listRuns(runsFolder()).runs;
    const { data } = loadDrop(byName(runs, 'toy-sweep__lr=0.02,seed=1').dir);
    expect(data!.points.map((p) => p.n)).toEqual([0, 1, 2]);
    expect(data!.points[0].value).toBe(data!.baseline);
    expect(data!.metric).toBe('accuracy');
    for (const p of data!.points) expect(p.tokensPerSecond).toBeGreaterThan(0);
    expect(loadDrop(byName(runs, 'toy-fusion').dir).missing).toMatch(/Run AdapterDrop/);
  });

  it('compares runs: every dev metric of the best checkpoint, the best run per task, mean and spread over seeds', () => {
    const runs = listRuns(runsFolder()).runs;
    const { rows } = loadCompare(runs);
    expect(rows).toHaveLength(8);
    const point = rows.find((r) => r.run.name === 'toy-sweep__lr=0.02,seed=2')!;
    expect(point.sweep).toMatchObject({ group: 'toy-sweep', assignment: { 'training.learningRate': 0.02, 'training.seed': 2 }, size: 4 });
    expect(point.seed).toBe(2);
    expect(point.configName).toBe('toy-sweep');
    expect(point.devMetrics.accuracy).toBe(point.best);
    expect(Object.keys(point.devMetrics)).toEqual(expect.arrayContaining(['accuracy', 'macroF1', 'matthews', 'loss']));
    expect(availableMetrics(rows)[0]).toBe('accuracy');

    const best = bestPerTask(rows, 'accuracy');
    expect([...best.keys()].sort()).toEqual(['toy-other', 'toy-sentiment', 'toy-third']);
    const sentiment = rows.filter((r) => r.run.task === 'toy-sentiment');
    expect(best.get('toy-sentiment')!.devMetrics.accuracy).toBe(Math.max(...sentiment.map((r) => r.devMetrics.accuracy)));

    const groups = seedGroups(rows, 'accuracy');
    expect(groups.map((g) => g.label).sort()).toEqual(['toy-sweep (learningRate=0.003)', 'toy-sweep (learningRate=0.02)']);
    for (const g of groups) {
      expect(g.n).toBe(2);
      expect([...g.seeds].sort()).toEqual([1, 2]);
      const [a, b] = g.values;
      expect(g.mean).toBeCloseTo((a + b) / 2, 12);
      expect(g.std).toBeCloseTo(Math.abs(a - b) / Math.SQRT2, 12);
    }
  });
});
