import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { batchedMatMul, usesSimdKernel } from '../../../src/engine/tf/kernels/batchMatMul';
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

  it('the committed binary is built from the committed .wat source', () => {
    execFileSync(process.execPath, [path.resolve(__dirname, '../../../scripts/build-kernels.mjs'), '--check'], { stdio: 'pipe' });
  });
});
