/**
 * The pretrain config (`adapter-lab pretrain <config.json>`): what masked-language-model pretraining reads,
 * builds and writes. JSON (comments allowed), validated field by field; every problem is reported as
 * `<file>:<line>: <field>: <what is wrong>` (a {@link ConfigError}). Paths are relative to the config file.
 *
 * {
 *   "name": "tiny-bert",
 *   "train": ["../../corpus/train.txt"],      plain text, one paragraph per line
 *   "heldout": "../../corpus/heldout.txt",
 *   "output": "../../models/tiny-bert",       the Hugging Face model folder written at the end
 *   "vocabSize": 8000,                        WordPiece vocabulary size, the 5 special tokens included
 *   "vocab": "vocab.txt",                     optional: use this vocabulary instead of learning one
 *   "initFrom": "builtin:tiny-bert",          optional: continue from this model (its weights, MLM head and
 *                                             vocabulary) instead of a random start; same model shape
 *   "model": { "layers": 4, "hidden": 256, "heads": 4, "intermediate": 1024, "maxPositions": 128 },
 *   "training": { "steps": 1000, "batchSize": 32, "maxSeqLength": 64, "learningRate": 5e-4,
 *                 "warmupSteps": 100, "seed": 1, "evalEvery": 100, "checkpointEvery": 50,
 *                 "shortSequenceProbability": 0 },
 *   "float16": true
 * }
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { findNodeAtLocation, parseTree, printParseErrorCode, type Node as JsonNode, type ParseError } from 'jsonc-parser';
import { ConfigError, type ConfigProblem } from '../config/load';
import { UserInputError } from '../errors';
import { readConfig, resolveModelDir } from '../model/checkpoint';

export interface PretrainModelConfig {
  layers: number;
  hidden: number;
  heads: number;
  intermediate: number;
  maxPositions: number;
  /** Hugging Face `hidden_act`; quick_gelu (x sigmoid(1.702x)) by default: much cheaper than erf on wasm. */
  hiddenAct: string;
  /** Dropout on hidden states and attention probabilities (BERT: 0.1). */
  dropout: number;
}

export interface PretrainTrainingConfig {
  steps: number;
  batchSize: number;
  /** Tokens per packed sequence, [CLS] and [SEP] included. */
  maxSeqLength: number;
  learningRate: number;
  warmupSteps: number;
  seed: number;
  /** Held-out MLM loss and accuracy every N steps (and before the first and after the last). */
  evalEvery: number;
  /** Checkpoint every N steps (and on SIGINT/SIGTERM). */
  checkpointEvery: number;
  weightDecay: number;
  maxGradNorm: number;
  /** Share of (non-special) tokens chosen for prediction. */
  maskProbability: number;
  /** At most this many held-out sequences are evaluated (the first ones, in file order). */
  heldoutSequences: number;
  /**
   * Share of training sequences cut short, to a length drawn uniformly from 3 to maxSeqLength ([CLS] and [SEP]
   * included), as BERT does for 10% of its sequences, so that the model also sees inputs as short as a task's
   * (a single word, a short phrase) and not only full packed windows. 0 (the default) keeps every window whole.
   */
  shortSequenceProbability: number;
}

export interface PretrainConfig {
  name: string;
  /** Absolute paths. */
  train: string[];
  heldout: string;
  output: string;
  /** Where checkpoints and the trained tokenizer live while training; removed when the run completes. */
  checkpointDir: string;
  vocabSize: number;
  /**
   * An existing vocab.txt to use instead of learning one (absolute path). Learning is not bit-for-bit
   * repeatable (the trainer breaks ties between equally frequent pairs in hash-map order), so pinning the
   * vocabulary is how a run is repeated exactly.
   */
  vocab: string | null;
  /**
   * A model folder (absolute) to start from instead of a random initialisation: its encoder and MLM head
   * weights, and its vocabulary (vocab is then that folder's vocab.txt). The model section must match its shape.
   * The optimizer starts afresh, with the training section's schedule.
   */
  initFrom: string | null;
  model: PretrainModelConfig;
  training: PretrainTrainingConfig;
  float16: boolean;
  /** The config file, when loaded from one. */
  file?: string;
}

