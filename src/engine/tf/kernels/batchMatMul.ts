import * as tf from '@tensorflow/tfjs-core';
import { batchMatMulWasmBase64 } from './batchMatMulWasm';

/**
 * Batched products of small matrices (the attention products: examples x heads matrices of 64 x 64) with a
 * hand-written WebAssembly SIMD kernel (batchMatMul.wat). tfjs's wasm backend runs 2-D matMuls through
 * XNNPACK but batched ones through a plain loop at about 1.7 GFLOP/s; this kernel, copies included, is
 * about 4x faster on those shapes. Used on the wasm and cpu backends; native TensorFlow keeps its own.
 */

interface Kernel {
  memory: WebAssembly.Memory;
  bmm: (a: number, b: number, c: number, batch: number, n: number, k: number, m: number) => void;
}

let kernel: Kernel | null | undefined;

function load(): Kernel | null {
  if (kernel !== undefined) return kernel;
  try {
    const module = new WebAssembly.Module(Buffer.from(batchMatMulWasmBase64, 'base64'));
    const instance = new WebAssembly.Instance(module, {});
    kernel = { memory: instance.exports.memory as WebAssembly.Memory, bmm: instance.exports.bmm as Kernel['bmm'] };
  } catch {
    kernel = null; // no WebAssembly SIMD here: tfjs's own kernel is used
  }
  return kernel;
}

export function simdKernelAvailable(): boolean {
  return load() !== null;
}

/** Whether batchedMatMul uses the SIMD kernel on the current backend. */
export function usesSimdKernel(): boolean {
  const backend = tf.getBackend();
  return (backend === 'wasm' || backend === 'cpu') && simdKernelAvailable();
}

/** [batch, n, k] x [batch, k, m] -> [batch, n, m]. */
export function batchedMatMul(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  const [batch, n, k] = a.shape;
  const m = b.shape[2];
  if (b.shape[0] !== batch || b.shape[1] !== k) throw new Error(`batchedMatMul: shapes [${a.shape}] and [${b.shape}] do not match`);
  if (batch === 1 || !usesSimdKernel()) return tf.matMul(a, b);
  const kern = load()!;
  const aSize = batch * n * k;
  const bSize = batch * k * m;
  const cSize = batch * n * m;
  const bytes = 4 * (aSize + bSize + cSize);
  if (kern.memory.buffer.byteLength < bytes) kern.memory.grow(Math.ceil((bytes - kern.memory.buffer.byteLength) / 65536));
  const heap = new Float32Array(kern.memory.buffer);
  heap.set(a.dataSync() as Float32Array, 0);
  heap.set(b.dataSync() as Float32Array, aSize);
  kern.bmm(0, 4 * aSize, 4 * (aSize + bSize), batch, n, k, m);
  return tf.tensor3d(heap.slice(aSize + bSize, aSize + bSize + cSize), [batch, n, m]);
}
