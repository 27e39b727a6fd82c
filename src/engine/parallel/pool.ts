import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { AdapterModel } from '../model/adapterModel';
import { ForwardContext } from '../model/bert';
import { ResolvedConfig } from '../config/types';
import { Batch, EncodedExample } from '../data/types';
import { packageRoot } from '../model/checkpoint';
import { activeBackend, BackendName, copyValues } from '../tf/backend';
import { AdamW, applyGradients } from '../train/adamw';
import type { FrozenPrefixCache } from '../train/frozenPrefix';
import { evaluationBatches, gatherPredictions, predictBatch, Predictions } from '../analysis/evaluate';
import { EVAL_CONTEXT } from '../experiment';
import { adapterDropTradeoffWith, dropBatch, DropOptions, DropResult } from '../analysis/drop';
import { ablateBatch, ablationBatches, ablationResult, ablationSpans, AblationOptions, AblationResult } from '../analysis/ablation';
import { MlmStepSettings, mlmShardLossAndGradients, shardBatch, shardLossAndGradients, shardMaskedBatch } from './shard';
import type { MlmModel } from '../pretrain/mlm';
import type { MaskedBatch } from '../pretrain/data';
import { multiTaskBatchOutputs, sharedGroups } from '../analysis/multiTask';
import type { FamilyOutputsItem, FromWorker, ModelSource, ToWorker, WeightSlot, WorkerInit } from './protocol';
import type { FamilyBatch, FamilyBatchOutputs, TrainableFamilyModel } from '../model/family';
import { withSynchronisedBatchNorm } from '../tf/conv';
import { abortShardSync, createShardSyncBuffers, ShardExchange, ShardSyncAborted, ShardSyncBuffers } from './shardSync';
import { derivedRng } from './shard';

/**
 * Data parallelism on every core (node:worker_threads). N workers: the coordinator's own thread is worker 0,
 * and N - 1 threads each hold their own TensorFlow.js backend and copy of the model (the wasm backend keeps
 * tensors in its own, unshared WebAssembly memory, so the frozen base is copied, not shared). A training step
 * cuts the batch into N shards of rows; each worker computes its shard's loss and gradients; the coordinator
 * sums them in worker order (the same order whatever finishes first), takes the one optimizer step and writes
 * the new trainable weights into a SharedArrayBuffer every worker reads before its next request. Evaluation
 * spreads whole batches over the workers (each batch computed by one of them, so its outputs do not depend on
 * the number of workers at all). Model families without a trainer of their own (the ResNet) come through
 * familyStep and familyOutputs (familyParallel.ts), their shards' BatchNorms synchronised (shardSync.ts).
 */

/** The default number of workers: every core, except on tfjs-node, which threads by itself (one worker). */
export function defaultWorkers(backend: BackendName | undefined): number {
  return backend === 'node' ? 1 : os.availableParallelism();
}

/** The bundled worker script (dist/worker.js; scripts/build.mjs builds it). */
export function workerScript(): string {
  const file = path.join(packageRoot(), 'dist', 'worker.js');
  if (!fs.existsSync(file)) throw new Error(`the worker script ${file} is missing: run npm run build`);
  return file;
}

/** ADAPTER_LAB_TEST_WORKER_FAIL=k:s (or k:s:exit): worker k throws (or exits) at training step s. A test hook. */
function failHookFor(index: number): WorkerInit['failAt'] {
  const spec = process.env.ADAPTER_LAB_TEST_WORKER_FAIL;
  if (!spec) return undefined;
  const [k, s, mode] = spec.split(':');
  return Number(k) === index ? { step: Number(s), exit: mode === 'exit' } : undefined;
}

/** A request without the fields every request carries. */
type Request = ToWorker extends infer T ? (T extends unknown ? Omit<T, 'id' | 'weightsVersion'> : never) : never;

interface Pending {
  resolve(msg: FromWorker): void;
  reject(err: Error): void;
}

export interface PoolOptions {
  /** Workers in all, the coordinator's thread included (at least 2 for a pool). */
  workers: number;
  backend: BackendName;
  source: ModelSource;
  /** The coordinator's trainable parameters (shared with the workers after every update). */
  params: Map<string, tf.Variable>;
  caches?: WorkerInit['caches'];
  /** Training steps synchronise BatchNorm over the shards (family models: familyStep). */
  shardSync?: boolean;
}

