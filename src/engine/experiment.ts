import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ResolvedConfig, TaskType } from './config/types';
import { checkAgainstModel } from './config/load';
import { loadTaskData } from './data/load';
import { BertTokenizer, encodeExamples, loadTokenizer } from './data/tokenizer';
import { EncodedExample, TaskData } from './data/types';
import { loadEncoder, resolveModelDir } from './model/checkpoint';
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
  try {
    checkAgainstModel(cfg, encoder.config.numLayers, encoder.config.hiddenSize, {
      maxPositions: encoder.config.maxPositions,
      baseParams: encoder.parameterCount(),
    });
  } catch (err) {
    encoder.dispose();
    throw err;
  }
  const rng = new Rng(cfg.training.seed);
  const method = methodDefinition(cfg.method.type).create(encoder, methodOptions(cfg, rng));
  const head = new TaskHead(cfg.task.name, cfg.task.type, encoder.config.hiddenSize, labels, rng);
  return new AdapterModel(encoder, method, head);
}

/** `fingerprint`: the base model's (model/fingerprint.ts), taken before training changed any base parameter. */
export function adapterMeta(cfg: ResolvedConfig, model: AdapterModel, fingerprint?: string): AdapterLabMeta {
  const c = model.encoder.config;
  return {
    model: cfg.model,
    method: { ...cfg.method },
    task: { name: cfg.task.name, type: cfg.task.type, labels: model.head.labels },
    maxSeqLength: cfg.training.maxSeqLength,
    adapterName: cfg.task.name,
    base: { hiddenSize: c.hiddenSize, numLayers: c.numLayers, vocabSize: c.vocabSize, ...(fingerprint ? { fingerprint } : {}) },
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
  if (c.hiddenSize !== meta.base.hiddenSize || c.numLayers !== meta.base.numLayers || c.vocabSize !== meta.base.vocabSize) {
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
  const rng = new Rng(0);
  let methodConfig = meta.method as unknown as MethodOptions['config'];
  // A saved fusion fuses the copies of its adapters inside its own folder.
  if (folder.fusedAdapters) methodConfig = { ...methodConfig, adapters: folder.fusedAdapters };
  const method = methodDefinition(methodConfig.type).create(encoder, { adapterName: meta.adapterName, config: methodConfig, rng, baseModel });
  const base = taskEncoder ? new BertEncoder(encoder.config, new Map([...encoder.params].map(([n, v]) => [n, method.trainedBaseParams.includes(n) ? tf.variable(v, false) : v]))) : encoder;
  const head = new TaskHead(meta.task.name, meta.task.type as TaskType, encoder.config.hiddenSize, meta.task.labels, rng);
  const model = new AdapterModel(base, method, head);
  assignParams(method.params, folder.adapterParams, where);
  assignParams(new Map(method.trainedBaseParams.map((n) => [n, base.params.get(n)!])), folder.adapterParams, where);
  assignParams(head.params, folder.headParams, where);
  return model;
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
