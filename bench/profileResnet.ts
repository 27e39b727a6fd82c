/**
 * Where a ResNet training step's time goes on the wasm backend: kernel time by kernel, and by kernel and shapes.
 *   npx tsx bench/profileResnet.ts [method] [blocksPerStage]     (method: full, residual-series, ...; default full 4)
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/tf/backend';
import { ResNet } from '../src/engine/families/resnet/network';
import { ResNetDomainModel } from '../src/engine/families/resnet/model';
import { VisionMethodType } from '../src/engine/families/resnet/methods';
import { Rng } from '../src/engine/util/random';

(async () => {
  await initBackend((process.env.BACKEND as 'wasm' | 'cpu' | undefined) ?? 'wasm');
  const method = (process.argv[2] ?? 'full') as VisionMethodType;
  const blocks = Number(process.argv[3] ?? 4);
  const net = ResNet.init({ modelType: 'resnet', inputChannels: 1, imageSize: 28, widths: [16, 32, 64], blocksPerStage: blocks }, new Rng(1));
  const model = ResNetDomainModel.create(net, method, 'd', Array.from({ length: 10 }, (_, i) => `c${i}`), 2);
  const B = 32;
  const x = tf.randomNormal([B, 28, 28, 1], 0, 1, 'float32', 3) as tf.Tensor4D;
  const labels = Int32Array.from({ length: B }, (_, i) => i % 10);
  const step = () => {
    const { grads } = model.lossAndGradients(x, labels);
    for (const g of grads.values()) g.dispose();
  };
  step();
  const t0 = performance.now();
  step();
  step();
  console.log(`${method}, ${blocks} blocks per stage: step ms ${((performance.now() - t0) / 2).toFixed(0)}; tensors ${tf.memory().numTensors}`);
  const prof = await tf.profile(() => step());
  const by = new Map<string, [number, number]>();
  for (const k of prof.kernels) {
    const e = by.get(k.name) ?? [0, 0];
    by.set(k.name, [e[0] + 1, e[1] + (k.kernelTimeMs as number)]);
  }
  const total = [...by.values()].reduce((a, b) => a + b[1], 0);
  console.log(`kernel total ms ${total.toFixed(0)} in ${prof.kernels.length} kernels; peak bytes ${(prof.peakBytes / 2 ** 20).toFixed(0)} MiB`);
  for (const [n, [c, t]] of [...by].sort((a, b) => b[1][1] - a[1][1]).slice(0, 25)) console.log(`${n.padEnd(28)} ${String(c).padStart(5)} ${t.toFixed(1).padStart(8)} ${((100 * t) / total).toFixed(1).padStart(5)}%`);
  const shapes = new Map<string, [number, number]>();
  for (const k of prof.kernels) {
    const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
    const e = shapes.get(key) ?? [0, 0];
    shapes.set(key, [e[0] + 1, e[1] + (k.kernelTimeMs as number)]);
  }
  console.log('--- by kernel and input shapes');
  for (const [key, [c, t]] of [...shapes].sort((a, b) => b[1][1] - a[1][1]).slice(0, 40)) console.log(`${key.slice(0, 90).padEnd(90)} ${String(c).padStart(4)} ${t.toFixed(1).padStart(8)}`);
})();
