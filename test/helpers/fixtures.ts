import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/engine/tf/backend';
import { resolveConfig } from '../../src/engine/config/load';
import { ResolvedConfig } from '../../src/engine/config/types';
import { buildModel } from '../../src/engine/experiment';
import { AdapterModel } from '../../src/engine/model/adapterModel';
import { EncoderInput } from '../../src/engine/model/bert';
import { writeTinyBert, TinyModelOptions } from './tinyModel';

/** Shared set-up for engine tests: the wasm backend (this machine's default), tiny checkpoints, tiny tasks. */
export async function useBackend(): Promise<void> {
  await initBackend((process.env.ADAPTER_LAB_TEST_BACKEND as 'wasm' | 'cpu' | undefined) ?? 'wasm');
}

export function tempDir(prefix = 'adapter-lab-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

const modelCache = new Map<string, string>();

/** A tiny random checkpoint folder (cached per options within a test file). */
export function tinyModelDir(o: TinyModelOptions = {}): string {
  const key = JSON.stringify(o);
  if (!modelCache.has(key)) modelCache.set(key, writeTinyBert(undefined, o));
  return modelCache.get(key)!;
}

const POSITIVE = ['good', 'great', 'fine', 'nice', 'happy', 'love', 'best', 'win'];
const NEGATIVE = ['bad', 'awful', 'sad', 'hate', 'worst', 'poor', 'lose', 'ugly'];
const FRAMES = ['the movie was', 'it is a', 'very', 'a', 'not a'];

/** A small two-class sentiment task whose label is carried by one word: learnable in a few steps. */
export function writeToyTask(dir: string, sizes = { train: 192, dev: 48 }): { train: string; dev: string } {
  let s = 12345;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648), s / 2147483648);
  const make = (n: number) =>
    Array.from({ length: n }, () => {
      const pos = rand() < 0.5;
      const word = (pos ? POSITIVE : NEGATIVE)[Math.floor(rand() * 8)];
      return JSON.stringify({ text: `${FRAMES[Math.floor(rand() * FRAMES.length)]} ${word} film`, label: pos ? 'pos' : 'neg' });
    }).join('\n') + '\n';
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'data', 'train.jsonl'), make(sizes.train));
  fs.writeFileSync(path.join(dir, 'data', 'dev.jsonl'), make(sizes.dev));
  return { train: 'data/train.jsonl', dev: 'data/dev.jsonl' };
}

/** A resolved config over the toy task and a tiny model, with overrides. */
export function toyConfig(dir: string, modelDir: string, overrides: { method?: Record<string, unknown>; training?: Record<string, unknown>; task?: Record<string, unknown> } = {}): ResolvedConfig {
  writeToyTask(dir);
  const raw = {
    name: 'toy',
    task: { name: 'toy', type: 'classification', train: 'data/train.jsonl', dev: 'data/dev.jsonl', textField: 'text', labelField: 'label', ...overrides.task },
    model: modelDir,
    method: overrides.method ?? { type: 'houlsby', bottleneck: 4 },
    training: { epochs: 2, batchSize: 16, learningRate: 3e-3, maxSeqLength: 16, seed: 7, ...overrides.training },
    runsDir: path.join(dir, 'runs'),
  };
  const file = path.join(dir, 'toy.adapter.json');
  fs.writeFileSync(file, JSON.stringify(raw, null, 2));
  return resolveConfig(raw, file, dir);
}

export function toyModel(dir: string, modelDir: string, method: Record<string, unknown>, labels: string[] | null = ['neg', 'pos']): AdapterModel {
  const cfg = toyConfig(dir, modelDir, { method, task: labels ? {} : { type: 'regression' } });
  return buildModel(cfg, modelDir, labels);
}

/** A fixed input batch with padding in its second row. */
export function fixedInput(vocabSize: number, B = 3, T = 7): EncoderInput {
  const inputIds = new Int32Array(B * T);
  const attentionMask = new Float32Array(B * T);
  for (let b = 0; b < B; b++) {
    const len = b === 1 ? T - 3 : T;
    for (let t = 0; t < T; t++) {
      inputIds[b * T + t] = t < len ? (t === 0 ? 2 : 5 + ((b * 31 + t * 17) % (vocabSize - 5))) : 0;
      attentionMask[b * T + t] = t < len ? 1 : 0;
    }
  }
  const tokenTypeIds = new Int32Array(B * T).map((_, i) => (i % T > 3 ? 1 : 0));
  return { inputIds, tokenTypeIds, attentionMask, batchSize: B, seqLen: T };
}

export function values(t: tf.Tensor): Float32Array {
  return t.dataSync() as Float32Array;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
