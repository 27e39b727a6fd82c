import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../src/engine/config/load';
import { createRun, openRun } from '../../../src/engine/runs';
import { batchScript, expandTaskIds, parseSacct, parseScontrolJobs, reconcileRun, REQUEUE_ANNOUNCEMENT, SLURM_LOG_FILE, slurmStatuses } from '../../../src/engine/slurm';
import { tempDir, writeToyTask } from '../../helpers/fixtures';

/** The parts of the Slurm support that need no cluster (test/slurm/ runs them against a real one). */

function slurmRun(dir: string) {
  writeToyTask(dir);
  const raw = { name: 'toy', task: { name: 'toy', type: 'classification', train: 'data/train.jsonl', dev: 'data/dev.jsonl', textField: 'text', labelField: 'label' }, model: 'builtin:tiny-bert', method: { type: 'houlsby', bottleneck: 8 } };
  const run = createRun(path.join(dir, 'runs'), resolveConfig(raw, path.join(dir, 'toy.adapter.json'), dir));
  run.update({ slurm: { jobId: '7', arrayTaskId: 0, script: path.join(dir, 'job.sbatch'), output: path.join(dir, 'slurm-7_0.out') } });
  return run;
}

describe('the batch script', () => {
  it('is valid bash that hands each task its run folder, quoted, and logs into it', () => {
    const dir = tempDir();
    const runDirs = [path.join(dir, "run one's"), path.join(dir, 'run $two')];
    runDirs.forEach((d) => fs.mkdirSync(d));
    // The "node" here prints the arguments it gets, one per line.
    const node = path.join(dir, 'print args');
    fs.writeFileSync(node, '#!/bin/sh\nfor a in "$@"; do echo "arg:$a"; done\n', { mode: 0o755 });
    const script = path.join(dir, 'job.sbatch');
    fs.writeFileSync(script, batchScript({ jobName: 'adapter-lab:toy sweep', runDirs, jobDir: dir, options: { maxConcurrent: 2, time: '1:00:00', extraArgs: ['--account=nlp'] }, node, cli: '/shared/adapter lab/cli.js', trainArgs: ['--backend', 'wasm'] }));
    expect(spawnSync('bash', ['-n', script]).status).toBe(0);
    const text = fs.readFileSync(script, 'utf8');
    expect(text).toContain('#SBATCH --array=0-1%2\n');
    expect(text).toContain('#SBATCH --time=1:00:00\n');
    expect(text).toContain('#SBATCH --account=nlp\n');
    expect(text).toContain('#SBATCH --job-name=adapter-lab:toy-sweep\n');
    const r = spawnSync('bash', [script], { env: { ...process.env, SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_JOB_ID: '9' }, encoding: 'utf8' });
    expect(r.status).toBe(0);
    const log = fs.readFileSync(path.join(runDirs[1], SLURM_LOG_FILE), 'utf8');
    expect(log).toContain('== Slurm job 9_1 (start 1)');
    expect(log).toContain(['arg:/shared/adapter lab/cli.js', 'arg:train', 'arg:--resume', `arg:${runDirs[1]}`, 'arg:--backend', 'arg:wasm'].join('\n'));
    expect(log).toContain('ended with exit code 0');
    expect(fs.existsSync(path.join(runDirs[0], SLURM_LOG_FILE))).toBe(false);

    // Requeued after its run was done: the task ends at once, training nothing.
    const run = slurmRun(path.join(dir, 'done'));
    run.update({ status: 'running' });
    run.update({ status: 'done' });
    fs.writeFileSync(script, batchScript({ jobName: 'x', runDirs: [run.dir], jobDir: dir, options: {}, node, cli: 'cli.js' }));
    expect(spawnSync('bash', [script], { env: { ...process.env, SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_JOB_ID: '9' } }).status).toBe(0);
    const doneLog = fs.readFileSync(path.join(run.dir, SLURM_LOG_FILE), 'utf8');
    expect(doneLog).toContain('== the run is done already');
    expect(doneLog).not.toContain('arg:train');
  });
});

