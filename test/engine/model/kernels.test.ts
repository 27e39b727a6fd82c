import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { AdamWAttrs, batchedMatMul, fusedActivation, fusedActivationGrad, fusedAdamW, fusedColumnSum, fusedDropout, transpose2d, usesElementwiseKernels, usesRowKernels, usesSimdKernel } from '../../../src/engine/tf/kernels/simd';
import { AdamW } from '../../../src/engine/train/adamw';
import { copyValues } from '../../../src/engine/tf/backend';
import { activate, batchMatMul, dropoutMask, layerNorm } from '../../../src/engine/tf/ops';
import { maxAbsDiff, useBackend } from '../../helpers/fixtures';

describe('the WebAssembly SIMD batched matMul kernel', () => {
  beforeAll(useBackend);

  it('is in use on this backend', () => {
    expect(usesSimdKernel()).toBe(true);
  });

  for (const [batch, n, k, m] of [
    [128, 64, 64, 64],
    [6, 37, 64, 37], // 16-column blocks, then 4-column blocks, then single columns
    [3, 5, 7, 3],
    [2, 1, 1, 1],
  ]) {
    it(`[${batch},${n},${k}] x [${batch},${k},${m}] equals tf.matMul`, () => {
      const a = tf.randomNormal([batch, n, k], 0, 1, 'float32', 1) as tf.Tensor3D;
      const b = tf.randomNormal([batch, k, m], 0, 1, 'float32', 2) as tf.Tensor3D;
      const ours = batchedMatMul(a, b);
      expect(ours.shape).toEqual([batch, n, m]);
      expect(maxAbsDiff(ours.dataSync(), tf.matMul(a, b).dataSync())).toBeLessThan(1e-4);
    });
  }

  for (const [batch, n, k, m] of [
    [128, 64, 64, 64],
    [6, 37, 15, 37],
    [3, 5, 7, 3],
    [2, 1, 1, 1],
  ]) {
    it(`the transposed forms A B^T and A^T B equal tf.matMul, [${batch},${n},${k}] x [${batch},${k},${m}]`, () => {
      const a = tf.randomNormal([batch, n, k], 0, 1, 'float32', 7) as tf.Tensor3D;
      const bT = tf.randomNormal([batch, m, k], 0, 1, 'float32', 8) as tf.Tensor3D;
      const aT = tf.randomNormal([batch, k, n], 0, 1, 'float32', 9) as tf.Tensor3D;
      const b = tf.randomNormal([batch, k, m], 0, 1, 'float32', 10) as tf.Tensor3D;
      expect(maxAbsDiff(batchedMatMul(a, bT, { transposeB: true }).dataSync(), tf.matMul(a, bT, false, true).dataSync())).toBeLessThan(1e-4);
      expect(maxAbsDiff(batchedMatMul(aT, b, { transposeA: true }).dataSync(), tf.matMul(aT, b, true, false).dataSync())).toBeLessThan(1e-4);
    });
  }

  it('gradients of every form equal tfjs\'s matMul gradients', () => {
    const a = tf.randomNormal([4, 6, 5], 0, 1, 'float32', 11) as tf.Tensor3D;
    const b = tf.randomNormal([4, 5, 7], 0, 1, 'float32', 12) as tf.Tensor3D;
    const bT = tf.transpose(b, [0, 2, 1]) as tf.Tensor3D;
    const aT = tf.transpose(a, [0, 2, 1]) as tf.Tensor3D;
    const w = tf.randomNormal([4, 6, 7], 0, 1, 'float32', 13);
    const loss = (f: (x: tf.Tensor3D, y: tf.Tensor3D) => tf.Tensor) => (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(f(x as tf.Tensor3D, y as tf.Tensor3D), w));
    const cases: [tf.Tensor3D, tf.Tensor3D, (x: tf.Tensor3D, y: tf.Tensor3D) => tf.Tensor, (x: tf.Tensor3D, y: tf.Tensor3D) => tf.Tensor][] = [
      [a, b, (x, y) => batchMatMul(x, y), (x, y) => tf.matMul(x, y)],
      [a, bT, (x, y) => batchMatMul(x, y, true), (x, y) => tf.matMul(x, y, false, true)],
      [aT, b, (x, y) => batchedMatMul(x, y, { transposeA: true }), (x, y) => tf.matMul(x, y, true, false)],
    ];
    for (const [x, y, ours, ref] of cases) {
      const g = tf.grads(loss(ours))([x, y]);
      const r = tf.grads(loss(ref))([x, y]);
      expect(maxAbsDiff(g[0].dataSync(), r[0].dataSync())).toBeLessThan(1e-4);
      expect(maxAbsDiff(g[1].dataSync(), r[1].dataSync())).toBeLessThan(1e-4);
    }
  });

  it('reads and writes tensors in place on the wasm backend: results equal after the heap grows', () => {
    const a = tf.randomNormal([8, 16, 16], 0, 1, 'float32', 3) as tf.Tensor3D;
    const b = tf.randomNormal([8, 16, 16], 0, 1, 'float32', 4) as tf.Tensor3D;
    const before = batchedMatMul(a, b).dataSync().slice();
    // Allocate enough that the backend's memory grows: the kernel instance shares that memory and sees it.
    const big = tf.zeros([64 * 1024 * 1024 / 4]);
    expect(maxAbsDiff(batchedMatMul(a, b).dataSync(), before)).toBe(0);
    big.dispose();
  });
});

