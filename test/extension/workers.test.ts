import { describe, expect, it } from 'vitest';
import { backendArgs, evalJob, trainJob, workersPerJob } from '../../src/extension/runs/jobs';
import { slurmSubmitJob } from '../../src/extension/runs/slurm';

/** adapterLab.workers and adapterLab.maxConcurrentRuns share the cores (README, Performance). */
describe('worker threads per engine job', () => {
  it('the setting wins; else concurrent jobs divide the cores; else the engine decides', () => {
    expect(workersPerJob(3, 4, 16)).toBe(3);
    expect(workersPerJob(0, 1, 16)).toBeUndefined();
    expect(workersPerJob(0, 4, 16)).toBe(4);
    expect(workersPerJob(0, 3, 16)).toBe(5);
    // More jobs than cores: one thread each, never none.
    expect(workersPerJob(0, 4, 2)).toBe(1);
    // Never more busy threads than cores by default.
    for (const cores of [1, 2, 3, 8, 16]) for (const jobs of [2, 3, 4, 8]) expect(jobs * workersPerJob(0, jobs, cores)!).toBeLessThanOrEqual(Math.max(cores, jobs));
  });

  it('local jobs pass --workers, Slurm submissions do not', () => {
    const o = { backend: 'wasm' as const, runsDir: '/runs', workers: 2 };
    expect(backendArgs(o)).toEqual(['--backend', 'wasm', '--workers', '2']);
    expect(backendArgs({ ...o, workers: undefined })).toEqual(['--backend', 'wasm']);
    expect(trainJob('/c.adapter.json', 'c', o).args).toContain('--workers');
    expect(evalJob('/runs/r', 'r', 'dev', o).args.slice(-2)).toEqual(['--workers', '2']);
    const slurm = slurmSubmitJob('train', '/c.adapter.json', 'c', 1, o, { enabled: true, partition: '', time: '', cpusPerTask: null, mem: '', gres: '', maxConcurrent: null, signalLeadSeconds: null, extraArgs: [], node: '', cliPath: '', pollSeconds: 10 });
    expect(slurm.args).not.toContain('--workers');
  });
});
