/**
 * Masked-language-model pretraining of a BERT encoder from plain text (`adapter-lab pretrain`), SPEC section 2.
 *
 *  1. A WordPiece vocabulary is learnt from the training text (vocab.ts).
 *  2. The text is tokenised and packed into sequences of maxSeqLength (data.ts).
 *  3. Each step masks a batch (15% of tokens chosen; 80/10/10 mask/random/keep) and takes one AdamW step
 *     (decoupled weight decay, linear warm-up and decay, global-norm clipping, dropout) on the cross-entropy
 *     at the chosen positions (mlm.ts).
 *  4. Every evalEvery steps the held-out text, masked once with a fixed seed, gives an MLM loss and accuracy
 *     that are comparable from one evaluation to the next.
 *  5. Checkpoints (parameters, optimizer moments, step, evaluations so far) every checkpointEvery steps and on
 *     cancel; `resume` continues from the last one.
 *  6. The result is written in the Hugging Face layout: config.json, model.safetensors with BertForMaskedLM
 *     names (`bert.` + the encoder's names, and `cls.predictions.*`), the tokenizer files and pretrain-log.json.
 *
 * Reproducibility: the order of the sequences in epoch e comes from Rng(seed, e), the masks and dropout of step
 * s from Rng(seed, s): nothing random is carried from step to step, so the "RNG position" a checkpoint needs is
 * its step, and a resumed run computes exactly what an uninterrupted one would.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { BertConfig } from '../model/config';
import { BertEncoder, encoderParamShapes } from '../model/bert';
import { initEncoderArrays, loadEncoder, saveEncoderHf, transpose2d } from '../model/checkpoint';
import { readSafetensors, TensorMap, writeSafetensors } from '../model/safetensors';
import { loadRawTokenizer } from '../data/tokenizer';
import { AdamW, applyGradients, linearScheduleFactor } from '../train/adamw';
import { activeBackend } from '../tf/backend';
import { UserInputError } from '../errors';
import { Rng } from '../util/random';
import { writeJsonAtomic } from '../util/atomicFile';
import { PretrainConfig } from './config';
import { MaskedBatch, MaskingOptions, maskBatch, packSequences, readTextLines, SpecialIds, tokenizeLines } from './data';
import { headParamShapes, initHeadArrays, MlmModel } from './mlm';
import { readVocab, saveTokenizerFiles, SPECIAL_TOKENS, TOKENIZER_FILES, trainWordPieceVocab } from './vocab';
import type { TrainProgress } from '../train/trainer';
import { defaultWorkers, WorkerPool } from '../parallel/pool';
import { MlmStepSettings, mlmShardLossAndGradients } from '../parallel/shard';

export interface HeldoutPoint {
  step: number;
  /** The epoch the step belongs to (0-based). */
  epoch: number;
  loss: number;
  accuracy: number;
  /** Mean training loss over the steps since the previous evaluation (absent at step 0). */
  trainLoss?: number;
  /** Training wall time so far (all sessions of a resumed run). */
  elapsedMs: number;
}

/** Progress of a pretraining step: the same fields as fine-tuning's, so the CLI reports both alike. */
export type PretrainProgress = TrainProgress;

export interface PretrainCallbacks {
  log?(message: string, level?: 'info' | 'warn'): void;
  progress?(p: PretrainProgress): void;
  evaluated?(e: HeldoutPoint): void;
}

export interface PretrainOptions {
  config: PretrainConfig;
  resume?: boolean;
  signal?: AbortSignal;
  callbacks?: PretrainCallbacks;
  /** Stop with a checkpoint (as a cancel would) once this many steps are done; for tests and chunked runs. */
  stopAfterSteps?: number;
  /** Keep the checkpoint folder after a finished run (it is removed by default). */
  keepCheckpoint?: boolean;
  /** Workers (threads) for data parallelism (the CLI's --workers); default: every core, one on tfjs-node. */
  workers?: number;
}

export interface PretrainOutcome {
  status: 'done' | 'cancelled';
  step: number;
  evals: HeldoutPoint[];
  /** The model folder (written when status is done). */
  outputDir: string;
  checkpointDir: string;
  wallMs: number;
}

