/**
 * The names of a run folder's files, in one place (plain data: the extension, the CLI and the engine all read
 * them from here):
 *
 *   run.json              the run's record (runs/types.ts RunRecord)
 *   metrics.jsonl         one JSON object per line: train steps, evaluations, epochs
 *   run.lock              held by the one process that writes the run
 *   cancel-requested      a sweep point's cancel request
 *   checkpoint/           state.json and the safetensors it names (resume)
 *   adapter/              the trained adapter (AdapterHub's layout)
 *   eval-<split>.json     evaluations; ablation.json, drop.json, fusion-attention.json: analyses
 *   slurm.log             a Slurm task's output (the batch script appends to it; each requeue adds to it)
 */

export const RUN_FILE = 'run.json';
export const METRICS_FILE = 'metrics.jsonl';
export const LOCK_FILE = 'run.lock';
export const CHECKPOINT_DIR = 'checkpoint';
/** checkpoint/state.json: where a resume starts and which checkpoint files hold its tensors. */
export const CHECKPOINT_STATE_FILE = 'state.json';
export const ADAPTER_DIR = 'adapter';
/**
 * A file whose presence in adapter/ says it holds a trained model that `eval` and `ablate` read, whatever the
 * family: an AdapterHub adapter or fusion (text), a domain's modules and head (families/resnet/model.ts
 * DOMAIN_FILES.meta). Only the first two are AdapterHub's layout (export, AdapterDrop).
 */
export const TRAINED_MARKER_FILES = ['adapter_config.json', 'adapter_fusion_config.json', 'domain.json'] as const;
/**
 * Present in a sweep point's folder when someone asked to cancel that one point: the sweep process, which owns
 * its points, skips the point if it has not started or stops its training process if it has (the rest of the
 * sweep goes on). A file rather than a signal, so that the request cannot race the point's start.
 */
export const CANCEL_REQUEST_FILE = 'cancel-requested';
/** A Slurm array task's stdout and stderr (engine/slurm/batchScript.ts). */
export const SLURM_LOG_FILE = 'slurm.log';

/** Result files, by the name `writeResult` takes (the file is `<name>.json`). */
export const RESULT = {
  ablation: 'ablation',
  drop: 'drop',
  fusionAttention: 'fusion-attention',
} as const;

/** The result name of an evaluation on a split: eval-dev, eval-test. */
export function evalResultName(split: string): string {
  return `eval-${split}`;
}

/** The file a result name is written to. */
export function resultFileName(name: string): string {
  return `${name}.json`;
}
