import { describe, expect, it } from 'vitest';
import { maskBatch, MaskAction, MaskingOptions, packSequences } from '../../../src/engine/pretrain/data';
import { Rng } from '../../../src/engine/util/random';

const ids = { pad: 0, unk: 1, cls: 2, sep: 3, mask: 4 };
const V = 500;
const opts: MaskingOptions = { maskProbability: 0.15, vocabSize: V, ids, specialIds: new Set([0, 1, 2, 3, 4]) };

describe('packing', () => {
  it('cuts the token stream into [CLS] ... [SEP] sequences of maxSeqLength', () => {
    const stream = Int32Array.from({ length: 50 }, (_, i) => 5 + i);
    const seqs = packSequences(stream, 12, ids);
    expect(seqs.length).toBe(5); // 50 tokens / 10 per sequence
    for (const s of seqs) {
      expect(s.length).toBe(12);
      expect(s[0]).toBe(ids.cls);
      expect(s[11]).toBe(ids.sep);
    }
    expect([...seqs[1].subarray(1, 11)]).toEqual([...stream.subarray(10, 20)]);
    // The shorter last piece is dropped for training and kept for the held-out set.
    expect(packSequences(stream.subarray(0, 45), 12, ids).length).toBe(4);
    const kept = packSequences(stream.subarray(0, 45), 12, ids, true);
    expect(kept.length).toBe(5);
    expect(kept[4].length).toBe(7);
    expect(kept[4][6]).toBe(ids.sep);
  });
});

describe('masking', () => {
  /** Sequences of regular tokens with an [UNK] here and there, of varied lengths (so batches have padding). */
  function sequences(n: number, seed: number): Int32Array[] {
    const rng = new Rng(seed);
    return Array.from({ length: n }, () => {
      const len = 8 + rng.int(57);
      const s = new Int32Array(len);
      s[0] = ids.cls;
      s[len - 1] = ids.sep;
      for (let i = 1; i < len - 1; i++) s[i] = rng.next() < 0.02 ? ids.unk : 5 + rng.int(V - 5);
      return s;
    });
  }

  it('chooses 15% of the non-special tokens and applies 80/10/10 mask/random/keep over a large sample', () => {
    const seqs = sequences(3000, 1);
    const counts: Record<MaskAction, number> = { mask: 0, random: 0, keep: 0 };
    let chosen = 0;
    let candidates = 0;
    const rng = new Rng(42);
    for (let b = 0; b < seqs.length; b += 32) {
      const part = seqs.slice(b, b + 32);
      const batch = maskBatch(part, opts, rng, (action, original, replaced) => {
        counts[action]++;
        expect(opts.specialIds.has(original)).toBe(false);
        if (action === 'mask') expect(replaced).toBe(ids.mask);
        if (action === 'keep') expect(replaced).toBe(original);
        if (action === 'random') {
          expect(opts.specialIds.has(replaced)).toBe(false);
          expect(replaced).toBeLessThan(V);
        }
      });
      const T = batch.seqLen;
      // Per sequence: round(15%) of its regular tokens, at least one.
      part.forEach((s, r) => {
        const regular = [...s].filter((t) => !opts.specialIds.has(t)).length;
        const inRow = [...batch.positions].filter((p) => Math.floor(p / T) === r).length;
        expect(inRow).toBe(Math.max(1, Math.round(0.15 * regular)));
        candidates += regular;
      });
      batch.positions.forEach((p, i) => {
        const r = Math.floor(p / T);
        const c = p % T;
        const original = part[r][c];
        expect(c).toBeLessThan(part[r].length); // never padding
        expect(batch.attentionMask[p]).toBe(1);
        expect(opts.specialIds.has(original)).toBe(false); // never [CLS], [SEP], [UNK], [PAD]
        expect(batch.labels[i]).toBe(original);
      });
      // Unchosen tokens and padding are left alone.
      const chosenSet = new Set(batch.positions);
      part.forEach((s, r) => {
        for (let c = 0; c < T; c++) {
          const p = r * T + c;
          if (chosenSet.has(p)) continue;
          expect(batch.inputIds[p]).toBe(c < s.length ? s[c] : ids.pad);
          expect(batch.attentionMask[p]).toBe(c < s.length ? 1 : 0);
        }
      });
      chosen += batch.positions.length;
    }
    expect(chosen / candidates).toBeGreaterThan(0.145);
    expect(chosen / candidates).toBeLessThan(0.16);
    expect(counts.mask / chosen).toBeCloseTo(0.8, 1);
    expect(Math.abs(counts.mask / chosen - 0.8)).toBeLessThan(0.01);
    expect(Math.abs(counts.random / chosen - 0.1)).toBeLessThan(0.01);
    expect(Math.abs(counts.keep / chosen - 0.1)).toBeLessThan(0.01);
  });

  it('is a function of the Rng state: the same seed gives the same batch, another seed another', () => {
    const seqs = sequences(16, 3);
    const a = maskBatch(seqs, opts, new Rng(5));
    const b = maskBatch(seqs, opts, new Rng(5));
    const c = maskBatch(seqs, opts, new Rng(6));
    expect([...a.inputIds]).toEqual([...b.inputIds]);
    expect([...a.positions]).toEqual([...b.positions]);
    expect([...a.positions]).not.toEqual([...c.positions]);
  });

  it('leaves a sequence of special tokens only without predictions', () => {
    const batch = maskBatch([Int32Array.from([ids.cls, ids.unk, ids.sep])], opts, new Rng(1));
    expect(batch.positions.length).toBe(0);
  });
});