describe('the WebAssembly SIMD activation kernels', () => {
  beforeAll(useBackend);

  // Every range the approximations switch behaviour in: 0, tiny, the polynomial's core, the tails, the clamps.
  const xs = new Float32Array([
    0, -0, 1e-8, -1e-8, 1e-3, -1e-3, 0.5, -0.5, 1, -1, 2, -2, 3.5, -3.5, 6, -6, 10, -10, 30, -30, 100, -100,
    ...Array.from({ length: 4001 }, (_, i) => -20 + i * 0.01),
  ]);
  const phi = (x: number) => 0.5 * (1 + erf(x / Math.SQRT2));
  const dPhi = (x: number) => Math.exp((-x * x) / 2) / Math.sqrt(2 * Math.PI);
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  const exact = {
    gelu: { f: (x: number) => x * phi(x), df: (x: number) => phi(x) + x * dPhi(x) },
    quick_gelu: { f: (x: number) => x * sig(1.702 * x), df: (x: number) => sig(1.702 * x) + 1.702 * x * sig(1.702 * x) * (1 - sig(1.702 * x)) },
  } as const;

  it('are in use on this backend', () => {
    expect(usesElementwiseKernels(tf.zeros([4]))).toBe(true);
  });

  for (const fn of ['gelu', 'quick_gelu'] as const) {
    it(`${fn} and its gradient match the float64 formulas within float32 precision, at every length`, () => {
      for (const n of [xs.length, 4, 5, 7, 13]) {
        const x = tf.tensor1d(xs.slice(xs.length - n));
        const dy = tf.tensor1d(Array.from({ length: n }, (_, i) => 1 + (i % 3)));
        const y = fusedActivation(x, fn).dataSync();
        const dx = fusedActivationGrad(x, dy, fn).dataSync();
        const xv = x.dataSync();
        const dyv = dy.dataSync();
        for (let i = 0; i < n; i++) {
          const tol = 2e-6 * Math.max(1, Math.abs(xv[i]));
          expect(Math.abs(y[i] - exact[fn].f(xv[i])), `${fn}(${xv[i]})`).toBeLessThan(tol);
          expect(Math.abs(dx[i] - dyv[i] * exact[fn].df(xv[i])), `${fn}'(${xv[i]})`).toBeLessThan(3 * tol);
        }
      }
    });
  }

  it('activate() with the kernels equals tfjs ops, values and gradients, on a 2-D tensor', () => {
    const x = tf.randomNormal([33, 17], 0, 3, 'float32', 5);
    const viaOps = {
      gelu: (t: tf.Tensor) => tf.mul(tf.mul(t, 0.5), tf.add(1, tf.erf(tf.div(t, Math.SQRT2)))),
      quick_gelu: (t: tf.Tensor) => tf.mul(t, tf.sigmoid(tf.mul(t, 1.702))),
    };
    for (const fn of ['gelu', 'quick_gelu'] as const) {
      const w = tf.randomNormal([33, 17], 0, 1, 'float32', 6);
      const ours = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(activate(t, fn), w)))(x);
      const ref = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(viaOps[fn](t), w)))(x);
      expect(maxAbsDiff(activate(x, fn).dataSync(), viaOps[fn](x).dataSync())).toBeLessThan(1e-5);
      expect(maxAbsDiff(ours.dataSync(), ref.dataSync())).toBeLessThan(1e-4);
    }
  });

  it('the committed binary is built from the committed .wat source', () => {
    execFileSync(process.execPath, [path.resolve(__dirname, '../../../scripts/build-kernels.mjs'), '--check'], { stdio: 'pipe' });
  });
});

