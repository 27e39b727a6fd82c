import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BertConfig } from '../../src/engine/model/config';
import { initEncoderArrays, saveEncoderHf } from '../../src/engine/model/checkpoint';
import { Rng } from '../../src/engine/util/random';

/**
 * A small randomly initialised BERT checkpoint in the Hugging Face layout (config.json, model.safetensors,
 * vocab.txt), written to a temp folder: what the tests load until they use the built-in model.
 */
export const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];

export function tinyVocab(extraWords: string[] = []): string[] {
  const letters = 'abcdefghijklmnopqrstuvwxyz0123456789'.split('');
  const punct = '.,!?;:\'"()-'.split('');
  const words = ['the', 'a', 'good', 'bad', 'great', 'awful', 'movie', 'film', 'is', 'was', 'not', 'very', 'play', 'free', 'money', 'win', 'now', 'hello', 'world', 'meeting', 'tomorrow', 'offer', 'click', 'here', 'report', 'attached'];
  const set = new Set([...SPECIALS, ...punct, ...letters, ...letters.map((l) => '##' + l), ...words, ...extraWords, '##ing', '##s', '##ed']);
  return [...set];
}

export interface TinyModelOptions {
  layers?: number;
  hidden?: number;
  heads?: number;
  intermediate?: number;
  maxPositions?: number;
  hiddenAct?: string;
  seed?: number;
  vocab?: string[];
}

export function tinyBertConfig(vocabSize: number, o: TinyModelOptions = {}): BertConfig {
  return {
    vocabSize,
    hiddenSize: o.hidden ?? 32,
    numLayers: o.layers ?? 2,
    numHeads: o.heads ?? 2,
    intermediateSize: o.intermediate ?? 64,
    hiddenAct: o.hiddenAct ?? 'gelu',
    maxPositions: o.maxPositions ?? 64,
    typeVocabSize: 2,
    layerNormEps: 1e-12,
    hiddenDropout: 0.1,
    attentionDropout: 0.1,
  };
}

/** Writes the checkpoint and returns its folder. */
export function writeTinyBert(dir: string = fs.mkdtempSync(path.join(os.tmpdir(), 'tiny-bert-')), o: TinyModelOptions = {}): string {
  const vocab = o.vocab ?? tinyVocab();
  const cfg = tinyBertConfig(vocab.length, o);
  // std 0.2 rather than BERT's 0.02, so a random model's layers do visibly different things in tests.
  saveEncoderHf(dir, cfg, initEncoderArrays(cfg, new Rng(o.seed ?? 1), 0.2));
  fs.writeFileSync(path.join(dir, 'vocab.txt'), vocab.join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ do_lower_case: true }));
  return dir;
}
