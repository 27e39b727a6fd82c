/**
 * BERT tokenisation through Hugging Face's Rust tokenizers (npm `tokenizers`), so that text is split
 * exactly as the model was pretrained: from `tokenizer.json` when the model folder has one, else a
 * WordPiece tokenizer built from `vocab.txt` the way BertTokenizerFast builds it.
 *
 * Special tokens and truncation are applied here rather than by the native tokenizer: its truncation
 * is state set on the shared tokenizer object, which concurrent calls with different lengths would
 * race on, and doing it ourselves makes single and pair layouts explicit.
 */
import * as fs from 'fs';
import * as path from 'path';
import {
  AddedToken,
  Tokenizer,
  WordPiece,
  bertNormalizer,
  bertPreTokenizer,
  bertProcessing,
  wordPieceDecoder,
} from 'tokenizers';
import { UserInputError } from '../errors';
import type { EncodedExample, Example } from './types';

export interface BertTokenizer {
  vocabSize: number;
  padId: number;
  clsId: number;
  sepId: number;
  unkId: number;
  maskId: number;
  /** Encodes single texts or pairs: [CLS] a [SEP] (b [SEP]); token type 0 for a, 1 for b; truncated to maxLength (longest-first for pairs). */
  encode(items: { text: string; textPair?: string }[], maxLength: number): Promise<{ inputIds: number[]; tokenTypeIds: number[] }[]>;
  /** WordPiece tokens without specials, for tests and pretraining. */
  tokenize(text: string): Promise<string[]>;
}

const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;

function readJsonIfExists(file: string): Record<string, unknown> | null {
  if (!fs.existsSync(file)) return null;
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : null;
  } catch (e) {
    throw new UserInputError(`cannot parse JSON (${(e as Error).message})`, { file });
  }
}

/**
 * Whether a vocab without a `do_lower_case` setting is uncased: an uncased vocab has no uppercase letters
 * outside bracketed special tokens ([CLS], [unused0], ...), a cased one (bert-base-cased) has many.
 */
export function vocabLooksUncased(tokens: string[]): boolean {
  return !tokens.some((t) => !/^\[[^\]]*\]$/.test(t) && /\p{Lu}/u.test(t));
}

async function fromVocab(modelDir: string, vocabFile: string): Promise<Tokenizer> {
  const tokens = fs.readFileSync(vocabFile, 'utf8').split(/\r?\n/);
  // vocab.txt is one token per line, ids by line number; a final newline adds no token.
  if (tokens.length > 0 && tokens[tokens.length - 1] === '') tokens.pop();
  const ids = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (!ids.has(t)) ids.set(t, i);
  });
  for (const s of SPECIALS) {
    if (!ids.has(s)) {
      throw new UserInputError(`vocabulary has no ${s} token`, { file: vocabFile });
    }
  }
  const config = readJsonIfExists(path.join(modelDir, 'tokenizer_config.json')) ?? {};
  const lowercase = typeof config.do_lower_case === 'boolean' ? config.do_lower_case : vocabLooksUncased(tokens);
  // Hugging Face: strip_accents unset means "same as lowercase".
  const stripAccents = typeof config.strip_accents === 'boolean' ? config.strip_accents : lowercase;
  const handleChineseChars = typeof config.tokenize_chinese_chars === 'boolean' ? config.tokenize_chinese_chars : true;

  const model = await WordPiece.fromFile(vocabFile, { unkToken: '[UNK]' });
  const tok = new Tokenizer(model);
  tok.setNormalizer(bertNormalizer({ cleanText: true, handleChineseChars, stripAccents, lowercase }));
  tok.setPreTokenizer(bertPreTokenizer());
  tok.setPostProcessor(bertProcessing(['[SEP]', ids.get('[SEP]')!], ['[CLS]', ids.get('[CLS]')!]));
  tok.setDecoder(wordPieceDecoder('##', true));
  // As BertTokenizerFast does: "[MASK]" etc. written in text are the special tokens, not "[", "mask", "]".
  tok.addAddedTokens(SPECIALS.map((s) => new AddedToken(s, true)));
  return tok;
}

/**
 * The native tokenizer of a model folder: tokenizer.json when present, else built from vocab.txt.
 * Exported so a tokenizer built from vocab.txt can be saved as tokenizer.json (`.save(path)`).
 */
