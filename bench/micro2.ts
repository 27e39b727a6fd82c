import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/tf/backend';
(async () => {
  await initBackend('wasm');
  const time = (name: string, f: () => tf.Tensor | tf.Tensor[]) => {
    tf.tidy(() => { const r = f(); (Array.isArray(r) ? r[0] : r).dataSync(); });
    const n = 5; const t0 = performance.now();
    for (let i = 0; i < n; i++) tf.tidy(() => { const r = f(); (Array.isArray(r) ? r[r.length - 1] : r).dataSync(); });
    console.log(name.padEnd(44), ((performance.now() - t0) / n).toFixed(2), 'ms');
  };
  const a = tf.randomNormal([128, 64, 64]), b = tf.randomNormal([128, 64, 64]);
  time('unstack', () => tf.unstack(a));
  time('split', () => tf.split(a, 128, 0));
  time('slice loop', () => Array.from({ length: 128 }, (_, i) => tf.slice(a, [i, 0, 0], [1, 64, 64])));
  time('split+mm+concat', () => { const as = tf.split(a, 128, 0), bs = tf.split(b, 128, 0); return tf.concat(as.map((x, i) => tf.matMul(tf.reshape(x, [64, 64]) as tf.Tensor2D, tf.reshape(bs[i], [64, 64]) as tf.Tensor2D)), 0); });
  time('bmm', () => tf.matMul(a, b));
})();
(async () => {
  await new Promise((r) => setTimeout(r, 3000));
  const a = tf.randomNormal([128, 64, 64]), b = tf.randomNormal([128, 64, 64]);
  const viaJs = (x: tf.Tensor3D, y: tf.Tensor3D) => {
    const [N, n, k] = x.shape; const m = y.shape[2];
    const xd = x.dataSync() as Float32Array, yd = y.dataSync() as Float32Array;
    const out = new Float32Array(N * n * m);
    for (let i = 0; i < N; i++) {
      const r = tf.tidy(() => tf.matMul(tf.tensor2d(xd.subarray(i * n * k, (i + 1) * n * k), [n, k]), tf.tensor2d(yd.subarray(i * k * m, (i + 1) * k * m), [k, m])).dataSync());
      out.set(r, i * n * m);
    }
    return tf.tensor3d(out, [N, n, m]);
  };
  for (let rep = 0; rep < 2; rep++) {
    let t0 = performance.now(); for (let i = 0; i < 5; i++) tf.tidy(() => viaJs(a as tf.Tensor3D, b as tf.Tensor3D).dataSync()); console.log('via js', ((performance.now() - t0) / 5).toFixed(2));
    t0 = performance.now(); for (let i = 0; i < 5; i++) tf.tidy(() => tf.matMul(a, b).dataSync()); console.log('bmm', ((performance.now() - t0) / 5).toFixed(2));
  }
})();
