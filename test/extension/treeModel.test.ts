import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/engine/config/load';
import { createRun, listRuns } from '../../src/engine/runs';
import { buildRunsTree, peekConfig, runContextValue, runsFoldersSignature, type ConfigNode, type ProblemsNode, type RunNode, type SweepNode, type TaskNode } from '../../src/extension/runs/treeModel';
import { tempDir, writeToyTask } from '../helpers/fixtures';

/** A workspace with config files and a runs folder holding every kind of run folder the tree must survive. */
function workspace() {
  const ws = tempDir('adapter-lab-tree-');
  writeToyTask(ws);
  const write = (file: string, name: string, task: string, method = 'houlsby') => {
    const raw = {
      name,
      task: { name: task, type: 'classification', train: 'data/train.jsonl', dev: 'data/dev.jsonl', textField: 'text', labelField: 'label' },
      model: 'builtin:tiny-bert',
      method: { type: method, ...(method === 'houlsby' ? { bottleneck: 8 } : {}) },
    };
    fs.writeFileSync(path.join(ws, file), JSON.stringify(raw, null, 2));
    return resolveConfig(raw, path.join(ws, file), ws);
  };
  const spam = write('spam-houlsby.adapter.json', 'spam-houlsby', 'spam');
  const spamFull = write('spam-full.adapter.json', 'spam-full', 'spam', 'full');
  const sotu = write('sotu.adapter.json', 'sotu-houlsby', 'sotu');
  const runs = path.join(ws, '.adapter-lab', 'runs');
  return { ws, runs, spam, spamFull, sotu };
}

