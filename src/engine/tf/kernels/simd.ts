import * as tf from '@tensorflow/tfjs-core';
import { rngInitialState, rngStateAfter } from '../../util/random';
import { activationsWasmBase64 } from './activationsWasm';
import { adamwWasmBase64 } from './adamwWasm';
import { batchMatMulWasmBase64 } from './batchMatMulWasm';
import { convWasmBase64 } from './convWasm';
import { dropoutWasmBase64 } from './dropoutWasm';
import { rowsWasmBase64 } from './rowsWasm';
import { transposeWasmBase64 } from './transposeWasm';

/**
 * Hand-written WebAssembly SIMD kernels (the .wat files beside this one) for what tfjs's wasm backend does
 * slowly:
 * - batched products of small matrices (the attention products: examples x heads matrices of 64 x 64), which
 *   tfjs runs through a plain loop at about 1.7 GFLOP/s while 2-D matMuls go through XNNPACK;
 * - GELU and quick GELU with their gradients, one pass over memory each instead of five to eight tfjs ops
 *   (exact GELU also needs tfjs's erf, the costliest elementwise kernel on wasm);
 * - LayerNorm (with the residual add before it folded in) and its gradient, one pass each instead of about ten
 *   and fifteen tfjs ops, and the column sum of a bias gradient (tfjs would run a matMul by a row of ones, and
 *   XNNPACK packs its fresh right operand first);
 * - 2-D transposes in 4 x 4 SIMD blocks (tfjs moves one element at a time);
 * - inverted dropout drawing its mask in the kernel from the engine's seeded generator (the mask JS would
 *   draw, bit for bit): no mask array made in JS, copied into the heap, or saved for the gradient.
 * - AdamW's update of a parameter and its two moments, one pass instead of fourteen tfjs ops (the same floats);
 * - im2col, col2im, a filter flip and BatchNorm's passes for the ResNet's convolutions (conv.wat), which
 *   ../conv.ts registers and uses through registerWasmKernel.
 *
 * On the wasm backend the kernels are registered as tfjs kernels and instantiated on the backend's own memory,
 * so they read and write tensors where they lie: no copies. On the cpu backend (the fallback) the batched
 * matMul copies through a private memory and the activations use tfjs ops. Native TensorFlow keeps its own.
 */

type Bmm = (a: number, b: number, c: number, batch: number, n: number, k: number, m: number, sI: number, sK: number) => void;
type BmmNT = (a: number, b: number, c: number, batch: number, n: number, k: number, m: number) => void;
type Unary = (x: number, y: number, n: number) => void;
type UnaryGrad = (x: number, dy: number, dx: number, n: number) => void;
type LayerNormFn = (x: number, r: number, res: number, gamma: number, beta: number, y: number, rows: number, d: number, eps: number) => void;
type LayerNormGradFn = (x: number, r: number, res: number, gamma: number, dy: number, ds: number, dgamma: number, dbeta: number, rows: number, d: number, eps: number) => void;
type ColumnSumFn = (x: number, y: number, rows: number, d: number) => void;
type TransposeFn = (x: number, y: number, rows: number, cols: number) => void;
type DropoutFn = (x: number, y: number, n: number, state: number, threshold: number, keepAll: number, scale: number) => void;
type AdamWFn = (p: number, g: number, m: number, v: number, pOut: number, mOut: number, vOut: number, n: number, gradScale: number, b1: number, ob1: number, b2: number, ob2: number, c1: number, c2: number, eps: number, lr: number, wd: number, decay: number) => void;
/** conv.wat's kernels (src/engine/tf/conv.ts registers and uses them). */
type PatchFn = (from: number, to: number, batch: number, h: number, w: number, c: number, k: number, s: number, pad: number, ho: number, wo: number) => void;

