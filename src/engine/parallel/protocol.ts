import type { ResolvedConfig } from '../config/types';
import type { Batch, EncodedExample } from '../data/types';
import type { ForwardContext } from '../model/bert';
import type { BackendName } from '../tf/backend';

/** Messages between the coordinator (pool.ts) and its worker threads (worker.ts). */

/** Where a worker's model comes from: a config (training: the same seeded build) or a trained adapter folder. */
export type ModelSource = { kind: 'config'; cfg: ResolvedConfig; labels: string[] | null } | { kind: 'adapter'; adapterDir: string; model?: string };

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
}

export type ToWorker =
  | { type: 'step'; id: number; weightsVersion: number; step: number; shard: Batch; firstRow: number; batchRows: number; cache?: string }
  | { type: 'predict'; id: number; weightsVersion: number; batches: Batch[]; ctx: ForwardContext; cache?: string }
  | { type: 'ablate'; id: number; weightsVersion: number; batches: Batch[] }
  | { type: 'drop'; id: number; weightsVersion: number; batches: Batch[] }
  | { type: 'memory'; id: number; weightsVersion: number };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'grads'; id: number; loss: number; grads: (Float32Array | null)[] }
  | { type: 'outputs'; id: number; results: { outputs: number[][]; loss: number }[] }
  | { type: 'ablated'; id: number; results: number[][][] }
  | { type: 'dropped'; id: number; results: number[][][] }
  | { type: 'memory'; id: number; tensors: number; bytes: number }
  | { type: 'failed'; id: number | null; message: string; stack?: string };
