import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
// The reference backend: tfjs's cpu kernels, which have every convolution gradient.
import '@tensorflow/tfjs-backend-cpu';
import { batchNormInference, batchNormTraining, conv2d, convBySlices } from '../../../src/engine/tf/conv';
import { applyBatchNormUpdates, BatchNormUpdate, ResNet, ResNetConfig } from '../../../src/engine/families/resnet/network';
import { ResNetDomainModel } from '../../../src/engine/families/resnet/model';
import { VisionMethodType } from '../../../src/engine/families/resnet/methods';
import { naiveResNetLoss } from '../../../bench/naive';
import { Rng } from '../../../src/engine/util/random';
import { maxAbsDiff, useBackend } from '../../helpers/fixtures';
import { checkGradientsOf } from '../../helpers/gradcheck';

/** Seeded values as a plain array, made on whatever backend runs (so both backends see the same numbers). */
function randomArray(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
}

/** Runs fn on tfjs's cpu backend and returns its arrays; the wasm backend is active again afterwards. */
async function onCpu(fn: () => Float32Array[]): Promise<Float32Array[]> {
  const before = tf.getBackend();
  await tf.setBackend('cpu');
  try {
    return tf.tidy(fn);
  } finally {
    await tf.setBackend(before);
  }
}

/** Largest difference relative to the reference's largest magnitude (at least 1). */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return maxAbsDiff(a, b) / Math.max(1, ...Array.from(b, Math.abs));
}

interface ConvCase {
  size: number;
  inC: number;
  outC: number;
  k: number;
  stride: number;
  pad: number;
}

// 3 x 3 and 1 x 1, stride 1 and 2; channel counts that are and are not multiples of 4 (the kernels' SIMD lanes and
// their tails); an odd size at stride 2 (the last window reaches the padding).
const CASES: ConvCase[] = [
  { size: 8, inC: 8, outC: 12, k: 3, stride: 1, pad: 1 },
  { size: 8, inC: 8, outC: 12, k: 3, stride: 2, pad: 1 },
  { size: 7, inC: 3, outC: 5, k: 3, stride: 1, pad: 1 },
  { size: 7, inC: 3, outC: 5, k: 3, stride: 2, pad: 1 },
  { size: 6, inC: 1, outC: 4, k: 3, stride: 1, pad: 1 },
  { size: 8, inC: 8, outC: 4, k: 1, stride: 1, pad: 0 },
  { size: 8, inC: 6, outC: 8, k: 1, stride: 2, pad: 0 },
];

const label = (c: ConvCase) => `${c.k}x${c.k} stride ${c.stride}, ${c.size}x${c.size}x${c.inC} -> ${c.outC}`;

/** Output, dx and dW of sum(conv(x, w) * r) with tfjs's tf.conv2d and its own gradients. */
function referenceConv(c: ConvCase, xs: Float32Array, ws: Float32Array, rs: Float32Array, outShape: number[]): Float32Array[] {
  const x = tf.tensor4d(xs, [2, c.size, c.size, c.inC]);
  const w = tf.tensor4d(ws, [c.k, c.k, c.inC, c.outC]);
  const r = tf.tensor(rs, outShape);
  const y = tf.conv2d(x, w, c.stride as 1 | 2, c.pad);
  const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride as 1 | 2, c.pad), r)))([x, w]);
  return [y, dx, dw].map((t) => t.dataSync() as Float32Array);
}