export async function loadRawTokenizer(modelDir: string): Promise<Tokenizer> {
  const jsonFile = path.join(modelDir, 'tokenizer.json');
  const vocabFile = path.join(modelDir, 'vocab.txt');
  let tok: Tokenizer;
  if (fs.existsSync(jsonFile)) {
    try {
      tok = Tokenizer.fromFile(jsonFile);
    } catch (e) {
      throw new UserInputError(`cannot load tokenizer (${(e as Error).message})`, {
        file: jsonFile,
      });
    }
  } else if (fs.existsSync(vocabFile)) {
    tok = await fromVocab(modelDir, vocabFile);
  } else {
    throw new UserInputError('no tokenizer: expected tokenizer.json or vocab.txt in this folder', {
      file: modelDir,
    });
  }
  // A tokenizer.json may carry truncation/padding settings; we pad per batch and truncate per call.
  tok.disableTruncation();
  tok.disablePadding();
  return tok;
}

/**
 * Token counts kept of a pair's two segments under `maxLength` (which includes [CLS] and two [SEP]),
 * matching Hugging Face's fast tokenizers (checked against the native truncation in the tests): each
 * segment is first cut to maxLength on its own; then, longest first, the shorter side keeps what it
 * can, and when both are too long they share the budget (an odd token going to the longer one, to the
 * second on a tie).
 */
export function truncatePairLengths(lenA: number, lenB: number, maxLength: number): [number, number] {
  const budget = maxLength - 3;
  const a = Math.min(lenA, maxLength);
  const b = Math.min(lenB, maxLength);
  if (a + b <= budget) return [a, b];
  const swap = a > b;
  let n1 = swap ? b : a;
  let n2 = n1 > budget ? n1 : Math.max(n1, budget - n1);
  if (n1 + n2 > budget) {
    n1 = Math.floor(budget / 2);
    n2 = n1 + (budget % 2);
  }
  return swap ? [n2, n1] : [n1, n2];
}

export async function loadTokenizer(modelDir: string): Promise<BertTokenizer> {
  const tok = await loadRawTokenizer(modelDir);
  const idOf = (token: string): number => {
    const id = tok.tokenToId(token);
    if (id === null || id === undefined) {
      throw new UserInputError(`tokenizer has no ${token} token`, { file: modelDir });
    }
    return id;
  };
  const clsId = idOf('[CLS]');
  const sepId = idOf('[SEP]');

  return {
    vocabSize: tok.getVocabSize(true),
    padId: idOf('[PAD]'),
    clsId,
    sepId,
    unkId: idOf('[UNK]'),
    maskId: idOf('[MASK]'),

    async encode(items, maxLength) {
      if (items.length === 0) return [];
      const hasPair = items.some((it) => it.textPair !== undefined);
      if (maxLength < (hasPair ? 3 : 2)) throw new Error(`maxLength ${maxLength} leaves no room for any token`);
      // One native batch call for all segments (parallel in Rust), without specials; we add them below.
      const texts: string[] = [];
      for (const it of items) {
        texts.push(it.text);
        if (it.textPair !== undefined) texts.push(it.textPair);
      }
      const encs = await tok.encodeBatch(texts, { addSpecialTokens: false });
      const out: { inputIds: number[]; tokenTypeIds: number[] }[] = [];
      let k = 0;
      for (const it of items) {
        const a = encs[k++].getIds();
        if (it.textPair === undefined) {
          const ids = [clsId, ...a.slice(0, maxLength - 2), sepId];
          out.push({ inputIds: ids, tokenTypeIds: new Array<number>(ids.length).fill(0) });
        } else {
          const b = encs[k++].getIds();
          const [na, nb] = truncatePairLengths(a.length, b.length, maxLength);
          const first = [clsId, ...a.slice(0, na), sepId];
          const second = [...b.slice(0, nb), sepId];
          out.push({
            inputIds: [...first, ...second],
            tokenTypeIds: [...new Array<number>(first.length).fill(0), ...new Array<number>(second.length).fill(1)],
          });
        }
      }
      return out;
    },

    async tokenize(text) {
      const enc = await tok.encode(text, null, { addSpecialTokens: false });
      return enc.getTokens();
    },
  };
}

/** Encodes a split; `index` is the position in `examples`, so predictions can be matched back. */
export async function encodeExamples(tok: BertTokenizer, examples: Example[], maxLength: number): Promise<EncodedExample[]> {
  const enc = await tok.encode(
    examples.map((e) => (e.textPair !== undefined ? { text: e.text, textPair: e.textPair } : { text: e.text })),
    maxLength,
  );
  return enc.map((e, i) => ({ inputIds: e.inputIds, tokenTypeIds: e.tokenTypeIds, label: examples[i].label, index: i }));
}
