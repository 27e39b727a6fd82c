import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserInputError } from '../../../src/engine/errors';
import {
  encodeExamples,
  loadRawTokenizer,
  loadTokenizer,
  truncatePairLengths,
  vocabLooksUncased,
} from '../../../src/engine/data/tokenizer';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'adapter-lab-tok-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const BASE = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '[unused0]', 'hello', 'world', 'play', '##ing', ',', '!', 'the', 'cafe', 'a', 'b', 'c', 'd', 'e', 'f'];
const id = (t: string, vocab = BASE) => vocab.indexOf(t);

function modelDir(name: string, vocab: string[], files: Record<string, string> = {}): string {
  const d = path.join(root, name);
  fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(d, 'vocab.txt'), vocab.join('\n') + '\n');
  for (const [f, c] of Object.entries(files)) fs.writeFileSync(path.join(d, f), c);
  return d;
}

describe('loadTokenizer from vocab.txt', () => {
  it('uncased: lowercases, strips accents, splits word pieces, maps unknown words to [UNK]', async () => {
    const tok = await loadTokenizer(modelDir('uncased', BASE));
    expect(tok.vocabSize).toBe(BASE.length);
    expect([tok.padId, tok.unkId, tok.clsId, tok.sepId, tok.maskId]).toEqual([0, 1, 2, 3, 4]);
    expect(await tok.tokenize('Hello PLAYING, Café!')).toEqual(['hello', 'play', '##ing', ',', 'cafe', '!']);
    expect(await tok.tokenize('hello zebra')).toEqual(['hello', '[UNK]']);
    // Special tokens written in text are the tokens themselves.
    expect(await tok.tokenize('the [MASK] world')).toEqual(['the', '[MASK]', 'world']);
  });

  it('cased vocab keeps case by default', async () => {
    const vocab = [...BASE, 'Hello'];
    const tok = await loadTokenizer(modelDir('cased', vocab));
    expect(await tok.tokenize('Hello hello')).toEqual(['Hello', 'hello']);
    expect(await tok.tokenize('HELLO')).toEqual(['[UNK]']);
    const [enc] = await tok.encode([{ text: 'Hello' }], 16);
    expect(enc.inputIds).toEqual([2, vocab.indexOf('Hello'), 3]);
  });

  it('tokenizer_config.json do_lower_case overrides the guess', async () => {
    const vocab = [...BASE, 'Hello'];
    const tok = await loadTokenizer(modelDir('forced-lower', vocab, { 'tokenizer_config.json': '{"do_lower_case": true}' }));
    expect(await tok.tokenize('Hello')).toEqual(['hello']);
    const tok2 = await loadTokenizer(modelDir('forced-cased', BASE, { 'tokenizer_config.json': '{"do_lower_case": false}' }));
    expect(await tok2.tokenize('Hello')).toEqual(['[UNK]']);
  });

  it('guesses uncased from the vocab, ignoring bracketed special tokens', () => {
    expect(vocabLooksUncased(['[CLS]', '[unused1]', 'hello', '##ing'])).toBe(true);
    expect(vocabLooksUncased(['[CLS]', 'Hello'])).toBe(false);
    expect(vocabLooksUncased(['[CLS]', 'École'])).toBe(false);
  });

  it('encodes singles and pairs with segment ids', async () => {
    const tok = await loadTokenizer(modelDir('uncased', BASE));
    const [single, pair] = await tok.encode([{ text: 'hello world' }, { text: 'playing', textPair: 'the world!' }], 32);
    expect(single).toEqual({ inputIds: [2, id('hello'), id('world'), 3], tokenTypeIds: [0, 0, 0, 0] });
    expect(pair.inputIds).toEqual([2, id('play'), id('##ing'), 3, id('the'), id('world'), id('!'), 3]);
    expect(pair.tokenTypeIds).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
  });

  it('truncates singles and pairs (longest first) and a later call with another length is unaffected', async () => {
    const tok = await loadTokenizer(modelDir('uncased', BASE));
    const long = 'a b c d e f a b c d';
    const [s5] = await tok.encode([{ text: long }], 5);
    expect(s5.inputIds).toEqual([2, id('a'), id('b'), id('c'), 3]);
    // Both long: they share the budget 8 - 3 = 5, the longer (first) keeping the odd one (3 + 2).
    const [p8] = await tok.encode([{ text: long, textPair: 'f e d c b a' }], 8);
    expect(p8.inputIds).toEqual([2, id('a'), id('b'), id('c'), 3, id('f'), id('e'), 3]);
    expect(p8.tokenTypeIds).toEqual([0, 0, 0, 0, 0, 1, 1, 1]);
    // Short second segment stays whole; the long first one takes the rest.
    const [p9] = await tok.encode([{ text: long, textPair: 'hello' }], 9);
    expect(p9.inputIds).toEqual([2, id('a'), id('b'), id('c'), id('d'), id('e'), 3, id('hello'), 3]);
    // A later, longer limit gives the full encoding back.
    const [full] = await tok.encode([{ text: long }], 512);
    expect(full.inputIds).toHaveLength(12);
    // Concurrent calls with different limits do not interfere.
    const [x, y] = await Promise.all([tok.encode([{ text: long }], 4), tok.encode([{ text: long }], 7)]);
    expect(x[0].inputIds).toHaveLength(4);
    expect(y[0].inputIds).toHaveLength(7);
  });

  it('pair truncation matches the native tokenizer\'s own longest-first truncation', async () => {
    const dir = modelDir('uncased', BASE);
    const tok = await loadTokenizer(dir);
    const raw = await loadRawTokenizer(dir);
    const texts = ['a', 'a b', 'a b c d', 'a b c d e f', 'a b c d e f a b c d e', 'hello playing world'];
    for (const max of [3, 4, 5, 6, 7, 8, 9, 12]) {
      raw.setTruncation(max);
      for (const ta of texts) {
        for (const tb of texts) {
          const native = await raw.encode(ta, tb);
          const [ours] = await tok.encode([{ text: ta, textPair: tb }], max);
          expect([ta, tb, max, ours.inputIds, ours.tokenTypeIds]).toEqual([ta, tb, max, native.getIds(), native.getTypeIds()]);
        }
        const native = await raw.encode(ta);
        const [ours] = await tok.encode([{ text: ta }], max);
        expect(ours.inputIds).toEqual(native.getIds());
      }
    }
  });

  it('longest-first lengths match Hugging Face', () => {
    expect(truncatePairLengths(3, 4, 13)).toEqual([3, 4]);
    expect(truncatePairLengths(10, 2, 8)).toEqual([3, 2]);
    expect(truncatePairLengths(10, 6, 8)).toEqual([3, 2]);
    expect(truncatePairLengths(6, 10, 8)).toEqual([2, 3]);
    expect(truncatePairLengths(2, 10, 8)).toEqual([2, 3]);
    expect(truncatePairLengths(10, 10, 8)).toEqual([2, 3]);
    expect(truncatePairLengths(10, 7, 9)).toEqual([3, 3]);
    // Each segment is first cut to maxLength: 600 and 520 both become 512, a tie.
    expect(truncatePairLengths(600, 520, 512)).toEqual([254, 255]);
    expect(truncatePairLengths(5, 4, 4)).toEqual([0, 1]);
  });

  it('encodeExamples keeps labels and positions', async () => {
    const tok = await loadTokenizer(modelDir('uncased', BASE));
    const enc = await encodeExamples(
      tok,
      [
        { text: 'hello', label: 1, source: { file: 'f', line: 1 } },
        { text: 'the', textPair: 'world', label: 0, source: { file: 'f', line: 2 } },
      ],
      16,
    );
    expect(enc).toEqual([
      { inputIds: [2, id('hello'), 3], tokenTypeIds: [0, 0, 0], label: 1, index: 0 },
      { inputIds: [2, id('the'), 3, id('world'), 3], tokenTypeIds: [0, 0, 0, 1, 1], label: 0, index: 1 },
    ]);
    expect(await encodeExamples(tok, [], 16)).toEqual([]);
  });
});