describe('convolutions and BatchNorm (src/engine/tf/conv.ts) against tfjs on the cpu backend', () => {
  beforeAll(useBackend);

  for (const c of CASES) {
    it(`conv2d ${label(c)}: tf.conv2d's output within 1e-5, and its input and filter gradients (and the slices fallback's)`, async () => {
      const xs = randomArray(2 * c.size * c.size * c.inC, 1);
      const ws = randomArray(c.k * c.k * c.inC * c.outC, 2);
      const x = tf.tensor4d(xs, [2, c.size, c.size, c.inC]);
      const w = tf.tensor4d(ws, [c.k, c.k, c.inC, c.outC]);
      const y = conv2d(x, w, c.stride, c.pad);
      const rs = randomArray(y.size, 3);
      const r = tf.tensor(rs, y.shape);
      const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad), r)))([x, w]);
      const [yRef, dxRef, dwRef] = await onCpu(() => referenceConv(c, xs, ws, rs, y.shape));
      expect(y.size).toBe(yRef.length);
      expect(maxAbsDiff(y.dataSync(), yRef)).toBeLessThan(1e-5);
      expect(relDiff(dx.dataSync(), dxRef)).toBeLessThan(1e-5);
      expect(relDiff(dw.dataSync(), dwRef)).toBeLessThan(1e-5);
      // The fallback where the kernels cannot run (wasm without SIMD): slices, a concatenation and a matMul.
      expect(maxAbsDiff(convBySlices(x, w, c.stride, c.pad).dataSync(), yRef)).toBeLessThan(1e-5);
      const [dxSlices, dwSlices] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(convBySlices(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad), r)))([x, w]);
      expect(relDiff(dxSlices.dataSync(), dxRef)).toBeLessThan(1e-5);
      expect(relDiff(dwSlices.dataSync(), dwRef)).toBeLessThan(1e-5);
    });
  }

  for (const stride of [1, 2]) {
    it(`conv2d 3x3 stride ${stride}: input and filter gradients against finite differences; a frozen filter gets none`, () => {
      const x = tf.variable(tf.tensor4d(randomArray(2 * 6 * 6 * 4, 4), [2, 6, 6, 4]), true);
      const w = tf.variable(tf.tensor4d(randomArray(9 * 4 * 8, 5), [3, 3, 4, 8]), true);
      const r = tf.tensor(randomArray(2 * (6 / stride) ** 2 * 8, 6), [2, 6 / stride, 6 / stride, 8]);
      // A non-linear loss, so that the gradient is not the same at every point.
      const loss = () => tf.sum(tf.square(tf.mul(conv2d(x, w, stride, 1), r))) as tf.Scalar;
      checkGradientsOf(loss, [x, w], ['x', 'w']);
      w.trainable = false;
      const { grads } = tf.variableGrads(loss, [x]);
      expect(Object.keys(grads)).toEqual([x.name]);
    });
  }

  /** y, mean, variance, dx, dgamma, dbeta of sum(BN(x) * r) by tfjs ops and autodiff (the network's old formula). */
  function referenceBatchNorm(xs: Float32Array, gs: Float32Array, bs: Float32Array, rs: Float32Array, shape: number[], stats: Float32Array[] | null): Float32Array[] {
    const c = shape[3];
    const [x, g, b, r] = [tf.tensor4d(xs, shape as [number, number, number, number]), tf.tensor1d(gs), tf.tensor1d(bs), tf.tensor(rs, shape)];
    const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => {
      if (stats) {
        const scale = tf.mul(gg, tf.rsqrt(tf.add(tf.tensor1d(stats[1]), 1e-5)));
        return tf.add(tf.mul(tf.sub(xx, tf.tensor1d(stats[0])), scale), bb);
      }
      const { mean, variance } = tf.moments(xx, [0, 1, 2]);
      return tf.add(tf.mul(tf.mul(tf.sub(xx, mean), tf.rsqrt(tf.add(variance, 1e-5))), gg), bb);
    };
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    const grads = tf.grads((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(f(xx, gg, bb), r)))([x, g, b]);
    expect(mean.shape).toEqual([c]);
    return [f(x, g, b), mean, variance, ...grads].map((t) => t.dataSync() as Float32Array);
  }

  // 8 channels: the SIMD kernels; 6: tfjs ops (the kernels take multiples of 4).
  for (const channels of [8, 6]) {
    it(`BatchNorm with batch statistics, ${channels} channels: output, statistics and gradients of x, scale and shift`, async () => {
      const shape = [3, 5, 4, channels] as [number, number, number, number];
      const n = 3 * 5 * 4 * channels;
      // Away from zero mean and unit scale, as a convolution's output is.
      const xs = randomArray(n, 7).map((v, i) => 3 * v + (i % channels) - 2);
      const gs = randomArray(channels, 8).map((v) => 1 + 0.5 * v);
      const bs = randomArray(channels, 9);
      const rs = randomArray(n, 10);
      const x = tf.tensor4d(xs, shape);
      const gamma = tf.variable(tf.tensor1d(gs), true);
      const beta = tf.variable(tf.tensor1d(bs), true);
      const r = tf.tensor(rs, shape);
      let stats: tf.Tensor[] = [];
      const y = batchNormTraining(x, gamma, beta, 1e-5, (mean, variance) => (stats = [mean, variance].map((t) => tf.keep(tf.clone(t)))));
      const dx = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(batchNormTraining(xx as tf.Tensor4D, gamma, beta, 1e-5), r)))(x);
      const { grads } = tf.variableGrads(() => tf.sum(tf.mul(batchNormTraining(x, gamma, beta, 1e-5), r)) as tf.Scalar, [gamma, beta]);
      const [yRef, meanRef, varRef, dxRef, dgRef, dbRef] = await onCpu(() => referenceBatchNorm(xs, gs, bs, rs, shape, null));
      expect(relDiff(y.dataSync(), yRef)).toBeLessThan(1e-5);
      expect(relDiff(stats[0].dataSync(), meanRef)).toBeLessThan(1e-5);
      expect(relDiff(stats[1].dataSync(), varRef)).toBeLessThan(1e-5);
      expect(relDiff(dx.dataSync(), dxRef)).toBeLessThan(1e-4);
      expect(relDiff(grads[gamma.name].dataSync(), dgRef)).toBeLessThan(1e-5);
      expect(relDiff(grads[beta.name].dataSync(), dbRef)).toBeLessThan(1e-5);
      // And against finite differences, x included (through the batch statistics).
      const xv = tf.variable(x, true);
      checkGradientsOf(() => tf.sum(tf.square(tf.mul(batchNormTraining(xv, gamma, beta, 1e-5), r))) as tf.Scalar, [xv, gamma, beta], ['x', 'gamma', 'beta'], 1e-2);
    });

    it(`BatchNorm with running statistics, ${channels} channels: output and gradients, frozen and trained scale and shift`, async () => {
      const shape = [2, 3, 4, channels] as [number, number, number, number];
      const n = 2 * 3 * 4 * channels;
      const xs = randomArray(n, 11).map((v) => 2 * v + 1);
      const gs = randomArray(channels, 12).map((v) => 1 + 0.5 * v);
      const bs = randomArray(channels, 13);
      const ms = randomArray(channels, 14);
      const vs = randomArray(channels, 15).map((v) => 1.2 + v);
      const rs = randomArray(n, 16);
      const x = tf.tensor4d(xs, shape);
      const [mean, variance] = [tf.variable(tf.tensor1d(ms), false), tf.variable(tf.tensor1d(vs), false)];
      const [yRef, , , dxRef, dgRef, dbRef] = await onCpu(() => referenceBatchNorm(xs, gs, bs, rs, shape, [ms, vs]));
      for (const trained of [false, true]) {
        const gamma = tf.variable(tf.tensor1d(gs), trained);
        const beta = tf.variable(tf.tensor1d(bs), trained);
        const f = (xx: tf.Tensor4D) => batchNormInference(xx, mean, variance, gamma, beta, 1e-5);
        expect(relDiff(f(x).dataSync(), yRef)).toBeLessThan(1e-6);
        const dx = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(f(xx as tf.Tensor4D), tf.tensor(rs, shape))))(x);
        expect(relDiff(dx.dataSync(), dxRef)).toBeLessThan(1e-5);
        if (trained) {
          const { grads } = tf.variableGrads(() => tf.sum(tf.mul(f(x), tf.tensor(rs, shape))) as tf.Scalar, [gamma, beta]);
          expect(relDiff(grads[gamma.name].dataSync(), dgRef)).toBeLessThan(1e-5);
          expect(relDiff(grads[beta.name].dataSync(), dbRef)).toBeLessThan(1e-5);
        }
      }
    });
  }
});