/** A pid that certainly belongs to no process any more. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}

describe('the Runs tree', () => {
  it('groups runs by task, then config, newest first, with status, best dev metric and trainable %', () => {
    const { runs, spam, spamFull, sotu, ws } = workspace();
    const older = createRun(runs, spam, { now: new Date('2026-01-01T10:00:00Z') });
    older.update({ status: 'running' });
    older.update({ status: 'done', best: { metric: 'accuracy', value: 0.91234, epoch: 1, step: 20 }, params: { trainable: 1234, base: 100000, trainablePercent: 1.234 } });
    fs.mkdirSync(path.join(older.dir, 'adapter'));
    fs.writeFileSync(path.join(older.dir, 'adapter', 'adapter_config.json'), '{}');
    fs.writeFileSync(path.join(older.dir, 'ablation.json'), '{}');
    const newer = createRun(runs, spam, { now: new Date('2026-01-02T10:00:00Z') });
    newer.update({ status: 'running' });
    newer.update({ status: 'failed', error: { message: 'loss became NaN', exitCode: 1 } });
    createRun(runs, spamFull, { now: new Date('2026-01-03T10:00:00Z') }); // queued

    const configs = [spam, spamFull, sotu].map((c) => peekConfig(c.configFile!, fs.readFileSync(c.configFile!, 'utf8')));
    const tree = buildRunsTree(listRuns(runs), configs);

    expect(tree.map((n) => n.label)).toEqual(['sotu', 'spam']);
    const spamTask = tree[1] as TaskNode;
    expect(spamTask.description).toBe('2 configs, 3 runs');
    expect(spamTask.children.map((c) => c.label)).toEqual(['spam-full.adapter.json', 'spam-houlsby.adapter.json']);
    const sotuConfig = (tree[0] as TaskNode).children[0];
    expect(sotuConfig.description).toBe('no runs yet');
    expect(sotuConfig.configFile).toBe(path.join(ws, 'sotu.adapter.json'));

    const houlsby = spamTask.children[1] as ConfigNode;
    expect(houlsby.description).toBe('2 runs, 1 done');
    const [failed, done] = houlsby.children as RunNode[];
    expect(failed.run.dir).toBe(newer.dir);
    expect(failed.description).toBe('failed');
    expect(failed.icon.codicon).toBe('error');
    expect(failed.tooltip).toContain('error: loss became NaN (exit code 1)');
    expect(failed.contextValue).toBe('adapterLab.run status:failed classification');

    expect(done.description).toBe('accuracy 0.9123 · 1.23% trainable');
    expect(done.icon).toEqual({ codicon: 'pass', color: 'testing.iconPassed' });
    expect(done.contextValue).toBe('adapterLab.run status:done classification trained adapter ablation');
    expect(done.tooltip).toContain('trainable parameters: 1,234 of 100,000 (1.23%)');
    expect(done.tooltip).not.toContain('skipped');

    const queued = (spamTask.children[0] as ConfigNode).children[0] as RunNode;
    expect(queued.icon.codicon).toBe('clock');
    expect(queued.contextValue).toBe('adapterLab.run status:queued classification');
  });

  it('lists half-written and corrupt run folders as problems and still shows the good runs', () => {
    const { runs, spam } = workspace();
    const good = createRun(runs, spam);
    fs.mkdirSync(path.join(runs, '20260101-000000-half-written-0000')); // no run.json yet
    const corrupt = path.join(runs, '20260101-000001-corrupt-0001');
    fs.mkdirSync(corrupt);
    fs.writeFileSync(path.join(corrupt, 'run.json'), '{"name": "x", "status": "runn');
    const empty = path.join(runs, '20260101-000002-empty-0002');
    fs.mkdirSync(empty);
    fs.writeFileSync(path.join(empty, 'run.json'), '');
    const badStatus = path.join(runs, '20260101-000003-bad-status-0003');
    fs.mkdirSync(badStatus);
    fs.writeFileSync(path.join(badStatus, 'run.json'), JSON.stringify({ name: 'x', status: 'exploded', config: {}, createdAt: 'now' }));
    fs.writeFileSync(path.join(runs, 'stray-file.txt'), 'not a folder');
    fs.mkdirSync(path.join(runs, '.hidden-temp.tmp'));

    const tree = buildRunsTree(listRuns(runs), []);
    const problems = tree[0] as ProblemsNode;
    expect(problems.kind).toBe('problems');
    expect(problems.label).toBe('4 unreadable run folders');
    const byName = Object.fromEntries(problems.children.map((p) => [p.label, p]));
    expect(byName['20260101-000000-half-written-0000'].description).toMatch(/half-written one \(no run\.json\)/);
    expect(byName['20260101-000001-corrupt-0001'].description).toMatch(/corrupt \(not valid JSON/);
    expect(byName['20260101-000002-empty-0002'].description).toMatch(/corrupt \(empty\)/);
    expect(byName['20260101-000003-bad-status-0003'].description).toMatch(/no valid status/);
    expect(problems.children.every((p) => p.contextValue === 'adapterLab.problem')).toBe(true);

    const runsShown = tree.slice(1).flatMap((t) => (t as TaskNode).children.flatMap((c) => c.children));
    expect(runsShown.map((r) => (r as RunNode).run.dir)).toEqual([good.dir]);
  });

  it('shows a run left "running" by a dead process as interrupted and resumable when it has a checkpoint', () => {
    const { runs, spam } = workspace();
    const run = createRun(runs, spam);
    run.update({ status: 'running', pid: deadPid() });
    fs.mkdirSync(path.join(run.dir, 'checkpoint'));
    fs.writeFileSync(path.join(run.dir, 'checkpoint', 'state.json'), '{}');
    const alive = createRun(runs, spam);
    alive.update({ status: 'running', pid: process.pid });

    const tree = buildRunsTree(listRuns(runs), []);
    const nodes = (tree[0] as TaskNode).children[0].children as RunNode[];
    const interrupted = nodes.find((n) => n.run.dir === run.dir)!;
    expect(interrupted.run.status).toBe('interrupted');
    expect(interrupted.icon.codicon).toBe('debug-pause');
    expect(interrupted.contextValue).toBe('adapterLab.run status:interrupted classification resumable');
    expect(interrupted.tooltip).toContain('run.json says running; its process is gone');
    const running = nodes.find((n) => n.run.dir === alive.dir)!;
    expect(running.run.status).toBe('running');
    expect(running.icon.codicon).toBe('sync~spin');
  });

  it('lays the queue over the runs: progress of a running job, and a pending row for a train job not started', () => {
    const { runs, spam, spamFull } = workspace();
    const run = createRun(runs, spam);
    run.update({ status: 'running', pid: process.pid });
    const configs = [peekConfig(spam.configFile!, fs.readFileSync(spam.configFile!, 'utf8')), peekConfig(spamFull.configFile!, fs.readFileSync(spamFull.configFile!, 'utf8'))];
    const tree = buildRunsTree(listRuns(runs), configs, [
      { jobId: 1, state: 'running', label: 'Train spam-houlsby', runDirs: [run.dir], fraction: 0.456, configFile: spam.configFile! },
      { jobId: 2, state: 'queued', label: 'Train spam-full', runDirs: [], configFile: spamFull.configFile! },
    ]);
    const [full, houlsby] = (tree[0] as TaskNode).children;
    expect(full.children[0]).toMatchObject({ kind: 'pending', label: 'Train spam-full', description: 'queued', contextValue: 'adapterLab.job status:queued', jobId: 2 });
    const r = houlsby.children[0] as RunNode;
    expect(r.description).toBe('46%');
    expect(r.contextValue).toBe('adapterLab.run status:running classification active');
  });

  it('keeps runs whose config file was deleted, grouped by the config name', () => {
    const { runs, spam } = workspace();
    const run = createRun(runs, spam);
    fs.rmSync(spam.configFile!);
    const tree = buildRunsTree(listRuns(runs), []);
    const config = (tree[0] as TaskNode).children[0];
    expect(config.label).toBe('spam-houlsby');
    expect(config.configFile).toBeNull();
    expect(config.contextValue).toBe('adapterLab.config missing');
    expect((config.children[0] as RunNode).run.dir).toBe(run.dir);
  });

  it('puts sweep points under a sweep node, labelled by their assignment', () => {
    const { runs, spam } = workspace();
    createRun(runs, spam, { name: 'spam-houlsby__lr=0.001', sweep: { group: 'spam-houlsby', assignment: { 'training.learningRate': 0.001 } } });
    const tree = buildRunsTree(listRuns(runs), []);
    const sweep = (tree[0] as TaskNode).children[0].children[0] as SweepNode;
    expect(sweep.label).toBe('sweep spam-houlsby (1 run)');
    expect(sweep.children[0].label).toBe('lr=0.001');
    expect(sweep.children[0].tooltip).toContain('spam-houlsby__lr=0.001');
  });

  it('an empty or missing runs folder gives an empty tree, and a broken config still gets a row', () => {
    expect(buildRunsTree(listRuns(path.join(tempDir(), 'nope')), [])).toEqual([]);
    const peeked = peekConfig('/x/broken.adapter.json', '{ "name": "half", "task": { "na');
    expect(peeked.name).toBe('half');
    expect(peeked.task).toBe('(no task)');
    expect(peekConfig('/x/other.adapter.json', 'not json at all').name).toBe('other');
  });
});

describe('the Runs tree: image and text tasks', () => {
  /** A run of `cfg` whose run.json names another task type, as the trainer writes it for that type. */
  function runOfType(runs: string, cfg: ReturnType<typeof workspace>['spam'], task: { name: string; type: string }) {
    const configFile = path.join(path.dirname(cfg.configFile!), `${task.name}.adapter.json`);
    const run = createRun(runs, { ...cfg, name: `${task.name}-run`, configFile, task: { ...cfg.task, ...task } as typeof cfg.task });
    return run;
  }

  it('an image-classification run shows as a text run does, under a task whose icon says images', () => {
    const { runs, spam, ws } = workspace();
    const text = createRun(runs, spam, { now: new Date('2026-01-01T10:00:00Z') });
    text.update({ status: 'running' });
    text.update({ status: 'done', best: { metric: 'accuracy', value: 0.5, epoch: 0, step: 4 } });
    const image = runOfType(runs, spam, { name: 'digits', type: 'image-classification' });
    image.update({ status: 'running' });
    image.update({ status: 'done', best: { metric: 'accuracy', value: 0.75, epoch: 0, step: 4 } });
    const regression = runOfType(runs, spam, { name: 'scores', type: 'regression' });
    // A config of an image task with no run yet: its task's icon comes from the config.
    fs.writeFileSync(path.join(ws, 'emoji.adapter.json'), JSON.stringify({ name: 'emoji-google', task: { name: 'emoji', type: 'image-classification' } }));
    const configs = [spam.configFile!, path.join(ws, 'emoji.adapter.json')].map((f) => peekConfig(f, fs.readFileSync(f, 'utf8')));

    const tree = buildRunsTree(listRuns(runs), configs) as TaskNode[];
    const byTask = Object.fromEntries(tree.map((t) => [t.label, t]));
    expect(Object.keys(byTask).sort()).toEqual(['digits', 'emoji', 'scores', 'spam']);
    expect(byTask.digits.inputs).toBe('images');
    expect(byTask.emoji.inputs).toBe('images');
    expect(byTask.spam.inputs).toBe('text');
    expect(byTask.scores.inputs).toBe('text');

    const runNode = (task: string) => (byTask[task].children[0] as ConfigNode).children[0] as RunNode;
    const imageRun = runNode('digits');
    const textRun = runNode('spam');
    // The same row as a text run: status icon, best metric, the classification flag for the per-class view; and
    // the images flag for Show Image Predictions.
    expect(imageRun.icon).toEqual(textRun.icon);
    expect(imageRun.description).toBe('accuracy 0.7500');
    expect(imageRun.contextValue).toBe('adapterLab.run status:done classification images');
    expect(textRun.contextValue).toBe('adapterLab.run status:done classification');
    expect(imageRun.tooltip.split('\n')[0]).toBe('digits-run (houlsby on digits, image classification)');
    expect(textRun.tooltip.split('\n')[0]).toBe('spam-houlsby (houlsby on spam, text classification)');
    // A trained image domain (adapter/domain.json) can be evaluated and ablated, but is not AdapterHub's layout:
    // no export or AdapterDrop.
    fs.mkdirSync(path.join(image.dir, 'adapter'));
    fs.writeFileSync(path.join(image.dir, 'adapter', 'domain.json'), '{}');
    expect(runContextValue(imageRun.run, false)).toBe('adapterLab.run status:done classification images trained');
    const menuItem = (command: string) => {
      const entry = (JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../package.json'), 'utf8')).contributes.menus['view/item/context'] as { command: string; when: string }[]).find((m) => m.command === command)!;
      const tests = [...entry.when.matchAll(/viewItem =~ \/(.+?)\/(?= |$)/g)].map((m) => new RegExp(m[1]));
      return tests.every((t) => t.test(runContextValue(imageRun.run, false)));
    };
    expect(['adapterLab.evaluateAdapter', 'adapterLab.runLayerAblation', 'adapterLab.exportAdapter', 'adapterLab.runAdapterDrop'].map(menuItem)).toEqual([true, true, false, false]);
    // A regression run has no per-class view.
    expect(runNode('scores').contextValue).toBe('adapterLab.run status:queued');
    expect(runNode('scores').run.dir).toBe(regression.dir);
    expect(runNode('scores').tooltip.split('\n')[0]).toBe('scores-run (houlsby on scores, text regression)');

    // package.json's menu shows Show Per-class Metrics on the classification runs, text or image, and no other.
    const menus = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../package.json'), 'utf8')).contributes.menus['view/item/context'] as { command: string; when: string }[];
    const when = menus.find((m) => m.command === 'adapterLab.showClassReport')!.when;
    const patterns = [...when.matchAll(/viewItem =~ \/(.+?)\/(?= |$)/g)].map((m) => new RegExp(m[1]));
    expect(when).toMatch(/^view == adapterLab\.runs && /);
    expect(patterns.length).toBeGreaterThanOrEqual(2);
    const offered = (n: RunNode) => patterns.every((p) => p.test(n.contextValue));
    expect([imageRun, textRun, runNode('scores')].map(offered)).toEqual([true, true, false]);
    // ... and Show Image Predictions on the image runs alone.
    const imageWhen = menus.find((m) => m.command === 'adapterLab.showImagePredictions')!.when;
    const imagePatterns = [...imageWhen.matchAll(/viewItem =~ \/(.+?)\/(?= |$)/g)].map((m) => new RegExp(m[1]));
    expect(imageWhen).toMatch(/^view == adapterLab\.runs && /);
    expect([imageRun, textRun, runNode('scores')].map((n) => imagePatterns.every((p) => p.test(n.contextValue)))).toEqual([true, false, false]);
  });
});

