import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { applyBatchNormUpdates, BatchNormUpdate, conv1x1, conv3x3, ResNet, ResNetConfig, resnetParameterCount } from '../../../src/engine/families/resnet/network';
import { VISION_METHOD_NAMES, VISION_METHODS, VisionMethodType } from '../../../src/engine/families/resnet/methods';
import { ResNetDomainModel } from '../../../src/engine/families/resnet/model';
import { Rng } from '../../../src/engine/util/random';
import { maxAbsDiff, tempDir, useBackend } from '../../helpers/fixtures';
import { checkGradientsOf } from '../../helpers/gradcheck';

/** Three stages of one block: stem 4 channels, stages 4, 8, 16; 8 x 8 grey images. */
const tiny: ResNetConfig = { modelType: 'resnet', inputChannels: 1, imageSize: 8, widths: [4, 8, 16], blocksPerStage: 1 };
const LABELS = ['a', 'b', 'c'];

/** A network standing in for a pretrained one: random weights and BatchNorms that are not the identity. */
function pretrainedNetwork(config: ResNetConfig = tiny, seed = 1): ResNet {
  const net = ResNet.init(config, new Rng(seed));
  const rng = new Rng(seed + 100);
  for (const [n, v] of [...net.params, ...net.stats]) {
    if (n.endsWith('.weight') && v.rank === 1) v.assign(tf.randomUniform(v.shape, 0.5, 1.5, 'float32', rng.seed()));
    if (n.endsWith('.bias') || n.endsWith('running_mean')) v.assign(tf.randomNormal(v.shape, 0, 0.2, 'float32', rng.seed()));
    if (n.endsWith('running_var')) v.assign(tf.randomUniform(v.shape, 0.5, 2, 'float32', rng.seed()));
  }
  return net;
}

/** A copy of a network with variables of its own. */
function cloneNetwork(net: ResNet): ResNet {
  const copy = (m: Map<string, tf.Variable>) => new Map([...m].map(([n, v]) => [n, tf.variable(v, false)]));
  return new ResNet(net.config, copy(net.params), copy(net.stats));
}

function images(n: number, config: ResNetConfig = tiny, seed = 7): tf.Tensor4D {
  return tf.randomNormal([n, config.imageSize, config.imageSize, config.inputChannels], 0, 1, 'float32', seed);
}

const EVAL = { training: false };

/** Sets every adapter weight of a model to small random values (they start at zero). */
function perturbAdapters(model: ResNetDomainModel, seed = 3): void {
  const rng = new Rng(seed);
  for (const [n, v] of model.method.params) if (n.includes('.adapters.') && n.endsWith('conv.weight')) v.assign(tf.randomNormal(v.shape, 0, 0.3, 'float32', rng.seed()));
}

