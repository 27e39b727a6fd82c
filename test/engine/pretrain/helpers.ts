import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Rng } from '../../../src/engine/util/random';

/**
 * A tiny synthetic corpus with learnable regularities (articles before nouns, fixed verb frames, a full stop at
 * the end), so that a tiny model's masked-language-model loss visibly falls within a few dozen steps.
 */
export function tinyCorpusLines(count: number, seed: number): string[] {
  const rng = new Rng(seed);
  const pick = <T>(xs: T[]) => xs[rng.int(xs.length)];
  const adjectives = ['old', 'young', 'brave', 'quiet', 'white', 'great', 'small', 'honest'];
  const nouns = ['whale', 'captain', 'sailor', 'ship', 'congress', 'president', 'nation', 'harbor', 'letter', 'meeting'];
  const verbs = ['sees', 'follows', 'greets', 'builds', 'answers', 'remembers', 'reports', 'crosses'];
  const places = ['the sea', 'the island', 'the capital', 'the office', 'the port'];
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const sentences: string[] = [];
    const n = 1 + rng.int(3);
    for (let s = 0; s < n; s++) {
      const form = rng.int(3);
      if (form === 0) sentences.push(`The ${pick(adjectives)} ${pick(nouns)} ${pick(verbs)} the ${pick(nouns)}.`);
      else if (form === 1) sentences.push(`A ${pick(nouns)} ${pick(verbs)} a ${pick(adjectives)} ${pick(nouns)} near ${pick(places)}.`);
      else sentences.push(`In ${pick(places)}, the ${pick(nouns)} ${pick(verbs)} every ${pick(nouns)}!`);
    }
    lines.push(sentences.join(' '));
  }
  return lines;
}

export function tempDir(prefix = 'pretrain-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Writes train.txt (400 lines) and heldout.txt (60 lines) into dir. */
export function writeTinyCorpus(dir: string): { train: string; heldout: string } {
  const train = path.join(dir, 'train.txt');
  const heldout = path.join(dir, 'heldout.txt');
  fs.writeFileSync(train, tinyCorpusLines(400, 1).join('\n') + '\n');
  fs.writeFileSync(heldout, tinyCorpusLines(60, 2).join('\n') + '\n');
  return { train, heldout };
}

/** A raw pretrain config for the tiny corpus (relative paths, resolved against dir by the loader). */
export function tinyPretrainConfig(overrides: Record<string, unknown> = {}, training: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'tiny',
    train: ['train.txt'],
    heldout: 'heldout.txt',
    output: 'model',
    vocabSize: 120,
    model: { layers: 2, hidden: 32, heads: 2, intermediate: 64, maxPositions: 32 },
    training: { steps: 100, batchSize: 16, maxSeqLength: 24, learningRate: 1e-2, warmupSteps: 10, seed: 7, evalEvery: 25, checkpointEvery: 30, heldoutSequences: 32, ...training },
    float16: false,
    ...overrides,
  };
}
