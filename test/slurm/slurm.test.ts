import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/engine/config/load';
import { createRun, listRuns, openRun, type RunRecord, type RunSummary } from '../../src/engine/runs';
import { SlurmMonitor, slurmFlags, slurmResumeJob, slurmSubmitJob, type SlurmSettings } from '../../src/extension/runs/slurm';
import { buildRunsTree, type RunNode, type SweepNode } from '../../src/extension/runs/treeModel';
import { tempDir, tinyModelDir, writeToyTask } from '../helpers/fixtures';
import { scontrol, scontrolJob, startTestCluster, type TestCluster } from './cluster';

/**
 * Sweeps and runs on a real Slurm (issue 20): a one-node cluster on this machine (cluster.ts), the built CLI
 * submitting job arrays to it, the tasks training tiny models into their run folders.
 */
const BIN = path.resolve(__dirname, '../../bin/adapter-lab.js');
/** The compute node's Node: this one (the cluster is this machine). */
const SLURM = ['--slurm', '--wait', '--node', process.execPath];

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  lines: Record<string, any>[];
}

function cli(args: string[], cwd: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, ADAPTER_LAB_SLURM_POLL_MS: '1000' } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('close', (code) => {
      const lines = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, any>);
      resolve({ code, stdout, stderr, lines });
    });
  });
}

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 120_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function writeConfig(dir: string, training: Record<string, unknown>, sweep?: Record<string, unknown[]>): string {
  writeToyTask(dir);
  const cfg = {
    name: 'toy-slurm',
    task: { name: 'toy', type: 'classification', train: 'data/train.jsonl', dev: 'data/dev.jsonl', textField: 'text', labelField: 'label' },
    model: tinyModelDir({ layers: 2, hidden: 32, heads: 2, intermediate: 64 }),
    method: { type: 'pfeiffer', bottleneck: 4 },
    training: { epochs: 1000, batchSize: 16, learningRate: 3e-3, maxSeqLength: 16, seed: 1, ...training },
    ...(sweep ? { sweep } : {}),
  };
  fs.writeFileSync(path.join(dir, 'toy.adapter.json'), JSON.stringify(cfg, null, 2));
  return 'toy.adapter.json';
}

function runsIn(dir: string): RunSummary[] {
  return listRuns(dir).runs.sort((a, b) => (a.sweep?.index ?? 0) - (b.sweep?.index ?? 0));
}

function record(dir: string): RunRecord {
  return JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as RunRecord;
}

function trainSteps(dir: string): number {
  try {
    return fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"type":"train"')).length;
  } catch {
    return 0;
  }
}

/** A run's slurm.log (what each start of its task printed), for failure messages. */
function slurmLog(dir: string): string {
  try {
    return fs.readFileSync(path.join(dir, 'slurm.log'), 'utf8');
  } catch (e) {
    return `(no slurm.log: ${(e as Error).message})`;
  }
}

/** What a finished run produced: its best dev score, its final dev metrics and the adapter's bytes. */
function outcome(dir: string) {
  return {
    best: record(dir).best,
    evalDev: (JSON.parse(fs.readFileSync(path.join(dir, 'eval-dev.json'), 'utf8')) as { metrics: unknown }).metrics,
    adapter: fs.readFileSync(path.join(dir, 'adapter', 'adapter.safetensors')).toString('base64'),
  };
}

let cluster: TestCluster;

beforeAll(() => {
  cluster = startTestCluster();
}, 360_000);

afterAll(() => {
  cluster?.stop();
}, 180_000);