/** What a checkpoint carries besides tensors (stored as the safetensors file's metadata). */
interface PretrainState {
  version: 1;
  name: string;
  /** Steps done; the RNG position (every random choice of step s is drawn from Rng(seed, s)). */
  step: number;
  optimizerStep: number;
  seed: number;
  totalSteps: number;
  vocabSize: number;
  evals: HeldoutPoint[];
  /** Training-loss sum and count since the last evaluation. */
  lossSum: number;
  lossCount: number;
  /** Wall time spent so far, over all sessions. */
  elapsedMs: number;
  stepMsSum: number;
}

const STATE_TENSORS = 'state.safetensors';
const STATE_JSON = 'state.json';
const EVAL_BATCH = 32;

/** Seeds derived from the run's seed and a counter (epoch or step), independent of earlier draws. */
export function derivedRng(seed: number, salt: number, counter: number): Rng {
  return new Rng(((seed * 1000003) ^ (salt * 7919 + counter * 2654435761)) >>> 0);
}

export function encoderConfigOf(cfg: PretrainConfig, vocabSize: number): BertConfig {
  const m = cfg.model;
  return {
    vocabSize,
    hiddenSize: m.hidden,
    numLayers: m.layers,
    numHeads: m.heads,
    intermediateSize: m.intermediate,
    hiddenAct: m.hiddenAct,
    maxPositions: m.maxPositions,
    typeVocabSize: 2,
    layerNormEps: 1e-12,
    hiddenDropout: m.dropout,
    attentionDropout: m.dropout,
  };
}

/** Builds the model with trainable variables from arrays in this codebase's layout (encoder and head names). */
export function mlmModelFromArrays(bertCfg: BertConfig, arrays: TensorMap, trainable: boolean): MlmModel {
  const make = (shapes: Map<string, number[]>) => {
    const vars = new Map<string, tf.Variable>();
    for (const [name, shape] of shapes) {
      const arr = arrays.get(name);
      if (!arr) throw new Error(`parameter ${name} is missing`);
      if (arr.shape.join(',') !== shape.join(',')) throw new Error(`parameter ${name} has shape [${arr.shape}], expected [${shape}]`);
      vars.set(name, tf.variable(tf.tensor(arr.data as Float32Array, shape, 'float32'), trainable));
    }
    return vars;
  };
  const encoder = new BertEncoder(bertCfg, make(encoderParamShapes(bertCfg)));
  return new MlmModel(encoder, make(headParamShapes(bertCfg.hiddenSize, bertCfg.vocabSize)));
}

/** The MLM head's tensors under their file names (dense weight in PyTorch's [out, in] layout). */
export function headTensorsForFile(model: MlmModel): TensorMap {
  const out: TensorMap = new Map();
  for (const [name, v] of model.head) {
    const arr = { shape: v.shape, data: v.dataSync() as Float32Array };
    out.set(name, name.endsWith('dense.weight') ? transpose2d(arr) : arr);
  }
  return out;
}

/** Reads the MLM head from a model folder's extra tensors (as loadEncoder returns them) into this layout. */
export function headArraysFromFile(extra: TensorMap): TensorMap {
  const out: TensorMap = new Map();
  for (const name of headParamShapes(1, 1).keys()) {
    const arr = extra.get(name);
    if (!arr) throw new UserInputError(`the model has no MLM head tensor ${name}`);
    out.set(name, name.endsWith('dense.weight') ? transpose2d(arr) : arr);
  }
  return out;
}

/**
 * The encoder and MLM head of a model folder written by `pretrain` (or any BertForMaskedLM checkpoint with
 * the `cls.predictions` tensors), for evaluating or inspecting MLM predictions.
 */
export function loadMlmModel(modelDir: string): MlmModel {
  const { encoder, extra } = loadEncoder(modelDir);
  try {
    const arrays = headArraysFromFile(extra);
    const head = new Map<string, tf.Variable>();
    for (const [name, shape] of headParamShapes(encoder.config.hiddenSize, encoder.config.vocabSize)) {
      const arr = arrays.get(name)!;
      if (arr.shape.join(',') !== shape.join(',')) throw new UserInputError(`MLM head tensor ${name} has shape [${arr.shape}], expected [${shape}]`, { file: modelDir });
      head.set(name, tf.variable(tf.tensor(arr.data as Float32Array, shape, 'float32'), false));
    }
    return new MlmModel(encoder, head);
  } catch (err) {
    encoder.dispose();
    throw err;
  }
}