describe('ResNet for small images', () => {
  beforeAll(useBackend);

  it('the 3x3 convolution (nine slices and a matMul) equals tf.conv2d with padding 1, stride 1 and 2', () => {
    const x = tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, 3, 5], 0, 1, 'float32', 2) as tf.Tensor4D;
    for (const stride of [1, 2] as const) {
      const ours = conv3x3(x, w, stride);
      const reference = tf.conv2d(x, w, stride, 1);
      expect(ours.shape).toEqual(reference.shape);
      expect(maxAbsDiff(ours.dataSync(), reference.dataSync())).toBeLessThan(1e-4);
    }
    const w1 = tf.randomNormal([1, 1, 3, 4], 0, 1, 'float32', 3) as tf.Tensor4D;
    expect(maxAbsDiff(conv1x1(x, w1, 2).dataSync(), tf.conv2d(x, w1, 2, 0).dataSync())).toBeLessThan(1e-4);
  });

  it('parameter count of the network by hand: 9 c_in c_out + 2 c_out per convolution', () => {
    // stem 9*1*4+8; stage 1: 2*(9*4*4+8); stage 2: 9*4*8+16, 9*8*8+16; stage 3: 9*8*16+32, 9*16*16+32.
    expect(resnetParameterCount(tiny)).toBe(44 + 2 * 152 + 304 + 592 + 1184 + 2336);
    const net = ResNet.init(tiny, new Rng(0));
    expect(net.parameterCount()).toBe(4764);
    // ResNet-26 (four blocks per stage) has 25 convolutions.
    expect(ResNet.init({ ...tiny, blocksPerStage: 4 }, new Rng(0)).sites.length).toBe(25);
  });

  it('exact parameter counts of every method: added modules by formula, plus the head and the trained network', () => {
    const head = 16 * 3 + 3;
    // Series: c^2 + 2c at the six block convolutions (out 4, 4, 8, 8, 16, 16) = 784; BatchNorms 2 * 60 = 120.
    // Parallel: c_in c_out there (16 + 16 + 32 + 64 + 128 + 256 = 512), plus the BatchNorms.
    const expected: Record<VisionMethodType, number> = {
      'residual-series': 784 + 120 + head,
      'residual-parallel': 512 + 120 + head,
      batchnorm: 120 + head,
      head,
      full: 4764 + head,
      scratch: 4764 + head,
    };
    for (const type of VISION_METHOD_NAMES) {
      const model = ResNetDomainModel.create(pretrainedNetwork(), type, 'toy', LABELS, 0);
      const counts = model.parameterCounts();
      expect(counts.trainable, type).toBe(expected[type]);
      expect(counts.base).toBe(4764);
      expect(VISION_METHODS[type].addedParams(tiny) + head + (VISION_METHODS[type].trainsBase ? 4764 : 0), type).toBe(expected[type]);
      model.dispose();
    }
  });

  it('residual adapters and domain BatchNorms reproduce the base network exactly at initialisation; a nonzero adapter does not', () => {
    const base = pretrainedNetwork();
    const x = images(4);
    const reference = ResNetDomainModel.create(cloneNetwork(base), 'head', 'toy', LABELS, 5);
    const want = reference.outputs(x, EVAL).dataSync();
    for (const type of ['residual-series', 'residual-parallel', 'batchnorm'] as const) {
      // The same seed draws the same head.
      const model = ResNetDomainModel.create(cloneNetwork(base), type, 'toy', LABELS, 5);
      expect(maxAbsDiff(model.outputs(x, EVAL).dataSync(), want), type).toBe(0);
      if (type !== 'batchnorm') {
        perturbAdapters(model);
        expect(maxAbsDiff(model.outputs(x, EVAL).dataSync(), want), type).toBeGreaterThan(1e-3);
      }
      model.dispose();
    }
  });

  it('training a domain with its own BatchNorms and adapters leaves the base network and its predictions bit-identical', () => {
    const base = pretrainedNetwork();
    const x = images(6);
    const labels = Int32Array.from([0, 1, 2, 0, 1, 2]);
    const baseModel = ResNetDomainModel.create(base, 'head', 'base', LABELS, 1);
    const before = baseModel.outputs(x, EVAL).dataSync().slice();
    const values = () => [...base.params.values(), ...base.stats.values()].map((v) => Array.from(v.dataSync()));
    const baseValues = values();
    for (const type of ['residual-series', 'residual-parallel', 'batchnorm'] as const) {
      // A second domain on the same network (its variables shared, as several domains share one network).
      const other = new ResNetDomainModel(base, (ResNetDomainModel.create(cloneNetwork(base), type, 'other', LABELS, 2).method), 'other', LABELS, new Rng(2));
      const domainBn = other.method.stats.get('layer1.0.bn1.domains.other.running_mean')!;
      const domainBnBefore = Array.from(domainBn.dataSync());
      for (let step = 0; step < 2; step++) {
        const { grads } = other.lossAndGradients(x, labels);
        const params = other.trainableParams();
        for (const [n, g] of grads) params.get(n)!.assign(tf.sub(params.get(n)!, tf.mul(g, 0.1)));
      }
      // The domain's statistics moved; the base's did not.
      expect(maxAbsDiff(other.method.stats.get('layer1.0.bn1.domains.other.running_mean')!.dataSync(), domainBnBefore)).toBeGreaterThan(1e-4);
      expect(values()).toEqual(baseValues);
      expect(Array.from(baseModel.outputs(x, EVAL).dataSync())).toEqual(Array.from(before));
      // The domain's network parameters were borrowed from `base`: its own copy's method must be freed alone.
      for (const v of [...other.method.params.values(), ...other.method.stats.values(), ...other.head.values()]) v.dispose();
    }
  });

  it('BatchNorm: batch statistics in training mode, running averages (momentum 0.1, unbiased variance) updated after the step', () => {
    const net = pretrainedNetwork();
    const x = images(3);
    const model = ResNetDomainModel.create(net, 'full', 'toy', LABELS, 0);
    const oldMean = Array.from(net.stats.get('bn1.running_mean')!.dataSync());
    const oldVar = Array.from(net.stats.get('bn1.running_var')!.dataSync());
    const conv = conv3x3(x, net.params.get('conv1.weight')! as tf.Tensor as tf.Tensor4D, 1);
    const { mean, variance } = tf.moments(conv, [0, 1, 2]);
    const n = 3 * 8 * 8;
    model.lossAndGradients(x, Int32Array.from([0, 1, 2]));
    const newMean = net.stats.get('bn1.running_mean')!.dataSync();
    const newVar = net.stats.get('bn1.running_var')!.dataSync();
    const m = mean.dataSync();
    const v = variance.dataSync();
    for (let c = 0; c < 4; c++) {
      expect(newMean[c]).toBeCloseTo(0.9 * oldMean[c] + 0.1 * m[c], 5);
      expect(newVar[c]).toBeCloseTo(0.9 * oldVar[c] + 0.1 * v[c] * (n / (n - 1)), 4);
    }
    // Training mode normalises with the batch: outputs differ from evaluation mode's.
    expect(maxAbsDiff(model.outputs(x, { training: true }).dataSync(), model.outputs(x, EVAL).dataSync())).toBeGreaterThan(1e-3);
    // A frozen network (head only) computes the same in both modes and collects no statistics.
    const frozen = ResNetDomainModel.create(pretrainedNetwork(), 'head', 'toy', LABELS, 0);
    const updates: BatchNormUpdate[] = [];
    expect(maxAbsDiff(frozen.outputs(x, { training: true, batchNormUpdates: updates } as never).dataSync(), frozen.outputs(x, EVAL).dataSync())).toBe(0);
    expect(updates).toHaveLength(0);
    applyBatchNormUpdates(updates);
    model.dispose();
    frozen.dispose();
  });

  it('gradients of every kind of trained parameter against finite differences (training mode, batch statistics)', () => {
    const x = images(4, { ...tiny, inputChannels: 3 }, 11);
    const labels = Int32Array.from([0, 1, 2, 1]);
    const cases: [VisionMethodType, string[]][] = [
      ['residual-series', ['layer2.0.conv1.adapters.toy.conv.weight', 'layer3.0.conv2.adapters.toy.bn.weight', 'layer1.0.bn2.domains.toy.bias', 'heads.toy.weight']],
      ['residual-parallel', ['layer2.0.conv1.adapters.toy.conv.weight', 'bn1.domains.toy.weight']],
      ['full', ['conv1.weight', 'layer2.0.conv2.weight', 'layer3.0.bn1.weight']],
    ];
    for (const [type, names] of cases) {
      const model = ResNetDomainModel.create(pretrainedNetwork({ ...tiny, inputChannels: 3 }), type, 'toy', LABELS, 4);
      perturbAdapters(model);
      const params = model.trainableParams();
      checkGradientsOf(() => model.loss(x, labels, { training: true }), names.map((n) => params.get(n)!), names, 2e-3);
      model.dispose();
    }
  });

  it('save and load give bit-identical logits for every method', () => {
    const x = images(3);
    for (const type of VISION_METHOD_NAMES) {
      const base = pretrainedNetwork();
      const model = ResNetDomainModel.create(cloneNetwork(base), type, 'toy', LABELS, 9);
      perturbAdapters(model);
      // One training step moves every trained parameter and the statistics of trained BatchNorms.
      const { grads } = model.lossAndGradients(x, Int32Array.from([0, 1, 2]));
      const params = model.trainableParams();
      for (const [n, g] of grads) params.get(n)!.assign(tf.sub(params.get(n)!, tf.mul(g, 0.1)));
      const dir = tempDir();
      model.save(dir);
      const loaded = ResNetDomainModel.load(dir, base);
      expect(Array.from(loaded.outputs(x, EVAL).dataSync()), type).toEqual(Array.from(model.outputs(x, EVAL).dataSync()));
      expect(loaded.labels).toEqual(LABELS);
      model.dispose();
      loaded.dispose();
    }
  });

  it('block ablation: switching a block off removes its adapters (as zero weights would), the domain BatchNorms stay', () => {
    const base = pretrainedNetwork();
    const x = images(3);
    for (const type of ['residual-series', 'residual-parallel'] as const) {
      const model = ResNetDomainModel.create(cloneNetwork(base), type, 'toy', LABELS, 9);
      perturbAdapters(model);
      expect(model.method.adapterBlocks).toEqual([0, 1, 2]);
      const full = model.outputs(x, EVAL).dataSync().slice();
      model.method.disabledBlocks.add(1);
      const ablated = model.outputs(x, EVAL).dataSync().slice();
      model.method.disabledBlocks.clear();
      expect(maxAbsDiff(ablated, full)).toBeGreaterThan(1e-3);
      for (const conv of ['layer2.0.conv1', 'layer2.0.conv2']) {
        const w = model.method.params.get(`${conv}.adapters.toy.conv.weight`)!;
        w.assign(tf.zerosLike(w));
      }
      expect(maxAbsDiff(model.outputs(x, EVAL).dataSync(), ablated), type).toBe(0);
      model.dispose();
    }
  });

  it('full fine-tuning starts from the pretrained values; scratch from a fresh initialisation of the same shape', () => {
    const base = pretrainedNetwork();
    const full = ResNetDomainModel.create(cloneNetwork(base), 'full', 'toy', LABELS, 9);
    const scratch = ResNetDomainModel.create(cloneNetwork(base), 'scratch', 'toy', LABELS, 9);
    for (const [n, v] of base.params) {
      expect(Array.from(full.network.params.get(n)!.dataSync()), n).toEqual(Array.from(v.dataSync()));
      if (n.endsWith('conv1.weight')) expect(maxAbsDiff(scratch.network.params.get(n)!.dataSync(), v.dataSync()), n).toBeGreaterThan(1e-3);
    }
    // Scratch's BatchNorms are fresh too: scale 1, running variance 1.
    expect(Array.from(scratch.network.params.get('bn1.weight')!.dataSync())).toEqual([1, 1, 1, 1]);
    expect(Array.from(scratch.network.stats.get('bn1.running_var')!.dataSync())).toEqual([1, 1, 1, 1]);
    full.dispose();
    scratch.dispose();
  });

  it('rejects images of the wrong size and configs it cannot build', () => {
    const model = ResNetDomainModel.create(pretrainedNetwork(), 'head', 'toy', LABELS, 0);
    expect(() => model.outputs(tf.zeros([1, 10, 10, 1]) as tf.Tensor4D, EVAL)).toThrow(/takes 8x8x1 images, not 10x10x1/);
    expect(() => ResNet.init({ ...tiny, imageSize: 30 }, new Rng(0))).toThrow(/multiple of 4/);
    expect(() => ResNet.init({ ...tiny, widths: [8, 4, 16] }, new Rng(0))).toThrow(/must not decrease/);
    model.dispose();
  });
});
