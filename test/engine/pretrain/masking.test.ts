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
    // Violations are counted (one expect per kind at the end keeps the 40,000-position check fast).
    const bad = { specialChosen: 0, maskNotMask: 0, keepChanged: 0, randomSpecial: 0, perRowCount: 0, padding: 0, label: 0, untouchedChanged: 0 };
    for (let b = 0; b < seqs.length; b += 32) {
      const part = seqs.slice(b, b + 32);
      const batch = maskBatch(part, opts, rng, (action, original, replaced) => {
        counts[action]++;
        if (opts.specialIds.has(original)) bad.specialChosen++;
        if (action === 'mask' && replaced !== ids.mask) bad.maskNotMask++;
        if (action === 'keep' && replaced !== original) bad.keepChanged++;
        if (action === 'random' && (opts.specialIds.has(replaced) || replaced >= V || replaced < 0)) bad.randomSpecial++;
      });
      const T = batch.seqLen;
      const perRow = new Array<number>(part.length).fill(0);
      batch.positions.forEach((p, i) => {
        const r = Math.floor(p / T);
        const c = p % T;
        perRow[r]++;
        if (c >= part[r].length || batch.attentionMask[p] !== 1) bad.padding++; // never padding
        if (opts.specialIds.has(part[r][c])) bad.specialChosen++; // never [CLS], [SEP], [UNK], [PAD]
        if (batch.labels[i] !== part[r][c]) bad.label++;
      });
      // Per sequence: round(15%) of its regular tokens, at least one.
      part.forEach((s, r) => {
        const regular = [...s].filter((t) => !opts.specialIds.has(t)).length;
        if (perRow[r] !== Math.max(1, Math.round(0.15 * regular))) bad.perRowCount++;
        candidates += regular;
      });
      // Unchosen tokens and padding are left alone.
      const chosenSet = new Set(batch.positions);
      part.forEach((s, r) => {
        for (let c = 0; c < T; c++) {
          const p = r * T + c;
          if (chosenSet.has(p)) continue;
          if (batch.inputIds[p] !== (c < s.length ? s[c] : ids.pad) || batch.attentionMask[p] !== (c < s.length ? 1 : 0)) bad.untouchedChanged++;
        }
      });
      chosen += batch.positions.length;
    }
    expect(bad).toEqual({ specialChosen: 0, maskNotMask: 0, keepChanged: 0, randomSpecial: 0, perRowCount: 0, padding: 0, label: 0, untouchedChanged: 0 });
    expect(chosen / candidates).toBeGreaterThan(0.145);
    expect(chosen / candidates).toBeLessThan(0.16);
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
