import { describe, expect, it } from 'vitest';
import { makeBatches, paddingStats } from '../../../src/engine/data/batching';
import type { Batch, EncodedExample } from '../../../src/engine/data/types';
import { Rng } from '../../../src/engine/util/random';

const PAD = 0;

/** Example i has a length from a fixed pseudo-random pattern, token ids 100+i, label i % 3. */
function examples(n: number, seed = 1): EncodedExample[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const len = 3 + rng.int(30);
    return {
      inputIds: Array.from({ length: len }, (_, j) => (j === 0 ? 2 : j === len - 1 ? 3 : 100 + i)),
      tokenTypeIds: Array.from({ length: len }, (_, j) => (j > len / 2 ? 1 : 0)),
      label: i % 3,
      index: i,
    };
  });
}

/** Checks a batch against its examples: layout, padding, mask, labels, realTokens. */
function checkBatch(b: Batch, byIndex: Map<number, EncodedExample>): void {
  const rows = b.indices.map((i) => byIndex.get(i)!);
  expect(b.batchSize).toBe(rows.length);
  expect(b.seqLen).toBe(Math.max(...rows.map((e) => e.inputIds.length)));
  expect(b.inputIds.length).toBe(b.batchSize * b.seqLen);
  expect(b.realTokens).toBe(rows.reduce((s, e) => s + e.inputIds.length, 0));
  rows.forEach((e, r) => {
    const ids = Array.from(b.inputIds.subarray(r * b.seqLen, (r + 1) * b.seqLen));
    const types = Array.from(b.tokenTypeIds.subarray(r * b.seqLen, (r + 1) * b.seqLen));
    const mask = Array.from(b.attentionMask.subarray(r * b.seqLen, (r + 1) * b.seqLen));
    const pad = b.seqLen - e.inputIds.length;
    expect(ids).toEqual([...e.inputIds, ...new Array(pad).fill(PAD)]);
    expect(types).toEqual([...e.tokenTypeIds, ...new Array(pad).fill(0)]);
    expect(mask).toEqual([...new Array(e.inputIds.length).fill(1), ...new Array(pad).fill(0)]);
    expect(b.labels[r]).toBe(e.label);
  });
}

function allIndices(batches: Batch[]): number[] {
  return batches.flatMap((b) => b.indices);
}

describe('makeBatches', () => {
  const data = examples(537);
  const byIndex = new Map(data.map((e) => [e.index, e]));
  const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
  const every = Array.from({ length: data.length }, (_, i) => i);

  for (const shuffle of [true, false]) {
    for (const bucketByLength of [true, false]) {
      it(`shuffle=${shuffle} bucket=${bucketByLength}: every example once, padded to the longest in its batch`, () => {
        const batches = makeBatches(data, 16, {
          shuffle,
          rng: new Rng(3),
          bucketByLength,
          padId: PAD,
          taskType: 'classification',
        });
        expect(sorted(allIndices(batches))).toEqual(every);
        expect(batches.every((b) => b.batchSize <= 16)).toBe(true);
        expect(batches.filter((b) => b.batchSize < 16).length).toBeLessThanOrEqual(shuffle && bucketByLength ? 11 : 1);
        for (const b of batches) checkBatch(b, byIndex);
      });
    }
  }

  it('training batches: same seed, same batches; another seed, other batches', () => {
    const opts = { shuffle: true, padId: PAD, taskType: 'classification' as const };
    const a = makeBatches(data, 16, { ...opts, rng: new Rng(5) });
    const b = makeBatches(data, 16, { ...opts, rng: new Rng(5) });
    const c = makeBatches(data, 16, { ...opts, rng: new Rng(6) });
    expect(a.map((x) => x.indices)).toEqual(b.map((x) => x.indices));
    expect(a.map((x) => x.indices)).not.toEqual(c.map((x) => x.indices));
    // Batch order is shuffled, not sorted by length.
    const lens = a.map((x) => x.seqLen);
    expect(lens).not.toEqual([...lens].sort((p, q) => p - q));
  });

  it('length buckets pad much less than random batches', () => {
    const opts = { shuffle: true, padId: PAD, taskType: 'classification' as const };
    const bucketed = paddingStats(makeBatches(data, 16, { ...opts, rng: new Rng(1) }));
    const random = paddingStats(makeBatches(data, 16, { ...opts, rng: new Rng(1), bucketByLength: false }));
    expect(bucketed.realTokens).toBe(random.realTokens);
    expect(bucketed.realTokens).toBe(data.reduce((s, e) => s + e.inputIds.length, 0));
    expect(bucketed.paddedTokens).toBeLessThan(random.paddedTokens * 0.75);
    expect(bucketed.paddedTokens).toBeGreaterThanOrEqual(bucketed.realTokens);
  });

  it('evaluation batches are sorted by length, deterministic, and indices restore input order', () => {
    const batches = makeBatches(data, 32, { shuffle: false, padId: PAD, taskType: 'classification' });
    const lens = batches.flatMap((b) => b.indices.map((i) => byIndex.get(i)!.inputIds.length));
    expect(lens).toEqual([...lens].sort((p, q) => q - p));
    // Put "predictions" (here: the first real token id) back in input order.
    const restored = new Array<number>(data.length);
    for (const b of batches) b.indices.forEach((idx, r) => (restored[idx] = b.inputIds[r * b.seqLen + 1]));
    expect(restored).toEqual(data.map((e) => e.inputIds[1]));
    const again = makeBatches(data, 32, { shuffle: false, padId: PAD, taskType: 'classification' });
    expect(again.map((b) => b.indices)).toEqual(batches.map((b) => b.indices));
  });

  it('without buckets and shuffle, batches keep input order', () => {
    const batches = makeBatches(data.slice(0, 10), 4, { shuffle: false, bucketByLength: false, padId: PAD, taskType: 'classification' });
    expect(batches.map((b) => b.indices)).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
  });

  it('pads with the given pad id and keeps regression targets', () => {
    const ex: EncodedExample[] = [
      { inputIds: [2, 7, 3], tokenTypeIds: [0, 0, 0], label: 0.25, index: 0 },
      { inputIds: [2, 3], tokenTypeIds: [0, 0], label: -1.5, index: 1 },
    ];
    const [b] = makeBatches(ex, 8, { shuffle: false, bucketByLength: false, padId: 99, taskType: 'regression' });
    expect(Array.from(b.inputIds)).toEqual([2, 7, 3, 2, 3, 99]);
    expect(Array.from(b.labels)).toEqual([0.25, -1.5]);
    expect(b.realTokens).toBe(5);
    expect(paddingStats([b])).toEqual({ realTokens: 5, paddedTokens: 6 });
  });

  it('refuses to shuffle without an rng, and non-index classification labels', () => {
    expect(() => makeBatches(data, 8, { shuffle: true, padId: PAD, taskType: 'classification' })).toThrow(/rng/);
    const bad = [{ inputIds: [2, 3], tokenTypeIds: [0, 0], label: 0.5, index: 0 }];
    expect(() => makeBatches(bad, 8, { shuffle: false, padId: PAD, taskType: 'classification' })).toThrow(/class index/);
    expect(makeBatches([], 8, { shuffle: false, padId: PAD, taskType: 'classification' })).toEqual([]);
  });
});