describe("reading Slurm's answers", () => {
  it('expands array task lists, throttled or not', () => {
    expect(expandTaskIds('0-3%2')).toEqual([0, 1, 2, 3]);
    expect(expandTaskIds('[1,4-5]')).toEqual([1, 4, 5]);
    expect(expandTaskIds('0-6:3')).toEqual([0, 3, 6]);
  });

  it('parses scontrol -o records (a pending, unsplit range included) and sacct lines', () => {
    const scontrol = [
      'JobId=12 ArrayJobId=11 ArrayTaskId=1-2%1 JobName=adapter-lab:toy UserId=root(0) JobState=PENDING Reason=JobArrayTaskLimit Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 ExitCode=0:0',
      'JobId=11 ArrayJobId=11 ArrayTaskId=0 JobName=adapter-lab:toy UserId=root(0) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) Requeue=1 Restarts=2 BatchFlag=1 ExitCode=2:0',
    ].join('\n');
    expect(parseScontrolJobs(scontrol)).toEqual([
      { jobId: '11', arrayTaskId: 1, state: 'PENDING', reason: 'JobArrayTaskLimit', exitCode: 0, signal: 0, restarts: 0 },
      { jobId: '11', arrayTaskId: 2, state: 'PENDING', reason: 'JobArrayTaskLimit', exitCode: 0, signal: 0, restarts: 0 },
      { jobId: '11', arrayTaskId: 0, state: 'FAILED', reason: 'NonZeroExitCode', exitCode: 2, signal: 0, restarts: 2 },
    ]);
    expect(parseSacct('11_0|CANCELLED by 0|0:15|None\n11_[1-2]|PENDING|0:0|Priority\n11_0.batch|CANCELLED|0:15|\n')).toEqual([
      { jobId: '11', arrayTaskId: 0, state: 'CANCELLED', reason: 'None', exitCode: 0, signal: 15 },
      { jobId: '11', arrayTaskId: 1, state: 'PENDING', reason: 'Priority', exitCode: 0, signal: 0 },
      { jobId: '11', arrayTaskId: 2, state: 'PENDING', reason: 'Priority', exitCode: 0, signal: 0 },
    ]);
  });
});

