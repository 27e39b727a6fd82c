import type { RunRecord } from '../runs';
import { queryArray } from './scheduler';
import { reconcileRun, taskStatus, type SlurmTaskStatus } from './taskState';

/**
 * Slurm's state of each Slurm run (by run folder), one scontrol (or sacct) per job array; the run.json of a task
 * that ended without ending its run gets the end Slurm saw (reconcileRun). Runs without a `slurm` field are left out.
 */
export async function slurmStatuses(runs: { dir: string; slurm?: RunRecord['slurm'] }[]): Promise<Map<string, SlurmTaskStatus>> {
  const out = new Map<string, SlurmTaskStatus>();
  const jobs = new Map<string, typeof runs>();
  for (const r of runs) if (r.slurm) jobs.set(r.slurm.jobId, [...(jobs.get(r.slurm.jobId) ?? []), r]);
  for (const [jobId, members] of jobs) {
    const tasks = await queryArray(jobId);
    for (const r of members) {
      const s = taskStatus(r.slurm!, tasks.find((t) => t.arrayTaskId === r.slurm!.arrayTaskId));
      reconcileRun(r.dir, s);
      out.set(r.dir, s);
    }
  }
  return out;
}