interface PreparedData {
  vocab: string[];
  ids: SpecialIds;
  masking: MaskingOptions;
  train: Int32Array[];
  trainTokens: number;
  trainLines: number;
  heldout: MaskedBatch[];
  heldoutSequences: number;
  heldoutPositions: number;
}

/** Special-token ids of a vocabulary. */
export function specialIdsOf(vocab: string[]): SpecialIds {
  const idx = (t: string) => {
    const i = vocab.indexOf(t);
    if (i < 0) throw new Error(`vocabulary has no ${t}`);
    return i;
  };
  return { pad: idx('[PAD]'), unk: idx('[UNK]'), cls: idx('[CLS]'), sep: idx('[SEP]'), mask: idx('[MASK]') };
}

/**
 * The held-out batches, masked once with a fixed seed (Rng(seed, 3, 0)) so that every evaluation, and a
 * reloaded model, sees the same positions.
 */
export function heldoutBatches(seqs: Int32Array[], masking: MaskingOptions, seed: number, batchSize = EVAL_BATCH): MaskedBatch[] {
  const rng = derivedRng(seed, 3, 0);
  const out: MaskedBatch[] = [];
  for (let i = 0; i < seqs.length; i += batchSize) out.push(maskBatch(seqs.slice(i, i + batchSize), masking, rng));
  return out;
}