describe('reconciling run.json with what Slurm saw', () => {
  it('a task cancelled while pending ends its run cancelled', () => {
    const run = slurmRun(tempDir());
    expect(reconcileRun(run.dir, { id: '7_0', phase: 'cancelled', state: 'CANCELLED' })?.status).toBe('cancelled');
    expect(openRun(run.dir).record.status).toBe('cancelled');
  });

  it('a task killed at its time limit ends its run failed, with the reason and the last lines of its log', () => {
    const dir = tempDir();
    const run = slurmRun(dir);
    run.update({ status: 'running' });
    fs.writeFileSync(path.join(run.dir, SLURM_LOG_FILE), 'epoch 1/3  step 10/90\n');
    fs.writeFileSync(path.join(dir, 'slurm-7_0.out'), 'slurmstepd: error: *** JOB 7 ON vm CANCELLED AT 2026-12-06T10:00:00 DUE TO TIME LIMIT ***\n');
    const after = reconcileRun(run.dir, { id: '7_0', phase: 'timeout', state: 'TIMEOUT', exitCode: 0 })!;
    expect(after.status).toBe('failed');
    expect(after.error!.message).toBe("Slurm task 7_0 reached its time limit (TIMEOUT) before it could save a checkpoint and requeue");
    expect(after.error!.stderrTail).toBe('epoch 1/3  step 10/90\nslurmstepd: error: *** JOB 7 ON vm CANCELLED AT 2026-12-06T10:00:00 DUE TO TIME LIMIT ***');
    expect(after.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('leaves a run alone while its task lives, and a run that ended itself', () => {
    const run = slurmRun(tempDir());
    expect(reconcileRun(run.dir, { id: '7_0', phase: 'running', state: 'RUNNING' })).toBeNull();
    run.update({ status: 'running' });
    run.update({ status: 'done' });
    expect(reconcileRun(run.dir, { id: '7_0', phase: 'done', state: 'COMPLETED', exitCode: 0 })).toBeNull();
    expect(openRun(run.dir).record.status).toBe('done');
  });
});

/**
 * Runs `check` with a scontrol first on PATH that answers `show job` with the given JobState/Restarts pairs in
 * turn (the last one for ever); `asked` counts its calls. The real cluster (test/slurm/) shows the moment a
 * self-requeued task passes through FAILED only under load, by chance; this replays that sequence of answers so
 * the rule that waits it out is tested every time.
 */
async function withScriptedScontrol(dir: string, answers: [state: string, restarts: number][], check: (asked: () => number) => Promise<void>): Promise<void> {
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  const counter = path.join(dir, 'asked');
  fs.writeFileSync(counter, '0');
  const cases = answers
    .map(([state, restarts], i) => `  ${i === answers.length - 1 ? '*' : i}) echo "JobId=8 ArrayJobId=7 ArrayTaskId=0 JobState=${state} Reason=None Restarts=${restarts} ExitCode=${state === 'FAILED' ? '1:0' : '0:0'}" ;;`)
    .join('\n');
  fs.writeFileSync(path.join(bin, 'scontrol'), `#!/bin/sh\nn=$(cat '${counter}')\necho $((n + 1)) > '${counter}'\ncase $n in\n${cases}\nesac\n`, { mode: 0o755 });
  const oldPath = process.env.PATH;
  process.env.PATH = `${bin}:${oldPath}`;
  try {
    await check(() => Number(fs.readFileSync(counter, 'utf8')));
  } finally {
    process.env.PATH = oldPath;
  }
}

describe('an end Slurm shows for a moment is not taken for the end', () => {
  it('a self-requeued task seen FAILED, then PENDING, is pending; an end that holds is the end', async () => {
    const dir = tempDir();
    const run = slurmRun(dir);
    run.update({ status: 'running' });
    run.update({ status: 'cancelled' });
    const slurm = openRun(run.dir).record.slurm!;
    fs.writeFileSync(path.join(run.dir, SLURM_LOG_FILE), `== Slurm job 7_0 (start 1)\n== the training process ended with exit code 1\n${REQUEUE_ANNOUNCEMENT}7_0: it resumes from its checkpoint\n`);
    process.env.ADAPTER_LAB_SLURM_SETTLE_MS = '50';

    const status = async () => (await slurmStatuses([{ dir: run.dir, slurm }])).get(run.dir);

    // The log says it requeued itself: FAILED, even held, is shown pending (Slurm can show it for over a minute).
    await withScriptedScontrol(path.join(dir, 'a'), [['FAILED', 1], ['FAILED', 1], ['PENDING', 1]], async (asked) => {
      expect(await status()).toMatchObject({ phase: 'pending', state: 'PENDING', restarts: 1 });
      expect(asked()).toBe(2);
      // Slurm's own PENDING, when it comes, is taken at once.
      expect(await status()).toMatchObject({ phase: 'pending', state: 'PENDING', restarts: 1 });
      expect(asked()).toBe(3);
    });
    expect(openRun(run.dir).record.status).toBe('cancelled');

    // ... but not for ever: once the announcement is five minutes old, the end Slurm shows is believed.
    const announced = fs.readFileSync(path.join(run.dir, SLURM_LOG_FILE), 'utf8');
    const sixMinutesAgo = (Date.now() - 6 * 60_000) / 1000;
    fs.utimesSync(path.join(run.dir, SLURM_LOG_FILE), sixMinutesAgo, sixMinutesAgo);
    await withScriptedScontrol(path.join(dir, 'a2'), [['FAILED', 1]], async () => {
      expect(await status()).toMatchObject({ phase: 'failed', exitCode: 1, restarts: 1 });
    });

    // A requeue scontrol refused is said after the announcement (the batch script): the end is believed at once.
    fs.writeFileSync(path.join(run.dir, SLURM_LOG_FILE), `${announced}== the requeue failed (scontrol exit 1): the task ends here\n`);
    await withScriptedScontrol(path.join(dir, 'a3'), [['FAILED', 1]], async (asked) => {
      expect(await status()).toMatchObject({ phase: 'failed', exitCode: 1, restarts: 1 });
      expect(asked()).toBe(2);
    });

    // No announcement: an end seen twice, the same, is believed (and the run is left as it ended itself).
    fs.writeFileSync(path.join(run.dir, SLURM_LOG_FILE), '== Slurm job 7_0 (start 2)\n== the training process ended with exit code 1\n');
    await withScriptedScontrol(path.join(dir, 'b'), [['FAILED', 2]], async (asked) => {
      expect(await status()).toMatchObject({ phase: 'failed', exitCode: 1, restarts: 2 });
      expect(asked()).toBe(2);
    });

    // A completed task is believed at once.
    await withScriptedScontrol(path.join(dir, 'c'), [['COMPLETED', 2]], async (asked) => {
      expect(await status()).toMatchObject({ phase: 'done' });
      expect(asked()).toBe(1);
    });
  });
});