export interface Kernels {
  memory: WebAssembly.Memory;
  bmm: Bmm;
  bmm_nt: BmmNT;
  gelu: Unary;
  gelu_grad: UnaryGrad;
  quick_gelu: Unary;
  quick_gelu_grad: UnaryGrad;
  layer_norm: LayerNormFn;
  layer_norm_grad: LayerNormGradFn;
  column_sum: ColumnSumFn;
  dropout: DropoutFn;
  adamw: AdamWFn;
  transpose: TransposeFn;
  im2col: PatchFn;
  col2im: PatchFn;
  flip_filter: (w: number, out: number, k: number, cin: number, cout: number) => void;
  bn_stats: (x: number, mean: number, variance: number, rows: number, c: number) => void;
  bn_apply: (x: number, mean: number, scale: number, shift: number, y: number, rows: number, c: number) => void;
  bn_grad_sums: (x: number, dy: number, mean: number, rstd: number, sdy: number, sdyx: number, rows: number, c: number) => void;
  bn_grad_apply: (dy: number, x: number, mean: number, a: number, b: number, cc: number, dx: number, rows: number, c: number) => void;
}

export type FusedActivation = 'gelu' | 'quick_gelu';

/** The kernel modules (the .wat files beside this one, assembled into base64 by scripts/build-kernels.mjs). */
const SOURCES = [batchMatMulWasmBase64, activationsWasmBase64, rowsWasmBase64, dropoutWasmBase64, transposeWasmBase64, convWasmBase64, adamwWasmBase64];
let modules: WebAssembly.Module[] | undefined;
let simdSupported: boolean | undefined;

function compile(): boolean {
  if (simdSupported !== undefined) return simdSupported;
  try {
    modules = SOURCES.map((base64) => new WebAssembly.Module(Buffer.from(base64, 'base64')));
    simdSupported = true;
  } catch {
    simdSupported = false; // no WebAssembly SIMD here: tfjs's own kernels are used
  }
  return simdSupported;
}

/** Every module instantiated on `memory`; their exports (distinct names) together are the kernels. */
function instantiate(memory: WebAssembly.Memory): Kernels {
  const env = { env: { memory } };
  const exports = modules!.map((m) => new WebAssembly.Instance(m, env).exports);
  return Object.assign({ memory }, ...exports) as Kernels;
}

export function simdKernelAvailable(): boolean {
  return compile();
}

// ---- the wasm backend: kernels on the backend's own memory ---------------------------------------------