export class WorkerPool {
  private readonly threads: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | null = null;
  private closing = false;
  private readonly weights: Float32Array;
  private weightsVersion = 0;
  private readonly slots: WeightSlot[];
  private shardSync: ShardSyncBuffers | undefined;

  private constructor(private readonly params: Map<string, tf.Variable>) {
    let offset = 0;
    this.slots = [...params].map(([name, p]) => {
      const slot = { name, offset, size: p.size };
      offset += p.size;
      return slot;
    });
    this.weights = new Float32Array(new SharedArrayBuffer(Math.max(4, offset * 4)));
  }

  /** Workers in all (threads plus the coordinator's). */
  get size(): number {
    return this.threads.length + 1;
  }

  /**
   * Each participant's time for its shard's loss and gradients in the last training step (the coordinator's
   * first), in ms: what the step took beyond the longest of them is the exchange and the update. The benchmark
   * prints the split.
   */
  lastShardMs: number[] = [];

  /** How many of the workers requests use (all by default; fewer for the benchmark's side-by-side timings). */
  using = Infinity;

  private get usingCount(): number {
    return Math.max(1, Math.min(this.using, this.size));
  }

  /** Starts workers - 1 threads and waits until each has built its model (and caches). */
  static async start(o: PoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(o.params);
    if (o.shardSync) pool.shardSync = createShardSyncBuffers(o.workers);
    pool.publishWeights();
    const script = workerScript();
    const ready: Promise<void>[] = [];
    for (let index = 1; index < o.workers; index++) {
      const init: WorkerInit = { index, backend: o.backend, source: o.source, weights: pool.weights.buffer as SharedArrayBuffer, slots: pool.slots, caches: o.caches, failAt: failHookFor(index), shardSync: pool.shardSync };
      const worker = new Worker(script, { workerData: init });
      pool.threads.push(worker);
      ready.push(
        new Promise<void>((resolve, reject) => {
          const onReady = (msg: FromWorker) => {
            if (msg.type === 'ready') resolve();
            else if (msg.type === 'failed' && msg.id === null) reject(new Error(`worker ${index} could not start: ${msg.message}`));
          };
          worker.once('message', onReady);
          worker.once('error', reject);
          worker.once('exit', (code) => reject(new Error(`worker ${index} exited (code ${code}) before it was ready`)));
        }),
      );
      worker.on('message', (msg: FromWorker) => pool.received(index, msg));
      worker.on('error', (err) => pool.fail(new Error(`worker ${index} failed: ${err.message}`)));
      worker.on('exit', (code) => {
        if (!pool.closing) pool.fail(new Error(`worker ${index} exited (code ${code}) during the run`));
      });
    }
    try {
      await Promise.all(ready);
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  /** Writes the coordinator's trainable weights for the workers (after every update, and after a restore). */
  publishWeights(): void {
    for (const slot of this.slots) copyValues(this.params.get(slot.name)!, this.weights, slot.offset);
    this.weightsVersion++;
  }

  private received(index: number, msg: FromWorker): void {
    if (msg.type === 'ready') return;
    if (msg.type === 'failed') {
      this.fail(new Error(`worker ${index} failed: ${msg.message}`));
      return;
    }
    // 'aborted' (another worker's failure stopped this one) resolves: the failure that caused it rejects the step.
    const p = this.pending.get(msg.id);
    this.pending.delete(msg.id);
    p?.resolve(msg);
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private request(worker: number, msg: Request): Promise<FromWorker> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const full = { ...msg, id, weightsVersion: this.weightsVersion } as ToWorker;
    return new Promise<FromWorker>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.threads[worker - 1].postMessage(full);
    });
  }

  /**
   * One optimisation step over every worker; returns the loss (before the update). The gradients are summed in
   * worker order, then clipped and applied here, and the new weights published.
   */
  async trainStep(model: AdapterModel, batch: Batch, cfg: ResolvedConfig, step: number, vars: tf.Variable[], nameOfVar: Map<string, string>, optimizer: AdamW, lrFor: (name: string) => number, cache?: FrozenPrefixCache, cacheName?: string): Promise<number> {
    const shards = shardBatch(batch, this.usingCount);
    const replies = shards.slice(1).map((shard, k) => this.request(k + 1, { type: 'step', step, shard: shard.batch, firstRow: shard.firstRow, batchRows: batch.batchSize, cache: cacheName }));
    const { loss, grads } = await this.summedGradients(replies, () => shardLossAndGradients(model, shards[0], batch.batchSize, cfg, step, vars, nameOfVar, cache));
    applyGradients(loss, grads, cfg.training.maxGradNorm, optimizer, lrFor);
    this.publishWeights();
    return loss;
  }

