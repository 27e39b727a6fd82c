import type { ShardGather } from '../tf/conv';

/**
 * The exchange behind synchronised BatchNorm (tf/conv.ts, withSynchronisedBatchNorm): while the workers compute
 * the shards of one training step, each BatchNorm in training mode needs the whole batch's statistics, and its
 * gradient the whole batch's sums. Every participant (the shard's worker, the coordinator's thread being
 * participant 0) writes its per-channel vector into its slot of a SharedArrayBuffer and waits at a barrier until
 * all have written; each then reads every slot in participant order, so all compute the same combination in the
 * same order. Blocking waits (Atomics.wait) are allowed on Node's main thread and in worker threads.
 *
 * Two banks of slots alternate between successive exchanges: a participant can only write exchange i + 1 after
 * everyone has arrived there, that is after everyone has read exchange i. A participant that fails marks the
 * exchange aborted (abortShardSync), which wakes the others with a ShardSyncAborted naming it.
 */

/** Float64 elements of one participant's slot: two vectors of up to 4096 channels and a count. */
const SLOT_SIZE = 2 * 4096 + 1;
/** Int32 control words: arrivals at the barrier, the barrier's generation, the aborting participant + 1. */
const COUNT = 0;
const GENERATION = 1;
const ABORT = 2;
/** How long a participant waits for the others at one exchange before it gives up (a hung or vanished thread). */
const BARRIER_TIMEOUT_MS = 120_000;

export interface ShardSyncBuffers {
  control: SharedArrayBuffer;
  data: SharedArrayBuffer;
  /** Participants the slots are made for (the pool's workers). */
  workers: number;
}

export function createShardSyncBuffers(workers: number): ShardSyncBuffers {
  return { control: new SharedArrayBuffer(4 * Int32Array.BYTES_PER_ELEMENT), data: new SharedArrayBuffer(2 * workers * SLOT_SIZE * Float64Array.BYTES_PER_ELEMENT), workers };
}

/** A step's exchange was aborted because another participant failed. */
export class ShardSyncAborted extends Error {
  constructor(readonly failedWorker: number) {
    super(`stopped: worker ${failedWorker} failed during the step`);
  }
}

/** Marks the exchange aborted by `worker` (the first to fail is the one recorded) and wakes every waiting participant. */
export function abortShardSync(buffers: ShardSyncBuffers | undefined, worker: number): void {
  if (!buffers) return;
  const control = new Int32Array(buffers.control);
  Atomics.compareExchange(control, ABORT, 0, worker + 1);
  Atomics.notify(control, GENERATION);
}

/** Participant `part` of the `participants` computing one training step (a new one per step). */
export class ShardExchange implements ShardGather {
  private readonly control: Int32Array;
  private readonly data: Float64Array;
  private exchanges = 0;

  constructor(
    private readonly buffers: ShardSyncBuffers,
    private readonly part: number,
    private readonly participants: number,
  ) {
    if (participants > buffers.workers || part >= participants) throw new Error(`shard exchange: participant ${part} of ${participants} with slots for ${buffers.workers}`);
    this.control = new Int32Array(buffers.control);
    this.data = new Float64Array(buffers.data);
  }

  /** Every participant's `values`, in participant order (this one's included). */
  gather(values: ArrayLike<number>): Float64Array[] {
    if (values.length > SLOT_SIZE) throw new Error(`synchronised BatchNorm handles up to ${(SLOT_SIZE - 1) / 2} channels`);
    const bank = this.exchanges++ % 2;
    const slotOf = (p: number) => (bank * this.buffers.workers + p) * SLOT_SIZE;
    this.data.set(values, slotOf(this.part));
    this.barrier();
    return Array.from({ length: this.participants }, (_, p) => this.data.slice(slotOf(p), slotOf(p) + values.length));
  }

  private checkAbort(): void {
    const failed = Atomics.load(this.control, ABORT);
    if (failed) throw new ShardSyncAborted(failed - 1);
  }

  private barrier(): void {
    this.checkAbort();
    const generation = Atomics.load(this.control, GENERATION);
    if (Atomics.add(this.control, COUNT, 1) === this.participants - 1) {
      Atomics.store(this.control, COUNT, 0);
      Atomics.add(this.control, GENERATION, 1);
      Atomics.notify(this.control, GENERATION);
      return;
    }
    const deadline = Date.now() + BARRIER_TIMEOUT_MS;
    while (Atomics.load(this.control, GENERATION) === generation) {
      this.checkAbort();
      if (Date.now() > deadline) throw new Error(`worker ${this.part} waited ${BARRIER_TIMEOUT_MS / 1000} s for the other workers at a synchronised BatchNorm`);
      Atomics.wait(this.control, GENERATION, generation, 50);
    }
  }
}