/** What these kernels use of tfjs's wasm backend (BackendWasm): its heap and where each tensor lies in it. */
interface WasmBackendLike {
  wasm: { asm?: { memory?: WebAssembly.Memory }; wasmMemory?: WebAssembly.Memory };
  dataIdMap: { get(dataId: unknown): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

const onBackend = new WeakMap<object, Kernels | null>();

function kernelsOn(backend: WasmBackendLike): Kernels | null {
  if (onBackend.has(backend)) return onBackend.get(backend)!;
  const memory = backend.wasm?.asm?.memory ?? backend.wasm?.wasmMemory;
  let kernels: Kernels | null = null;
  try {
    if (compile() && memory instanceof WebAssembly.Memory) kernels = instantiate(memory);
  } catch {
    // a memory our modules cannot import (a shared one, of a threaded build): tfjs's own kernels are used
  }
  onBackend.set(backend, kernels);
  return kernels;
}

const BMM = 'AdapterLabBatchMatMul';
const ACT = 'AdapterLabActivation';
const ACT_GRAD = 'AdapterLabActivationGrad';
const LN = 'AdapterLabLayerNorm';
const ADD_LN = 'AdapterLabAddLayerNorm';
const LN_GRAD = 'AdapterLabLayerNormGrad';
const COLUMN_SUM = 'AdapterLabColumnSum';
const DROPOUT = 'AdapterLabDropout';
const TRANSPOSE = 'AdapterLabTranspose';
const ADAMW = 'AdapterLabAdamW';

interface BmmAttrs {
  transposeA: boolean;
  transposeB: boolean;
}

/** [batch, n, k] x [batch, k, m] with op(A) = A^T when transposeA (A stored [batch, k, n]), likewise B. */
function bmmShapes(a: number[], b: number[], { transposeA, transposeB }: BmmAttrs): { batch: number; n: number; k: number; m: number } {
  const [batch, a1, a2] = a;
  const [n, k] = transposeA ? [a2, a1] : [a1, a2];
  const [kb, m] = transposeB ? [b[2], b[1]] : [b[1], b[2]];
  if (b[0] !== batch || kb !== k || (transposeA && transposeB)) {
    throw new Error(`batchedMatMul: shapes [${a}]${transposeA ? '^T' : ''} and [${b}]${transposeB ? '^T' : ''} do not match`);
  }
  return { batch, n, k, m };
}

/**
 * The gradients of C = op(A) op(B), each again one of the kernel's forms (no operand transposed in memory):
 * A B: dA = dC B^T, dB = A^T dC; A B^T: dA = dC B, dB = dC^T A; A^T B: dA = B dC^T, dB = A dC.
 */
export function batchedMatMulGrads(a: tf.Tensor3D, b: tf.Tensor3D, dc: tf.Tensor3D, flags: BmmAttrs): [tf.Tensor3D, tf.Tensor3D] {
  return [batchedMatMulGrad(a, b, dc, flags, 0), batchedMatMulGrad(a, b, dc, flags, 1)];
}

/** One of batchedMatMulGrads: dA (which = 0) or dB (which = 1). */
function batchedMatMulGrad(a: tf.Tensor3D, b: tf.Tensor3D, dc: tf.Tensor3D, { transposeA, transposeB }: BmmAttrs, which: 0 | 1): tf.Tensor3D {
  if (transposeB) return which === 0 ? batchedMatMul(dc, b) : batchedMatMul(dc, a, { transposeA: true });
  if (transposeA) return which === 0 ? batchedMatMul(b, dc, { transposeB: true }) : batchedMatMul(a, dc);
  return which === 0 ? batchedMatMul(dc, b, { transposeB: true }) : batchedMatMul(a, dc, { transposeA: true });
}

/**
 * Registers a kernel of ours for the wasm backend: it allocates the float32 outputs in the backend's heap and
 * hands `run` the byte offsets of the inputs (in `names` order) and of the outputs (one per shape `outShapes`
 * gives; a kernel with one output returns it alone).
 */
export function registerWasmKernel(
  kernelName: string,
  names: string[],
  outShapes: (shapes: number[][], attrs: tf.NamedAttrMap) => number[][],
  run: (kern: Kernels, inputs: number[], outs: number[], shapes: number[][], attrs: tf.NamedAttrMap) => void,
): void {
  tf.registerKernel({
    kernelName,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs = {} }) => {
      const be = backend as unknown as WasmBackendLike;
      const offset = (t: tf.TensorInfo) => be.dataIdMap.get(t.dataId).memoryOffset;
      const ins = names.map((n) => inputs[n] as tf.TensorInfo);
      const shapes = ins.map((t) => t.shape);
      const outs = outShapes(shapes, attrs).map((shape) => be.makeOutput(shape, 'float32'));
      run(kernelsOn(be)!, ins.map(offset), outs.map(offset), shapes, attrs);
      return outs.length === 1 ? outs[0] : outs;
    },
  });
}