  /**
   * The loss and gradients of a pretraining step's masked batch over every worker (each shard weighted by its
   * share of the chosen positions), summed in worker order. The caller clips them, takes the optimizer step
   * and then calls publishWeights.
   */
  async mlmGradients(model: MlmModel, batch: MaskedBatch, settings: MlmStepSettings, vars: tf.Variable[], nameOfVar: Map<string, string>): Promise<{ loss: number; grads: Map<string, tf.Tensor> }> {
    const shards = shardMaskedBatch(batch, this.usingCount);
    const batchPositions = batch.positions.length;
    const replies = shards.slice(1).map((shard, k) => this.request(k + 1, { type: 'mlmStep', shard: shard.batch, firstRow: shard.firstRow, batchPositions, settings }));
    return this.summedGradients(replies, () => mlmShardLossAndGradients(model, shards[0], batchPositions, settings, vars, nameOfVar));
  }

  /**
   * The coordinator's own shard (computed while the workers compute theirs) plus the workers' replies, summed
   * in worker order (the same order whatever finishes first), as tensors by parameter name.
   */
  private async summedGradients(replies: Promise<FromWorker>[], ownShard: () => { loss: number; grads: Map<string, tf.Tensor> }): Promise<{ loss: number; grads: Map<string, tf.Tensor> }> {
    // A rejected reply is awaited below; until then it must not count as unhandled.
    for (const r of replies) r.catch(() => undefined);
    let own: { loss: number; grads: Map<string, tf.Tensor> };
    const started = performance.now();
    try {
      own = ownShard();
    } catch (err) {
      if (!this.shardSync) throw err;
      // The workers were synchronised with this shard: wait until each has stopped (or the failure that stopped
      // one is in), and report the first failure, not the others' being stopped by it.
      await Promise.allSettled(replies);
      throw this.failure ?? err;
    }
    const ownMs = performance.now() - started;
    // The sums stay tensors, made in worker order (own + worker 1 + worker 2 ..., the float32 additions a loop
    // over arrays would make): the coordinator's shard is never copied out of the backend's memory.
    const grads = new Map<string, tf.Tensor>();
    for (const slot of this.slots) {
      const g = own.grads.get(slot.name);
      if (g) grads.set(slot.name, g);
    }
    for (const [name, g] of own.grads) if (!grads.has(name)) g.dispose();
    let loss = own.loss;
    let others: Extract<FromWorker, { type: 'grads' }>[];
    try {
      others = (await Promise.all(replies)).map((reply) => {
        if (reply.type !== 'grads') throw new Error(`unexpected reply ${reply.type} to a training step`);
        return reply;
      });
    } catch (err) {
      for (const g of grads.values()) g.dispose();
      throw this.failure ?? err;
    }
    this.lastShardMs = [ownMs];
    for (const reply of others) {
      this.lastShardMs.push(reply.computeMs);
      loss += reply.loss;
      reply.grads.forEach((values, i) => {
        if (!values) return;
        const name = this.slots[i].name;
        const theirs = tf.tensor(values, this.params.get(name)!.shape);
        const sum = grads.get(name);
        grads.set(name, sum ? tf.add(sum, theirs) : theirs);
        if (sum) {
          sum.dispose();
          theirs.dispose();
        }
      });
    }
    return { loss, grads };
  }

