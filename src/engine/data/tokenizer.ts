/**
 * Tokenisation through Hugging Face's Rust tokenizers (npm `tokenizers`), so that text is split exactly as
 * the model was pretrained: from `tokenizer.json` when the model folder has one (WordPiece, byte-level BPE,
 * Unigram: whatever it describes), else a WordPiece tokenizer built from `vocab.txt` the way
 * BertTokenizerFast builds it. The special tokens around a text come from tokenizer.json's post-processor.
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
  /** The first and last special token of a single text ([CLS] and [SEP]; <s> and </s>). */
  clsId: number;
  sepId: number;
  /** -1 when the vocabulary has no such token (a byte-level BPE has no unknown token). */
  unkId: number;
  maskId: number;
  /**
   * Encodes single texts or pairs with the model's special tokens (tokenizer.json's post-processor: BERT's
   * [CLS] a [SEP] (b [SEP]) with token type 0 for a, 1 for b; RoBERTa's <s> a </s></s> b </s>, all type 0);
   * truncated to maxLength (longest-first for pairs).
   */
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
 * Token counts kept of a pair's two segments under `maxLength` (which includes the pair's special tokens:
 * [CLS] and two [SEP] for BERT, four for RoBERTa),
 * matching Hugging Face's fast tokenizers (checked against the native truncation in the tests): each
 * segment is first cut to maxLength on its own; then, longest first, the shorter side keeps what it
 * can, and when both are too long they share the budget (an odd token going to the longer one, to the
 * second on a tie).
 */
export function truncatePairLengths(lenA: number, lenB: number, maxLength: number, specialTokens = 3): [number, number] {
  const budget = maxLength - specialTokens;
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

/** One item of a special-token template: a special token's ids, or the first (A) or second (B) text. */
type TemplatePiece = { special: number[]; typeId: number } | { sequence: 'A' | 'B'; typeId: number };

/** How a model wraps one text and a pair in special tokens, and the segment ids it gives each part. */
export interface SpecialTokenTemplate {
  single: TemplatePiece[];
  pair: TemplatePiece[];
}

const bertTemplate = (cls: number, sep: number): SpecialTokenTemplate => ({
  single: [{ special: [cls], typeId: 0 }, { sequence: 'A', typeId: 0 }, { special: [sep], typeId: 0 }],
  pair: [{ special: [cls], typeId: 0 }, { sequence: 'A', typeId: 0 }, { special: [sep], typeId: 0 }, { sequence: 'B', typeId: 1 }, { special: [sep], typeId: 1 }],
});

/** RoBERTa's `<s> A </s>` and `<s> A </s></s> B </s>`, every segment id 0 (RobertaProcessing). */
const robertaTemplate = (cls: number, sep: number): SpecialTokenTemplate => ({
  single: [{ special: [cls], typeId: 0 }, { sequence: 'A', typeId: 0 }, { special: [sep], typeId: 0 }],
  pair: [{ special: [cls], typeId: 0 }, { sequence: 'A', typeId: 0 }, { special: [sep, sep], typeId: 0 }, { sequence: 'B', typeId: 0 }, { special: [sep], typeId: 0 }],
});

type Json = Record<string, unknown>;

/**
 * The template of tokenizer.json's `post_processor` (BertProcessing, RobertaProcessing, TemplateProcessing, or
 * a Sequence holding one), so each model wraps text as it was pretrained; null when it names none.
 */
export function templateOf(postProcessor: unknown, file: string): SpecialTokenTemplate | null {
  if (!postProcessor || typeof postProcessor !== 'object') return null;
  const pp = postProcessor as Json;
  const idOf = (pair: unknown) => (pair as [string, number])[1];
  switch (pp.type) {
    case 'BertProcessing':
      return bertTemplate(idOf(pp.cls), idOf(pp.sep));
    case 'RobertaProcessing':
      return robertaTemplate(idOf(pp.cls), idOf(pp.sep));
    case 'TemplateProcessing': {
      const specials = (pp.special_tokens ?? {}) as Record<string, { ids: number[] }>;
      const pieces = (items: unknown[]): TemplatePiece[] =>
        items.map((item) => {
          const it = item as { SpecialToken?: { id: string; type_id: number }; Sequence?: { id: 'A' | 'B'; type_id: number } };
          if (it.Sequence) return { sequence: it.Sequence.id, typeId: it.Sequence.type_id };
          const special = specials[it.SpecialToken!.id];
          if (!special) throw new UserInputError(`post_processor: special token ${it.SpecialToken!.id} is not in special_tokens`, { file });
          return { special: special.ids, typeId: it.SpecialToken!.type_id };
        });
      return { single: pieces(pp.single as unknown[]), pair: pieces(pp.pair as unknown[]) };
    }
    case 'Sequence':
      for (const inner of (pp.processors ?? []) as unknown[]) {
        const t = templateOf(inner, file);
        if (t) return t;
      }
      return null;
    default:
      return null; // ByteLevel alone: offsets only
  }
}

function specialCount(pieces: TemplatePiece[]): number {
  return pieces.reduce((n, p) => n + ('special' in p ? p.special.length : 0), 0);
}

/** The content of a special token setting: "<pad>" or {"content": "<pad>", ...}. */
function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return undefined;
}