function register(): void {
  if (tf.getKernel(BMM, 'wasm')) return;
  const flagsOf = (attrs: tf.NamedAttrMap) => attrs as unknown as BmmAttrs;
  const fnOf = (attrs: tf.NamedAttrMap) => (attrs as { fn: FusedActivation }).fn;
  registerWasmKernel(
    BMM,
    ['a', 'b'],
    ([a, b], attrs) => {
      const { batch, n, m } = bmmShapes(a, b, flagsOf(attrs));
      return [[batch, n, m]];
    },
    (kern, [a, b], [out], [aShape, bShape], attrs) => {
      const flags = flagsOf(attrs);
      const { batch, n, k, m } = bmmShapes(aShape, bShape, flags);
      if (flags.transposeB) kern.bmm_nt(a, b, out, batch, n, k, m);
      else kern.bmm(a, b, out, batch, n, k, m, flags.transposeA ? 4 : 4 * k, flags.transposeA ? 4 * n : 4);
    },
  );
  registerWasmKernel(ACT, ['x'], ([x]) => [x], (kern, [x], [out], [shape], attrs) => kern[fnOf(attrs)](x, out, tf.util.sizeFromShape(shape)));
  registerWasmKernel(ACT_GRAD, ['x', 'dy'], ([x]) => [x], (kern, [x, dy], [out], [shape], attrs) => kern[`${fnOf(attrs)}_grad`](x, dy, out, tf.util.sizeFromShape(shape)));
  const epsOf = (attrs: tf.NamedAttrMap) => (attrs as { eps: number }).eps;
  registerWasmKernel(LN, ['x', 'gamma', 'beta'], ([x]) => [x], (kern, [x, gamma, beta], [y], [[rows, d]], attrs) =>
    kern.layer_norm(x, 0, 0, gamma, beta, y, rows, d, epsOf(attrs)),
  );
  registerWasmKernel(ADD_LN, ['x', 'r', 'gamma', 'beta'], ([x]) => [x], (kern, [x, r, gamma, beta], [y], [[rows, d]], attrs) =>
    kern.layer_norm(x, r, 1, gamma, beta, y, rows, d, epsOf(attrs)),
  );
  // Inputs x, r (x again, unread, without a residual), gamma, dy; outputs ds, dgamma, dbeta.
  registerWasmKernel(LN_GRAD, ['x', 'r', 'gamma', 'dy'], ([x, , gamma]) => [x, gamma, gamma], (kern, [x, r, gamma, dy], [ds, dgamma, dbeta], [[rows, d]], attrs) =>
    kern.layer_norm_grad(x, r, (attrs as { residual: boolean }).residual ? 1 : 0, gamma, dy, ds, dgamma, dbeta, rows, d, epsOf(attrs)),
  );
  registerWasmKernel(DROPOUT, ['x'], ([x]) => [x], (kern, [x], [y], [shape], attrs) => {
    const { state, threshold, keepAll, scale } = attrs as unknown as DropoutAttrs;
    kern.dropout(x, y, tf.util.sizeFromShape(shape), state, threshold, keepAll ? 1 : 0, scale);
  });
  // Outputs p', m', v'.
  registerWasmKernel(ADAMW, ['p', 'g', 'm', 'v'], ([p]) => [p, p, p], (kern, [p, g, m, v], [pOut, mOut, vOut], [shape], attrs) => {
    const a = attrs as unknown as AdamWAttrs;
    kern.adamw(p, g, m, v, pOut, mOut, vOut, tf.util.sizeFromShape(shape), a.gradScale, a.beta1, 1 - a.beta1, a.beta2, 1 - a.beta2, a.c1, a.c2, a.epsilon, a.lr, a.weightDecay, a.decay ? 1 : 0);
  });
  registerWasmKernel(TRANSPOSE, ['x'], ([[rows, cols]]) => [[cols, rows]], (kern, [x], [y], [[rows, cols]]) => kern.transpose(x, y, rows, cols));
  registerWasmKernel(COLUMN_SUM, ['x'], ([[, d]]) => [[d]], (kern, [x], [y], [[rows, d]]) => kern.column_sum(x, y, rows, d));
  // Registered gradients: what they save is shared, not copied (the backend's Identity shares memory, backend.ts).
  tf.registerGradient({
    kernelName: BMM,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved as tf.Tensor3D[];
      const flags = flagsOf(attrs);
      // Each thunk computes only its own operand's gradient (a frozen operand's is never asked for).
      const grad = (which: 0 | 1) => () => batchedMatMulGrad(a, b, dy as tf.Tensor3D, flags, which);
      return { a: grad(0), b: grad(1) };
    },
  });
  tf.registerGradient({
    kernelName: ACT,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => ({ x: () => fusedActivationGrad(saved[0], dy as tf.Tensor, fnOf(attrs)) }),
  });
  // One gradient kernel call gives every input's gradient; made before the thunks, so that what a thunk does
  // not return (dgamma of a frozen gamma) is freed with the rest of the backward pass. s = x + r, so r's
  // gradient is x's: the same memory under a second tensor (a reshape), which each consumer may dispose.
  const layerNormGrad = (x: tf.Tensor, r: tf.Tensor | null, gamma: tf.Tensor, dy: tf.Tensor, attrs: tf.NamedAttrMap) => {
    const gradAttrs = { eps: epsOf(attrs), residual: r !== null } as unknown as tf.NamedAttrMap;
    const [ds, dgamma, dbeta] = tf.engine().runKernel(LN_GRAD, { x, r: r ?? x, gamma, dy }, gradAttrs) as tf.Tensor[];
    return { ds, dgamma, dbeta };
  };
  tf.registerGradient({
    kernelName: LN,
    inputsToSave: ['x', 'gamma'],
    gradFunc: (dy, [x, gamma], attrs) => {
      const g = layerNormGrad(x, null, gamma, dy as tf.Tensor, attrs);
      return { x: () => g.ds, gamma: () => g.dgamma, beta: () => g.dbeta };
    },
  });
  tf.registerGradient({
    kernelName: ADD_LN,
    inputsToSave: ['x', 'r', 'gamma'],
    gradFunc: (dy, [x, r, gamma], attrs) => {
      const g = layerNormGrad(x, r, gamma, dy as tf.Tensor, attrs);
      return { x: () => g.ds, r: () => tf.reshape(g.ds, g.ds.shape), gamma: () => g.dgamma, beta: () => g.dbeta };
    },
  });
  // dx = dy times the same mask: the same kernel with the same seed on dy. Nothing saved.
  tf.registerGradient({
    kernelName: DROPOUT,
    gradFunc: (dy, saved, attrs) => ({ x: () => tf.engine().runKernel(DROPOUT, { x: dy as tf.Tensor }, attrs) as tf.Tensor }),
  });
  tf.registerGradient({
    kernelName: TRANSPOSE,
    gradFunc: (dy) => ({ x: () => transpose2d(dy as tf.Tensor2D) }),
  });
  tf.registerGradient({
    kernelName: COLUMN_SUM,
    gradFunc: (dy, saved, attrs) => ({ x: () => tf.broadcastTo(dy as tf.Tensor, [(attrs as { rows: number }).rows, (dy as tf.Tensor).shape[0]]) }),
  });
}

