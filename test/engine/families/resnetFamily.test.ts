import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeIdxUint8 } from '../../../src/engine/data/images/idx';
import { ResNet, ResNetConfig } from '../../../src/engine/families/resnet/network';
import { ImageBatch, loadNetwork, resnetFamily, saveNetwork } from '../../../src/engine/families/resnet/family';
import { familyFor } from '../../../src/engine/families';
import { AdamW } from '../../../src/engine/train/adamw';
import { Rng } from '../../../src/engine/util/random';
import { ImageExample } from '../../../src/engine/data/images/imageSet';
import { TrainableFamilyModel } from '../../../src/engine/model/family';
import { tempDir, useBackend } from '../../helpers/fixtures';
import { TRAINED_MARKER_FILES } from '../../../src/engine/runs/files';
import { unitAblation } from '../../../src/engine/analysis/unitAblation';
import { pretrainResNet, ResNetPretrainRecipe } from '../../../src/engine/families/resnet/pretrain';

const config: ResNetConfig = { modelType: 'resnet', inputChannels: 1, imageSize: 8, widths: [4, 8, 8], blocksPerStage: 1 };

/**
 * A task a network can only solve by looking at shapes: class "rows" is a bright horizontal bar, class "columns"
 * a vertical one, at a random position, on noise. Written as IDX files, as MNIST is.
 */
function writeBarsTask(dir: string, n: number, seed: number, stem: string): { images: string; labels: string } {
  const rng = new Rng(seed);
  const pixels: number[] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const label = i % 2;
    const at = rng.int(8);
    for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) pixels.push((label === 0 ? y === at : x === at) ? 200 + rng.int(56) : rng.int(80));
    labels.push(label);
  }
  fs.writeFileSync(path.join(dir, `${stem}-images.idx`), encodeIdxUint8([n, 8, 8], pixels));
  fs.writeFileSync(path.join(dir, `${stem}-labels.idx`), encodeIdxUint8([n], labels));
  return { images: `${stem}-images.idx`, labels: `${stem}-labels.idx` };
}

async function setUp() {
  const dir = tempDir();
  const networkDir = path.join(dir, 'network');
  const network = ResNet.init(config, new Rng(3));
  saveNetwork(networkDir, network);
  network.dispose();
  const task = { name: 'bars', type: 'image-classification', train: writeBarsTask(dir, 96, 1, 'train'), dev: writeBarsTask(dir, 40, 2, 'dev'), labels: ['rows', 'columns'], augment: { flip: true } };
  const configOf = (method: string) => ({ model: 'network', configFile: path.join(dir, 'bars.adapter.json'), task, method: { type: method }, training: { seed: 4, batchSize: 16, evalBatchSize: 32 } });
  const data = await resnetFamily.readData(configOf('full'));
  return { dir, configOf, data };
}

function train(model: TrainableFamilyModel<ImageExample, ImageBatch>, examples: ImageExample[], steps: number, lr: number, seed: number): number[] {
  const params = model.trainableParams();
  const optimizer = new AdamW(params, { weightDecay: 0 });
  const losses: number[] = [];
  for (let epoch = 0; losses.length < steps; epoch++) {
    for (const batch of model.batches(examples, 16, { training: true, rng: new Rng(seed * 1000 + epoch) })) {
      if (losses.length >= steps) break;
      const { loss, grads } = model.lossAndGradients(batch, new Rng(losses.length));
      optimizer.apply(grads, () => lr);
      for (const g of grads.values()) g.dispose();
      losses.push(loss);
    }
  }
  optimizer.dispose();
  return losses;
}