  /**
   * Whole batches spread over the workers (the longest first, each to the least loaded, counting batch x
   * length), the coordinator's share computed here by `local`; the results in batch order. Each batch is
   * computed whole by one worker, so the results do not depend on the number of workers.
   */
  private async spread<R, B = Batch>(batches: B[], request: (lane: B[]) => Request, local: (batch: B) => R, resultsOf: (reply: FromWorker) => R[], sizeOf: (batch: B) => number = (b) => (b as Batch).batchSize * (b as Batch).seqLen): Promise<R[]> {
    const lanes: number[][] = Array.from({ length: this.usingCount }, () => []);
    const load = new Array(this.usingCount).fill(0);
    const order = batches.map((b, i) => i).sort((a, b) => sizeOf(batches[b]) - sizeOf(batches[a]) || a - b);
    for (const i of order) {
      const lane = load.indexOf(Math.min(...load));
      lanes[lane].push(i);
      load[lane] += sizeOf(batches[i]);
    }
    const replies = lanes.slice(1).map((lane, k) => (lane.length ? this.request(k + 1, request(lane.map((i) => batches[i]))) : Promise.resolve(null)));
    for (const r of replies) r.catch(() => undefined);
    const results: R[] = new Array(batches.length);
    for (const i of lanes[0]) results[i] = local(batches[i]);
    let others: (FromWorker | null)[];
    try {
      others = await Promise.all(replies);
    } catch (err) {
      throw this.failure ?? err;
    }
    others.forEach((reply, k) => {
      if (!reply) return;
      const got = resultsOf(reply);
      lanes[k + 1].forEach((i, j) => (results[i] = got[j]));
    });
    return results;
  }

  /**
   * One training step of a family model over every worker (parallel/familyParallel.ts): the batch cut into
   * shards by the model, BatchNorm synchronised over them, the gradients summed in worker order; the loss and the
   * gradients (by parameter name) for the caller to apply, after which it calls publishWeights. The coordinator's
   * own shard also updates its BatchNorm running statistics, with the whole batch's.
   */
  async familyStep(model: TrainableFamilyModel<unknown>, batch: FamilyBatch, seed: number, step: number): Promise<{ loss: number; grads: Map<string, tf.Tensor> }> {
    const sync = this.shardSync;
    if (!sync || !model.parallel) throw new Error('familyStep needs a pool started for a family model');
    const shards = model.parallel.shardBatch(batch, this.usingCount);
    const participants = shards.length;
    const replies = shards.slice(1).map((shard, k) => this.request(k + 1, { type: 'familyStep', shard, seed, step, part: k + 1, participants }));
    return this.summedGradients(replies, () => {
      try {
        return withSynchronisedBatchNorm(participants > 1 ? new ShardExchange(sync, 0, participants) : null, () => model.lossAndGradients(shards[0] as FamilyBatch, derivedRng(seed, 2, step)));
      } catch (err) {
        if (!(err instanceof ShardSyncAborted)) abortShardSync(sync, 0);
        throw err;
      }
    });
  }

  /**
   * Evaluation batches of a family model over the workers, each computed whole by one of them with the given
   * ablation units off: the outputs in input order, the same whatever the number of workers.
   */
  familyOutputs(model: TrainableFamilyModel<unknown>, items: FamilyOutputsItem[], sizeOf: (batch: unknown) => number): Promise<FamilyBatchOutputs[]> {
    const parallel = model.parallel;
    if (!parallel) throw new Error('familyOutputs needs a model with parallel support');
    return this.spread<FamilyBatchOutputs, FamilyOutputsItem>(
      items,
      (lane) => ({ type: 'familyOutputs', items: lane }),
      (item) => {
        model.setDisabledUnits(new Set(item.disabledUnits));
        try {
          return parallel.batchOutputs(item.batch as FamilyBatch);
        } finally {
          model.setDisabledUnits(new Set());
        }
      },
      (reply) => {
        if (reply.type !== 'familyOutputs') throw new Error(`unexpected reply ${reply.type} to evaluation batches`);
        return reply.results;
      },
      (item) => sizeOf(item.batch),
    );
  }

  /** The outputs and mean loss of evaluation batches, in batch order. */
  predictBatches(model: AdapterModel, batches: Batch[], ctx: ForwardContext, cache?: FrozenPrefixCache, cacheName?: string): Promise<{ outputs: number[][]; loss: number }[]> {
    return this.spread(
      batches,
      (lane) => ({ type: 'predict', batches: lane, ctx, cache: cacheName }),
      (batch) => predictBatch(model, batch, ctx, cache),
      (reply) => {
        if (reply.type !== 'outputs') throw new Error(`unexpected reply ${reply.type} to evaluation batches`);
        return reply.results;
      },
    );
  }

