import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { copyValues, initBackend } from '../tf/backend';
import { buildModel, loadAdapterModel, modelDirOf } from '../experiment';
import { AdapterModel } from '../model/adapterModel';
import { FrozenPrefixCache } from '../train/frozenPrefix';
import { predictBatch } from '../analysis/evaluate';
import { ablateBatch } from '../analysis/ablation';
import { dropBatch } from '../analysis/drop';
import { mlmShardLossAndGradients, shardLossAndGradients } from './shard';
import { loadTaskModels, multiTaskBatchOutputs, sharedGroups } from '../analysis/multiTask';
import { encoderParamShapes } from '../model/bert';
import { TensorMap } from '../model/safetensors';
import { headParamShapes, MlmModel } from '../pretrain/mlm';
import { mlmModelFromArrays } from '../pretrain/pretrain';
import type { FromWorker, ToWorker, WorkerInit } from './protocol';
import { familyFor } from '../families';
import type { FamilyBatch, FamilyTaskType, TrainableFamilyModel } from '../model/family';
import { withSynchronisedBatchNorm } from '../tf/conv';
import { abortShardSync, ShardExchange, ShardSyncAborted } from './shardSync';
import { derivedRng } from './shard';

/**
 * A worker thread of data-parallel training and evaluation (pool.ts starts it): its own TensorFlow.js backend
 * and copy of the model, the coordinator's trainable weights read from the shared buffer before each request,
 * and per request the loss and gradients of one shard of a step's batch, or the outputs of evaluation batches.
 * A model family's shard (familyStep) computes with BatchNorm synchronised over the step's shards (shardSync.ts).
 */

const port = parentPort!;
const init = workerData as WorkerInit;
const post = (msg: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);

let model: AdapterModel;
/** Multi-task prediction's models (source 'tasks'), in the order of the adapter folders. */
let taskModels: AdapterModel[] = [];
/** A model family's model (source 'family'). */
let familyModel: TrainableFamilyModel<unknown>;
/** Pretraining's encoder and MLM head (source 'mlm'). */
let mlm: MlmModel;
let params: Map<string, tf.Variable>;
let vars: tf.Variable[];
let nameOfVar: Map<string, string>;
const caches = new Map<string, FrozenPrefixCache>();
let weightsVersion = -1;
const weights = new Float32Array(init.weights);

