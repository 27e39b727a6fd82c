import type { ResolvedConfig } from '../config/types';
import type { Batch, EncodedExample } from '../data/types';
import type { ForwardContext } from '../model/bert';
import type { BackendName } from '../tf/backend';
import type { BertConfig } from '../model/config';
import type { MaskedBatch } from '../pretrain/data';
import type { MlmStepSettings } from './shard';
import type { ShardSyncBuffers } from './shardSync';
import type { FamilyBatchOutputs } from '../model/family';

/** Messages between the coordinator (pool.ts) and its worker threads (worker.ts). */

/**
 * Where a worker's model comes from: a config (training: the same seeded build), a trained adapter folder,
 * several adapter folders on one base (multi-task prediction), or a pretraining encoder and MLM head of this
 * shape (its weights all come from the shared buffer).
 */
export type ModelSource =
  | { kind: 'config'; cfg: ResolvedConfig; labels: string[] | null }
  | { kind: 'adapter'; adapterDir: string; model?: string }
  | { kind: 'tasks'; adapterDirs: string[] }
  | { kind: 'mlm'; bert: BertConfig }
  /** A model family's model (the generic trainer and commands): familyFor(taskType).buildReplica(replica). */
  | { kind: 'family'; taskType: string; replica: unknown };

/** A trainable parameter's place in the shared weights buffer. */
export interface WeightSlot {
  name: string;
  offset: number;
  size: number;
}

export interface WorkerInit {
  /** 1-based: the coordinator's own thread is worker 0. */
  index: number;
  backend: BackendName;
  source: ModelSource;
  /** The trainable parameters, written by the coordinator after every update (Float32 elements). */
  weights: SharedArrayBuffer;
  slots: WeightSlot[];
  /** Frozen-prefix caches to build, by name, over these examples. */
  caches?: { depth: number; batchSize: number; padId: number; sets: Record<string, EncodedExample[]> };
  /** Test hook (ADAPTER_LAB_TEST_WORKER_FAIL): fail at this training step, by throwing or by exiting the thread. */
  failAt?: { step: number; exit: boolean };
  /** Synchronised BatchNorm's exchange between the shards of a training step (family models). */
  shardSync?: ShardSyncBuffers;
}

/** An evaluation batch of a family model with the ablation units switched off for it (none: all on). */
export interface FamilyOutputsItem {
  batch: unknown;
  disabledUnits: number[];
}

export type ToWorker =
  | { type: 'step'; id: number; weightsVersion: number; step: number; shard: Batch; firstRow: number; batchRows: number; cache?: string }
  | { type: 'predict'; id: number; weightsVersion: number; batches: Batch[]; ctx: ForwardContext; cache?: string }
  | { type: 'ablate'; id: number; weightsVersion: number; batches: Batch[] }
  | { type: 'drop'; id: number; weightsVersion: number; batches: Batch[] }
  | { type: 'mlmStep'; id: number; weightsVersion: number; shard: MaskedBatch; firstRow: number; batchPositions: number; settings: MlmStepSettings }
  /** Multi-task prediction: `models` are indices into the worker's task models (those of one maximum length). */
  | { type: 'multiTask'; id: number; weightsVersion: number; batches: Batch[]; models: number[] }
  | { type: 'memory'; id: number; weightsVersion: number }
  /** A family model's shard of a training step: shard `part` of `participants` (BatchNorm synchronised over them). */
  | { type: 'familyStep'; id: number; weightsVersion: number; shard: unknown; seed: number; step: number; part: number; participants: number }
  | { type: 'familyOutputs'; id: number; weightsVersion: number; items: FamilyOutputsItem[] };

export type FromWorker =
  | { type: 'ready' }
  /** computeMs: the worker's time for its shard's loss and gradients (WorkerPool.lastShardMs). */
  | { type: 'grads'; id: number; loss: number; grads: (Float32Array | null)[]; computeMs: number }
  | { type: 'outputs'; id: number; results: { outputs: number[][]; loss: number }[] }
  | { type: 'ablated'; id: number; results: number[][][] }
  | { type: 'dropped'; id: number; results: number[][][] }
  | { type: 'memory'; id: number; tensors: number; bytes: number }
  /** Per batch, per model asked for, the outputs of the batch's rows. */
  | { type: 'multiTask'; id: number; results: number[][][][] }
  | { type: 'familyOutputs'; id: number; results: FamilyBatchOutputs[] }
  /** The step was stopped because another participant of its synchronised BatchNorm failed (that one reports why). */
  | { type: 'aborted'; id: number }
  | { type: 'failed'; id: number | null; message: string; stack?: string };
