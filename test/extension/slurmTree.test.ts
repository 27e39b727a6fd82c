import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/engine/config/load';
import { createRun, listRuns } from '../../src/engine/runs';
import type { SlurmTaskStatus } from '../../src/engine/slurm';
import { slurmFlags, slurmSubmitJob, type SlurmSettings } from '../../src/extension/runs/slurm';
import { buildRunsTree, type ConfigNode, type RunNode, type SweepNode, type TaskNode } from '../../src/extension/runs/treeModel';
import { tempDir, writeToyTask } from '../helpers/fixtures';

/** A sweep of three points submitted to Slurm as job 41 (tasks 0..2), as run.json files on disk. */
function slurmSweep() {
  const ws = tempDir('adapter-lab-slurm-tree-');
  writeToyTask(ws);
  const raw = {
    name: 'spam-houlsby',
    task: { name: 'spam', type: 'classification', train: 'data/train.jsonl', dev: 'data/dev.jsonl', textField: 'text', labelField: 'label' },
    model: 'builtin:tiny-bert',
    method: { type: 'houlsby', bottleneck: 8 },
  };
  fs.writeFileSync(path.join(ws, 'spam.adapter.json'), JSON.stringify(raw));
  const cfg = resolveConfig(raw, path.join(ws, 'spam.adapter.json'), ws);
  const runsDir = path.join(ws, 'runs');
  const runs = [1e-4, 1e-3, 1e-2].map((lr, index) => {
    const run = createRun(runsDir, cfg, { name: `spam-houlsby__lr=${lr}`, sweep: { group: 'spam-houlsby', assignment: { 'training.learningRate': lr }, id: 's1', index, size: 3 } });
    run.update({ slurm: { jobId: '41', arrayTaskId: index, script: path.join(runsDir, '.slurm', 's1', 'job.sbatch'), output: path.join(runsDir, '.slurm', 's1', `slurm-41_${index}.out`) } });
    return run;
  });
  return { runsDir, runs };
}

function points(tree: ReturnType<typeof buildRunsTree>): { sweep: SweepNode; runs: RunNode[] } {
  const config = (tree.find((n) => n.kind === 'task') as TaskNode).children[0] as ConfigNode;
  const sweep = config.children[0] as SweepNode;
  return { sweep, runs: sweep.children };
}

describe('Slurm runs in the Runs tree', () => {
  it("shows each point's Slurm job id and state: pending with its reason, running, done", () => {
    const { runsDir, runs } = slurmSweep();
    runs[1].update({ status: 'running', pid: 999_999_999 }); // a pid on a compute node: not this machine's business
    runs[2].update({ status: 'running' });
    runs[2].update({ status: 'done', best: { metric: 'accuracy', value: 0.9, epoch: 0, step: 4 } });
    const statuses = new Map<string, SlurmTaskStatus>([
      [runs[0].dir, { id: '41_0', phase: 'pending', state: 'PENDING', reason: 'Priority' }],
      [runs[1].dir, { id: '41_1', phase: 'running', state: 'RUNNING' }],
      [runs[2].dir, { id: '41_2', phase: 'done', state: 'COMPLETED', exitCode: 0 }],
    ]);
    const { sweep, runs: nodes } = points(buildRunsTree(listRuns(runsDir), [], [], statuses));
    expect(nodes.map((n) => n.description.split(' · ')[0])).toEqual(['slurm 41_0 pending (Priority)', 'slurm 41_1 running', 'slurm 41_2 done']);
    expect(nodes.map((n) => n.icon.codicon)).toEqual(['clock', 'sync~spin', 'pass']);
    // Cancel Run's menus: a pending or running Slurm point offers it, and the sweep (its whole array) too.
    expect(nodes[0].contextValue).toMatch(/\bstatus:queued\b.*\bslurm\b/);
    expect(nodes[1].contextValue).toMatch(/\bstatus:running\b/);
    expect(sweep.contextValue).toMatch(/\bactive\b/);
    expect(nodes[0].tooltip).toContain('slurm 41_0 pending (Priority); script ');
  });

  it('a requeued point (checkpointed, run.json cancelled, Slurm pending again) shows pending, not cancelled', () => {
    const { runsDir, runs } = slurmSweep();
    runs[0].update({ status: 'running' });
    runs[0].update({ status: 'cancelled', resumable: true });
    const statuses = new Map<string, SlurmTaskStatus>([[runs[0].dir, { id: '41_0', phase: 'pending', state: 'PENDING', reason: 'BeginTime', restarts: 1 }]]);
    const { runs: nodes } = points(buildRunsTree(listRuns(runsDir), [], [], statuses));
    expect(nodes[0].run.status).toBe('queued');
    expect(nodes[0].description).toContain('slurm 41_0 pending (BeginTime)');
    expect(nodes[0].tooltip).toContain('requeued 1x');
  });

  it('an ended sweep is not active, and a task that completed without finishing its run shows the run failed', () => {
    const { runsDir, runs } = slurmSweep();
    for (const r of runs) {
      r.update({ status: 'running' });
      r.update({ status: 'failed', error: { message: 'boom', exitCode: 1 } });
    }
    const statuses = new Map<string, SlurmTaskStatus>(runs.map((r, i) => [r.dir, { id: `41_${i}`, phase: 'done', state: 'COMPLETED', exitCode: 0 }]));
    const { sweep, runs: nodes } = points(buildRunsTree(listRuns(runsDir), [], [], statuses));
    expect(nodes[0].description.split(' · ')[0]).toBe('slurm 41_0 failed');
    expect(sweep.contextValue).not.toMatch(/\bactive\b/);
  });
});

describe('adapterLab.slurm.* settings', () => {
  const settings: SlurmSettings = {
    enabled: true,
    partition: 'gpu',
    time: '2:00:00',
    cpusPerTask: 4,
    mem: '',
    gres: 'gpu:1',
    maxConcurrent: 3,
    signalLeadSeconds: null,
    extraArgs: ['--account=nlp', ' '],
    node: '/shared/node-20/bin/node',
    cliPath: '',
    pollSeconds: 10,
  };

  it('become the CLI flags of the settings that are set, and Run Sweep a submission to Slurm', () => {
    expect(slurmFlags(settings)).toEqual(['--partition', 'gpu', '--time', '2:00:00', '--cpus', '4', '--gres', 'gpu:1', '--max-concurrent', '3', '--sbatch-arg=--account=nlp', '--node', '/shared/node-20/bin/node']);
    const job = slurmSubmitJob('sweep', '/ws/spam.adapter.json', 'spam', 6, { backend: 'wasm', runsDir: '/ws/runs' }, settings);
    expect(job.kind).toBe('slurm');
    expect(job.label).toBe('Submit sweep spam (6 runs) to Slurm');
    expect(job.args.slice(0, 8)).toEqual(['sweep', '/ws/spam.adapter.json', '--slurm', '--runs-dir', '/ws/runs', '--backend', 'wasm', '--partition']);
  });
});
