/**
 * Pretraining data: plain text (one paragraph per line) turned into packed, masked sequences.
 *
 * - Packing: the tokens of consecutive lines are concatenated and cut into sequences of maxSeqLength,
 *   [CLS] t1 ... tn [SEP], a single segment (as RoBERTa's FULL-SENTENCES packing, without NSP).
 * - Masking (Devlin et al. 2019): a share p (0.15) of the non-special tokens of each sequence is chosen
 *   (round(p n), at least one); of those 80% become [MASK], 10% a random token, 10% stay. The loss is taken
 *   on the chosen positions only.
 */
import * as fs from 'node:fs';
import type { Tokenizer } from 'tokenizers';
import { UserInputError } from '../errors';
import { Rng } from '../util/random';

export interface SpecialIds {
  pad: number;
  unk: number;
  cls: number;
  sep: number;
  mask: number;
}

/** Non-empty lines of the files, in order. */
export function readTextLines(files: string[]): string[] {
  const lines: string[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch (err) {
      throw new UserInputError(`cannot read text file: ${(err as Error).message}`, { file: f });
    }
    for (const line of text.split(/\r?\n/)) if (line.trim()) lines.push(line);
  }
  return lines;
}

/** Token ids of all lines, concatenated (no specials). */
export async function tokenizeLines(tok: Tokenizer, lines: string[], chunk = 2000): Promise<Int32Array> {
  const parts: number[][] = [];
  let total = 0;
  for (let i = 0; i < lines.length; i += chunk) {
    const encs = await tok.encodeBatch(lines.slice(i, i + chunk), { addSpecialTokens: false });
    for (const e of encs) {
      const ids = e.getIds();
      parts.push(ids);
      total += ids.length;
    }
  }
  const out = new Int32Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Packs a token stream into sequences of exactly `seqLen` tokens ([CLS] + seqLen-2 tokens + [SEP]). The last,
 * shorter piece is kept (padded later) when `keepLast`, else dropped.
 */
export function packSequences(stream: Int32Array, seqLen: number, ids: SpecialIds, keepLast = false): Int32Array[] {
  const body = seqLen - 2;
  const out: Int32Array[] = [];
  for (let i = 0; i < stream.length; i += body) {
    const piece = stream.subarray(i, Math.min(stream.length, i + body));
    if (piece.length < body && !keepLast) break;
    const seq = new Int32Array(piece.length + 2);
    seq[0] = ids.cls;
    seq.set(piece, 1);
    seq[piece.length + 1] = ids.sep;
    out.push(seq);
  }
  return out;
}

/** A batch ready for the model: [B, T] ids, padded, with the chosen positions and their original tokens. */
export interface MaskedBatch {
  batchSize: number;
  seqLen: number;
  inputIds: Int32Array;
  tokenTypeIds: Int32Array;
  attentionMask: Float32Array;
  /** Flat indices (row * seqLen + col) of the chosen positions, in increasing order. */
  positions: Int32Array;
  /** The original token at each chosen position. */
  labels: Int32Array;
  /** Real (non-padding) tokens. */
  realTokens: number;
}

export interface MaskingOptions {
  maskProbability: number;
  vocabSize: number;
  ids: SpecialIds;
  /** Ids that are never chosen and never drawn as random replacements (the special tokens). */
  specialIds: ReadonlySet<number>;
}

/** What happened to each chosen position, for tests and statistics. */
export type MaskAction = 'mask' | 'random' | 'keep';

/**
 * Masks a batch of sequences. `onChoice` sees every chosen position (for tests). All randomness comes from
 * `rng`, so the same Rng state gives the same batch.
 */
export function maskBatch(seqs: Int32Array[], opts: MaskingOptions, rng: Rng, onChoice?: (action: MaskAction, original: number, replaced: number) => void): MaskedBatch {
  const B = seqs.length;
  const T = Math.max(...seqs.map((s) => s.length));
  const inputIds = new Int32Array(B * T).fill(opts.ids.pad);
  const attentionMask = new Float32Array(B * T);
  const positions: number[] = [];
  const labels: number[] = [];
  let realTokens = 0;
  const firstRegular = firstNonSpecialId(opts);
  for (let r = 0; r < B; r++) {
    const s = seqs[r];
    const base = r * T;
    inputIds.set(s, base);
    attentionMask.fill(1, base, base + s.length);
    realTokens += s.length;
    const candidates: number[] = [];
    for (let c = 0; c < s.length; c++) if (!opts.specialIds.has(s[c])) candidates.push(c);
    if (candidates.length === 0) continue;
    const k = Math.min(candidates.length, Math.max(1, Math.round(opts.maskProbability * candidates.length)));
    // Partial Fisher-Yates: the first k of a random permutation of the candidates.
    for (let i = 0; i < k; i++) {
      const j = i + rng.int(candidates.length - i);
      [candidates[i], candidates[j]] = [candidates[j], candidates[i]];
    }
    const chosen = candidates.slice(0, k).sort((a, b) => a - b);
    for (const c of chosen) {
      const original = s[c];
      const u = rng.next();
      let action: MaskAction;
      let replaced = original;
      if (u < 0.8) {
        action = 'mask';
        replaced = opts.ids.mask;
      } else if (u < 0.9) {
        action = 'random';
        replaced = randomRegularToken(rng, opts, firstRegular);
      } else action = 'keep';
      inputIds[base + c] = replaced;
      positions.push(base + c);
      labels.push(original);
      onChoice?.(action, original, replaced);
    }
  }
  return {
    batchSize: B,
    seqLen: T,
    inputIds,
    tokenTypeIds: new Int32Array(B * T),
    attentionMask,
    positions: Int32Array.from(positions),
    labels: Int32Array.from(labels),
    realTokens,
  };
}

function firstNonSpecialId(opts: MaskingOptions): number {
  let id = 0;
  while (opts.specialIds.has(id)) id++;
  return id;
}

function randomRegularToken(rng: Rng, opts: MaskingOptions, firstRegular: number): number {
  for (;;) {
    const id = firstRegular + rng.int(opts.vocabSize - firstRegular);
    if (!opts.specialIds.has(id)) return id;
  }
}