async function prepareData(cfg: PretrainConfig, workDir: string, resume: boolean, log: (m: string) => void): Promise<PreparedData> {
  let vocab: string[];
  if (resume) {
    vocab = readVocab(workDir);
  } else if (cfg.vocab) {
    vocab = fs.readFileSync(cfg.vocab, 'utf8').split(/\r?\n/);
    if (vocab[vocab.length - 1] === '') vocab.pop();
    saveTokenizerFiles(workDir, vocab, cfg.model.maxPositions);
    log(`WordPiece vocabulary: ${vocab.length} tokens from ${cfg.vocab}`);
  } else {
    const t0 = Date.now();
    vocab = trainWordPieceVocab(cfg.train, cfg.vocabSize);
    saveTokenizerFiles(workDir, vocab, cfg.model.maxPositions);
    log(`WordPiece vocabulary: ${vocab.length} tokens learnt from ${cfg.train.length} file(s) in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    if (vocab.length < cfg.vocabSize) log(`the text gives only ${vocab.length} WordPiece tokens (vocabSize asks for ${cfg.vocabSize})`);
  }
  const tok = await loadRawTokenizer(workDir);
  const ids = specialIdsOf(vocab);
  const masking: MaskingOptions = {
    maskProbability: cfg.training.maskProbability,
    vocabSize: vocab.length,
    ids,
    specialIds: new Set(SPECIAL_TOKENS.map((t) => vocab.indexOf(t))),
  };
  const T = cfg.training.maxSeqLength;
  const trainLines = readTextLines(cfg.train);
  const trainStream = await tokenizeLines(tok, trainLines);
  const train = packSequences(trainStream, T, ids, false);
  if (train.length === 0) throw new UserInputError(`the training text has ${trainStream.length} tokens: not enough for one sequence of ${T}`, { field: 'train' });
  const heldLines = readTextLines([cfg.heldout]);
  const held = packSequences(await tokenizeLines(tok, heldLines), T, ids, true).slice(0, cfg.training.heldoutSequences);
  if (held.length === 0) throw new UserInputError('the held-out text is empty', { file: cfg.heldout });
  const heldout = heldoutBatches(held, masking, cfg.training.seed);
  const heldoutPositions = heldout.reduce((n, b) => n + b.positions.length, 0);
  log(
    `data: ${trainLines.length} lines, ${trainStream.length.toLocaleString('en-US')} tokens -> ${train.length} training sequences of ${T}; ` +
      `held-out: ${held.length} sequences, ${heldoutPositions} masked positions`,
  );
  return { vocab, ids, masking, train, trainTokens: trainStream.length, trainLines: trainLines.length, heldout, heldoutSequences: held.length, heldoutPositions };
}

/** Held-out MLM loss (mean cross-entropy in nats) and top-1 accuracy over the fixed masked positions. */
export function heldoutMetrics(model: MlmModel, batches: MaskedBatch[]): { loss: number; accuracy: number; count: number } {
  let lossSum = 0;
  let correct = 0;
  let count = 0;
  for (const b of batches) {
    const r = model.evaluate(b);
    lossSum += r.lossSum;
    correct += r.correct;
    count += r.count;
  }
  return { loss: lossSum / Math.max(1, count), accuracy: correct / Math.max(1, count), count };
}

/** The sequences of step `step`: a window of the epoch-wise shuffled order. */
function batchSequences(train: Int32Array[], batchSize: number, step: number, seed: number, perms: Map<number, number[]>): { seqs: Int32Array[]; epoch: number } {
  const N = train.length;
  const seqs: Int32Array[] = [];
  let epoch = 0;
  for (let i = 0; i < batchSize; i++) {
    const g = step * batchSize + i;
    const e = Math.floor(g / N);
    if (i === 0) epoch = e;
    let perm = perms.get(e);
    if (!perm) {
      perm = derivedRng(seed, 1, e).shuffle([...Array(N).keys()]);
      perms.clear();
      perms.set(e, perm);
    }
    seqs.push(train[perm[g % N]]);
  }
  return { seqs, epoch };
}

/**
 * Each sequence, with probability p, cut to a length L drawn uniformly from 3..its length: its first L - 1
 * tokens ([CLS] and the text's start) and [SEP]. Drawn from the step's own generator, so resume repeats it.
 */
export function shortenSome(seqs: Int32Array[], p: number, sepId: number, rng: Rng): Int32Array[] {
  if (p <= 0) return seqs;
  return seqs.map((s) => {
    if (rng.next() >= p || s.length <= 3) return s;
    const L = 3 + rng.int(s.length - 2);
    const short = s.slice(0, L);
    short[L - 1] = sepId;
    return short;
  });
}

/** What one pretraining step updates, and how. */
export interface PretrainStepTarget {
  vars: tf.Variable[];
  nameOfVar: Map<string, string>;
  optimizer: AdamW;
  learningRate: number;
  maxGradNorm: number;
  /** Data-parallel workers built on the model's shape (null: this thread alone). */
  pool: WorkerPool | null;
}

/**
 * One optimisation step on a masked batch: its loss and gradients (over the workers, each shard weighted by its
 * share of the masked tokens, or here whole), global-norm clipping and the AdamW update, the new weights then
 * published to the workers. Returns the loss before the update; a loss that is not finite leaves the weights as
 * they were.
 */
export async function pretrainStep(model: MlmModel, batch: MaskedBatch, settings: MlmStepSettings, target: PretrainStepTarget): Promise<number> {
  const { vars, nameOfVar, optimizer, pool } = target;
  const { loss, grads } = pool
    ? await pool.mlmGradients(model, batch, settings, vars, nameOfVar)
    : mlmShardLossAndGradients(model, { batch, firstRow: 0 }, batch.positions.length, settings, vars, nameOfVar);
  applyGradients(loss, grads, target.maxGradNorm, optimizer, () => target.learningRate);
  pool?.publishWeights();
  return loss;
}

function saveCheckpoint(dir: string, model: MlmModel, optimizer: AdamW, state: PretrainState): void {
  const tensors: TensorMap = new Map();
  for (const [name, v] of model.allParams()) tensors.set(`param.${name}`, { shape: v.shape, data: v.dataSync() as Float32Array });
  for (const [name, arr] of optimizer.state()) tensors.set(name, arr);
  // One file holds everything, written atomically: a checkpoint is either the old one or the new one.
  writeSafetensors(path.join(dir, STATE_TENSORS), tensors, { metadata: { state: JSON.stringify(state) } });
  writeJsonAtomic(path.join(dir, STATE_JSON), { ...state, note: `human-readable copy; ${STATE_TENSORS} is what resume reads` });
}

function loadCheckpoint(dir: string): { arrays: TensorMap; optimizerState: TensorMap; state: PretrainState } {
  const file = path.join(dir, STATE_TENSORS);
  if (!fs.existsSync(file)) throw new UserInputError(`nothing to resume: no checkpoint in ${dir}`);
  const { tensors, metadata } = readSafetensors(file);
  const state = JSON.parse(metadata.state ?? 'null') as PretrainState | null;
  if (!state || state.version !== 1) throw new UserInputError('the checkpoint has no readable state', { file });
  const arrays: TensorMap = new Map();
  const optimizerState: TensorMap = new Map();
  for (const [name, arr] of tensors) {
    if (name.startsWith('param.')) arrays.set(name.slice(6), arr);
    else optimizerState.set(name, arr);
  }
  return { arrays, optimizerState, state };
}

export function hasCheckpoint(cfg: PretrainConfig): boolean {
  return fs.existsSync(path.join(cfg.checkpointDir, STATE_TENSORS));
}

export async function runPretrain({ config: cfg, resume = false, signal, callbacks = {}, stopAfterSteps, keepCheckpoint = false, workers: workersOption }: PretrainOptions): Promise<PretrainOutcome> {
  const log = (m: string, level: 'info' | 'warn' = 'info') => callbacks.log?.(m, level);
  const sessionStart = Date.now();
  const t = cfg.training;
  const workDir = cfg.checkpointDir;
  if (!resume && hasCheckpoint(cfg)) {
    throw new UserInputError(`a checkpoint of an earlier run is in ${workDir}: continue it with --resume, or delete that folder to start over`);
  }
  if (resume && !hasCheckpoint(cfg)) throw new UserInputError(`nothing to resume: no checkpoint in ${workDir}`);
  if (!resume) {
    fs.rmSync(workDir, { recursive: true, force: true });
    fs.mkdirSync(workDir, { recursive: true });
    // The work folder is never committed, even when it lies inside a repository's model folder.
    fs.writeFileSync(path.join(workDir, '.gitignore'), '*\n');
  }

  const data = await prepareData(cfg, workDir, resume, log);
  const bertCfg = encoderConfigOf(cfg, data.vocab.length);

  let state: PretrainState;
  const freshState = (): PretrainState => ({
    version: 1,
    name: cfg.name,
    step: 0,
    optimizerStep: 0,
    seed: t.seed,
    totalSteps: t.steps,
    vocabSize: data.vocab.length,
    evals: [],
    lossSum: 0,
    lossCount: 0,
    elapsedMs: 0,
    stepMsSum: 0,
  });

  let model: MlmModel;
  let optimizerState: TensorMap | null = null;
  if (resume) {
    const ck = loadCheckpoint(workDir);
    state = ck.state;
    if (state.vocabSize !== data.vocab.length) throw new UserInputError(`the checkpoint's vocabulary (${state.vocabSize}) differs from ${workDir}/vocab.txt (${data.vocab.length})`);
    if (state.seed !== t.seed || state.totalSteps !== t.steps) {
      throw new UserInputError(`the config changed since the checkpoint (seed ${state.seed} -> ${t.seed}, steps ${state.totalSteps} -> ${t.steps}); resume needs the same recipe`);
    }
    model = mlmModelFromArrays(bertCfg, ck.arrays, true);
    optimizerState = ck.optimizerState;
    log(`resuming at step ${state.step} of ${t.steps}`);
  } else if (cfg.initFrom) {
    // Continue from a model: its weights as they are (the MLM head too), trainable; a fresh optimizer.
    const start = loadMlmModel(cfg.initFrom);
    const arrays: TensorMap = new Map();
    for (const [name, v] of start.allParams()) arrays.set(name, { shape: v.shape, data: v.dataSync() as Float32Array });
    start.dispose();
    model = mlmModelFromArrays(bertCfg, arrays, true);
    log(`starting from ${cfg.initFrom} (its weights, MLM head and vocabulary)`);
    state = freshState();
  } else {
    const rng = new Rng(t.seed);
    const arrays = initEncoderArrays(bertCfg, rng);
    for (const [n, a] of initHeadArrays(bertCfg.hiddenSize, bertCfg.vocabSize, rng)) arrays.set(n, a);
    model = mlmModelFromArrays(bertCfg, arrays, true);
    state = freshState();
  }
  const params = model.allParams();
  const names = [...params.keys()];
  const vars = [...params.values()];
  const nameOfVar = new Map(vars.map((v, i) => [v.name, names[i]]));
  const optimizer = new AdamW(params, { weightDecay: t.weightDecay });
  let pool: WorkerPool | null = null;
  try {
    if (optimizerState) optimizer.loadState(optimizerState, state.optimizerStep);
    const encoderParams = model.encoder.parameterCount();
    const sequencesPerEpoch = data.train.length;
    const epochs = Math.max(1, Math.ceil((t.steps * t.batchSize) / sequencesPerEpoch));
    const backend = activeBackend();
    // At most one worker per sequence of a batch.
    const workers = Math.max(1, Math.min(workersOption ?? defaultWorkers(backend?.name), t.batchSize));
    log(
      `${cfg.name}: ${cfg.model.layers} layers, hidden ${cfg.model.hidden}, ${cfg.model.heads} heads, vocab ${data.vocab.length}: ` +
        `${encoderParams.toLocaleString('en-US')} encoder parameters; ${t.steps} steps of ${t.batchSize} x ${t.maxSeqLength} tokens ` +
        `(${((t.steps * t.batchSize) / sequencesPerEpoch).toFixed(2)} epochs), backend ${backend?.name ?? '?'}, ${workers} worker${workers > 1 ? 's' : ''}`,
    );
    if (workers > 1) {
      const poolStart = Date.now();
      // The workers build the same shapes and read every weight (the restored ones on resume) from the coordinator.
      pool = await WorkerPool.start({ workers, backend: backend?.name ?? 'wasm', source: { kind: 'mlm', bert: bertCfg }, params });
      log(`started ${workers - 1} worker thread${workers > 2 ? 's' : ''} in ${((Date.now() - poolStart) / 1000).toFixed(1)} s`);
    }

    let sessionBase = Date.now();
    const elapsed = () => state.elapsedMs + (Date.now() - sessionBase);
    const checkpoint = () => {
      state.elapsedMs = elapsed();
      sessionBase = Date.now();
      state.optimizerStep = optimizer.step;
      saveCheckpoint(workDir, model, optimizer, state);
    };
    const evaluateHeldout = () => {
      const m = heldoutMetrics(model, data.heldout);
      const point: HeldoutPoint = { step: state.step, epoch: Math.floor(Math.max(0, state.step * t.batchSize - 1) / data.train.length), loss: m.loss, accuracy: m.accuracy, elapsedMs: elapsed() };
      if (state.lossCount > 0) point.trainLoss = state.lossSum / state.lossCount;
      state.lossSum = 0;
      state.lossCount = 0;
      state.evals.push(point);
      callbacks.evaluated?.(point);
    };

    if (state.evals.length === 0) evaluateHeldout();

    const warmup = t.warmupSteps;
    const perms = new Map<number, number[]>();
    let sessionTokens = 0;
    const sessionStepsStart = Date.now();
    while (state.step < t.steps) {
      if (signal?.aborted || (stopAfterSteps !== undefined && state.step >= stopAfterSteps)) {
        checkpoint();
        log(`stopped at step ${state.step}; checkpoint saved in ${workDir}, continue with --resume`);
        return { status: 'cancelled', step: state.step, evals: state.evals, outputDir: cfg.output, checkpointDir: workDir, wallMs: state.elapsedMs };
      }
      const stepStart = Date.now();
      const { seqs: windows, epoch } = batchSequences(data.train, t.batchSize, state.step, t.seed, perms);
      const seqs = shortenSome(windows, t.shortSequenceProbability, data.masking.ids.sep, derivedRng(t.seed, 5, state.step));
      const batch = maskBatch(seqs, data.masking, derivedRng(t.seed, 2, state.step));
      const lrFactor = linearScheduleFactor(state.step, warmup, t.steps);
      const lr = t.learningRate * lrFactor;
      // The masks above are drawn for the whole batch before it is cut into shards; dropout per row of it.
      const settings = { seed: t.seed, step: state.step, dropout: cfg.model.dropout };
      const loss = await pretrainStep(model, batch, settings, { vars, nameOfVar, optimizer, learningRate: lr, maxGradNorm: t.maxGradNorm, pool });
      if (!Number.isFinite(loss)) throw new Error(`pretraining diverged: the loss became ${loss} at step ${state.step}; try a lower learning rate (this run used ${t.learningRate})`);

      state.step++;
      state.lossSum += loss;
      state.lossCount++;
      state.stepMsSum += Date.now() - stepStart;
      sessionTokens += batch.realTokens;
      callbacks.progress?.({
        epoch,
        epochs,
        step: state.step,
        totalSteps: t.steps,
        loss,
        learningRate: lr,
        tokensPerSecond: sessionTokens / Math.max(1e-3, (Date.now() - sessionStepsStart) / 1000),
        elapsedMs: elapsed(),
      });
      if (state.step % t.evalEvery === 0 || state.step === t.steps) evaluateHeldout();
      if (state.step % t.checkpointEvery === 0 && state.step < t.steps) checkpoint();
      // Let signals (cancel) and stdout drain between steps.
      await new Promise((resolve) => setImmediate(resolve));
    }

    state.elapsedMs = elapsed();
    state.optimizerStep = optimizer.step;
    saveModel(cfg, model, data, state, workDir);
    if (!keepCheckpoint) fs.rmSync(workDir, { recursive: true, force: true });
    else saveCheckpoint(workDir, model, optimizer, state);
    log(`model written to ${cfg.output} (${(Date.now() - sessionStart) / 1000}s in this session)`);
    return { status: 'done', step: state.step, evals: state.evals, outputDir: cfg.output, checkpointDir: workDir, wallMs: state.elapsedMs };
  } finally {
    await pool?.close();
    optimizer.dispose();
    model.dispose();
  }
}

function saveModel(cfg: PretrainConfig, model: MlmModel, data: PreparedData, state: PretrainState, workDir: string): void {
  const out = cfg.output;
  fs.mkdirSync(out, { recursive: true });
  const arrays: TensorMap = new Map();
  for (const [name, v] of model.encoder.params) arrays.set(name, { shape: v.shape, data: v.dataSync() as Float32Array });
  saveEncoderHf(out, model.encoder.config, arrays, {
    prefix: 'bert.',
    extra: headTensorsForFile(model),
    float16: cfg.float16,
    metadata: { producer: 'adapter-lab pretrain', name: cfg.name },
  });
  for (const f of TOKENIZER_FILES) fs.copyFileSync(path.join(workDir, f), path.join(out, f));
  const rel = (p: string) => (cfg.file ? path.relative(path.dirname(cfg.file), p) : p).split(path.sep).join('/');
  const last = state.evals[state.evals.length - 1];
  const first = state.evals[0];
  const backend = activeBackend();
  writeJsonAtomic(path.join(out, 'pretrain-log.json'), {
    name: cfg.name,
    objective: 'masked language modelling (BERT): 15% of non-special tokens chosen per sequence, 80% [MASK] / 10% random / 10% unchanged',
    recipe: {
      config: cfg.file ? path.basename(cfg.file) : null,
      train: cfg.train.map(rel),
      heldout: rel(cfg.heldout),
      vocabSize: cfg.vocabSize,
      vocab: cfg.vocab ? rel(cfg.vocab) : 'learnt from the training text (tokenizers WordPiece trainer)',
      ...(cfg.initFrom ? { initFrom: `${rel(cfg.initFrom)} (its weights, MLM head and vocabulary at the start; a fresh optimizer)` } : {}),
      model: cfg.model,
      training: cfg.training,
      float16: cfg.float16,
      optimizer: `AdamW (beta1 0.9, beta2 0.999, eps 1e-8, weight decay ${cfg.training.weightDecay} on matrices), linear warm-up ${cfg.training.warmupSteps} steps then linear decay to 0, gradient clipping at global norm ${cfg.training.maxGradNorm}`,
    },
    data: {
      trainLines: data.trainLines,
      trainTokens: data.trainTokens,
      trainSequences: data.train.length,
      epochs: (state.step * cfg.training.batchSize) / data.train.length,
      heldoutSequences: data.heldoutSequences,
      heldoutMaskedPositions: data.heldoutPositions,
    },
    vocabSize: data.vocab.length,
    encoderParameters: model.encoder.parameterCount(),
    headParameters: [...model.head.values()].reduce((n, v) => n + v.size, 0),
    steps: state.step,
    wallMs: state.elapsedMs,
    meanStepMs: state.stepMsSum / Math.max(1, state.step),
    heldout: { start: first, end: last, curve: state.evals },
    backend: backend ? { name: backend.name, versions: backend.versions } : null,
    finished: new Date().toISOString(),
  });
}
