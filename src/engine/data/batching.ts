/**
 * Cuts encoded examples into padded batches. With length buckets (the default) examples of similar
 * length share a batch, so each batch is padded only to its own longest example and little compute goes
 * to padding. Training batches are shuffled with the run's seeded Rng (same seed, same batches);
 * evaluation batches are not, and carry `indices` so predictions can be put back in input order.
 */
import type { TaskType } from '../config/types';
import type { Rng } from '../util/random';
import type { Batch, EncodedExample } from './types';

export interface BatchOptions {
  shuffle: boolean;
  /** Required when shuffle is true: every random choice goes through the run's seeded Rng. */
  rng?: Rng;
  /** Group examples of similar length (default true). */
  bucketByLength?: boolean;
  padId: number;
  taskType: TaskType;
  /** Training: how many batches' worth of shuffled examples are sorted by length together (default 50). */
  bucketWindowBatches?: number;
}

function packBatch(items: EncodedExample[], padId: number): Batch {
  const batchSize = items.length;
  const seqLen = items.reduce((m, e) => Math.max(m, e.inputIds.length), 0);
  const inputIds = new Int32Array(batchSize * seqLen).fill(padId);
  const tokenTypeIds = new Int32Array(batchSize * seqLen);
  const attentionMask = new Float32Array(batchSize * seqLen);
  const labels = new Float32Array(batchSize);
  let realTokens = 0;
  items.forEach((e, r) => {
    const off = r * seqLen;
    inputIds.set(e.inputIds, off);
    tokenTypeIds.set(e.tokenTypeIds, off);
    attentionMask.fill(1, off, off + e.inputIds.length);
    labels[r] = e.label;
    realTokens += e.inputIds.length;
  });
  return { inputIds, tokenTypeIds, attentionMask, labels, batchSize, seqLen, realTokens, indices: items.map((e) => e.index) };
}

function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export function makeBatches(examples: EncodedExample[], batchSize: number, opts: BatchOptions): Batch[] {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batch size must be a positive integer, got ${batchSize}`);
  if (opts.taskType === 'classification') {
    const bad = examples.find((e) => !Number.isInteger(e.label) || e.label < 0);
    if (bad) throw new Error(`classification label ${bad.label} of example ${bad.index} is not a class index`);
  }
  const bucket = opts.bucketByLength ?? true;
  const len = (e: EncodedExample) => e.inputIds.length;
  let groups: EncodedExample[][];

  if (opts.shuffle) {
    if (!opts.rng) throw new Error('makeBatches: shuffle needs the run\'s seeded rng');
    const rng = opts.rng;
    const order = rng.shuffle([...examples]);
    if (!bucket) {
      groups = chunk(order, batchSize);
    } else {
      // Sorting within windows (not the whole set) keeps batches varied from epoch to epoch while
      // still grouping similar lengths; shuffling the batch order then hides the sort from training.
      const window = batchSize * (opts.bucketWindowBatches ?? 50);
      groups = [];
      for (const w of chunk(order, window)) {
        // Stable sort: ties keep their shuffled order.
        groups.push(...chunk([...w].sort((a, b) => len(a) - len(b)), batchSize));
      }
      rng.shuffle(groups);
    }
  } else if (bucket) {
    // Evaluation: longest first (a memory problem shows on the first batch), ties in input order.
    groups = chunk([...examples].sort((a, b) => len(b) - len(a) || a.index - b.index), batchSize);
  } else {
    groups = chunk(examples, batchSize);
  }
  return groups.map((g) => packBatch(g, opts.padId));
}

/** For reporting: real tokens, and all token positions after padding (real + padding). */
export function paddingStats(batches: Batch[]): { realTokens: number; paddedTokens: number } {
  let realTokens = 0;
  let paddedTokens = 0;
  for (const b of batches) {
    realTokens += b.realTokens;
    paddedTokens += b.batchSize * b.seqLen;
  }
  return { realTokens, paddedTokens };
}
