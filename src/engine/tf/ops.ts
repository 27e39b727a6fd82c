import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../util/random';
import { batchedMatMul, batchedMatMulGrads, batchedMatMulHasKernelGradient, fusedActivation, fusedColumnSum, fusedLayerNorm, fusedDropout, transpose2d, usesElementwiseKernels, usesRowKernels } from './kernels/simd';

/**
 * The few ops whose gradients matter for speed. tfjs's own matMul gradient uses the transposed-operand
 * forms of matMul, which on the wasm backend run about ten times slower than a plain matMul after an
 * explicit transpose (ENVIRONMENT.md). These ops compute the same values with gradients written as
 * explicit transposes, and only for the operands that are trained: a frozen weight costs no dW matMul.
 */

export type TensorFn = (...inputs: tf.Tensor[]) => tf.Tensor;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type CustomGradBody = (...args: any[]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[] };

/** tf.customGrad with loose typing: its declared type cannot express a variable number of inputs. */
export function withGradient(body: CustomGradBody): TensorFn {
  return tf.customGrad(body as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as TensorFn;
}

/**
 * Whether an operand may need a gradient: a trainable variable, or a computed tensor (which may depend on
 * one, e.g. AdapterBias's gated L_alpha weight). Only frozen variables are certain not to.
 */
export function needsGradient(t: tf.Tensor | null | undefined): boolean {
  if (!t) return false;
  return t instanceof tf.Variable ? t.trainable : true;
}

/**
 * What a gradient function reads, saved the cheap way. tfjs's save() clones every tensor so that it outlives
 * the forward pass's tidy (on wasm a shared reference since backend.ts's Identity; elsewhere it may copy);
 * variables outlive it anyway, so they are read directly and only computed tensors are saved. The returned
 * function gives back, in order, each tensor as the gradient function should read it (from the saved list, or
 * the variable itself; null stays null).
 */
export function saveForBackward(save: tf.GradSaveFunc, tensors: (tf.Tensor | null)[]): (saved: tf.Tensor[]) => (tf.Tensor | null)[] {
  const computed = tensors.filter((t): t is tf.Tensor => t !== null && !(t instanceof tf.Variable));
  save(computed);
  return (saved) => {
    let k = 0;
    return tensors.map((t) => (t === null ? null : t instanceof tf.Variable ? t : saved[k++]));
  };
}

/**
 * Sum over rows, [n, d] -> [d]: one SIMD pass on the wasm backend; elsewhere a 1 x n by n x d matMul (a
 * reduction over a non-last axis makes tfjs transpose first, while a 2-D matMul runs through the fast kernel).
 */
export function columnSum(x: tf.Tensor2D): tf.Tensor1D {
  if (usesRowKernels(x)) return fusedColumnSum(x);
  return tf.reshape(tf.matMul(tf.ones([1, x.shape[0]]), x), [x.shape[1]]);
}

/**
 * y = x W + b for x [n, in], W [in, out], b [out]. Gradients: dx = dy W^T, dW = x^T dy, db = sum(dy).
 */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D | null): tf.Tensor2D {
  const trainW = needsGradient(w);
  const trainB = b !== null && needsGradient(b);
  const forward = (xx: tf.Tensor2D, ww: tf.Tensor2D, bb: tf.Tensor1D | null) =>
    bb ? tf.fused.matMul({ a: xx, b: ww, bias: bb }) : tf.matMul(xx, ww);

  const inputs: tf.Tensor[] = [x];
  if (trainW) inputs.push(w);
  if (trainB) inputs.push(b as tf.Tensor1D);

  const op = withGradient((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const xx = args[0] as tf.Tensor2D;
    const ww = trainW ? (args[1] as tf.Tensor2D) : w;
    const bb = trainB ? (args[trainW ? 2 : 1] as tf.Tensor1D) : b;
    // Everything gradFunc reads must be saved: tfjs disposes the forward pass's other tensors before backprop.
    // x is read only for dW: a frozen weight's input is not kept.
    const restore = saveForBackward(save, [trainW ? xx : null, ww]);
    return {
      value: forward(xx, ww, bb),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws] = restore(saved) as [tf.Tensor2D | null, tf.Tensor2D];
        const grads: tf.Tensor[] = [tf.matMul(dy as tf.Tensor2D, transposedWeight(ws))];
        if (trainW) {
          // dW = x^T dy. XNNPACK packs a matMul's right operand before multiplying (cached only for a tensor it
          // sees again, never so for these): pack the narrower one, computing dW^T = dy^T x when x is narrower.
          const [inputs, outputs] = ws.shape;
          grads.push(inputs < outputs ? transpose2d(tf.matMul(transpose2d(dy as tf.Tensor2D), xs!)) : tf.matMul(transpose2d(xs!), dy as tf.Tensor2D));
        }
        if (trainB) grads.push(columnSum(dy as tf.Tensor2D));
        return grads;
      },
    };
  });
  return op(...inputs) as tf.Tensor2D;
}

