import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { listRuns, openRun } from '../../src/engine/runs';
import { ablateJob, evalJob, exportJob, resumeJob, trainJob, type EngineOptions } from '../../src/extension/runs/jobs';
import { RunQueue } from '../../src/extension/runs/queue';
import { buildRunsTree, type RunNode, type TaskNode } from '../../src/extension/runs/treeModel';
import { loadAblation, loadLossCurves } from '../../src/extension/webviews/viewData';
import { tempDir, tinyModelDir, writeToyTask } from '../helpers/fixtures';

/**
 * The queue as the extension runs it: the real bundled CLI (dist/cli.js, built by the global setup) in child
 * processes, on real configs, a tiny model and real run folders.
 */
const CLI = path.resolve(__dirname, '../../dist/cli.js');
const queues: RunQueue[] = [];

function workspace(epochs: number) {
  const ws = tempDir('adapter-lab-queue-cli-');
  writeToyTask(ws);
  const model = tinyModelDir({ layers: 2, hidden: 32, heads: 2, intermediate: 64 });
  const write = (name: string, method: Record<string, unknown>) => {
    const file = path.join(ws, `${name}.adapter.json`);
    fs.writeFileSync(
      file,
      JSON.stringify({
        name,
        task: { name: 'toy', type: 'classification', train: 'data/train.jsonl', dev: 'data/dev.jsonl', textField: 'text', labelField: 'label' },
        model,
        method,
        training: { epochs, batchSize: 16, learningRate: 3e-3, maxSeqLength: 16, seed: 1, evalEverySteps: 4 },
      }),
    );
    return file;
  };
  const options: EngineOptions = { backend: 'wasm', runsDir: path.join(ws, 'runs') };
  return { ws, write, options };
}

function queue(maxConcurrent: number): RunQueue {
  const q = new RunQueue({ launcher: { command: process.execPath, args: [CLI], env: { ELECTRON_RUN_AS_NODE: '1' } }, maxConcurrent, killGraceMs: 30_000 });
  queues.push(q);
  return q;
}

afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.dispose()));
});

