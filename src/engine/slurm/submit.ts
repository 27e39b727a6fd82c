/**
 * Submits runs (a sweep's points, or one run) as one Slurm job array. The run folders exist before (created
 * `queued`, as for a local sweep); the job is submitted held, every run.json gets its `slurm` field (job id,
 * array task, script, Slurm's output file), and only then released, so no task can start before its run.json
 * names it (a trainer that opened run.json earlier would write it back without the field).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunHandle } from '../runs';
import { writeJsonAtomic } from '../util/atomicFile';
import { batchScript } from './batchScript';
import type { SlurmOptions } from './options';
import { cancel, release, submitHeld } from './scheduler';

/** Where a submission's script and records live: `<runs folder>/.slurm/<sweep id>/` (hidden from the runs list). */
export const SLURM_JOBS_DIR = '.slurm';
export const JOB_SCRIPT_FILE = 'job.sbatch';
export const JOB_RECORD_FILE = 'job.json';

export interface SubmitInput {
  runs: RunHandle[];
  /** The config's name (the job's name in squeue). */
  group: string;
  /** Names the job's folder: the sweep id, or the run's id for a single run. */
  submissionId: string;
  runsDir: string;
  options: SlurmOptions;
  node: string;
  cli: string;
  trainArgs?: string[];
}

export interface Submission {
  jobId: string;
  jobDir: string;
  script: string;
}

export async function submitRuns(input: SubmitInput): Promise<Submission> {
  const jobDir = path.join(input.runsDir, SLURM_JOBS_DIR, input.submissionId);
  fs.mkdirSync(jobDir, { recursive: true });
  const script = path.join(jobDir, JOB_SCRIPT_FILE);
  fs.writeFileSync(
    script,
    batchScript({
      jobName: `adapter-lab:${input.group}`,
      runDirs: input.runs.map((r) => r.dir),
      jobDir,
      options: input.options,
      node: input.node,
      cli: input.cli,
      trainArgs: input.trainArgs,
      header: `adapter-lab: ${input.runs.length} run${input.runs.length === 1 ? '' : 's'} of ${input.group}, written ${new Date().toISOString()}`,
    }),
    { mode: 0o755 },
  );
  let jobId: string;
  try {
    jobId = await submitHeld(script, jobDir);
  } catch (err) {
    // Nothing will ever run these runs: say why in each run.json instead of leaving them queued.
    for (const r of input.runs) r.update({ status: 'failed', error: { message: (err as Error).message, exitCode: 2 } });
    throw err;
  }
  try {
    input.runs.forEach((r, i) => r.update({ slurm: { jobId, arrayTaskId: i, script, output: path.join(jobDir, `slurm-${jobId}_${i}.out`) } }));
    writeJsonAtomic(path.join(jobDir, JOB_RECORD_FILE), { jobId, group: input.group, submittedAt: new Date().toISOString(), options: input.options, runDirs: input.runs.map((r) => r.dir) });
    await release(jobId);
  } catch (err) {
    await cancel(jobId).catch(() => undefined);
    for (const r of input.runs) r.update({ status: 'cancelled' });
    throw err;
  }
  return { jobId, jobDir, script };
}
