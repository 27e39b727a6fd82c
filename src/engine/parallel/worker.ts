import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../tf/backend';
import { buildModel, loadAdapterModel, modelDirOf } from '../experiment';
import { AdapterModel } from '../model/adapterModel';
import { FrozenPrefixCache } from '../train/frozenPrefix';
import { predictBatch } from '../analysis/evaluate';
import { ablateBatch } from '../analysis/ablation';
import { dropBatch } from '../analysis/drop';
import { shardLossAndGradients } from './shard';
import type { FromWorker, ToWorker, WorkerInit } from './protocol';

/**
 * A worker thread of data-parallel training and evaluation (pool.ts starts it): its own TensorFlow.js backend
 * and copy of the model, the coordinator's trainable weights read from the shared buffer before each request,
 * and per request the loss and gradients of one shard of a step's batch, or the outputs of evaluation batches.
 */

const port = parentPort!;
const init = workerData as WorkerInit;
const post = (msg: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);

let model: AdapterModel;
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
  } else {
    model = (await loadAdapterModel(init.source.adapterDir, init.source.model)).model;
  }
  params = model.trainableParams();
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

function handle(msg: ToWorker): void {
  syncWeights(msg.weightsVersion);
  const cache = 'cache' in msg && msg.cache ? caches.get(msg.cache) : undefined;
  if (msg.type === 'step') {
    if (init.failAt && init.failAt.step === msg.step) {
      if (init.failAt.exit) process.exit(3);
      throw new Error(`test hook: worker ${init.index} fails at step ${msg.step}`);
    }
    if (init.source.kind !== 'config') throw new Error('a training step needs a worker built from a config');
    const { loss, grads } = shardLossAndGradients(model, { batch: msg.shard, firstRow: msg.firstRow }, msg.batchRows, init.source.cfg, msg.step, vars, nameOfVar, cache);
    const arrays: (Float32Array | null)[] = init.slots.map((slot) => {
      const g = grads.get(slot.name);
      return g ? (g.dataSync() as Float32Array).slice() : null;
    });
    for (const g of grads.values()) g.dispose();
    post({ type: 'grads', id: msg.id, loss, grads: arrays }, arrays.flatMap((a) => (a ? [a.buffer as ArrayBuffer] : [])));
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

port.on('message', (msg: ToWorker) => {
  try {
    handle(msg);
  } catch (err) {
    post({ type: 'failed', id: msg.id, message: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack : undefined });
  }
});

start().catch((err) => post({ type: 'failed', id: null, message: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack : undefined }));
