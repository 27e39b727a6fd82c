import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/tf/backend';
import { writeTinyBert } from '../test/helpers/tinyModel';
import { loadEncoder } from '../src/engine/model/checkpoint';
import { methodDefinition } from '../src/engine/methods/registry';
import { TaskHead } from '../src/engine/model/head';
import { AdapterModel } from '../src/engine/model/adapterModel';
import { Rng } from '../src/engine/util/random';
import { naiveLoss } from './naive';
(async () => {
  await initBackend('wasm');
  const dir = writeTinyBert(undefined, { layers: 4, hidden: 256, heads: 4, intermediate: 1024, maxPositions: 128 });
  const { encoder } = loadEncoder(dir);
  const rng = new Rng(1);
  const method = methodDefinition('houlsby').create(encoder, { adapterName: 't', config: { type: 'houlsby', bottleneck: 64, nonLinearity: 'gelu', initStd: 0.01, trainLayerNorm: true, leaveOut: [], dropLowest: 0 }, rng });
  const model = new AdapterModel(encoder, method, new TaskHead('t', 'classification', 256, ['a', 'b'], rng));
  const B = 32, T = 64;
  const input = { inputIds: new Int32Array(B * T).map((_, i) => (i * 7) % 60), tokenTypeIds: new Int32Array(B * T), attentionMask: new Float32Array(B * T).fill(1), batchSize: B, seqLen: T };
  const labels = new Float32Array(B).map((_, i) => i % 2);
  const vars = [...model.trainableParams().values()];
  const step = () => { const { value, grads } = tf.variableGrads(() => model.loss(input, labels, { training: true, hiddenDropout: 0.1, attentionDropout: 0.1, rng }), vars); value.dataSync(); for (const g of Object.values(grads)) g.dispose(); value.dispose(); };
  const naive = () => { const { value, grads } = tf.variableGrads(() => naiveLoss(model, input, labels, { training: true, hiddenDropout: 0.1, attentionDropout: 0.1, rng }), vars); value.dataSync(); for (const g of Object.values(grads)) g.dispose(); value.dispose(); };
  if (process.argv[2] === 'naive') { naive(); const t1 = Date.now(); naive(); console.log('naive step ms', Date.now() - t1); }
  step();
  const t0 = Date.now(); step(); step(); console.log('step ms', (Date.now() - t0) / 2);
  const prof = await tf.profile(() => { step(); });
  const by = new Map<string, number>();
  for (const k of prof.kernels) by.set(k.name, (by.get(k.name) ?? 0) + (k.kernelTimeMs as number));
  const total = [...by.values()].reduce((a, b) => a + b, 0);
  console.log('kernel total', total.toFixed(0));
  for (const [n, t] of [...by].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(n.padEnd(20), t.toFixed(1));
  const shapes = new Map<string, [number, number]>();
  for (const k of prof.kernels) if (k.name === 'BatchMatMul' || k.name === '_FusedMatMul') { const key = k.name + ' ' + JSON.stringify(k.inputShapes.slice(0, 2)); const e = shapes.get(key) ?? [0, 0]; shapes.set(key, [e[0] + 1, e[1] + (k.kernelTimeMs as number)]); }
  for (const [key, [n, t]] of [...shapes].sort((a, b) => b[1][1] - a[1][1])) console.log(key.padEnd(60), n, t.toFixed(1));
  // The other kernels by input shapes: where the passes over memory outside the matMuls go.
  const others = new Map<string, [number, number]>();
  for (const k of prof.kernels) if (!['BatchMatMul', '_FusedMatMul', 'AdapterLabBatchMatMul'].includes(k.name)) { const key = k.name + ' ' + JSON.stringify(k.inputShapes); const e = others.get(key) ?? [0, 0]; others.set(key, [e[0] + 1, e[1] + (k.kernelTimeMs as number)]); }
  for (const [key, [n, t]] of [...others].sort((a, b) => b[1][1] - a[1][1]).slice(0, 40)) console.log(key.slice(0, 80).padEnd(80), n, t.toFixed(1));
  console.log('kernels', prof.kernels.length);
})();
