import { ResolvedConfig } from '../engine/config/types';
import { evalResultName, RESULT } from '../engine/runs';
import { familyFor } from '../engine/families';
import { FamilyRunConfig, FamilyTaskType, ModelFamily } from '../engine/model/family';
import { writePredictionGrid } from '../engine/analysis/predictionGrid';
import { evaluateFamily, startFamilyPool, unitAblationOn } from '../engine/parallel/familyParallel';
import { primaryMetricFor } from '../engine/metrics/metrics';
import { UserInputError } from '../engine/errors';
import { Reporter, finishEval, formatNumber } from './reporter';
import type { Target } from './targets';

/**
 * eval, ablate and info on the model-family interface, for the families without commands of their own (the ones
 * whose `ownTrainer` is not set: the text family keeps its own versions in main.ts). Evaluation batches are
 * spread over `workers` threads where the family's model supports it (parallel/familyParallel.ts), each batch
 * computed whole by one of them: the same results whatever the number.
 */

/** The family of a target that has a config (a run), when it is one of the generic ones; null otherwise. */
export function genericFamilyOf(config: ResolvedConfig | null): ModelFamily | null {
  if (!config) return null;
  const family = familyFor(config.task.type as FamilyTaskType);
  return family.ownTrainer ? null : family;
}

async function splitExamples(family: ModelFamily, config: ResolvedConfig, split: 'dev' | 'test') {
  const data = await family.readData(config as unknown as FamilyRunConfig);
  const examples = data[split];
  if (!examples.length) throw new UserInputError(`the task has no ${split} set`);
  return examples;
}

export async function evalFamilyRun(family: ModelFamily, target: Extract<Target, { kind: 'run' }>, split: 'dev' | 'test', out: Reporter, workers: number): Promise<number> {
  const { config, run } = target;
  const examples = await splitExamples(family, config, split);
  const model = await family.loadTrained(target.adapterDir);
  try {
    out.emit({ type: 'start', command: 'eval', runDir: run.dir });
    const batchSize = config.training.evalBatchSize;
    const pool = await startFamilyPool(family, model, Math.min(workers, Math.ceil(examples.length / batchSize)));
    let result;
    try {
      result = await evaluateFamily(pool, model, examples, batchSize);
    } finally {
      await pool?.close();
    }
    return finishEval(out, { split, ...result }, run.dir, (payload) => {
      const time = new Date().toISOString();
      writePredictionGrid(run, split, examples, result, model, time);
      run.writeResult(evalResultName(split), { ...payload, time });
    });
  } finally {
    model.dispose();
  }
}

/** The block (unit) ablation, written as ablation.json in the layer ablation's shape (the heatmap reads either). */
export async function ablateFamilyRun(family: ModelFamily, target: Extract<Target, { kind: 'run' }>, split: 'dev' | 'test', out: Reporter, workers: number): Promise<number> {
  const { config, run } = target;
  const examples = await splitExamples(family, config, split);
  const model = await family.loadTrained(target.adapterDir);
  try {
    if (!model.ablationUnits.length) throw new UserInputError(`method ${config.method.type} has no per-block modules to remove`);
    const metric = config.training.metric === 'loss' ? primaryMetricFor(config.task.type) : config.training.metric;
    const started = Date.now();
    out.emit({ type: 'start', command: 'ablate', runDir: run.dir });
    const batchSize = config.training.evalBatchSize;
    const spans = (model.ablationUnits.length * (model.ablationUnits.length + 1)) / 2 + 1;
    const pool = await startFamilyPool(family, model, Math.min(workers, spans * Math.ceil(examples.length / batchSize)));
    let result;
    try {
      result = await unitAblationOn(pool, model, examples, {
        metric,
        batchSize,
        split,
        onSpan: (step, totalSteps) => out.emit({ type: 'progress', runDir: run.dir, epoch: 0, epochs: 1, step, totalSteps, elapsedMs: Date.now() - started }),
      });
    } finally {
      await pool?.close();
    }
    const file = run.writeResult(RESULT.ablation, { ...result, time: new Date().toISOString() });
    out.emit({ type: 'result', command: 'ablate', runDir: run.dir, file, baseline: result.baseline, matrix: result.matrix, metric: result.metric });
    if (!out.json) {
      out.info(`${result.metric} with every adapter: ${formatNumber(result.baseline)}; rows: first removed block, columns: last removed block`);
      for (const row of result.matrix) out.info(row.map((v) => (v === null ? '     -' : v.toFixed(4).padStart(6))).join(' '));
      out.info(`written to ${file}`);
    }
    out.emit({ type: 'done', command: 'ablate', status: 'done', runDir: run.dir, exitCode: 0 });
    return 0;
  } finally {
    model.dispose();
  }
}

/** Class probabilities of one row of scores (softmax). */
function softmax(x: number[]): number[] {
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/**
 * `predict <run> --input FILE|FOLDER` for a family's run: one prediction line per input (the family reads the
 * inputs: for images an IDX images file, an image, or a folder of images), in input order, with the class
 * probabilities (and the scores with --logits). Batches are spread over the workers as evaluation's are.
 */
export async function predictFamilyRun(family: ModelFamily, target: Extract<Target, { kind: 'run' }>, input: string, out: Reporter, opts: { workers: number; batchSize: number; logits: boolean }): Promise<number> {
  const model = await family.loadTrained(target.adapterDir);
  try {
    if (!model.readInputs || !model.parallel) throw new UserInputError(`predict does not take ${family.name} runs`);
    const { examples, sources } = model.readInputs(input);
    const parallel = model.parallel;
    const batches = model.batches(examples, opts.batchSize, { training: false, rng: null });
    const pool = await startFamilyPool(family, model, Math.min(opts.workers, batches.length));
    let outputs;
    try {
      outputs = pool ? await pool.familyOutputs(model, batches.map((batch) => ({ batch, disabledUnits: [] })), (b) => (b as { units: number }).units) : batches.map((b) => parallel.batchOutputs(b));
    } finally {
      await pool?.close();
    }
    const names = model.classLabels?.() ?? null;
    const scores = outputs.flatMap((o) => o.scores);
    scores.forEach((row, i) => {
      const best = row.indexOf(Math.max(...row));
      out.emit({
        type: 'prediction',
        index: i,
        source: sources[i],
        prediction: names ? names[best] : best,
        // The class names, in the order of probabilities and logits.
        ...(names ? { labels: names } : {}),
        probabilities: softmax(row),
        ...(opts.logits ? { logits: row } : {}),
      });
    });
    out.emit({ type: 'done', command: 'predict', status: 'done', exitCode: 0 });
    return 0;
  } finally {
    model.dispose();
  }
}

/** Parameter counts of a config's model, built as training would build it (the labels read from the data). */
export async function familyConfigCounts(family: ModelFamily, config: ResolvedConfig) {
  const cfg = config as unknown as FamilyRunConfig;
  const data = await family.readData(cfg);
  const model = await family.buildModel(cfg, data.labels, null);
  try {
    return model.parameterCounts();
  } finally {
    model.dispose();
  }
}

/** Parameter counts of a trained run's model. */
export async function familyTrainedCounts(family: ModelFamily, adapterDir: string) {
  const model = await family.loadTrained(adapterDir);
  try {
    return model.parameterCounts();
  } finally {
    model.dispose();
  }
}