describe('a ResNet training step: the same loss, gradients and running statistics as the network before the fast path', () => {
  beforeAll(useBackend);
  /** Every stage's width a multiple of 4 (the BatchNorm kernels), the stem reading grey images (one channel). */
  const config: ResNetConfig = { modelType: 'resnet', inputChannels: 1, imageSize: 8, widths: [4, 8, 12], blocksPerStage: 2 };

  for (const type of ['full', 'residual-series', 'residual-parallel', 'batchnorm'] as VisionMethodType[]) {
    it(type, () => {
      const model = ResNetDomainModel.create(ResNet.init(config, new Rng(1)), type, 'd', ['a', 'b', 'c'], 2);
      // Nonzero adapters, so that they take part in the forward pass.
      const rng = new Rng(3);
      for (const [n, v] of model.method.params) if (n.endsWith('conv.weight')) v.assign(tf.randomNormal(v.shape, 0, 0.3, 'float32', rng.seed()));
      const x = tf.randomNormal([6, 8, 8, 1], 0, 1, 'float32', 4) as tf.Tensor4D;
      const labels = Int32Array.from([0, 1, 2, 0, 1, 2]);
      const params = model.trainableParams();
      const vars = [...params.values()];
      const fastUpdates: BatchNormUpdate[] = [];
      const naiveUpdates: BatchNormUpdate[] = [];
      const fast = tf.variableGrads(() => model.loss(x, labels, { training: true, batchNormUpdates: fastUpdates }), vars);
      const naive = tf.variableGrads(() => naiveResNetLoss(model, x, labels, { training: true, batchNormUpdates: naiveUpdates }), vars);
      expect(Math.abs(fast.value.dataSync()[0] - naive.value.dataSync()[0])).toBeLessThan(1e-5);
      for (const [name, v] of params) expect(relDiff(fast.grads[v.name].dataSync(), naive.grads[v.name].dataSync()), name).toBeLessThan(1e-4);
      expect(fastUpdates.length).toBe(naiveUpdates.length);
      expect(fastUpdates.length).toBeGreaterThan(0);
      fastUpdates.forEach((u, i) => {
        expect(u.runningMean).toBe(naiveUpdates[i].runningMean);
        expect(relDiff(u.mean.dataSync(), naiveUpdates[i].mean.dataSync())).toBeLessThan(1e-5);
        expect(relDiff(u.variance.dataSync(), naiveUpdates[i].variance.dataSync())).toBeLessThan(1e-5);
      });
      // Evaluation mode (running statistics) too.
      const evalFast = model.loss(x, labels, { training: false }).dataSync()[0];
      const evalNaive = naiveResNetLoss(model, x, labels, { training: false }).dataSync()[0];
      expect(Math.abs(evalFast - evalNaive)).toBeLessThan(1e-5);
      applyBatchNormUpdates(fastUpdates);
      applyBatchNormUpdates(naiveUpdates);
      model.dispose();
    });
  }
});