describe('the Runs tree: what the data looked like', () => {
  it("a run's tooltip lists its warnings and the rows skipBadRows skipped (the first 5 and a count)", () => {
    const { runs, spam } = workspace();
    const run = createRun(runs, spam, { now: new Date('2026-01-01T10:00:00Z') });
    const skipped = Array.from({ length: 7 }, (_, i) => ({ file: 'data/train.jsonl', line: 10 + i, reason: 'missing label in field "label"', kind: 'bad row' as const }));
    run.update({ status: 'running', skippedRows: 7, skipped, warnings: ['data/train.jsonl: class "x" occurs only 1 time in 200 rows (line 4): check field "label" there'] });
    const tree = buildRunsTree(listRuns(runs), []);
    const node = ((tree[0] as TaskNode).children[0] as ConfigNode).children[0] as RunNode;
    expect(node.tooltip).toContain('\nwarning: data/train.jsonl: class "x" occurs only 1 time in 200 rows (line 4): check field "label" there\n');
    expect(node.tooltip).toContain(
      ['skipped 7 rows (task.skipBadRows):', ...[10, 11, 12, 13, 14].map((l) => `  data/train.jsonl:${l}: missing label in field "label"`), '  ... and 2 more (listed in run.json)'].join('\n'),
    );
  });
});

describe("the Runs tree's look at its folders (what file watchers miss)", () => {
  it('changes when a run folder appears, writes its run.json or a sweep gains a point, and not otherwise', async () => {
    const { runs, spam } = workspace();
    const signature = () => runsFoldersSignature([runs, path.join(runs, 'absent')]);
    const empty = signature();
    expect(signature()).toBe(empty);
    const run = createRun(runs, spam, { now: new Date('2026-01-01T10:00:00Z') });
    const one = signature();
    expect(one).not.toBe(empty);
    expect(signature()).toBe(one);
    // run.json rewritten (a status change by a process outside the editor): its time moves.
    await new Promise((r) => setTimeout(r, 20));
    run.update({ status: 'running' });
    const running = signature();
    expect(running).not.toBe(one);
    // A sweep folder gains a point folder.
    fs.mkdirSync(path.join(runs, 'sweep-x'));
    const sweep = signature();
    await new Promise((r) => setTimeout(r, 20));
    fs.mkdirSync(path.join(runs, 'sweep-x', 'point-1'));
    expect(signature()).not.toBe(sweep);
  });
});