/** Spellings of the special tokens in BERT-style and in SentencePiece/byte-level BPE vocabularies. */
const SPECIAL_SPELLINGS = {
  pad: ['[PAD]', '<pad>'],
  unk: ['[UNK]', '<unk>'],
  cls: ['[CLS]', '<s>'],
  sep: ['[SEP]', '</s>'],
  mask: ['[MASK]', '<mask>'],
};

export async function loadTokenizer(modelDir: string): Promise<BertTokenizer> {
  const tok = await loadRawTokenizer(modelDir);
  const jsonFile = path.join(modelDir, 'tokenizer.json');
  const tokenizerJson = fs.existsSync(jsonFile) ? readJsonIfExists(jsonFile) : null;
  // Which token plays which role: the tokenizer's own settings (special_tokens_map.json, tokenizer_config.json,
  // tokenizer.json's padding) first, then the usual spellings.
  const settings: Json = { ...(readJsonIfExists(path.join(modelDir, 'tokenizer_config.json')) ?? {}), ...(readJsonIfExists(path.join(modelDir, 'special_tokens_map.json')) ?? {}) };
  const padding = tokenizerJson?.padding as Json | null | undefined;
  const idOf = (role: keyof typeof SPECIAL_SPELLINGS, required = true): number => {
    const named = tokenContent(settings[`${role}_token`]) ?? (role === 'pad' ? tokenContent(padding?.pad_token) : undefined);
    for (const token of named ? [named] : SPECIAL_SPELLINGS[role]) {
      const id = tok.tokenToId(token);
      if (id !== null && id !== undefined) return id;
    }
    if (!required) return -1;
    const names = named ? named : SPECIAL_SPELLINGS[role].join(' or ');
    throw new UserInputError(`tokenizer has no ${names} token`, { file: modelDir });
  };
  const template = (tokenizerJson && templateOf(tokenizerJson.post_processor, jsonFile)) ?? bertTemplate(idOf('cls'), idOf('sep'));
  const firstSpecial = template.single.find((p) => 'special' in p) as { special: number[] } | undefined;
  const lastSpecial = [...template.single].reverse().find((p) => 'special' in p) as { special: number[] } | undefined;
  const singleSpecials = specialCount(template.single);
  const pairSpecials = specialCount(template.pair);

  const apply = (pieces: TemplatePiece[], a: number[], b: number[] = []) => {
    const inputIds: number[] = [];
    const tokenTypeIds: number[] = [];
    for (const piece of pieces) {
      const ids = 'special' in piece ? piece.special : piece.sequence === 'A' ? a : b;
      inputIds.push(...ids);
      for (let i = 0; i < ids.length; i++) tokenTypeIds.push(piece.typeId);
    }
    return { inputIds, tokenTypeIds };
  };

  return {
    vocabSize: tok.getVocabSize(true),
    padId: idOf('pad'),
    clsId: firstSpecial?.special[0] ?? idOf('cls'),
    sepId: lastSpecial?.special[lastSpecial.special.length - 1] ?? idOf('sep'),
    unkId: idOf('unk', false),
    maskId: idOf('mask', false),

    async encode(items, maxLength) {
      if (items.length === 0) return [];
      const hasPair = items.some((it) => it.textPair !== undefined);
      if (maxLength < (hasPair ? pairSpecials : singleSpecials)) throw new Error(`maxLength ${maxLength} leaves no room for any token`);
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
          out.push(apply(template.single, a.slice(0, maxLength - singleSpecials)));
        } else {
          const b = encs[k++].getIds();
          const [na, nb] = truncatePairLengths(a.length, b.length, maxLength, pairSpecials);
          out.push(apply(template.pair, a.slice(0, na), b.slice(0, nb)));
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