/** Transposes of frozen weights by weight, kept from one training step to the next. */
const frozenTransposes = new Map<tf.Variable, { dataId: object; transposed: tf.Tensor2D }>();

/**
 * W^T for dx = dy W^T. A frozen weight's transpose is made once and kept: tfjs's wasm matMul (XNNPACK) packs
 * its right operand into an operator cached by tensor, so a fresh W^T every step costs a transpose and a
 * packing pass per linear, while a kept one is packed once. Kept until the weight is reassigned or disposed
 * (releaseFrozenTransposes, or the sweep here when another is made).
 */
function transposedWeight(w: tf.Tensor2D): tf.Tensor2D {
  if (!(w instanceof tf.Variable) || w.trainable) return transpose2d(w);
  let entry = frozenTransposes.get(w);
  if (!entry || entry.dataId !== w.dataId) {
    releaseFrozenTransposes((v) => v === w || v.isDisposed);
    entry = { dataId: w.dataId, transposed: tf.keep(transpose2d(w)) };
    frozenTransposes.set(w, entry);
  }
  return entry.transposed;
}

/** Disposes the kept transposes of the frozen weights that `which` picks (all by default). */
export function releaseFrozenTransposes(which: (w: tf.Variable) => boolean = () => true): void {
  for (const [w, entry] of frozenTransposes) {
    if (!which(w)) continue;
    entry.transposed.dispose();
    frozenTransposes.delete(w);
  }
}

/**
 * Batched matMul of [batch, n, k] by [batch, k, m] (or by B^T for B stored [batch, m, k], with transposeB), on
 * the SIMD kernel where it runs, with gradients in the kernel's own forms: no operand is transposed in memory.
 */
export function batchMatMul(a: tf.Tensor3D, b: tf.Tensor3D, transposeB = false): tf.Tensor3D {
  // The wasm kernel has a registered gradient; elsewhere the same gradient formulas through customGrad.
  if (batchedMatMulHasKernelGradient(a.shape[0])) return batchedMatMul(a, b, { transposeB });
  const op = withGradient((aa: tf.Tensor3D, bb: tf.Tensor3D, save: tf.GradSaveFunc) => {
    save([aa, bb]);
    return {
      value: batchedMatMul(aa, bb, { transposeB }),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => batchedMatMulGrads(saved[0] as tf.Tensor3D, saved[1] as tf.Tensor3D, dy as tf.Tensor3D, { transposeA: false, transposeB }),
    };
  });
  return op(a, b) as tf.Tensor3D;
}

/**
 * Embedding lookup. The wasm backend has no UnsortedSegmentSum (the kernel behind tf.gather's gradient),
 * so a trained table gets its gradient from scatterND, which sums the rows of repeated ids.
 */
export function embeddingLookup(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  if (!needsGradient(table)) return frozenLookup(table, ids);
  const op = withGradient((t: tf.Tensor2D, save: tf.GradSaveFunc) => {
    // Saved, not closed over: tfjs disposes the forward pass's intermediates unless they are saved.
    save([ids]);
    return {
      value: tf.gather(t, ids),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.scatterND(tf.reshape(saved[0], [-1, 1]), dy, t.shape)],
    };
  });
  return op(table) as tf.Tensor2D;
}

/** A frozen table's rows as read last, by table (the dataId changes when a variable is assigned). */
const frozenTables = new WeakMap<tf.Tensor, { dataId: object; values: Float32Array }>();

/**
 * Row lookup in a frozen table, copying rows in JS from a copy of the table read once: tfjs's wasm gather
 * walks element by element (about 15 ms for 2,048 rows of 256, against well under 1 ms for the row copies).
 * Native TensorFlow gathers fast itself.
 */
