import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ResolvedConfig, TaskType } from './config/types';
import { checkAgainstModel } from './config/load';
import { loadTaskData } from './data/load';
import { BertTokenizer, encodeExamples, loadTokenizer } from './data/tokenizer';
import { EncodedExample, TaskData } from './data/types';
import { loadEncoder, resolveModelDir } from './model/checkpoint';
import { maxSequenceLength } from './model/config';
import { AdapterModel } from './model/adapterModel';
import { TaskHead } from './model/head';
import { methodDefinition } from './methods/registry';
import { MethodOptions } from './methods/method';
import { AdapterLabMeta, assignParams } from './model/adapterIo';
import { readTrainedAdapter, TrainedAdapterFolder } from './model/fusionIo';
import { BertEncoder, ForwardContext } from './model/bert';
import { UserInputError } from './errors';
import { Rng } from './util/random';

/**
 * Building the pieces of a run from a config (model folder, tokenizer, data, model with method and head) and
 * rebuilding a trained model from its adapter folder. The trainer, the evaluator and the CLI share these.
 */

export interface PreparedData {
  data: TaskData;
  train: EncodedExample[];
  dev: EncodedExample[];
  test: EncodedExample[];
}

export async function prepareData(cfg: ResolvedConfig, tokenizer: BertTokenizer): Promise<PreparedData> {
  const baseDir = cfg.configFile ? path.dirname(cfg.configFile) : process.cwd();
  const data = loadTaskData(cfg.task, baseDir);
  const max = cfg.training.maxSeqLength;
  return {
    data,
    train: await encodeExamples(tokenizer, data.train, max),
    dev: await encodeExamples(tokenizer, data.dev, max),
    test: await encodeExamples(tokenizer, data.test, max),
  };
}

export function modelDirOf(cfg: { model: string; configFile?: string | null }): string {
  return resolveModelDir(cfg.model, cfg.configFile ? path.dirname(cfg.configFile) : process.cwd());
}

export function methodOptions(cfg: ResolvedConfig, rng: Rng): MethodOptions {
  return { adapterName: cfg.task.name, config: cfg.method, rng, baseModel: cfg.model };
}

/** A fresh model for training: the base encoder, the method's modules and a new head, seeded. */
export function buildModel(cfg: ResolvedConfig, modelDir: string, labels: string[] | null): AdapterModel {
  const { encoder } = loadEncoder(modelDir);
  // The longest input the position table allows (RoBERTa's positions start after the padding index).
  const longest = maxSequenceLength(encoder.config);
  try {
    checkAgainstModel(cfg, encoder.config.numLayers, encoder.config.hiddenSize, { maxPositions: longest, baseParams: encoder.parameterCount() });
    if (cfg.training.maxSeqLength > longest) {
      throw new UserInputError(`training.maxSeqLength ${cfg.training.maxSeqLength} exceeds the ${longest} tokens the model's position embeddings allow`, { file: cfg.configFile ?? undefined, field: 'training.maxSeqLength' });
    }
  } catch (err) {
    encoder.dispose();
    throw err;
  }
  const rng = new Rng(cfg.training.seed);
  const method = methodDefinition(cfg.method.type).create(encoder, methodOptions(cfg, rng));
  if (method.baseValues) assignParams(new Map([...method.baseValues.keys()].map((n) => [n, encoder.params.get(n)!])), method.baseValues, 'fused adapters');
  const head = new TaskHead(cfg.task.name, cfg.task.type, encoder.config.hiddenSize, labels, rng);
  return new AdapterModel(encoder, method, head);
}

/**
 * The checks that need the model (its layers and width against the method's options, the tokenizer, a fusion's
 * adapters), run before a run folder is made, so that such a config error leaves no `failed` run behind. Builds
 * the model once with stand-in classes (the head's size does not matter here) and discards it.
 */
export async function checkConfigAgainstModel(cfg: ResolvedConfig): Promise<void> {
  const modelDir = modelDirOf(cfg);
  await loadTokenizer(modelDir);
  const labels = cfg.task.type === 'regression' ? null : (cfg.task.labels ?? ['a', 'b']);
  buildModel(cfg, modelDir, labels).dispose();
}

/** `fingerprint`: the base model's (model/fingerprint.ts), taken before training changed any base parameter. */
export function adapterMeta(cfg: ResolvedConfig, model: AdapterModel, fingerprint?: string): AdapterLabMeta {
  const c = model.encoder.config;
  return {
    model: cfg.model,
    method: { ...cfg.method },
    task: { name: cfg.task.name, type: cfg.task.type as AdapterLabMeta['task']['type'], labels: model.head.labels },
    maxSeqLength: cfg.training.maxSeqLength,
    adapterName: cfg.task.name,
    base: { hiddenSize: c.hiddenSize, numLayers: c.numLayers, vocabSize: c.vocabSize, ...(fingerprint ? { fingerprint } : {}), modelType: c.modelType ?? 'bert' },
  };
}

export interface LoadedAdapter {
  model: AdapterModel;
  meta: AdapterLabMeta;
  modelDir: string;
  tokenizer: BertTokenizer;
}

