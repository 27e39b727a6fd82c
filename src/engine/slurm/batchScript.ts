/**
 * The sbatch script of a Slurm submission: one job array, task i training point i into its run folder. It is
 * written beside the job's records (`<runs folder>/.slurm/<sweep id>/job.sbatch`) and kept, so that what ran can
 * be read. Pure: the text only.
 *
 * Each task appends its output to `<run folder>/slurm.log` and runs `adapter-lab train --resume <run folder>`,
 * which starts a run never started and resumes one that was (from its checkpoint). The script traps two signals:
 * - USR1, sent by Slurm `signalLeadSeconds` before the time limit (`--signal=B:USR1@N`): the training process is
 *   stopped with SIGTERM (it saves a checkpoint), then the task requeues itself and resumes when it runs again;
 * - TERM, on `scancel` or preemption: the training process saves a checkpoint and ends (a preempted task is
 *   requeued by Slurm, `--requeue`, and resumes the same way).
 */
import { DEFAULT_SIGNAL_LEAD_SECONDS, type SlurmOptions } from './options';
import { SLURM_LOG_FILE } from '../runs/files';

export { SLURM_LOG_FILE };

/** What a task writes to its log just before it requeues itself (the time limit was near). */
export const REQUEUE_ANNOUNCEMENT = '== requeueing ';

export interface BatchScriptInput {
  /** Shown in squeue: `adapter-lab:<group>`. */
  jobName: string;
  /** Run folders in array-task order (absolute). */
  runDirs: string[];
  /** Where Slurm's own output goes (`slurm-%A_%a.out`): the folder the script is written to. */
  jobDir: string;
  options: SlurmOptions;
  /** The Node.js executable and CLI script on the compute nodes. */
  node: string;
  cli: string;
  /** Arguments every task's CLI gets after `train --resume <dir>` (e.g. --backend wasm). */
  trainArgs?: string[];
  /** When and by what the script was written, for its header. */
  header?: string;
}

/** A word for bash, single-quoted. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function batchScript(input: BatchScriptInput): string {
  const o = input.options;
  const last = input.runDirs.length - 1;
  const sbatch: string[] = [
    `--job-name=${input.jobName.replace(/\s+/g, '-')}`,
    `--array=0-${last}${o.maxConcurrent ? `%${o.maxConcurrent}` : ''}`,
    `--output=${input.jobDir}/slurm-%A_%a.out`,
    '--open-mode=append',
    '--requeue',
    `--signal=B:USR1@${o.signalLeadSeconds ?? DEFAULT_SIGNAL_LEAD_SECONDS}`,
  ];
  if (o.partition) sbatch.push(`--partition=${o.partition}`);
  if (o.time) sbatch.push(`--time=${o.time}`);
  if (o.cpusPerTask) sbatch.push(`--cpus-per-task=${o.cpusPerTask}`);
  if (o.mem) sbatch.push(`--mem=${o.mem}`);
  if (o.gres) sbatch.push(`--gres=${o.gres}`);
  sbatch.push(...(o.extraArgs ?? []));
  const train = ['"$NODE"', '"$CLI"', 'train', '--resume', '"$RUN_DIR"', ...(input.trainArgs ?? []).map(shellQuote)].join(' ');
  return `#!/bin/bash
# ${input.header ?? 'Written by adapter-lab.'}
# Array task i trains point i into RUN_DIRS[i] (adapter-lab train --resume), its output in <run folder>/${SLURM_LOG_FILE}.
# USR1 (the time limit is near) stops training with a checkpoint and requeues the task; TERM (scancel,
# preemption) stops it with a checkpoint. A requeued task resumes from its checkpoint.
${sbatch.map((a) => `#SBATCH ${a}`).join('\n')}

NODE=${shellQuote(input.node)}
CLI=${shellQuote(input.cli)}
RUN_DIRS=(
${input.runDirs.map((d) => `  ${shellQuote(d)}`).join('\n')}
)
RUN_DIR="\${RUN_DIRS[\${SLURM_ARRAY_TASK_ID:?not run as a Slurm array task}]}"
exec >>"$RUN_DIR/${SLURM_LOG_FILE}" 2>&1
echo "== Slurm job \${SLURM_ARRAY_JOB_ID}_\${SLURM_ARRAY_TASK_ID} (start $((\${SLURM_RESTART_COUNT:-0} + 1))) on $(hostname) at $(date -Is)"
# Requeued after its run ended (a node failure as it finished): nothing left to do.
if grep -Eq '^  "status": "done",?$' "$RUN_DIR/run.json" 2>/dev/null; then
  echo "== the run is done already"
  exit 0
fi

requeue=
interrupted=
trap 'interrupted=1; requeue=1; echo "== the time limit is near: saving a checkpoint, then requeueing"; kill -TERM "$child" 2>/dev/null' USR1
trap 'interrupted=1; echo "== stopped by Slurm (cancel or preemption): saving a checkpoint"; kill -TERM "$child" 2>/dev/null' TERM
${train} &
child=$!
# A trap interrupts wait; wait again for the training process's own exit code.
status=1
while :; do
  interrupted=
  wait "$child"
  s=$?
  [ "$s" -eq 127 ] && break
  status=$s
  [ -z "$interrupted" ] && break
done
echo "== the training process ended with exit code $status at $(date -Is)"
if [ -n "$requeue" ] && [ "$status" -ne 0 ]; then
  echo "${REQUEUE_ANNOUNCEMENT}\${SLURM_ARRAY_JOB_ID}_\${SLURM_ARRAY_TASK_ID}: it resumes from its checkpoint"
  if scontrol requeue "\${SLURM_ARRAY_JOB_ID}_\${SLURM_ARRAY_TASK_ID}"; then
    # Slurm ends the task itself as it requeues it: exiting first can leave it FAILED with the requeue lost.
    sleep 120 & wait $!
  else
    echo "== the requeue failed (scontrol exit $?): the task ends here"
  fi
fi
exit "$status"
`;
}