async function start(): Promise<void> {
  await initBackend(init.backend);
  if (init.source.kind === 'config') {
    const cfg = init.source.cfg;
    model = buildModel(cfg, modelDirOf(cfg), init.source.labels);
  } else if (init.source.kind === 'adapter') {
    model = (await loadAdapterModel(init.source.adapterDir, init.source.model)).model;
  } else if (init.source.kind === 'family') {
    const family = familyFor(init.source.taskType as FamilyTaskType);
    if (!family.buildReplica) throw new Error(`the ${family.name} family has no worker-thread copy`);
    familyModel = await family.buildReplica(init.source.replica);
  } else if (init.source.kind === 'tasks') {
    taskModels = (await loadTaskModels(init.source.adapterDirs)).models;
  } else {
    // Every parameter is trainable, so every one comes from the shared buffer before the first step: zeros here.
    const arrays: TensorMap = new Map();
    for (const [name, shape] of [...encoderParamShapes(init.source.bert), ...headParamShapes(init.source.bert.hiddenSize, init.source.bert.vocabSize)]) {
      arrays.set(name, { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
    }
    mlm = mlmModelFromArrays(init.source.bert, arrays, true);
  }
  params =
    init.source.kind === 'mlm'
      ? mlm.allParams()
      : init.source.kind === 'tasks'
        ? new Map()
        : init.source.kind === 'family'
          ? // The state training changes besides the parameters (BatchNorm statistics) comes from the coordinator too.
            new Map([...familyModel.trainableParams(), ...(familyModel.trainingState?.() ?? new Map())])
          : model.trainableParams();
  vars = [...params.values()];
  nameOfVar = new Map([...params].map(([name, v]) => [v.name, name]));
  if (init.caches) {
    for (const [name, examples] of Object.entries(init.caches.sets)) {
      const cache = new FrozenPrefixCache(model, init.caches.depth);
      cache.build(examples, init.caches.batchSize, init.caches.padId);
      caches.set(name, cache);
    }
  }
  post({ type: 'ready' });
}

/** The coordinator's current weights, when they changed since the last request. */
function syncWeights(version: number): void {
  if (version === weightsVersion) return;
  for (const slot of init.slots) {
    const p = params.get(slot.name);
    if (!p) throw new Error(`worker ${init.index}: no trainable parameter ${slot.name}`);
    // In a tidy: the variable keeps the new data, and the tensor made here must not outlive the call (each one
    // left behind would keep a past version of the weights alive, a copy of every trainable weight per step).
    tf.tidy(() => p.assign(tf.tensor(weights.subarray(slot.offset, slot.offset + slot.size), p.shape)));
  }
  weightsVersion = version;
}

/** A shard's loss and gradients to the coordinator, in the order of the weight slots (the arrays moved, not copied). */
function postGradients(id: number, loss: number, grads: Map<string, tf.Tensor>, computeMs: number): void {
  const arrays: (Float32Array | null)[] = init.slots.map((slot) => {
    const g = grads.get(slot.name);
    return g ? copyValues(g) : null;
  });
  for (const g of grads.values()) g.dispose();
  post({ type: 'grads', id, loss, grads: arrays, computeMs }, arrays.flatMap((a) => (a ? [a.buffer as ArrayBuffer] : [])));
}

function handle(msg: ToWorker): void {
  syncWeights(msg.weightsVersion);
  const started = performance.now();
  const cache = 'cache' in msg && msg.cache ? caches.get(msg.cache) : undefined;
  const step = msg.type === 'step' || msg.type === 'familyStep' ? msg.step : msg.type === 'mlmStep' ? msg.settings.step : undefined;
  if (init.failAt && init.failAt.step === step) {
    if (init.failAt.exit) process.exit(3);
    throw new Error(`test hook: worker ${init.index} fails at step ${step}`);
  }
  if (msg.type === 'mlmStep') {
    if (init.source.kind !== 'mlm') throw new Error('a pretraining step needs a worker built for pretraining');
    const { loss, grads } = mlmShardLossAndGradients(mlm, { batch: msg.shard, firstRow: msg.firstRow }, msg.batchPositions, msg.settings, vars, nameOfVar);
    postGradients(msg.id, loss, grads, performance.now() - started);
  } else if (msg.type === 'multiTask') {
    const models = msg.models.map((k) => taskModels[k]);
    const groups = sharedGroups(models);
    post({ type: 'multiTask', id: msg.id, results: msg.batches.map((b) => multiTaskBatchOutputs(models, groups, b)) });
  } else if (msg.type === 'step') {
    if (init.source.kind !== 'config') throw new Error('a training step needs a worker built from a config');
    const { loss, grads } = shardLossAndGradients(model, { batch: msg.shard, firstRow: msg.firstRow }, msg.batchRows, init.source.cfg, msg.step, vars, nameOfVar, cache);
    postGradients(msg.id, loss, grads, performance.now() - started);
  } else if (msg.type === 'familyStep') {
    if (!init.shardSync) throw new Error('a family training step needs the pool\'s synchronisation buffers');
    const exchange = new ShardExchange(init.shardSync, msg.part, msg.participants);
    const { loss, grads } = withSynchronisedBatchNorm(exchange, () => familyModel.lossAndGradients(msg.shard as FamilyBatch, derivedRng(msg.seed, 2, msg.step)));
    postGradients(msg.id, loss, grads, performance.now() - started);
  } else if (msg.type === 'familyOutputs') {
    const parallel = familyModel.parallel!;
    const results = msg.items.map((item) => {
      familyModel.setDisabledUnits(new Set(item.disabledUnits));
      try {
        return parallel.batchOutputs(item.batch as FamilyBatch);
      } finally {
        familyModel.setDisabledUnits(new Set());
      }
    });
    post({ type: 'familyOutputs', id: msg.id, results });
  } else if (msg.type === 'memory') {
    const { numTensors, numBytes } = tf.memory();
    post({ type: 'memory', id: msg.id, tensors: numTensors, bytes: numBytes });
  } else if (msg.type === 'drop') {
    post({ type: 'dropped', id: msg.id, results: msg.batches.map((b) => dropBatch(model, b)) });
  } else if (msg.type === 'ablate') {
    post({ type: 'ablated', id: msg.id, results: msg.batches.map((b) => ablateBatch(model, b)) });
  } else {
    post({ type: 'outputs', id: msg.id, results: msg.batches.map((b) => predictBatch(model, b, msg.ctx, cache)) });
  }
}

// A thread that ends (the test hook's exit, or a crash) must not leave the others waiting at a synchronised BatchNorm.
process.on('exit', () => abortShardSync(init.shardSync, init.index));

port.on('message', (msg: ToWorker) => {
  try {
    handle(msg);
  } catch (err) {
    // Stopped because another worker failed: that one's failure is the run's, reported by it.
    if (err instanceof ShardSyncAborted) {
      post({ type: 'aborted', id: msg.id });
      return;
    }
    abortShardSync(init.shardSync, init.index);
    post({ type: 'failed', id: msg.id, message: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack : undefined });
  }
});

start().catch((err) => post({ type: 'failed', id: null, message: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack : undefined }));
