import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { batchMatMul, embeddingLookup, linear } from '../../../src/engine/tf/ops';
import { maxAbsDiff, useBackend } from '../../helpers/fixtures';

/** The transpose-free gradients must equal tfjs's own gradients of the plain ops. */
describe('ops with hand-written gradients', () => {
  beforeAll(useBackend);

  const rand = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);
  // Variables typed as the ranks the ops take.
  const v2 = (shape: number[], seed: number, trainable = true) => tf.variable(rand(shape, seed), trainable) as unknown as tf.Variable<tf.Rank.R2> & tf.Tensor2D;
  const v3 = (shape: number[], seed: number) => tf.variable(rand(shape, seed), true) as unknown as tf.Variable<tf.Rank.R3> & tf.Tensor3D;
  const v1 = (shape: number[], seed: number) => tf.variable(rand(shape, seed), true) as unknown as tf.Variable<tf.Rank.R1> & tf.Tensor1D;

  // [n, in] x [in, out]: into a narrower output dW = x^T dy; into a wider one dW = (dy^T x)^T (see ops.linear).
  for (const [n, inputs, outputs] of [
    [5, 4, 3],
    [8, 4, 12],
  ]) {
    it(`linear [${n}, ${inputs}] x [${inputs}, ${outputs}]: dx, dW, db equal the autodiff gradients of x W + b`, () => {
      const x = v2([n, inputs], 1);
      const w = v2([inputs, outputs], 2);
      const b = v1([outputs], 3);
      const dy = rand([n, outputs], 4);
      const ours = tf.variableGrads(() => tf.sum(tf.mul(linear(x, w, b), dy)), [x, w, b]).grads;
      const ref = tf.variableGrads(() => tf.sum(tf.mul(tf.add(tf.matMul(x, w), b), dy)), [x, w, b]).grads;
      for (const v of [x, w, b]) expect(maxAbsDiff(ours[v.name].dataSync(), ref[v.name].dataSync())).toBeLessThan(1e-5);
    });
  }

  it('linear with a frozen weight computes no weight gradient but the right input gradient', () => {
    const x = v2([5, 4], 1);
    const w = v2([4, 3], 2, false);
    const b = v1([3], 3);
    const { grads } = tf.variableGrads(() => tf.sum(tf.square(linear(x, w, b))), [x, b]);
    const ref = tf.variableGrads(() => tf.sum(tf.square(tf.add(tf.matMul(x, w), b))), [x, b]).grads;
    expect(Object.keys(grads).sort()).toEqual([x.name, b.name].sort());
    expect(maxAbsDiff(grads[x.name].dataSync(), ref[x.name].dataSync())).toBeLessThan(1e-4);
    expect(maxAbsDiff(grads[b.name].dataSync(), ref[b.name].dataSync())).toBeLessThan(1e-4);
  });

  it('linear with a frozen weight: the input gradient follows the weight when it is reassigned (the kept W^T is renewed)', () => {
    const x = v2([5, 4], 11);
    const w = v2([4, 3], 12, false);
    const gradOf = (f: () => tf.Tensor) => () => {
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(f())), [x]);
      value.dispose();
      return grads[x.name];
    };
    const gradOfX = gradOf(() => linear(x, w, null));
    const refOfX = gradOf(() => tf.matMul(x, w));
    expect(maxAbsDiff(gradOfX().dataSync(), refOfX().dataSync())).toBeLessThan(1e-4);
    const tensorsAfterFirst = tf.memory().numTensors;
    gradOfX().dispose();
    expect(tf.memory().numTensors).toBe(tensorsAfterFirst); // kept, not made again
    w.assign(rand([4, 3], 13) as tf.Tensor2D);
    expect(maxAbsDiff(gradOfX().dataSync(), refOfX().dataSync())).toBeLessThan(1e-4);
  });

  it('batchMatMul: gradients of both operands equal autodiff', () => {
    const a = v3([2, 3, 4], 5);
    const c = v3([2, 4, 5], 6);
    const dy = rand([2, 3, 5], 7);
    const ours = tf.variableGrads(() => tf.sum(tf.mul(batchMatMul(a, c), dy)), [a, c]).grads;
    const ref = tf.variableGrads(() => tf.sum(tf.mul(tf.matMul(a, c), dy)), [a, c]).grads;
    for (const v of [a, c]) expect(maxAbsDiff(ours[v.name].dataSync(), ref[v.name].dataSync())).toBeLessThan(1e-5);
  });

  it('embeddingLookup of a trained table sums the gradient rows of repeated ids', () => {
    const table = v2([6, 3], 8);
    const ids = tf.tensor1d([1, 4, 1, 0], 'int32');
    const dy = rand([4, 3], 9);
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(embeddingLookup(table, ids), dy)), [table]);
    const g = grads[table.name].arraySync() as number[][];
    const d = dy.arraySync() as number[][];
    for (let k = 0; k < 3; k++) {
      expect(g[1][k]).toBeCloseTo(d[0][k] + d[2][k], 5);
      expect(g[4][k]).toBeCloseTo(d[1][k], 5);
      expect(g[0][k]).toBeCloseTo(d[3][k], 5);
      expect(g[2][k]).toBe(0);
    }
  });
});
