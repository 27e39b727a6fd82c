/**
 * A three-class text classification run made by the real CLI (the built bin, child processes) on a tiny random
 * BERT: the data the per-class view's tests read. The training leaves eval-dev.json without a class report (the
 * end-of-training evaluation keeps only the metrics); `evaluate` runs `adapter-lab eval`, which writes one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cliAsync, TINY } from './cliRun';
import { tinyModelDir } from './fixtures';

export const THREE_CLASSES = ['neutral', 'negative', 'positive'];
const WORDS: Record<string, string[]> = {
  positive: ['good', 'great', 'nice', 'love'],
  negative: ['bad', 'awful', 'hate', 'poor'],
  neutral: ['table', 'chair', 'door', 'wall'],
};
const FRAMES = ['the movie was', 'it is a', 'a', 'very'];

/** Train, dev and test files of a three-class task whose class one word carries (seeded; no two runs differ). */
export function writeThreeClassTask(dir: string, sizes = { train: 240, dev: 60, test: 45 }): void {
  let s = 4242;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648), s / 2147483648);
  const classes = Object.keys(WORDS);
  const make = (n: number) =>
    Array.from({ length: n }, () => {
      const label = classes[Math.floor(rand() * classes.length)];
      const word = WORDS[label][Math.floor(rand() * WORDS[label].length)];
      return JSON.stringify({ text: `${FRAMES[Math.floor(rand() * FRAMES.length)]} ${word} film`, label });
    }).join('\n') + '\n';
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  for (const [split, n] of Object.entries(sizes)) fs.writeFileSync(path.join(dir, 'data', `${split}.jsonl`), make(n));
}

/** Trains a Houlsby adapter on the three-class task for four epochs (right on many examples, not all); returns the run folder. */
export async function trainThreeClassRun(dir: string): Promise<string> {
  writeThreeClassTask(dir);
  const config = {
    name: 'three-class',
    task: { name: 'three-class', type: 'classification', train: 'data/train.jsonl', dev: 'data/dev.jsonl', test: 'data/test.jsonl', textField: 'text', labelField: 'label', labels: THREE_CLASSES },
    model: tinyModelDir(TINY),
    method: { type: 'houlsby', bottleneck: 4 },
    training: { epochs: 4, batchSize: 16, learningRate: 1e-2, maxSeqLength: 16, seed: 1 },
  };
  fs.writeFileSync(path.join(dir, 'three-class.adapter.json'), JSON.stringify(config, null, 2));
  const train = await cliAsync(['train', 'three-class.adapter.json', '--json'], dir);
  const done = train.lines.find((l) => l.type === 'done');
  if (train.code !== 0 || !done?.runDir) throw new Error(`adapter-lab train failed (${train.code}):\n${train.stderr}`);
  return done.runDir as string;
}

/** `adapter-lab eval <run> --split <split>`; returns its result line. */
export async function evaluate(runDir: string, split: 'dev' | 'test'): Promise<Record<string, any>> {
  const r = await cliAsync(['eval', runDir, '--split', split, '--json'], path.dirname(runDir));
  const result = r.lines.find((l) => l.type === 'result');
  if (r.code !== 0 || !result) throw new Error(`adapter-lab eval --split ${split} failed (${r.code}):\n${r.stderr}`);
  return result;
}

/** `adapter-lab predict <run> --input <file>`: one {prediction} line per input row. */
export async function predictions(runDir: string, input: string): Promise<string[]> {
  const r = await cliAsync(['predict', runDir, '--input', input], path.dirname(runDir));
  if (r.code !== 0) throw new Error(`adapter-lab predict failed (${r.code}):\n${r.stderr}`);
  return r.lines.map((l) => l.prediction as string);
}