describe('the WebAssembly SIMD row kernels (LayerNorm, column sum)', () => {
  beforeAll(useBackend);

  /** LayerNorm of x (+ r) as tfjs ops, differentiated by tfjs's autodiff: the reference. */
  const layerNormByOps = (x: tf.Tensor, r: tf.Tensor | null, gamma: tf.Tensor, beta: tf.Tensor, eps: number) => {
    const s = r ? tf.add(x, r) : x;
    const centered = tf.sub(s, tf.mean(s, -1, true));
    const variance = tf.mean(tf.square(centered), -1, true);
    return tf.add(tf.mul(tf.mul(centered, tf.rsqrt(tf.add(variance, eps))), gamma), beta);
  };

  it('are in use on this backend for widths that are multiples of 4', () => {
    expect(usesRowKernels(tf.zeros([3, 8]))).toBe(true);
    expect(usesRowKernels(tf.zeros([3, 6]))).toBe(false);
  });

  for (const [rows, d] of [
    [37, 256],
    [5, 4],
    [1, 12],
  ]) {
    for (const withResidual of [false, true]) {
      it(`layerNorm ${withResidual ? 'of x + r ' : ''}on [${rows}, ${d}]: values and the gradients of x, r, gamma and beta equal tfjs's`, () => {
        // Rows far from zero mean and unit scale, so a wrong mean or variance shows.
        const x = tf.add(tf.mul(tf.randomNormal([rows, d], 0, 1, 'float32', 21), 3), 5) as tf.Tensor2D;
        const r = tf.randomNormal([rows, d], 0, 2, 'float32', 22) as tf.Tensor2D;
        const gamma = tf.randomNormal([d], 1, 0.5, 'float32', 23) as tf.Tensor1D;
        const beta = tf.randomNormal([d], 0, 0.5, 'float32', 24) as tf.Tensor1D;
        const w = tf.randomNormal([rows, d], 0, 1, 'float32', 25);
        const eps = 1e-12;
        const res = withResidual ? r : null;
        const ours = layerNorm(x, gamma, beta, eps, res);
        expect(maxAbsDiff(ours.dataSync(), layerNormByOps(x, res, gamma, beta, eps).dataSync())).toBeLessThan(1e-4);
        const inputs = withResidual ? { x, r, gamma, beta } : { x, gamma, beta };
        const names = Object.keys(inputs);
        const args = (ts: tf.Tensor[]) => Object.fromEntries(names.map((n, i) => [n, ts[i]])) as Record<string, tf.Tensor>;
        const g = tf.grads((...ts: tf.Tensor[]) => {
          const a = args(ts);
          return tf.sum(tf.mul(layerNorm(a.x as tf.Tensor2D, a.gamma as tf.Tensor1D, a.beta as tf.Tensor1D, eps, (a.r as tf.Tensor2D) ?? null), w));
        })(Object.values(inputs));
        const ref = tf.grads((...ts: tf.Tensor[]) => {
          const a = args(ts);
          return tf.sum(tf.mul(layerNormByOps(a.x, a.r ?? null, a.gamma, a.beta, eps), w));
        })(Object.values(inputs));
        names.forEach((n, i) => expect(maxAbsDiff(g[i].dataSync(), ref[i].dataSync()), n).toBeLessThan(2e-4));
      });
    }
  }

  it('columnSum equals tf.sum over the rows', () => {
    for (const [rows, d] of [
      [2048, 256],
      [3, 4],
    ]) {
      const x = tf.randomNormal([rows, d], 0, 1, 'float32', 26) as tf.Tensor2D;
      expect(maxAbsDiff(fusedColumnSum(x).dataSync(), tf.sum(x, 0).dataSync())).toBeLessThan(1e-3);
    }
  });
});

describe('the WebAssembly SIMD transpose kernel', () => {
  beforeAll(useBackend);

  it('equals tf.transpose, values and gradient, for every shape (4 x 4 blocks, or tfjs\'s kernel otherwise)', () => {
    for (const [rows, cols] of [
      [2048, 256],
      [4, 8],
      [12, 4],
      [5, 8],
      [3, 3],
    ]) {
      const x = tf.randomNormal([rows, cols], 0, 1, 'float32', 41) as tf.Tensor2D;
      const ours = transpose2d(x);
      expect(ours.shape).toEqual([cols, rows]);
      expect(maxAbsDiff(ours.dataSync(), tf.transpose(x).dataSync())).toBe(0);
      const w = tf.randomNormal([cols, rows], 0, 1, 'float32', 42);
      const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(transpose2d(t as tf.Tensor2D), w)))(x);
      expect(maxAbsDiff(g.dataSync(), tf.transpose(w).dataSync())).toBe(0);
    }
  });
});