function frozenLookup(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  if (tf.getBackend() === 'tensorflow' || table.dtype !== 'float32') return tf.gather(table, ids);
  let cached = frozenTables.get(table);
  if (!cached || cached.dataId !== table.dataId) {
    cached = { dataId: table.dataId, values: table.dataSync() as Float32Array };
    frozenTables.set(table, cached);
  }
  const [rows, d] = table.shape;
  const idv = ids.dataSync();
  const out = new Float32Array(idv.length * d);
  for (let i = 0; i < idv.length; i++) {
    const id = idv[i];
    if (!(id >= 0 && id < rows)) throw new Error(`embedding lookup: id ${id} is outside the table's ${rows} rows`);
    out.set(cached.values.subarray(id * d, id * d + d), i * d);
  }
  return tf.tensor2d(out, [idv.length, d]);
}

/**
 * LayerNorm over the last axis of x, or of x + residual (BERT's add-and-norm), as BERT computes it (biased
 * variance, eps inside the square root), with its closed-form gradient: with g = dy * gamma and xhat the
 * normalised input, dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), dgamma = sum(dy * xhat), dbeta = sum(dy).
 * On the wasm backend one SIMD kernel each way (kernels/rows.wat, the add folded in); elsewhere tfjs ops, about
 * half those of the autodiff gradient.
 */
export function layerNorm(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number, residual: tf.Tensor2D | null = null): tf.Tensor2D {
  if (residual && !tf.util.arraysEqual(residual.shape, x.shape)) throw new Error(`layerNorm: residual [${residual.shape}] does not match x [${x.shape}]`);
  if (usesRowKernels(x)) return fusedLayerNorm(x, gamma, beta, eps, residual);
  if (residual) return layerNorm(tf.add(x, residual), gamma, beta, eps);
  const trainGamma = needsGradient(gamma);
  const trainBeta = needsGradient(beta);
  const inputs: tf.Tensor[] = [x];
  if (trainGamma) inputs.push(gamma);
  if (trainBeta) inputs.push(beta);
  const op = withGradient((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const xx = args[0] as tf.Tensor2D;
    const gg = trainGamma ? (args[1] as tf.Tensor1D) : gamma;
    const bb = trainBeta ? (args[trainGamma ? 2 : 1] as tf.Tensor1D) : beta;
    const mean = tf.mean(xx, -1, true);
    const centered = tf.sub(xx, mean);
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(centered), -1, true), eps));
    const xhat = tf.mul(centered, rstd);
    const restore = saveForBackward(save, [xhat, rstd, gg]);
    return {
      value: tf.add(tf.mul(xhat, gg), bb),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, rs, gm] = restore(saved) as tf.Tensor[];
        const g = tf.mul(dy, gm);
        const dx = tf.mul(rs, tf.sub(tf.sub(g, tf.mean(g, -1, true)), tf.mul(xh, tf.mean(tf.mul(g, xh), -1, true))));
        const grads: tf.Tensor[] = [dx];
        if (trainGamma) grads.push(columnSum(tf.mul(dy, xh) as tf.Tensor2D));
        if (trainBeta) grads.push(columnSum(dy as tf.Tensor2D));
        return grads;
      },
    };
  });
  return op(...inputs) as tf.Tensor2D;
}

export type Activation = 'gelu' | 'gelu_new' | 'gelu_pytorch_tanh' | 'quick_gelu' | 'relu' | 'swish' | 'silu' | 'tanh';

/** Activations by their Hugging Face names (config.json `hidden_act`) and the adapter non-linearities. */
/** The `hidden_act` values `activate` computes, by Hugging Face's names (ACT2FN). */
export const ACTIVATIONS = ['gelu', 'gelu_new', 'gelu_pytorch_tanh', 'quick_gelu', 'relu', 'swish', 'silu', 'tanh'];

export function activate(x: tf.Tensor, fn: string): tf.Tensor {
  switch (fn) {
    case 'gelu': // exact, erf-based, as BERT uses
      return gelu(x);
    case 'gelu_new':
    case 'gelu_pytorch_tanh': {
      const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
      return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(inner)));
    }
    case 'quick_gelu': // x * sigmoid(1.702 x)
      return usesElementwiseKernels(x) ? fusedActivation(x, 'quick_gelu') : tf.mul(x, tf.sigmoid(tf.mul(x, 1.702)));
    case 'relu':
      return tf.relu(x);
    case 'swish':
    case 'silu':
      return tf.mul(x, tf.sigmoid(x));
    case 'tanh':
      return tf.tanh(x);
    default:
      throw new Error(`unknown activation "${fn}"`);
  }
}