describe('the ResNet family through the family interface', () => {
  beforeAll(useBackend);

  it('task types find their family; a text method on an image task is refused by name', async () => {
    expect(familyFor('image-classification').name).toBe('resnet');
    expect(familyFor('classification').name).toBe('bert');
    expect(() => familyFor('audio' as never)).toThrow(/task type "audio".*classification, regression, image-classification/);
    const { configOf, data } = await setUp();
    await expect(resnetFamily.buildModel(configOf('houlsby'), data.labels, data.train)).rejects.toThrow(/method "houlsby" does not apply to the ResNet family/);
  });

  it('reads an IDX task, trains a tiny ResNet to solve it, and the saved domain evaluates identically', async () => {
    const { dir, configOf, data } = await setUp();
    expect([data.train.length, data.dev.length, data.labels]).toEqual([96, 40, ['rows', 'columns']]);
    const build = () => resnetFamily.buildModel(configOf('full'), data.labels, data.train);
    const model = await build();
    const before = model.evaluate(data.dev, 32);
    const losses = train(model, data.train, 60, 1e-2, 1);
    const after = model.evaluate(data.dev, 32);
    expect(after.metrics.accuracy).toBeGreaterThanOrEqual(0.95);
    expect(after.metrics.accuracy).toBeGreaterThan(before.metrics.accuracy);
    expect(after.classes!.confusion.flat().reduce((a, b) => a + b, 0)).toBe(40);
    expect(losses.slice(-5).reduce((a, b) => a + b, 0) / 5).toBeLessThan(losses[0] / 2);
    // The same seeds (shuffling, augmentation) give the same run.
    const again = await build();
    expect(train(again, data.train, 5, 1e-2, 1)).toEqual(losses.slice(0, 5));
    again.dispose();
    const saved = path.join(dir, 'adapter');
    model.saveTrained(saved);
    // The extension knows a trained run by one of these files (it offers evaluation and the ablation then).
    expect(TRAINED_MARKER_FILES.some((f) => fs.existsSync(path.join(saved, f)))).toBe(true);
    const loaded = await resnetFamily.loadTrained(saved);
    const reloaded = loaded.evaluate(data.dev, 16);
    expect(reloaded.predictions).toEqual(after.predictions);
    expect(reloaded.loss).toBeCloseTo(after.loss, 5);
    // Full fine-tuning changed the network's values: the fingerprint is the one before training.
    expect(model.fingerprint()).not.toBe(loaded.fingerprint());
    model.dispose();
    loaded.dispose();
  });

  it('residual adapters train only their modules and the head; the network folder is untouched; block ablation units', async () => {
    const { dir, configOf, data } = await setUp();
    const model = await resnetFamily.buildModel(configOf('residual-parallel'), data.labels, data.train);
    expect(model.ablationUnits).toEqual([0, 1, 2]);
    const names = [...model.trainableParams().keys()];
    expect(names.every((n) => n.includes('.adapters.bars.') || n.includes('.domains.bars.') || n.startsWith('heads.bars.'))).toBe(true);
    expect([...model.headParamNames()]).toEqual(['heads.bars.weight', 'heads.bars.bias']);
    train(model, data.train, 10, 1e-2, 1);
    const full = model.evaluate(data.dev, 40).loss;
    model.setDisabledUnits(new Set([0, 1, 2]));
    const ablated = model.evaluate(data.dev, 40).loss;
    model.setDisabledUnits(new Set());
    expect(model.evaluate(data.dev, 40).loss).toBe(full);
    expect(ablated).not.toBe(full);
    // The block ablation's matrix: span i..j removes blocks i..j; the full span is every adapter off.
    const matrix = unitAblation(model, data.dev, { metric: 'loss', batchSize: 40 });
    expect(matrix.baseline).toBe(full);
    expect(matrix.matrix[0][2]).toBe(ablated);
    expect(matrix.matrix[1][0]).toBeNull();
    model.setDisabledUnits(new Set([1, 2]));
    expect(matrix.matrix[1][2]).toBe(model.evaluate(data.dev, 40).loss);
    model.setDisabledUnits(new Set());
    expect(new Set(matrix.matrix.flat().filter((v) => v !== null)).size).toBe(6);
    const network = loadNetwork(path.join(dir, 'network'));
    const fresh = ResNet.init(config, new Rng(3));
    for (const [n, v] of network.params) expect(Array.from(v.dataSync()), n).toEqual(Array.from(fresh.params.get(n)!.dataSync()));
    network.dispose();
    fresh.dispose();
    model.dispose();
  });

  it('names the file for a network folder that is not one', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'bert' }));
    expect(() => loadNetwork(dir)).toThrow(/config\.json.*not a ResNet network folder/);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, model_type: 'resnet', imageSize: 10 }));
    expect(() => loadNetwork(dir)).toThrow(/config\.json.*multiple of 4/);
  });

  it('pretraining writes a network folder with its recipe and card; a head on its frozen features solves the task; same seed, same bytes', async () => {
    const dir = tempDir();
    const recipe: ResNetPretrainRecipe = {
      network: config,
      train: writeBarsTask(dir, 96, 1, 'train'),
      test: writeBarsTask(dir, 40, 2, 'test'),
      labels: ['rows', 'columns'],
      epochs: 5,
      batchSize: 16,
      learningRate: 1e-2,
      weightDecay: 0,
      warmupRatio: 0.1,
      seed: 11,
      augment: { cropPadding: 1, flip: false },
    };
    const out = path.join(dir, 'pretrained');
    const result = await pretrainResNet(recipe, dir, out);
    expect(result.steps).toBe(30);
    expect(result.testAccuracy).toBeGreaterThanOrEqual(0.9);
    expect(fs.readdirSync(out).sort()).toEqual(['README.md', 'config.json', 'model.safetensors', 'pretrain.json']);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'pretrain.json'), 'utf8'))).toEqual(recipe);
    expect(fs.readFileSync(path.join(out, 'README.md'), 'utf8')).toContain(`Test accuracy of the pretraining classifier: ${(100 * result.testAccuracy!).toFixed(2)}%`);
    // Another domain on the pretrained network: the same kind of images, a head on frozen features.
    fs.mkdirSync(path.join(dir, 'other'));
    const task = { name: 'again', type: 'image-classification', train: writeBarsTask(path.join(dir, 'other'), 64, 5, 'train'), dev: writeBarsTask(path.join(dir, 'other'), 40, 6, 'dev'), labels: ['rows', 'columns'] };
    const cfg = { model: '../pretrained', configFile: path.join(dir, 'other', 'again.adapter.json'), task, method: { type: 'head' }, training: { seed: 1, batchSize: 16, evalBatchSize: 40 } };
    const data = await resnetFamily.readData(cfg);
    const head = await resnetFamily.buildModel(cfg, data.labels, data.train);
    train(head, data.train, 40, 3e-2, 2);
    expect(head.evaluate(data.dev, 40).metrics.accuracy).toBeGreaterThanOrEqual(0.9);
    head.dispose();
    const again = path.join(dir, 'again');
    await pretrainResNet({ ...recipe, epochs: 1 }, dir, again);
    const third = path.join(dir, 'third');
    await pretrainResNet({ ...recipe, epochs: 1 }, dir, third);
    expect(fs.readFileSync(path.join(again, 'model.safetensors')).equals(fs.readFileSync(path.join(third, 'model.safetensors')))).toBe(true);
  });
});