describe('the WebAssembly SIMD dropout kernel', () => {
  beforeAll(useBackend);

  it('is in use on this backend', () => {
    expect(usesElementwiseKernels(tf.zeros([4]))).toBe(true);
  });

  it('draws exactly the mask the seeded generator draws in JS, at every length and rate; its gradient is dy times that mask', () => {
    for (const [size, rate, seed] of [
      [32 * 64 * 256, 0.1, 12345],
      [4, 0.5, 1],
      [5, 0.5, 2],
      [7, 0.3, 2147483646],
      [1003, 0.9, 7],
      [64, 1e-12, 9], // keep * 2^32 rounds up to 2^32: everything kept
    ]) {
      const x = tf.randomNormal([size], 0, 1, 'float32', 31);
      const mask = tf.tensor1d(dropoutMask(size, rate, seed));
      const ours = fusedDropout(x, rate, seed);
      expect(maxAbsDiff(ours.dataSync(), tf.mul(x, mask).dataSync()), `size ${size} rate ${rate}`).toBe(0);
      const kept = Array.from(mask.dataSync()).filter((m) => m !== 0).length / size;
      if (size > 100000) expect(Math.abs(kept - (1 - rate))).toBeLessThan(0.01);
      const dy = tf.randomNormal([size], 0, 1, 'float32', 32);
      const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(fusedDropout(t, rate, seed), dy)))(x);
      expect(maxAbsDiff(dx.dataSync(), tf.mul(dy, mask).dataSync())).toBe(0);
    }
  });
});

describe('the wasm backend\'s Identity (every tf.clone, every tensor saved for a gradient)', () => {
  beforeAll(useBackend);

  it('shares memory with a reference count: a clone keeps its values after the original is disposed', () => {
    const x = tf.tensor1d([1, 2, 3, 4]);
    const buffers = tf.memory().numDataBuffers;
    const y = tf.clone(x);
    expect(tf.memory().numDataBuffers).toBe(buffers); // no copy
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3, 4]);
    const z = tf.add(y, 1);
    y.dispose();
    expect(Array.from(z.dataSync())).toEqual([2, 3, 4, 5]);
  });
});

describe('copyValues (the workers\' exchange of weights and gradients)', () => {
  beforeAll(useBackend);

  it('copies a tensor\'s values once, into a new array of their own or into a given one at an offset', () => {
    const values = Float32Array.from({ length: 1001 }, (_, i) => Math.sin(i) * 1e3);
    // Made by a kernel, so the values lie somewhere inside the heap, not at a fresh allocation of their own.
    const t = tf.tidy(() => tf.add(tf.tensor(values, [7, 143]), 0));
    const fresh = copyValues(t);
    expect(fresh).toEqual(values);
    expect(fresh.buffer.byteLength).toBe(values.byteLength); // its own buffer: transferable without the heap
    const shared = new Float32Array(new SharedArrayBuffer(4 * 1010)).fill(-1);
    copyValues(t, shared, 5);
    expect(Array.from(shared.subarray(0, 5))).toEqual([-1, -1, -1, -1, -1]);
    expect(shared.subarray(5, 1006)).toEqual(values);
    expect(Array.from(shared.subarray(1006))).toEqual([-1, -1, -1, -1]);
    // The copy does not alias the tensor's memory.
    fresh[0] = 42;
    expect(t.dataSync()[0]).toBe(values[0]);
    t.dispose();
    expect(() => copyValues(tf.tensor1d([1, 2], 'int32'))).toThrow(/int32 tensor, float32 expected/);
  });
});

/** erf in float64 (W. J. Cody's rational approximations are overkill here: a 1e-12 series/continued fraction). */
function erf(x: number): number {
  const z = Math.abs(x);
  let r: number;
  if (z < 3) {
    // Maclaurin series, converges fast for |x| < 3 in float64
    let term = z;
    let sum = z;
    for (let n = 1; n < 200; n++) {
      term *= (-z * z) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17) break;
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // continued fraction for erfc
    let f = 0;
    for (let n = 60; n >= 1; n--) f = (n / 2) / (z + f);
    r = 1 - Math.exp(-z * z) / Math.sqrt(Math.PI) / (z + f);
  }
  return x < 0 ? -r : r;
}