/** Whether the kernels run on the current backend's own memory (the wasm backend, with SIMD). */
export function onWasmBackend(): boolean {
  if (tf.getBackend() !== 'wasm') return false;
  if (kernelsOn(tf.backend() as unknown as WasmBackendLike) === null) return false;
  register();
  return true;
}

// ---- the cpu backend: a private memory, with copies --------------------------------------------------

let privateKernels: Kernels | undefined;

/** A B on the kernel through a private memory (operands stored as multiplied). */
function bmmWithCopies(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  privateKernels ??= instantiate(new WebAssembly.Memory({ initial: 1 }));
  const kern = privateKernels;
  const [batch, n, k] = a.shape;
  const m = b.shape[2];
  const aSize = batch * n * k;
  const bSize = batch * k * m;
  const cSize = batch * n * m;
  const bytes = 4 * (aSize + bSize + cSize);
  if (kern.memory.buffer.byteLength < bytes) kern.memory.grow(Math.ceil((bytes - kern.memory.buffer.byteLength) / 65536));
  const heap = new Float32Array(kern.memory.buffer);
  heap.set(a.dataSync() as Float32Array, 0);
  heap.set(b.dataSync() as Float32Array, aSize);
  kern.bmm(0, 4 * aSize, 4 * (aSize + bSize), batch, n, k, m, 4 * k, 4);
  return tf.tensor3d(heap.slice(aSize + bSize, aSize + bSize + cSize), [batch, n, m]);
}

