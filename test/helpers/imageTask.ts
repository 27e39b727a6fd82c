import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeIdxUint8 } from '../../src/engine/data/images/idx';
import { ResNet, ResNetConfig } from '../../src/engine/families/resnet/network';
import { saveNetwork } from '../../src/engine/families/resnet/family';
import { Rng } from '../../src/engine/util/random';
import { cliAsync } from './cliRun';

/** A ResNet small enough for CLI tests: 8 x 8 grey inputs, widths 4, 8, 8, one block per stage (3 blocks). */
export const TINY_RESNET: ResNetConfig = { modelType: 'resnet', inputChannels: 1, imageSize: 8, widths: [4, 8, 8], blocksPerStage: 1 };

/** Writes a freshly initialised (seeded) network folder, as `pretrain` writes one. */
export function writeTinyNetwork(dir: string, seed = 3): string {
  const network = ResNet.init(TINY_RESNET, new Rng(seed));
  saveNetwork(dir, network);
  network.dispose();
  return dir;
}

/**
 * Three classes a network can only tell apart by shape: a bright horizontal bar ("rows"), a vertical one
 * ("columns") or a bright square ("square"), at a random place, on noise; as IDX files (the MNIST format).
 */
export function writeShapesIdx(dir: string, n: number, seed: number, stem: string): { images: string; labels: string } {
  const rng = new Rng(seed);
  const pixels: number[] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const label = i % 3;
    const at = rng.int(6);
    const at2 = rng.int(6);
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 8; x++) {
        const on = label === 0 ? y === at : label === 1 ? x === at : y >= at && y < at + 3 && x >= at2 && x < at2 + 3;
        pixels.push(on ? 200 + rng.int(56) : rng.int(80));
      }
    }
    labels.push(label);
  }
  fs.writeFileSync(path.join(dir, `${stem}-images.idx`), encodeIdxUint8([n, 8, 8], pixels));
  fs.writeFileSync(path.join(dir, `${stem}-labels.idx`), encodeIdxUint8([n], labels));
  return { images: `${stem}-images.idx`, labels: `${stem}-labels.idx` };
}

/** An image-classification config over shapes IDX files and a tiny network in `dir`; returns its file name. */
export function writeImageConfig(dir: string, overrides: { method?: Record<string, unknown>; training?: Record<string, unknown>; task?: Record<string, unknown> } = {}, file = 'shapes.adapter.json'): string {
  if (!fs.existsSync(path.join(dir, 'network'))) writeTinyNetwork(path.join(dir, 'network'));
  if (!fs.existsSync(path.join(dir, 'train-images.idx'))) {
    writeShapesIdx(dir, 200, 1, 'train');
    writeShapesIdx(dir, 60, 2, 'dev');
    writeShapesIdx(dir, 60, 3, 'test');
  }
  const cfg = {
    name: 'shapes-residual',
    task: {
      name: 'shapes',
      type: 'image-classification',
      train: { images: 'train-images.idx', labels: 'train-labels.idx' },
      dev: { images: 'dev-images.idx', labels: 'dev-labels.idx' },
      test: { images: 'test-images.idx', labels: 'test-labels.idx' },
      labels: ['rows', 'columns', 'square'],
      ...overrides.task,
    },
    model: 'network',
    method: { type: 'residual-series', ...overrides.method },
    training: { epochs: 3, batchSize: 20, seed: 5, evalBatchSize: 64, ...overrides.training },
    runsDir: 'runs',
  };
  fs.writeFileSync(path.join(dir, file), JSON.stringify(cfg, null, 2));
  return file;
}

/** Trains the shapes config (writeImageConfig's, with `overrides`) in `dir` with the built CLI; returns its run folder. */
export async function trainImageRun(dir: string, overrides: Parameters<typeof writeImageConfig>[1] = {}): Promise<string> {
  const trained = await cliAsync(['train', writeImageConfig(dir, overrides), '--json'], dir);
  if (trained.code !== 0) throw new Error(trained.stderr);
  return trained.lines.find((l) => l.type === 'start' && l.command === 'train').runDir;
}