/**
 * Rebuilds a trained model from an adapter folder (a run's `adapter/` or an exported one): the base model it
 * names, the method with its options, the head, and every saved value.
 */
export async function loadAdapterModel(adapterDir: string, modelOverride?: string): Promise<LoadedAdapter> {
  const folder = readTrainedAdapter(adapterDir);
  const meta = folder.meta;
  const modelRef = modelOverride ?? meta.model;
  const modelDir = resolveModelDir(modelRef, adapterDir);
  const { encoder } = loadEncoder(modelDir);
  const c = encoder.config;
  // An adapter AdapterHub saved records its hidden size only (0: not recorded).
  const differs = (recorded: number, actual: number) => recorded !== 0 && recorded !== actual;
  if (differs(meta.base.hiddenSize, c.hiddenSize) || differs(meta.base.numLayers, c.numLayers) || differs(meta.base.vocabSize, c.vocabSize)) {
    encoder.dispose();
    throw new UserInputError(
      `the adapter in ${adapterDir} was trained on a base with ${meta.base.numLayers} layers, d=${meta.base.hiddenSize}, vocab ${meta.base.vocabSize}; ` +
        `${modelRef} has ${c.numLayers} layers, d=${c.hiddenSize}, vocab ${c.vocabSize}`,
    );
  }
  try {
    const model = modelFromAdapterFolder(encoder, folder, `adapter ${adapterDir}`, modelRef);
    return { model, meta, modelDir, tokenizer: await loadTokenizer(modelDir) };
  } catch (err) {
    encoder.dispose();
    throw err;
  }
}

/**
 * The model an adapter folder describes, on an encoder already loaded, with every saved value assigned. With
 * `taskEncoder`, the base parameters the method trained get variables of their own in a new encoder that shares
 * every other parameter with `encoder` (multi-task inference keeps one base model for several tasks).
 */
export function modelFromAdapterFolder(encoder: BertEncoder, folder: TrainedAdapterFolder, where: string, baseModel?: string, taskEncoder = false): AdapterModel {
  const { meta } = folder;
  if (meta.noHead) {
    throw new UserInputError(`${where}: the adapter "${meta.adapterName}" was saved without a head (save_adapter without with_head): it can be fused (method.adapters of a fusion config) but not evaluated or used to predict`);
  }
  const rng = new Rng(0);
  let methodConfig = withSizesOf(meta.method as unknown as MethodOptions['config'], encoder.config.numLayers);
  // A saved fusion fuses the copies of its adapters inside its own folder.
  if (folder.fusedAdapters) methodConfig = { ...methodConfig, adapters: folder.fusedAdapters };
  const method = methodDefinition(methodConfig.type).create(encoder, { adapterName: meta.adapterName, config: methodConfig, rng, baseModel });
  const ownBase = new Set([...method.trainedBaseParams, ...(method.baseValues?.keys() ?? [])]);
  const base = taskEncoder ? new BertEncoder(encoder.config, new Map([...encoder.params].map(([n, v]) => [n, ownBase.has(n) ? tf.variable(v, false) : v]))) : encoder;
  const head = new TaskHead(meta.task.name, meta.task.type as TaskType, encoder.config.hiddenSize, meta.task.labels, rng);
  const model = new AdapterModel(base, method, head);
  assignParams(method.params, folder.adapterParams, where);
  if (method.baseValues) assignParams(new Map([...method.baseValues.keys()].map((n) => [n, base.params.get(n)!])), method.baseValues, where);
  assignParams(new Map(method.trainedBaseParams.map((n) => [n, base.params.get(n)!])), folder.adapterParams, where);
  assignParams(head.params, folder.headParams, where);
  return model;
}

/**
 * A method config whose sizes an AdapterHub folder gave by layer (`sizesByLayer`, read from its weights): the
 * per-layer sizes on this model's layers, and the layers without an adapter left out.
 */
export function withSizesOf(config: MethodOptions['config'], numLayers: number): MethodOptions['config'] {
  const sizes = (config as { sizesByLayer?: Record<string, number> }).sizesByLayer;
  if (!sizes) return config;
  const fallback = Object.values(sizes)[0];
  const perLayer = [...Array(numLayers).keys()].map((i) => sizes[String(i)] ?? fallback);
  const leaveOut = [...Array(numLayers).keys()].filter((i) => sizes[String(i)] === undefined);
  return { ...config, bottleneck: undefined, reductionFactor: undefined, bottleneckPerLayer: perLayer, leaveOut };
}

/** Dropout rates: the config's `training.dropout` when set, else the model's own. */
export function trainingContext(cfg: ResolvedConfig, model: AdapterModel, rng: Rng): ForwardContext {
  const c = model.encoder.config;
  const d = cfg.training.dropout;
  return {
    training: true,
    hiddenDropout: d ?? c.hiddenDropout,
    attentionDropout: d ?? c.attentionDropout,
    rng,
  };
}

export const EVAL_CONTEXT: ForwardContext = { training: false, hiddenDropout: 0, attentionDropout: 0, rng: null };