  /** The layer ablation over the workers: the same result as layerAblation. */
  async ablate(model: AdapterModel, examples: EncodedExample[], opts: AblationOptions): Promise<AblationResult> {
    const batches = ablationBatches(model, examples, opts);
    const perBatch = ablationSpans(model.encoder.config.numLayers).length;
    let done = 0;
    const results = await this.spread(
      batches,
      (lane) => ({ type: 'ablate', batches: lane }),
      (batch) => ablateBatch(model, batch, () => opts.onSpan?.(++done, perBatch * batches.length)),
      (reply) => {
        if (reply.type !== 'ablated') throw new Error(`unexpected reply ${reply.type} to ablation batches`);
        done += perBatch * reply.results.length;
        opts.onSpan?.(done, perBatch * batches.length);
        return reply.results;
      },
    );
    return ablationResult(model, examples, batches, results, opts);
  }

  /** AdapterDrop's trade-off over the workers: the same metric values; the throughput of the workers together. */
  adapterDrop(model: AdapterModel, examples: EncodedExample[], opts: DropOptions): Promise<DropResult> {
    return adapterDropTradeoffWith(model, examples, opts, {
      dropBatches: (batches) =>
        this.spread(
          batches,
          (lane) => ({ type: 'drop', batches: lane }),
          (batch) => dropBatch(model, batch),
          (reply) => {
            if (reply.type !== 'dropped') throw new Error(`unexpected reply ${reply.type} to AdapterDrop batches`);
            return reply.results;
          },
        ),
      predict: (ex, batchSize, ctx) => this.predict(model, ex, batchSize, ctx),
    });
  }

  /** predict() over the workers: the same outputs, in input order. */
  async predict(model: AdapterModel, examples: EncodedExample[], batchSize: number, ctx: ForwardContext = EVAL_CONTEXT, cache?: FrozenPrefixCache, cacheName?: string): Promise<Predictions & { lossSum: number }> {
    const batches = evaluationBatches(model, examples, batchSize);
    return gatherPredictions(model, examples.length, batches, await this.predictBatches(model, batches, ctx, cache, cacheName));
  }

  /**
   * Multi-task prediction's batches over the workers (each batch computed whole by one of them, as
   * predictMultiTask computes it): per batch, per model, the outputs of its rows. `models` are the
   * coordinator's task models asked for, `indices` their places in the adapter folders the pool was started on.
   */
  multiTask(models: AdapterModel[], indices: number[], batches: Batch[]): Promise<number[][][][]> {
    const groups = sharedGroups(models);
    return this.spread(
      batches,
      (lane) => ({ type: 'multiTask', batches: lane, models: indices }),
      (batch) => multiTaskBatchOutputs(models, groups, batch),
      (reply) => {
        if (reply.type !== 'multiTask') throw new Error(`unexpected reply ${reply.type} to multi-task batches`);
        return reply.results;
      },
    );
  }

  /** Each worker thread's live tensors and their bytes (workers 1..N-1), for leak checks and the benchmark. */
  async workerMemory(): Promise<{ tensors: number; bytes: number }[]> {
    const replies = await Promise.all(this.threads.map((_, k) => this.request(k + 1, { type: 'memory' })));
    return replies.map((reply) => {
      if (reply.type !== 'memory') throw new Error(`unexpected reply ${reply.type} to a memory request`);
      return { tensors: reply.tensors, bytes: reply.bytes };
    });
  }

  /** Stops every thread. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.threads.map((w) => w.terminate()));
  }
}

/**
 * Workers over a trained adapter folder, for evaluation, the ablation and prediction: as many as asked, at most
 * one per batch; null where that is one (the coordinator's thread alone).
 */
export async function adapterPool(adapterDir: string, workers: number, batches: number): Promise<WorkerPool | null> {
  const n = Math.min(workers, batches);
  if (n <= 1) return null;
  return WorkerPool.start({ workers: n, backend: activeBackend()?.name ?? 'wasm', source: { kind: 'adapter', adapterDir }, params: new Map() });
}

/** Workers over several adapter folders on one base, for multi-task prediction (null where that is one). */
export async function tasksPool(adapterDirs: string[], workers: number, batches: number): Promise<WorkerPool | null> {
  const n = Math.min(workers, batches);
  if (n <= 1) return null;
  return WorkerPool.start({ workers: n, backend: activeBackend()?.name ?? 'wasm', source: { kind: 'tasks', adapterDirs }, params: new Map() });
}