const ACTIVATIONS = ['gelu', 'gelu_new', 'gelu_pytorch_tanh', 'quick_gelu', 'relu', 'swish', 'silu', 'tanh'];

type Rule = { kind: 'int'; min: number; max?: number } | { kind: 'number'; min: number; max?: number; exclusiveMin?: boolean } | { kind: 'string' } | { kind: 'boolean' };

const MODEL_FIELDS: Record<keyof PretrainModelConfig, [Rule, unknown]> = {
  layers: [{ kind: 'int', min: 1, max: 48 }, undefined],
  hidden: [{ kind: 'int', min: 2 }, undefined],
  heads: [{ kind: 'int', min: 1 }, undefined],
  intermediate: [{ kind: 'int', min: 1 }, undefined],
  maxPositions: [{ kind: 'int', min: 4 }, undefined],
  hiddenAct: [{ kind: 'string' }, 'quick_gelu'],
  dropout: [{ kind: 'number', min: 0, max: 0.9 }, 0.1],
};

const TRAINING_FIELDS: Record<keyof PretrainTrainingConfig, [Rule, unknown]> = {
  steps: [{ kind: 'int', min: 1 }, undefined],
  batchSize: [{ kind: 'int', min: 1 }, undefined],
  maxSeqLength: [{ kind: 'int', min: 4 }, undefined],
  learningRate: [{ kind: 'number', min: 0, exclusiveMin: true, max: 1 }, undefined],
  warmupSteps: [{ kind: 'int', min: 0 }, 0],
  seed: [{ kind: 'int', min: 0 }, 1],
  evalEvery: [{ kind: 'int', min: 1 }, 100],
  checkpointEvery: [{ kind: 'int', min: 1 }, 50],
  weightDecay: [{ kind: 'number', min: 0, max: 1 }, 0.01],
  maxGradNorm: [{ kind: 'number', min: 0 }, 1.0],
  maskProbability: [{ kind: 'number', min: 0, exclusiveMin: true, max: 1 }, 0.15],
  heldoutSequences: [{ kind: 'int', min: 1 }, 256],
  shortSequenceProbability: [{ kind: 'number', min: 0, max: 1 }, 0],
};

const TOP_FIELDS = ['$schema', 'name', 'train', 'heldout', 'output', 'checkpointDir', 'vocabSize', 'vocab', 'initFrom', 'model', 'training', 'float16'];

function describe(rule: Rule): string {
  switch (rule.kind) {
    case 'int':
      return `an integer >= ${rule.min}${rule.max !== undefined ? ` and <= ${rule.max}` : ''}`;
    case 'number':
      return `a number ${rule.exclusiveMin ? '>' : '>='} ${rule.min}${rule.max !== undefined ? ` and <= ${rule.max}` : ''}`;
    case 'string':
      return 'a string';
    case 'boolean':
      return 'true or false';
  }
}

function fits(rule: Rule, v: unknown): boolean {
  switch (rule.kind) {
    case 'int':
      return typeof v === 'number' && Number.isInteger(v) && v >= rule.min && (rule.max === undefined || v <= rule.max);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v) && (rule.exclusiveMin ? v > rule.min : v >= rule.min) && (rule.max === undefined || v <= rule.max);
    case 'string':
      return typeof v === 'string' && v.length > 0;
    case 'boolean':
      return typeof v === 'boolean';
  }
}

/** Parses and validates a pretrain config file; paths become absolute (relative to the file's folder). */
export function loadPretrainConfig(file: string): PretrainConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UserInputError(`cannot read the pretrain config: ${(err as Error).message}`, { file });
  }
  const errors: ParseError[] = [];
  const tree = parseTree(text, errors, { allowTrailingComma: true, disallowComments: false });
  const lineOf = (offset: number) => text.slice(0, offset).split('\n').length;
  if (errors.length || !tree) {
    throw new ConfigError(
      (errors.length ? errors : [{ error: 0, offset: 0, length: 0 } as unknown as ParseError]).map((e) => ({
        file,
        line: lineOf(e.offset),
        message: errors.length ? `invalid JSON (${printParseErrorCode(e.error)})` : 'empty file',
      })),
    );
  }
  const raw = JSON.parse(JSON.stringify(nodeValue(tree))) as unknown;
  return validatePretrainConfig(raw, path.dirname(file), file, (field) => {
    const node = findNodeAtLocation(tree, field.split('.').map((p) => (/^\d+$/.test(p) ? Number(p) : p)));
    return node ? lineOf(node.offset) : undefined;
  });
}