// ---- what the ops use ------------------------------------------------------------------------------

/** Whether batchedMatMul uses the SIMD kernel on the current backend. */
export function usesSimdKernel(): boolean {
  const backend = tf.getBackend();
  return (backend === 'wasm' || backend === 'cpu') && simdKernelAvailable();
}

/** Transpose of the last two axes, materialised. */
function transposeLast2(t: tf.Tensor3D): tf.Tensor3D {
  return tf.transpose(t, [0, 2, 1]);
}

/**
 * op(A) op(B) for [batch, n, k] x [batch, k, m] -> [batch, n, m], where op transposes the last two axes of an
 * operand stored transposed (transposeA: A is [batch, k, n]; transposeB: B is [batch, m, k]; not both).
 * Differentiable on the wasm backend (registered gradient); callers elsewhere use ops.batchMatMul.
 */
export function batchedMatMul(a: tf.Tensor3D, b: tf.Tensor3D, flags: Partial<BmmAttrs> = {}): tf.Tensor3D {
  const attrs: BmmAttrs = { transposeA: flags.transposeA ?? false, transposeB: flags.transposeB ?? false };
  const { batch } = bmmShapes(a.shape, b.shape, attrs);
  if (batch > 1 && onWasmBackend()) return tf.engine().runKernel(BMM, { a, b }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor3D;
  if (batch === 1 || !usesSimdKernel()) {
    // tfjs's transposed-operand matMul is about ten times slower on wasm than a plain one after a transpose.
    if (tf.getBackend() === 'tensorflow') return tf.matMul(a, b, attrs.transposeA, attrs.transposeB);
    return tf.matMul(attrs.transposeA ? transposeLast2(a) : a, attrs.transposeB ? transposeLast2(b) : b);
  }
  return bmmWithCopies(attrs.transposeA ? transposeLast2(a) : a, attrs.transposeB ? transposeLast2(b) : b);
}

/** Whether batchedMatMul is differentiable by its registered gradient (the wasm kernel) on this backend. */
export function batchedMatMulHasKernelGradient(batch: number): boolean {
  return batch > 1 && onWasmBackend();
}

/**
 * Whether the one-pass elementwise kernels (fusedActivation, fusedDropout: float32, at least 4 elements) run for
 * x on the current backend.
 */
export function usesElementwiseKernels(x: tf.Tensor): boolean {
  return x.dtype === 'float32' && x.size >= 4 && onWasmBackend();
}

/** y = f(x) in one pass. Only where usesElementwiseKernels(x). */
export function fusedActivation(x: tf.Tensor, fn: FusedActivation): tf.Tensor {
  return tf.engine().runKernel(ACT, { x }, { fn }) as tf.Tensor;
}

/** dx = dy f'(x) in one pass. Only where usesElementwiseKernels(x). */
export function fusedActivationGrad(x: tf.Tensor, dy: tf.Tensor, fn: FusedActivation): tf.Tensor {
  return tf.engine().runKernel(ACT_GRAD, { x, dy }, { fn }) as tf.Tensor;
}

/** Whether the row kernels (fusedLayerNorm, fusedColumnSum) run for float32 rows of width d here. */
export function usesRowKernels(x: tf.Tensor): boolean {
  const d = x.shape[x.shape.length - 1];
  return x.dtype === 'float32' && x.rank === 2 && d >= 4 && d % 4 === 0 && onWasmBackend();
}

/**
 * LayerNorm over the last axis of x (of x + residual when given, shapes equal), one pass; differentiable
 * (registered gradient: one pass for x, the residual, gamma and beta). Only where usesRowKernels(x).
 */
export function fusedLayerNorm(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number, residual: tf.Tensor2D | null): tf.Tensor2D {
  const attrs = { eps } as unknown as tf.NamedAttrMap;
  if (residual) return tf.engine().runKernel(ADD_LN, { x, r: residual, gamma, beta }, attrs) as tf.Tensor2D;
  return tf.engine().runKernel(LN, { x, gamma, beta }, attrs) as tf.Tensor2D;
}

/** Sum over the rows of x: [n, d] -> [d], one pass. Only where usesRowKernels(x). */
export function fusedColumnSum(x: tf.Tensor2D): tf.Tensor1D {
  return tf.engine().runKernel(COLUMN_SUM, { x }, { rows: x.shape[0] } as unknown as tf.NamedAttrMap) as tf.Tensor1D;
}

/** The dropout kernel's mask, as Rng(seed) draws it: keep where next() < keep, i.e. its 32-bit hash < keep * 2^32. */
interface DropoutAttrs {
  /** Rng's state after construction from the seed. */
  state: number;
  /** ceil(keep * 2^32) as a uint32 bit pattern (unused when keepAll). */
  threshold: number;
  /** keep * 2^32 rounds past the largest hash: every element is kept. */
  keepAll: boolean;
  /** 1 / keep in float32, the kept elements' factor. */
  scale: number;
}

/**
 * x times the inverted-dropout mask that `new Rng(seed)` would draw element by element (ops.dropoutMask),
 * computed in the kernel; differentiable (the gradient draws the same mask). Only where usesElementwiseKernels(x).
 */
/** `offset`: the mask's first element in the seed's sequence (a shard of a larger batch, ops.ts's dropout). */
export function fusedDropout(x: tf.Tensor, rate: number, seed: number, offset = 0): tf.Tensor {
  const keep = 1 - rate;
  const bound = Math.ceil(keep * 4294967296);
  const attrs: DropoutAttrs = {
    state: rngStateAfter(rngInitialState(seed), offset),
    threshold: bound >= 4294967296 ? 0 : bound | 0,
    keepAll: bound >= 4294967296,
    scale: Math.fround(1 / keep),
  };
  return tf.engine().runKernel(DROPOUT, { x }, attrs as unknown as tf.NamedAttrMap);
}

/** AdamW's constants for one parameter (each rounded to float32 as tfjs rounds a scalar). */
export interface AdamWAttrs {
  beta1: number;
  beta2: number;
  epsilon: number;
  /** 1 - beta1^t and 1 - beta2^t. */
  c1: number;
  c2: number;
  lr: number;
  weightDecay: number;
  /** Whether the parameter is decayed (weight matrices, not biases or LayerNorm). */
  decay: boolean;
  /** The gradient's factor (global-norm clipping), applied first: g gradScale. */
  gradScale: number;
}

/** AdamW's update of p and its moments m and v by the gradient g, one pass: [p', m', v']. Only where usesElementwiseKernels(p). */
export function fusedAdamW(p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, attrs: AdamWAttrs): [tf.Tensor, tf.Tensor, tf.Tensor] {
  return tf.engine().runKernel(ADAMW, { p, g, m, v }, attrs as unknown as tf.NamedAttrMap) as unknown as [tf.Tensor, tf.Tensor, tf.Tensor];
}

/** x^T for a 2-D x: one SIMD pass in 4 x 4 blocks on the wasm backend (both sides multiples of 4), else tfjs's. */
export function transpose2d(x: tf.Tensor2D): tf.Tensor2D {
  const [rows, cols] = x.shape;
  if (x.dtype === 'float32' && rows % 4 === 0 && cols % 4 === 0 && x.size > 0 && onWasmBackend()) {
    return tf.engine().runKernel(TRANSPOSE, { x }) as tf.Tensor2D;
  }
  return tf.transpose(x);
}
