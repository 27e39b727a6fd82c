import * as path from 'node:path';
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
import { AdapterLabMeta, assignParams, readAdapterFolder } from './model/adapterIo';
import { ForwardContext } from './model/bert';
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
  return { adapterName: cfg.task.name, config: cfg.method, rng };
}

/** A fresh model for training: the base encoder, the method's modules and a new head, seeded. */
export function buildModel(cfg: ResolvedConfig, modelDir: string, labels: string[] | null): AdapterModel {
  const { encoder } = loadEncoder(modelDir);
  checkAgainstModel(cfg, encoder.config.numLayers, encoder.config.hiddenSize);
  const rng = new Rng(cfg.training.seed);
  const method = methodDefinition(cfg.method.type).create(encoder, methodOptions(cfg, rng));
  const head = new TaskHead(cfg.task.name, cfg.task.type, encoder.config.hiddenSize, labels, rng);
  return new AdapterModel(encoder, method, head);
}

export function adapterMeta(cfg: ResolvedConfig, model: AdapterModel): AdapterLabMeta {
  const c = model.encoder.config;
  return {
    model: cfg.model,
    method: { ...cfg.method },
    task: { name: cfg.task.name, type: cfg.task.type, labels: model.head.labels },
    maxSeqLength: cfg.training.maxSeqLength,
    adapterName: cfg.task.name,
    base: { hiddenSize: c.hiddenSize, numLayers: c.numLayers, vocabSize: c.vocabSize },
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
  const folder = readAdapterFolder(adapterDir);
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
  const rng = new Rng(0);
  const methodConfig = meta.method as unknown as MethodOptions['config'];
  const method = methodDefinition(methodConfig.type).create(encoder, { adapterName: meta.adapterName, config: methodConfig, rng });
  const head = new TaskHead(meta.task.name, meta.task.type as TaskType, c.hiddenSize, meta.task.labels, rng);
  const model = new AdapterModel(encoder, method, head);
  const where = `adapter ${adapterDir}`;
  assignParams(method.params, folder.adapterParams, where);
  const trainedBase = new Map(method.trainedBaseParams.map((n) => [n, encoder.params.get(n)!]));
  assignParams(trainedBase, folder.adapterParams, where);
  assignParams(head.params, folder.headParams, where);
  return { model, meta, modelDir, tokenizer: await loadTokenizer(modelDir) };
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