function nodeValue(node: JsonNode): unknown {
  switch (node.type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const prop of node.children ?? []) out[prop.children![0].value as string] = nodeValue(prop.children![1]);
      return out;
    }
    case 'array':
      return (node.children ?? []).map(nodeValue);
    default:
      return node.value;
  }
}

/**
 * Validates a parsed config (from a file or built in code); `baseDir` resolves relative paths. Throws one
 * {@link ConfigError} listing every problem.
 */
export function validatePretrainConfig(raw: unknown, baseDir: string, file?: string, lineOf: (field: string) => number | undefined = () => undefined): PretrainConfig {
  const problems: ConfigProblem[] = [];
  const problem = (field: string, message: string) => problems.push({ file, line: lineOf(field), field, message });
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError([{ file, message: 'the pretrain config must be a JSON object' }]);
  }
  const r = raw as Record<string, unknown>;
  for (const key of Object.keys(r)) if (!TOP_FIELDS.includes(key)) problem(key, `unknown field (expected one of: ${TOP_FIELDS.slice(1).join(', ')})`);

  const str = (field: string, required: boolean): string | undefined => {
    const v = r[field];
    if (v === undefined) {
      if (required) problem(field, 'missing (a string)');
      return undefined;
    }
    if (typeof v !== 'string' || !v.trim()) {
      problem(field, 'must be a non-empty string');
      return undefined;
    }
    return v;
  };
  const name = str('name', true) ?? '';
  if (name && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) problem('name', 'must be letters, digits, ".", "_" or "-"');
  const resolve = (p: string) => path.resolve(baseDir, p);

  let train: string[] = [];
  if (r.train === undefined) problem('train', 'missing (a list of text files, one paragraph per line)');
  else if (typeof r.train === 'string') train = [resolve(r.train)];
  else if (!Array.isArray(r.train) || r.train.length === 0) problem('train', 'must be a non-empty list of file paths');
  else
    r.train.forEach((f, i) => {
      if (typeof f !== 'string' || !f.trim()) problem(`train.${i}`, 'must be a file path (a string)');
      else train.push(resolve(f));
    });
  train.forEach((f, i) => {
    if (!fs.existsSync(f)) problem(typeof r.train === 'string' ? 'train' : `train.${i}`, `file not found: ${f}`);
  });
  const heldoutRel = str('heldout', true);
  const heldout = heldoutRel ? resolve(heldoutRel) : '';
  if (heldout && !fs.existsSync(heldout)) problem('heldout', `file not found: ${heldout}`);
  const outputRel = str('output', true);
  const output = outputRel ? resolve(outputRel) : '';
  const checkpointRel = str('checkpointDir', false);
  const checkpointDir = checkpointRel ? resolve(checkpointRel) : output ? path.join(output, 'checkpoint') : '';

  const initRel = str('initFrom', false);
  let initFrom: string | null = null;
  if (initRel) {
    try {
      initFrom = resolveModelDir(initRel, baseDir);
    } catch (err) {
      problem('initFrom', err instanceof UserInputError ? err.detail : err instanceof Error ? err.message : String(err));
    }
    if (initFrom && !fs.existsSync(path.join(initFrom, 'vocab.txt'))) problem('initFrom', `${initFrom} has no vocab.txt to continue with`);
  }
  const vocabRel = str('vocab', false);
  if (vocabRel && initRel) problem('vocab', 'give vocab or initFrom, not both: initFrom brings its own vocabulary');
  const vocab = vocabRel ? resolve(vocabRel) : initFrom && fs.existsSync(path.join(initFrom, 'vocab.txt')) ? path.join(initFrom, 'vocab.txt') : null;
  let vocabTokens: string[] | null = null;
  if (vocab) {
    if (!fs.existsSync(vocab)) problem('vocab', `file not found: ${vocab}`);
    else {
      vocabTokens = fs.readFileSync(vocab, 'utf8').split(/\r?\n/);
      if (vocabTokens[vocabTokens.length - 1] === '') vocabTokens.pop();
      const missing = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].filter((t) => !vocabTokens!.includes(t));
      if (missing.length) problem('vocab', `the vocabulary lacks ${missing.join(', ')}`);
    }
  }
  let vocabSize = 0;
  if (r.vocabSize === undefined) {
    if (vocabTokens) vocabSize = vocabTokens.length;
    else problem('vocabSize', 'missing (an integer, e.g. 8000)');
  }
  else if (!fits({ kind: 'int', min: 16 }, r.vocabSize)) problem('vocabSize', `must be ${describe({ kind: 'int', min: 16 })}`);
  else {
    vocabSize = r.vocabSize as number;
    if (vocabTokens && vocabTokens.length !== vocabSize) problem('vocabSize', `${vocabSize} differs from the ${vocabTokens.length} tokens of ${vocab}`);
  }

  let float16 = false;
  if (r.float16 !== undefined) {
    if (typeof r.float16 !== 'boolean') problem('float16', 'must be true or false');
    else float16 = r.float16;
  }

  const section = <T>(key: string, fields: Record<string, [Rule, unknown]>): T => {
    const out: Record<string, unknown> = {};
    const v = r[key];
    if (v === undefined || typeof v !== 'object' || v === null || Array.isArray(v)) {
      problem(key, v === undefined ? `missing (an object with ${Object.keys(fields).join(', ')})` : 'must be an object');
      return out as T;
    }
    const obj = v as Record<string, unknown>;
    for (const k of Object.keys(obj)) if (!(k in fields)) problem(`${key}.${k}`, `unknown field (expected one of: ${Object.keys(fields).join(', ')})`);
    for (const [k, [rule, fallback]] of Object.entries(fields)) {
      const value = obj[k] ?? fallback;
      if (value === undefined) problem(`${key}.${k}`, `missing (${describe(rule)})`);
      else if (!fits(rule, value)) problem(`${key}.${k}`, `must be ${describe(rule)}, got ${JSON.stringify(value)}`);
      else out[k] = value;
    }
    return out as T;
  };
  const model = section<PretrainModelConfig>('model', MODEL_FIELDS);
  const training = section<PretrainTrainingConfig>('training', TRAINING_FIELDS);

  if (model.hiddenAct !== undefined && !ACTIVATIONS.includes(model.hiddenAct)) problem('model.hiddenAct', `must be one of ${ACTIVATIONS.join(', ')}`);
  if (model.hidden && model.heads && model.hidden % model.heads !== 0) problem('model.heads', `hidden (${model.hidden}) must be a multiple of heads (${model.heads})`);
  if (training.maxSeqLength && model.maxPositions && training.maxSeqLength > model.maxPositions) {
    problem('training.maxSeqLength', `${training.maxSeqLength} exceeds model.maxPositions (${model.maxPositions})`);
  }
  if (training.warmupSteps !== undefined && training.steps && training.warmupSteps >= training.steps) {
    problem('training.warmupSteps', `must be less than training.steps (${training.steps})`);
  }
  if (initFrom) {
    // Continuing needs the same shape: every model field against the folder's config.json.
    const from = readConfig(initFrom);
    const theirs: Record<keyof PretrainModelConfig, unknown> = {
      layers: from.numLayers,
      hidden: from.hiddenSize,
      heads: from.numHeads,
      intermediate: from.intermediateSize,
      maxPositions: from.maxPositions,
      hiddenAct: from.hiddenAct,
      dropout: model.dropout,
    };
    for (const [k, v] of Object.entries(theirs)) {
      const ours = model[k as keyof PretrainModelConfig];
      if (ours !== undefined && ours !== v) problem(`model.${k}`, `${JSON.stringify(ours)} differs from ${JSON.stringify(v)} of initFrom (${initRel}): continuing needs the same shape`);
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return { name, train, heldout, output, checkpointDir, vocabSize, vocab, initFrom, model, training, float16, file };
}