describe('the run queue with the real CLI', () => {
  it('trains two configs side by side, then evaluates, ablates and exports; the tree and views read the results', async () => {
    const { write, options, ws } = workspace(2);
    const houlsby = write('toy-houlsby', { type: 'houlsby', bottleneck: 4 });
    const bitfit = write('toy-bitfit', { type: 'bitfit' });
    const q = queue(2);
    let concurrent = 0;
    q.listen({ onJob: () => (concurrent = Math.max(concurrent, q.active.filter((j) => j.state === 'running').length)) });
    const jobs = [q.enqueue(trainJob(houlsby, 'toy-houlsby', options)), q.enqueue(trainJob(bitfit, 'toy-bitfit', options))];
    await Promise.all(jobs.map((j) => q.whenEnded(j)));
    expect(jobs.map((j) => [j.state, j.error?.message])).toEqual([
      ['done', undefined],
      ['done', undefined],
    ]);
    expect(concurrent).toBe(2);
    const runDir = jobs[0].runDirs[0];
    expect(path.dirname(runDir)).toBe(options.runsDir);
    expect(jobs[0].progress?.step).toBe(jobs[0].progress?.totalSteps);
    expect(jobs[0].result?.best).toEqual(openRun(runDir).record.best);

    const tree = buildRunsTree(listRuns(options.runsDir), []);
    const configs = (tree[0] as TaskNode).children;
    expect(configs.map((c) => c.label)).toEqual(['toy-bitfit.adapter.json', 'toy-houlsby.adapter.json']);
    const run = configs[1].children[0] as RunNode;
    expect(run.contextValue).toBe('adapterLab.run status:done classification trained adapter');
    expect(run.description).toMatch(/^accuracy \d\.\d{4} · [\d.]+% trainable$/);
    const curves = loadLossCurves([runDir]).runs[0];
    expect(curves.train).toHaveLength(jobs[0].progress!.totalSteps);
    expect(curves.dev.length).toBeGreaterThanOrEqual(2);

    const evaluation = await q.whenEnded(q.enqueue(evalJob(runDir, 'toy-houlsby', 'dev', options)));
    expect(evaluation.state).toBe('done');
    expect((evaluation.result?.metrics as Record<string, number>).accuracy).toBe(openRun(runDir).record.best!.value);
    expect(fs.existsSync(path.join(runDir, 'eval-dev.json'))).toBe(true);
    // The job's result carries the class report: what makes its notification offer Show Per-class Metrics.
    expect(evaluation.result?.classes).toMatchObject({ labels: ['neg', 'pos'], confusion: [expect.any(Array), expect.any(Array)] });

    const ablation = await q.whenEnded(q.enqueue(ablateJob(runDir, 'toy-houlsby', options)));
    expect(ablation.state).toBe('done');
    expect(ablation.progress?.totalSteps).toBe(3); // 2 layers: 3 spans
    const heat = loadAblation(runDir).data!;
    expect(heat.matrix).toHaveLength(2);
    expect(heat.baseline).toBe((evaluation.result?.metrics as Record<string, number>).accuracy);
    expect(buildRunsTree(listRuns(options.runsDir), []).flatMap((t) => (t as TaskNode).children).flatMap((c) => c.children).map((r) => (r as RunNode).contextValue)).toContain(
      'adapterLab.run status:done classification trained adapter ablation',
    );

    const dest = path.join(ws, 'exported', 'toy-houlsby-adapter');
    const exported = await q.whenEnded(q.enqueue(exportJob(runDir, 'toy-houlsby', dest, options)));
    expect(exported.state).toBe('done');
    expect(fs.readdirSync(dest).sort()).toEqual(['adapter.safetensors', 'adapter_config.json', 'adapter_lab_task_fields.json', 'head_config.json', 'model_head.safetensors', 'pytorch_adapter.bin', 'pytorch_model_head.bin']);

    // A bitfit run has no per-layer adapters: the CLI says so and the job fails with its message.
    const noAdapters = await q.whenEnded(q.enqueue(ablateJob(jobs[1].runDirs[0], 'toy-bitfit', options)));
    expect(noAdapters.state).toBe('failed');
    expect(noAdapters.error?.exitCode).toBe(2);
    expect(noAdapters.error?.message).toMatch(/no per-layer adapters/);
  });

  it('cancel ends a training run as cancelled with a checkpoint, and resume finishes it', async () => {
    const { write, options } = workspace(40);
    const file = write('toy-long', { type: 'houlsby', bottleneck: 4 });
    const q = queue(1);
    const job = q.enqueue(trainJob(file, 'toy-long', options));
    await new Promise<void>((resolve) => {
      const sub = q.listen({
        onJob: (j) => {
          if (j === job && (j.progress?.step ?? 0) >= 6) {
            sub.dispose();
            resolve();
          }
        },
      });
    });
    q.cancel(job);
    await q.whenEnded(job);
    expect(job.state).toBe('cancelled');
    const runDir = job.runDirs[0];
    const cancelled = openRun(runDir).record;
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.resumable).toBe(true);
    const tree = buildRunsTree(listRuns(options.runsDir), []);
    expect(((tree[0] as TaskNode).children[0].children[0] as RunNode).contextValue).toBe('adapterLab.run status:cancelled classification resumable');

    const resumed = q.enqueue(resumeJob(runDir, 'toy-long', options));
    expect(resumed.runDirs).toEqual([runDir]);
    await q.whenEnded(resumed);
    expect(resumed.state).toBe('done');
    expect(resumed.progress!.step).toBe(resumed.progress!.totalSteps);
    expect(openRun(runDir).record.status).toBe('done');
  });

  it('a config the engine rejects fails the job with file, line and field, and leaves no run', async () => {
    const { write, options } = workspace(1);
    const file = write('toy-bad', { type: 'houlsby', bottleneck: 4 });
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('"learningRate":0.003', '"learningRate":-1').replace(/,"/g, ',\n"'));
    const q = queue(1);
    const job = await q.whenEnded(q.enqueue(trainJob(file, 'toy-bad', options)));
    expect(job.state).toBe('failed');
    expect(job.error).toMatchObject({ exitCode: 2, field: 'training.learningRate' });
    expect(job.error?.line).toBeGreaterThan(1);
    expect(listRuns(options.runsDir).runs).toEqual([]);
  });
});