describe('loadTokenizer from tokenizer.json', () => {
  it('a tokenizer.json saved from the vocab.txt tokenizer encodes identically', async () => {
    for (const [name, vocab] of [
      ['uncased', BASE],
      ['cased', [...BASE, 'Hello']],
    ] as const) {
      const src = modelDir(name, [...vocab]);
      const dst = path.join(root, `${name}-json`);
      fs.mkdirSync(dst, { recursive: true });
      (await loadRawTokenizer(src)).save(path.join(dst, 'tokenizer.json'));
      expect(fs.existsSync(path.join(dst, 'vocab.txt'))).toBe(false);
      const a = await loadTokenizer(src);
      const b = await loadTokenizer(dst);
      const items = [
        { text: 'Hello PLAYING, Café! zebra' },
        { text: 'a b c d e f a b c d', textPair: 'Hello world [MASK]' },
        { text: 'the', textPair: 'playing' },
      ];
      for (const max of [6, 9, 64]) expect(await b.encode(items, max)).toEqual(await a.encode(items, max));
      expect(await b.tokenize('Hello PLAYING')).toEqual(await a.tokenize('Hello PLAYING'));
      expect([b.vocabSize, b.padId, b.clsId, b.sepId, b.unkId, b.maskId]).toEqual([a.vocabSize, a.padId, a.clsId, a.sepId, a.unkId, a.maskId]);
    }
  });

  it('ignores truncation and padding stored in tokenizer.json', async () => {
    const src = modelDir('uncased', BASE);
    const dst = path.join(root, 'with-trunc');
    fs.mkdirSync(dst, { recursive: true });
    const raw = await loadRawTokenizer(src);
    raw.setTruncation(3);
    raw.setPadding({ maxLength: 10, padId: 0 });
    raw.save(path.join(dst, 'tokenizer.json'));
    const tok = await loadTokenizer(dst);
    const [e] = await tok.encode([{ text: 'hello world the' }], 64);
    expect(e.inputIds).toEqual([2, id('hello'), id('world'), id('the'), 3]);
  });
});

describe('loadTokenizer errors', () => {
  it('a folder without tokenizer files is a UserInputError', async () => {
    const d = path.join(root, 'empty');
    fs.mkdirSync(d);
    await expect(loadTokenizer(d)).rejects.toThrow(UserInputError);
    await expect(loadTokenizer(d)).rejects.toThrow(/tokenizer\.json or vocab\.txt/);
  });

  it('a vocab without [CLS] is a UserInputError naming vocab.txt', async () => {
    const d = modelDir('nocls', BASE.filter((t) => t !== '[CLS]'));
    await expect(loadTokenizer(d)).rejects.toThrow(/vocab\.txt: vocabulary has no \[CLS\] token/);
  });
});