/**
 * Exact GELU, x * Phi(x). On the wasm backend one SIMD kernel each way (kernels/activations.wat), saving only
 * x. Elsewhere tfjs ops, with the gradient Phi(x) + x * phi(x) written out: the forward pass saves Phi(x), so
 * the backward pass needs no second erf.
 */
function gelu(x: tf.Tensor): tf.Tensor {
  if (usesElementwiseKernels(x)) return fusedActivation(x, 'gelu'); // gradient registered with the kernel
  const op = withGradient((xx: tf.Tensor, save: tf.GradSaveFunc) => {
    const cdf = tf.mul(tf.add(tf.erf(tf.mul(xx, Math.SQRT1_2)), 1), 0.5);
    save([xx, cdf]);
    return {
      value: tf.mul(xx, cdf),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, phiCdf] = saved;
        const pdf = tf.mul(tf.exp(tf.mul(tf.square(xs), -0.5)), 1 / Math.sqrt(2 * Math.PI));
        return [tf.mul(dy, tf.add(phiCdf, tf.mul(xs, pdf)))];
      },
    };
  });
  return op(x);
}

/**
 * The rows of the whole batch that this process computes (data-parallel training, src/engine/parallel): every
 * dropped tensor is batch-major (example r's elements are one contiguous run), so a shard of rows
 * [firstRow, firstRow + rows) draws the elements of the whole batch's mask from firstRow * (size / rows) on:
 * the masks are drawn per example of the batch, not per worker, whatever the number of workers.
 */
let batchShard: { firstRow: number; rows: number } | null = null;

/** Runs fn with dropout masks drawn as rows [firstRow, firstRow + rows) of a larger batch (see batchShard). */
export function withBatchShard<T>(firstRow: number, rows: number, fn: () => T): T {
  const before = batchShard;
  batchShard = firstRow === 0 ? null : { firstRow, rows };
  try {
    return fn();
  } finally {
    batchShard = before;
  }
}

/** Where this tensor's mask starts in the whole batch's mask sequence (0 outside a shard). */
function maskOffset(x: tf.Tensor): number {
  if (!batchShard) return 0;
  const perRow = x.size / batchShard.rows;
  if (!Number.isInteger(perRow)) throw new Error(`dropout on a tensor of shape [${x.shape}] that is not batch-major for a shard of ${batchShard.rows} rows`);
  return batchShard.firstRow * perRow;
}

/**
 * Inverted dropout with a mask drawn by the run's seeded generator: on the wasm backend inside one SIMD kernel
 * (the same mask, bit for bit, with nothing made in JS or saved for the gradient); elsewhere the mask is drawn
 * in JS, one multiply on the backend instead of tf.dropout's random-uniform, add, floor, divide and multiply
 * passes. Its gradient is dy times the same mask.
 */
export function dropout(x: tf.Tensor, rate: number, seed: number | null): tf.Tensor {
  if (rate <= 0 || seed === null) return x;
  const offset = maskOffset(x);
  if (usesElementwiseKernels(x)) return fusedDropout(x, rate, seed, offset);
  return tf.mul(x, tf.tensor(dropoutMask(x.size, rate, seed, offset), x.shape));
}

/**
 * Dropout on a tensor the whole batch shares (a prefix-tuning's prefix, computed once per step, not per example):
 * every shard draws the same mask, the one a single process draws, so the summed gradients are the same.
 */
export function sharedDropout(x: tf.Tensor, rate: number, seed: number | null): tf.Tensor {
  if (rate <= 0 || seed === null) return x;
  if (usesElementwiseKernels(x)) return fusedDropout(x, rate, seed, 0);
  return tf.mul(x, tf.tensor(dropoutMask(x.size, rate, seed, 0), x.shape));
}

/**
 * The inverted-dropout mask of `size` elements for a seed: 1 / keep where Rng(seed).next() < keep, else 0;
 * with `offset`, elements offset .. offset + size - 1 of that sequence.
 */
export function dropoutMask(size: number, rate: number, seed: number, offset = 0): Float32Array {
  const keep = 1 - rate;
  const mask = new Float32Array(size);
  const rng = new Rng(seed);
  rng.skip(offset);
  for (let i = 0; i < mask.length; i++) mask[i] = rng.next() < keep ? 1 / keep : 0;
  return mask;
}