describe('the WebAssembly SIMD AdamW kernel', () => {
  beforeAll(useBackend);

  /** AdamW as adamw.ts writes it, one float32 rounding per operation (Math.fround), in tfjs's order. */
  function reference(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, a: AdamWAttrs): [Float32Array, Float32Array, Float32Array] {
    const f = Math.fround;
    const [scale, b1, ob1, b2, ob2, c1, c2, eps, lr, wd] = [a.gradScale, a.beta1, 1 - a.beta1, a.beta2, 1 - a.beta2, a.c1, a.c2, a.epsilon, a.lr, a.weightDecay].map(f);
    const pOut = new Float32Array(p.length);
    const mOut = new Float32Array(p.length);
    const vOut = new Float32Array(p.length);
    for (let i = 0; i < p.length; i++) {
      const gi = f(g[i] * scale);
      mOut[i] = f(f(m[i] * b1) + f(gi * ob1));
      vOut[i] = f(f(v[i] * b2) + f(f(gi * gi) * ob2));
      let u = f(f(mOut[i] / c1) / f(f(Math.sqrt(f(vOut[i] / c2))) + eps));
      if (a.decay) u = f(u + f(p[i] * wd));
      pOut[i] = f(p[i] - f(u * lr));
    }
    return [pOut, mOut, vOut];
  }

  it('gives the float32 update bit for bit, at every length, decayed or not, clipped or not, and AdamW.apply uses it', () => {
    expect(usesElementwiseKernels(tf.zeros([4]))).toBe(true);
    for (const n of [4, 5, 7, 8, 33, 1000]) {
      for (const [decay, gradScale] of [[false, 1], [true, 1], [true, 0.37]] as const) {
        const t = tf.tidy(() => [1, 2, 3].map((seed) => tf.randomNormal([n], 0, 1, 'float32', seed + n)));
        const [p, g, m] = t;
        const v = tf.tidy(() => tf.mul(tf.square(t[2]), 0.5));
        const attrs: AdamWAttrs = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, c1: 1 - 0.9 ** 3, c2: 1 - 0.999 ** 3, lr: 3e-4, weightDecay: 0.01, decay, gradScale };
        const ours = fusedAdamW(p, g, m, v, attrs).map((x) => x.dataSync() as Float32Array);
        const want = reference(p.dataSync() as Float32Array, g.dataSync() as Float32Array, m.dataSync() as Float32Array, v.dataSync() as Float32Array, attrs);
        for (let k = 0; k < 3; k++) expect(Buffer.from(ours[k].buffer).equals(Buffer.from(want[k].buffer)), `n=${n} decay=${decay} scale=${gradScale} output ${k}`).toBe(true);
      }
    }
    // Through the optimizer: three steps on a matrix (decayed) and a bias (not), the second clipped, against the reference's.
    const w = tf.variable(tf.randomNormal([3, 5], 0, 1, 'float32', 11));
    const b = tf.variable(tf.randomNormal([6], 0, 1, 'float32', 12));
    const expected = new Map([['w', [w.dataSync().slice(), new Float32Array(15), new Float32Array(15)]], ['b', [b.dataSync().slice(), new Float32Array(6), new Float32Array(6)]]] as [string, Float32Array[]][]);
    const opt = new AdamW(new Map([['w', w], ['b', b]]), { weightDecay: 0.1 });
    for (let step = 1; step <= 3; step++) {
      const grads = new Map([['w', tf.randomNormal([3, 5], 0, 1, 'float32', 20 + step)], ['b', tf.randomNormal([6], 0, 1, 'float32', 30 + step)]]);
      for (const [name, g] of grads) {
        const [p, m, v] = expected.get(name)!;
        expected.set(name, reference(p, g.dataSync() as Float32Array, m, v, { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, c1: 1 - 0.9 ** step, c2: 1 - 0.999 ** step, lr: 1e-2, weightDecay: 0.1, decay: name === 'w', gradScale: step === 2 ? 0.25 : 1 }));
      }
      opt.apply(grads, () => 1e-2, step === 2 ? 0.25 : 1);
    }
    expect(Buffer.from((w.dataSync() as Float32Array).buffer).equals(Buffer.from(expected.get('w')![0].buffer))).toBe(true);
    expect(Buffer.from((b.dataSync() as Float32Array).buffer).equals(Buffer.from(expected.get('b')![0].buffer))).toBe(true);
  });
});
