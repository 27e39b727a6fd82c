/**
 * A WordPiece vocabulary learnt from the training text with Hugging Face's tokenizers (npm `tokenizers`), in
 * the layout BERT uses: lowercasing BertNormalizer, BertPreTokenizer, `##` continuation pieces, and the
 * special tokens [PAD]=0, [UNK], [CLS], [SEP], [MASK] first.
 *
 * The Node binding trains with the model's default WordPiece trainer (no options can be passed), which learns
 * the vocabulary BPE-style: the alphabet first, then merged pieces in the order they were merged, up to 30,000.
 * The first N pieces in that order are exactly the vocabulary a trainer stopped at N would give; the vocabulary
 * here is the special tokens followed by the first `vocabSize - 5` learnt pieces.
 *
 * The trainer is not repeatable in its order: it numbers the alphabet in hash-map order (a new random hash seed
 * per map) and breaks ties between equally frequent pairs by those numbers, so two trainings on the same text give
 * the same pieces with different ids. The kept pieces are therefore put in code-unit order, so that a rebuild of a
 * model from its recipe gets the same ids (and a random encoder of its shape the same embedding rows). A tie that
 * straddles the cut at `vocabSize` can still swap a piece or two in or out.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AddedToken, Tokenizer, WordPiece, bertNormalizer, bertPreTokenizer, bertProcessing, wordPieceDecoder } from 'tokenizers';
import { UserInputError } from '../errors';

export const SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;

const normalizerOptions = { cleanText: true, handleChineseChars: true, stripAccents: true, lowercase: true };

/** Learns the vocabulary from `files`; returns the tokens in id order (specials first). */
export function trainWordPieceVocab(files: string[], vocabSize: number): string[] {
  const tok = new Tokenizer(WordPiece.empty() as unknown as ReturnType<typeof WordPiece.empty>);
  tok.setNormalizer(bertNormalizer(normalizerOptions));
  tok.setPreTokenizer(bertPreTokenizer());
  // The trainer draws a progress bar on stderr when it is a terminal; it writes nothing otherwise.
  tok.train(files);
  const learnt = Object.entries(tok.getVocab(true))
    .sort((a, b) => a[1] - b[1])
    .map(([t]) => t)
    .filter((t) => !(SPECIAL_TOKENS as readonly string[]).includes(t));
  if (learnt.length === 0) throw new UserInputError(`no vocabulary could be learnt from ${files.join(', ')} (empty text?)`);
  const kept = learnt.slice(0, Math.max(0, vocabSize - SPECIAL_TOKENS.length));
  return [...SPECIAL_TOKENS, ...kept.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))];
}

/** A BERT tokenizer (as BertTokenizerFast builds one) over the given vocabulary. */
export function buildBertTokenizer(vocab: string[]): Tokenizer {
  const ids: Record<string, number> = {};
  vocab.forEach((t, i) => (ids[t] = i));
  const tok = new Tokenizer(WordPiece.init(ids, { unkToken: '[UNK]', continuingSubwordPrefix: '##', maxInputCharsPerWord: 100 }));
  tok.setNormalizer(bertNormalizer(normalizerOptions));
  tok.setPreTokenizer(bertPreTokenizer());
  tok.setPostProcessor(bertProcessing(['[SEP]', ids['[SEP]']], ['[CLS]', ids['[CLS]']]));
  tok.setDecoder(wordPieceDecoder('##', true));
  tok.addAddedTokens(SPECIAL_TOKENS.map((s) => new AddedToken(s, true)));
  return tok;
}

export const TOKENIZER_FILES = ['tokenizer.json', 'vocab.txt', 'tokenizer_config.json', 'special_tokens_map.json'];

/**
 * Writes tokenizer.json, vocab.txt, tokenizer_config.json and special_tokens_map.json, the files
 * BertTokenizerFast (and loadTokenizer) read.
 */
export function saveTokenizerFiles(dir: string, vocab: string[], maxLength: number): void {
  fs.mkdirSync(dir, { recursive: true });
  buildBertTokenizer(vocab).save(path.join(dir, 'tokenizer.json'), true);
  fs.writeFileSync(path.join(dir, 'vocab.txt'), vocab.join('\n') + '\n');
  fs.writeFileSync(
    path.join(dir, 'tokenizer_config.json'),
    JSON.stringify(
      {
        tokenizer_class: 'BertTokenizer',
        do_lower_case: true,
        strip_accents: null,
        tokenize_chinese_chars: true,
        model_max_length: maxLength,
        unk_token: '[UNK]',
        sep_token: '[SEP]',
        pad_token: '[PAD]',
        cls_token: '[CLS]',
        mask_token: '[MASK]',
      },
      null,
      2,
    ) + '\n',
  );
  fs.writeFileSync(
    path.join(dir, 'special_tokens_map.json'),
    JSON.stringify({ unk_token: '[UNK]', sep_token: '[SEP]', pad_token: '[PAD]', cls_token: '[CLS]', mask_token: '[MASK]' }, null, 2) + '\n',
  );
}

/** Reads vocab.txt back (tokens in id order). */
export function readVocab(dir: string): string[] {
  const lines = fs.readFileSync(path.join(dir, 'vocab.txt'), 'utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}