describe('adapter-lab on Slurm', () => {
  it('a 3-point sweep becomes one job array; every point is done with the same results as a local sweep of the grid', async () => {
    const dir = tempDir();
    const config = writeConfig(dir, { maxSteps: 24 }, { 'training.learningRate': [1e-3, 3e-3, 1e-2] });
    const [slurm, local] = await Promise.all([
      cli(['sweep', config, ...SLURM, '--max-concurrent', '2', '--runs-dir', 'slurm-runs', '--json'], dir),
      cli(['sweep', config, '--jobs', '1', '--runs-dir', 'local-runs', '--json'], dir),
    ]);
    expect(slurm.code, slurm.stderr + slurm.stdout).toBe(0);
    expect(local.code, local.stderr).toBe(0);

    const onSlurm = runsIn(path.join(dir, 'slurm-runs'));
    const onHere = runsIn(path.join(dir, 'local-runs'));
    expect(onSlurm).toHaveLength(3);
    const jobId = slurm.lines.find((l) => l.type === 'result')!.slurm.jobId as string;
    onSlurm.forEach((run, i) => {
      expect(run.status).toBe('done');
      expect(run.slurm).toMatchObject({ jobId, arrayTaskId: i });
      expect(run.sweep).toMatchObject({ group: 'toy-slurm', index: i, size: 3 });
      expect(outcome(run.dir)).toEqual(outcome(onHere[i].dir));
      // The task's output is in its run folder.
      const log = fs.readFileSync(path.join(run.dir, 'slurm.log'), 'utf8');
      expect(log).toContain(`== Slurm job ${jobId}_${i}`);
      expect(log).toContain('best dev accuracy');
      // Each point went from queued (pending) to done, with its Slurm task named.
      const seen = slurm.lines.filter((l) => l.type === 'sweepPoint' && l.index === i);
      expect(seen[0]).toMatchObject({ status: 'queued', slurm: { id: `${jobId}_${i}` } });
      expect(seen[seen.length - 1]).toMatchObject({ status: 'done', slurm: { phase: 'done', state: 'COMPLETED', exitCode: 0 } });
      expect(scontrolJob(`${jobId}_${i}`).JobState).toBe('COMPLETED');
    });
    // The batch script is kept, readable, beside the job's record.
    const script = fs.readFileSync(onSlurm[0].slurm!.script, 'utf8');
    expect(script).toContain('#SBATCH --array=0-2%2');
    expect(script).toContain('#SBATCH --requeue');
    expect(script).toMatch(/#SBATCH --signal=B:USR1@\d+/);
    for (const run of onSlurm) expect(script).toContain(run.dir);
  }, 300_000);

  it('Cancel on one point cancels that array task alone: it saves a checkpoint, the other point trains to the end', async () => {
    const dir = tempDir();
    const config = writeConfig(dir, {}, { 'training.maxSteps': [5000, 12] });
    const follower = cli(['sweep', config, ...SLURM, '--json'], dir);
    const runsDir = path.join(dir, '.adapter-lab', 'runs');
    const [slow] = await waitFor('the slow point to train', () => {
      const runs = runsIn(runsDir);
      return runs.length === 2 && runs[0].slurm && trainSteps(runs[0].dir) >= 5 && runs;
    });
    const cancelled = await cli(['slurm', 'cancel', slow.dir], dir);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    const r = await follower;
    expect(r.code).toBe(1);
    const [a, b] = runsIn(runsDir);
    expect(a.status).toBe('cancelled');
    expect(a.resumable).toBe(true);
    expect(fs.existsSync(path.join(a.dir, 'checkpoint', 'state.json'))).toBe(true);
    expect(fs.readFileSync(path.join(a.dir, 'slurm.log'), 'utf8')).toContain('stopped by Slurm');
    expect(b.status).toBe('done');
    expect(scontrolJob(`${a.slurm!.jobId}_0`).JobState).toBe('CANCELLED');
    expect(scontrolJob(`${a.slurm!.jobId}_1`).JobState).toBe('COMPLETED');
    expect(r.lines.filter((l) => l.type === 'sweepPoint' && l.index === 0).pop()).toMatchObject({ status: 'cancelled', slurm: { phase: 'cancelled' } });
  }, 300_000);

  it('Cancel on the sweep cancels the whole array: the running task checkpoints, the pending one ends cancelled', async () => {
    const dir = tempDir();
    const config = writeConfig(dir, { maxSteps: 5000 }, { 'training.seed': [1, 2] });
    const follower = cli(['sweep', config, ...SLURM, '--max-concurrent', '1', '--json'], dir);
    const runsDir = path.join(dir, '.adapter-lab', 'runs');
    const [first] = await waitFor('the first point to train', () => {
      const runs = runsIn(runsDir);
      return runs.length === 2 && runs[0].slurm && trainSteps(runs[0].dir) >= 5 && runs;
    });
    // The second waits for the first (at most one at a time): pending, with Slurm's reason.
    const status = await cli(['slurm', 'status', runsDir, '--json'], dir);
    const points = status.lines.find((l) => l.type === 'result')!.points as { slurm: { phase: string; reason?: string } }[];
    const byIndex = runsIn(runsDir).map((run) => points.find((p: any) => p.runDir === run.dir)!);
    expect(byIndex[0].slurm.phase).toBe('running');
    expect(byIndex[1].slurm).toMatchObject({ phase: 'pending', reason: 'JobArrayTaskLimit' });

    const cancelled = await cli(['slurm', 'cancel', first.dir, '--whole-array'], dir);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    const r = await follower;
    expect(r.code).toBe(1);
    const [a, b] = runsIn(runsDir);
    expect(a.status).toBe('cancelled');
    expect(a.resumable).toBe(true);
    expect(b.status).toBe('cancelled');
    expect(b.startedAt).toBeUndefined();
    expect(r.lines.find((l) => l.type === 'done')).toMatchObject({ status: 'cancelled', exitCode: 1 });
  }, 300_000);

  it('a task whose time limit comes saves a checkpoint, requeues itself and resumes to the result of an uninterrupted run', async () => {
    const dir = tempDir();
    // A one-minute limit, told 50 s before it: Slurm looks at time limits every 30 s, so the signal comes 10 to 40 s
    // in, when the training process has its handler and this run (about a minute on an idle machine) is midway.
    const config = writeConfig(dir, { maxSteps: 3500 });
    const onSlurm = cli(['train', config, ...SLURM, '--time', '1', '--signal-lead', '50', '--runs-dir', 'slurm-runs', '--json'], dir);
    const uninterrupted = cli(['train', config, '--runs-dir', 'local-runs', '--json'], dir);
    const runsDir = path.join(dir, 'slurm-runs');
    const run = await waitFor('the run to be submitted', () => runsIn(runsDir).find((r) => r.slurm));
    const task = `${run.slurm!.jobId}_0`;
    // Requeued: Slurm holds a requeued job back two minutes (BeginTime); the test gives it a longer limit and lets
    // it start at once, as an administrator could.
    await waitFor(
      'the task to be requeued',
      () => {
        const job = scontrolJob(task);
        return job.JobState === 'PENDING' && Number(job.Restarts) >= 1 && job;
      },
      240_000,
    );
    expect(record(run.dir).status).toBe('cancelled');
    const stepsBefore = trainSteps(run.dir);
    expect(stepsBefore).toBeGreaterThan(0);
    expect(stepsBefore).toBeLessThan(3500);
    scontrol('update', `JobId=${task}`, 'TimeLimit=10', 'StartTime=now');

    const [r, local] = await Promise.all([onSlurm, uninterrupted]);
    expect(r.code, `${r.stdout}${r.stderr}\nslurm.log:\n${slurmLog(run.dir)}`).toBe(0);
    expect(local.code, local.stderr).toBe(0);
    const log = fs.readFileSync(path.join(run.dir, 'slurm.log'), 'utf8');
    expect(log).toContain('the time limit is near');
    expect(log).toContain('resuming at step');
    expect(record(run.dir).status).toBe('done');
    expect(Number(scontrolJob(task).Restarts)).toBeGreaterThanOrEqual(1);
    expect(outcome(run.dir)).toEqual(outcome(runsIn(path.join(dir, 'local-runs'))[0].dir));
  }, 600_000);

  it('a task requeued from outside (as preemption does) stops with a checkpoint and resumes to the uninterrupted result', async () => {
    const dir = tempDir();
    const config = writeConfig(dir, { maxSteps: 1500 });
    const onSlurm = cli(['train', config, ...SLURM, '--runs-dir', 'slurm-runs', '--json'], dir);
    const uninterrupted = cli(['train', config, '--runs-dir', 'local-runs', '--json'], dir);
    const runsDir = path.join(dir, 'slurm-runs');
    const run = await waitFor('the run to train', () => runsIn(runsDir).find((r) => r.slurm && trainSteps(r.dir) >= 20));
    const task = `${run.slurm!.jobId}_0`;
    scontrol('requeue', task);
    await waitFor('the task to be pending again', () => scontrolJob(task).JobState === 'PENDING' && record(run.dir).status === 'cancelled', 120_000);
    scontrol('update', `JobId=${task}`, 'StartTime=now');
    const [r, local] = await Promise.all([onSlurm, uninterrupted]);
    expect(r.code, `${r.stdout}${r.stderr}\nslurm.log:\n${slurmLog(run.dir)}`).toBe(0);
    expect(local.code, local.stderr).toBe(0);
    const log = fs.readFileSync(path.join(run.dir, 'slurm.log'), 'utf8');
    expect(log).toContain('stopped by Slurm (cancel or preemption)');
    expect(log).toContain('resuming at step');
    expect(outcome(run.dir)).toEqual(outcome(runsIn(path.join(dir, 'local-runs'))[0].dir));
  }, 480_000);

  it("Resume Run with Slurm on sends a cancelled run back to Slurm: it resumes from its checkpoint to the uninterrupted result (a done run is refused)", async () => {
    const dir = tempDir();
    const config = writeConfig(dir, { maxSteps: 1200 });
    const onSlurm = cli(['train', config, ...SLURM, '--runs-dir', 'slurm-runs', '--json'], dir);
    const uninterrupted = cli(['train', config, '--runs-dir', 'local-runs', '--json'], dir);
    const run = await waitFor('the run to train', () => runsIn(path.join(dir, 'slurm-runs')).find((r) => r.slurm && trainSteps(r.dir) >= 20));
    const firstJob = run.slurm!.jobId;
    const cancelled = await cli(['slurm', 'cancel', run.dir], dir);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect((await onSlurm).code).toBe(1);
    expect(record(run.dir).status).toBe('cancelled');
    const stepsBefore = trainSteps(run.dir);
    expect(stepsBefore).toBeLessThan(1200);

    // What the extension's Resume Run enqueues with adapterLab.slurm.enabled (plus --wait, to follow it here).
    const settings: SlurmSettings = {
      enabled: true, partition: '', time: '10', cpusPerTask: 1, mem: '', gres: '', maxConcurrent: null, signalLeadSeconds: null,
      extraArgs: [], node: process.execPath, cliPath: '', pollSeconds: 1,
    };
    const job = slurmResumeJob(run.dir, run.name, { backend: 'auto', runsDir: path.join(dir, 'slurm-runs') }, settings);
    expect(job.args.slice(0, 4)).toEqual(['train', '--resume', run.dir, '--slurm']);
    const resumed = await cli([...job.args, '--wait', '--json'], job.cwd);
    const local = await uninterrupted;
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
    expect(local.code, local.stderr).toBe(0);
    const after = record(run.dir);
    expect(after.status).toBe('done');
    // A new job, in a submission folder of its own; the first job's folder is kept.
    expect(after.slurm!.jobId).not.toBe(firstJob);
    expect(path.dirname(after.slurm!.script)).not.toBe(path.dirname(run.slurm!.script));
    expect(fs.existsSync(run.slurm!.script)).toBe(true);
    const resumedAt = Number(/resuming at step (\d+)/.exec(fs.readFileSync(path.join(run.dir, 'slurm.log'), 'utf8'))?.[1]);
    expect(resumedAt).toBeGreaterThanOrEqual(20);
    expect(outcome(run.dir)).toEqual(outcome(runsIn(path.join(dir, 'local-runs'))[0].dir));

    const again = await cli(['train', '--resume', run.dir, '--slurm', '--node', process.execPath], dir);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('is done: only an interrupted, cancelled or failed run can be resumed');
  }, 480_000);

  it('a failing point fails with its error, exit code and the last lines of its log; the other point is done', async () => {
    const dir = tempDir();
    // Layer 5 does not exist in the 2-layer model: that point fails when it starts.
    const config = writeConfig(dir, { maxSteps: 4 }, { 'method.leaveOut': [[0], [5]] });
    const r = await cli(['sweep', config, ...SLURM, '--json'], dir);
    expect(r.code).toBe(1);
    const runsDir = path.join(dir, '.adapter-lab', 'runs');
    const [ok, bad] = runsIn(runsDir);
    expect(ok.status).toBe('done');
    expect(bad.status).toBe('failed');
    expect(bad.error!.message).toMatch(/leaveOut|layer/i);
    expect(bad.error!.stderrTail).toContain('error:');
    expect(scontrolJob(`${bad.slurm!.jobId}_1`)).toMatchObject({ JobState: 'FAILED', ExitCode: '2:0' });
    expect(r.lines.filter((l) => l.type === 'sweepPoint' && l.index === 1).pop()).toMatchObject({ status: 'failed', slurm: { phase: 'failed', exitCode: 2 } });
    // What people read: `slurm status` names the task, its exit code and the error.
    const status = await cli(['slurm', 'status', runsDir], dir);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`slurm ${bad.slurm!.jobId}_1 failed (exit code 2)`);
    expect(status.stdout).toContain(bad.error!.message.split('\n')[0]);
  }, 300_000);

  it("the extension's submission and monitor: the tree goes from pending to done, the task logs reach the output channel", async () => {
    const dir = tempDir();
    const config = writeConfig(dir, { maxSteps: 30 }, { 'training.learningRate': [1e-3, 3e-3] });
    const runsDir = path.join(dir, 'runs');
    const settings: SlurmSettings = {
      enabled: true, partition: '', time: '10', cpusPerTask: 1, mem: '', gres: '', maxConcurrent: 1, signalLeadSeconds: null,
      extraArgs: ['--comment=adapter-lab-test'], node: process.execPath, cliPath: '', pollSeconds: 1,
    };
    // What Run Sweep enqueues with adapterLab.slurm.enabled: a submission that ends once Slurm has the array.
    const job = slurmSubmitJob('sweep', path.join(dir, config), 'toy-slurm', 2, { backend: 'auto', runsDir }, settings);
    const submitted = await cli([...job.args, '--json'], job.cwd);
    expect(submitted.code, submitted.stderr + submitted.stdout).toBe(0);
    expect(slurmFlags(settings)).toContain('--sbatch-arg=--comment=adapter-lab-test');

    const lines: string[] = [];
    let descriptions: string[][] = [];
    const monitor = new SlurmMonitor({ runs: () => listRuns(runsDir).runs, onChange: () => undefined, onLog: (run, line) => lines.push(`[${run.name}] ${line}`), pollMs: 500 });
    const treePoints = () => {
      const tree = buildRunsTree(listRuns(runsDir), [], [], monitor.statuses);
      const sweep = (tree[0] as any).children[0].children[0] as SweepNode;
      return sweep.children.map((n: RunNode) => n.description.split(' · ')[0]);
    };
    const jobId = listRuns(runsDir).runs[0].slurm!.jobId;
    expect(scontrolJob(`${jobId}_0`).Comment).toBe('adapter-lab-test');
    const until = Date.now() + 180_000;
    for (;;) {
      await monitor.poll();
      const now = treePoints();
      if (!descriptions.length || descriptions[descriptions.length - 1].join() !== now.join()) descriptions.push(now);
      if (now.every((d) => d.endsWith(' done'))) break;
      if (Date.now() > until) throw new Error(`not done: ${JSON.stringify(descriptions)}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    // At most one at a time: the second point waited, pending with Slurm's reason, while the first ran.
    expect(descriptions.flat()).toContain(`slurm ${jobId}_1 pending (JobArrayTaskLimit)`);
    expect(descriptions.flat()).toContain(`slurm ${jobId}_0 running`);
    expect(descriptions[descriptions.length - 1]).toEqual([`slurm ${jobId}_0 done`, `slurm ${jobId}_1 done`]);
    expect(lines.some((l) => l.startsWith('[toy-slurm__lr=0.001] == Slurm job'))).toBe(true);
    expect(lines.some((l) => l.startsWith('[toy-slurm__lr=0.003]') && l.includes('best dev accuracy'))).toBe(true);
  }, 300_000);

  it('a run whose job Slurm has no record of is marked failed (lost), never left running', async () => {
    const dir = tempDir();
    writeConfig(dir, { maxSteps: 2 });
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'toy.adapter.json'), 'utf8'));
    const run = createRun(path.join(dir, 'runs'), resolveConfig(cfg, path.join(dir, 'toy.adapter.json'), dir));
    // A job id this cluster never gave out (its ids count from 1), and run.json left saying running.
    run.update({ slurm: { jobId: '987654', arrayTaskId: 0, script: path.join(dir, 'job.sbatch'), output: path.join(dir, 'none.out') } });
    run.update({ status: 'running', pid: 999_999_999 });
    const monitor = new SlurmMonitor({ runs: () => listRuns(path.join(dir, 'runs')).runs, onChange: () => undefined, pollMs: 1000 });
    await monitor.poll();
    expect(monitor.statuses.get(run.dir)).toMatchObject({ id: '987654_0', phase: 'lost' });
    const after = openRun(run.dir).record;
    expect(after.status).toBe('failed');
    expect(after.error!.message).toContain('Slurm lost task 987654_0');
  });
});
