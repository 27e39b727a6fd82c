import * as tf from '@tensorflow/tfjs-core';
import { needsGradient, saveForBackward, withGradient } from './ops';
import { onWasmBackend, registerWasmKernel, transpose2d } from './kernels/simd';

/**
 * Convolutions and BatchNorm for the small-image ResNet (src/engine/families/resnet), fast on the wasm backend.
 *
 * tfjs-wasm has a fast forward convolution (XNNPACK) but no kernel for the filter gradient
 * (Conv2DBackpropFilter), and what one writes instead (nine shifted slices, a concatenation and a matMul) spends
 * most of a training step in slices, their gradients (pads), the concatenation's gradient (a split) and tfjs's
 * transposed-operand matMuls. Here a convolution is one op with its gradient written out, on the SIMD kernels of
 * kernels/conv.wat:
 *   forward  y = tf.conv2d (XNNPACK, no patch matrix);
 *   dW       patches = im2col(x) (one pass), dW = patches^T dy as a plain matMul after a SIMD transpose;
 *   dx       at stride 1 a forward convolution again (XNNPACK), of dy by the flipped filter; at stride 2
 *            dpatches = dy W^T (a plain matMul), dx = col2im(dpatches) (one pass, each pixel gathering its
 *            patch entries);
 * only for the operands that need a gradient (a frozen weight costs no dW). BatchNorm is one pass for the
 * statistics, one for the output, and two for the whole gradient (x, scale and shift), where tfjs's ops take
 * about ten forward and twenty backward.
 *
 * On the cpu backend and native TensorFlow, tf.conv2d has every gradient, and BatchNorm is written with tfjs ops.
 */

const IM2COL = 'AdapterLabIm2Col';
const COL2IM = 'AdapterLabCol2Im';
const FLIP_FILTER = 'AdapterLabFlipFilter';
const BN_STATS = 'AdapterLabBatchNormStats';
const BN_APPLY = 'AdapterLabBatchNormApply';
const BN_GRAD_SUMS = 'AdapterLabBatchNormGradSums';
const BN_GRAD_APPLY = 'AdapterLabBatchNormGradApply';

/** A k x k convolution's geometry: square kernel, the same stride and zero padding on both axes. */
interface PatchAttrs {
  k: number;
  stride: number;
  pad: number;
  /** The image's height and width (col2im's output; im2col reads them from its input). */
  h: number;
  w: number;
}

function outputSize(size: number, { k, stride, pad }: Pick<PatchAttrs, 'k' | 'stride' | 'pad'>): number {
  return Math.floor((size + 2 * pad - k) / stride) + 1;
}

function registerConvKernels(): void {
  if (tf.getKernel(IM2COL, 'wasm')) return;
  const patch = (attrs: tf.NamedAttrMap) => attrs as unknown as PatchAttrs;
  registerWasmKernel(
    IM2COL,
    ['x'],
    ([[b, h, w, c]], attrs) => [[b * outputSize(h, patch(attrs)) * outputSize(w, patch(attrs)), patch(attrs).k ** 2 * c]],
    (kern, [x], [cols], [[b, h, w, c]], attrs) => {
      const p = patch(attrs);
      kern.im2col(x, cols, b, h, w, c, p.k, p.stride, p.pad, outputSize(h, p), outputSize(w, p));
    },
  );
  // dcols [b * ho * wo, k * k * c] -> dx [b, h, w, c]; the batch comes from the rows.
  registerWasmKernel(
    COL2IM,
    ['dcols'],
    ([[rows, kkc]], attrs) => {
      const p = patch(attrs);
      return [[rows / (outputSize(p.h, p) * outputSize(p.w, p)), p.h, p.w, kkc / p.k ** 2]];
    },
    (kern, [dcols], [dx], [[rows, kkc]], attrs) => {
      const p = patch(attrs);
      const [ho, wo] = [outputSize(p.h, p), outputSize(p.w, p)];
      kern.col2im(dcols, dx, rows / (ho * wo), p.h, p.w, kkc / p.k ** 2, p.k, p.stride, p.pad, ho, wo);
    },
  );
  registerWasmKernel(FLIP_FILTER, ['w'], ([[k, kw, i, o]]) => [[k, kw, o, i]], (kern, [w], [out], [[k, , i, o]]) => kern.flip_filter(w, out, k, i, o));
  registerWasmKernel(BN_STATS, ['x'], ([[, c]]) => [[c], [c]], (kern, [x], [mean, variance], [[rows, c]]) => kern.bn_stats(x, mean, variance, rows, c));
  registerWasmKernel(BN_APPLY, ['x', 'mean', 'scale', 'shift'], ([x]) => [x], (kern, [x, mean, scale, shift], [y], [[rows, c]]) =>
    kern.bn_apply(x, mean, scale, shift, y, rows, c),
  );
  registerWasmKernel(BN_GRAD_SUMS, ['x', 'dy', 'mean', 'rstd'], ([[, c]]) => [[c], [c]], (kern, [x, dy, mean, rstd], [sdy, sdyx], [[rows, c]]) =>
    kern.bn_grad_sums(x, dy, mean, rstd, sdy, sdyx, rows, c),
  );
  registerWasmKernel(BN_GRAD_APPLY, ['dy', 'x', 'mean', 'a', 'b', 'c'], ([dy]) => [dy], (kern, [dy, x, mean, a, b, c], [dx], [[rows, channels]]) =>
    kern.bn_grad_apply(dy, x, mean, a, b, c, dx, rows, channels),
  );
}

/** Whether this module's kernels run here (the wasm backend with SIMD), registering them on first use. */
function convKernelsReady(): boolean {
  if (!onWasmBackend()) return false;
  registerConvKernels();
  return true;
}

/** The patch matrix [b * ho * wo, k * k * c] of x [b, h, w, c], rows ordered (b, oy, ox), columns (ky, kx, c). */
function im2col(x: tf.Tensor4D, k: number, stride: number, pad: number): tf.Tensor2D {
  const attrs = { k, stride, pad, h: x.shape[1], w: x.shape[2] };
  return tf.engine().runKernel(IM2COL, { x }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}

/** The adjoint of im2col: the gradient of x [b, h, w, c] from the gradient of its patch matrix. */
function col2im(dcols: tf.Tensor2D, h: number, w: number, k: number, stride: number, pad: number): tf.Tensor4D {
  const attrs = { k, stride, pad, h, w };
  return tf.engine().runKernel(COL2IM, { dcols }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/**
 * A k x k convolution (w [k, k, in, out]) with zero padding `pad` and stride `stride` on both axes, NHWC: the
 * same values as tf.conv2d(x, w, stride, pad), differentiable on every backend.
 */
export function conv2d(x: tf.Tensor4D, w: tf.Tensor4D, stride: number, pad: number): tf.Tensor4D {
  const [kh, kw, inC] = w.shape;
  if (kh !== kw) throw new Error(`conv2d: a square kernel is expected, not ${kh} x ${kw}`);
  if (x.shape[3] !== inC) throw new Error(`conv2d: the input has ${x.shape[3]} channels, the weight ${inC}`);
  if (tf.getBackend() !== 'wasm') return tf.conv2d(x, w, stride, pad);
  if (!convKernelsReady() || x.dtype !== 'float32') return convBySlices(x, w, stride, pad);
  return convWithGradient(x, w, stride, pad);
}

function convWithGradient(x: tf.Tensor4D, w: tf.Tensor4D, stride: number, pad: number): tf.Tensor4D {
  const k = w.shape[0];
  const [inC, outC] = [w.shape[2], w.shape[3]];
  const trainW = needsGradient(w);
  const op = withGradient((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const xx = args[0] as tf.Tensor4D;
    const ww = trainW ? (args[1] as tf.Tensor4D) : w;
    // x is read only for dW: a frozen weight's input is not kept.
    const restore = saveForBackward(save, [trainW ? xx : null, ww]);
    return {
      value: tf.conv2d(xx, ww, stride, pad),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws] = restore(saved) as [tf.Tensor4D | null, tf.Tensor4D];
        const [b, ho, wo] = dy.shape;
        const dy2 = tf.reshape(dy, [b * ho * wo, outC]) as tf.Tensor2D;
        const w2 = tf.reshape(ws, [k * k * inC, outC]) as tf.Tensor2D;
        const grads: tf.Tensor[] = [inputGradient(dy as tf.Tensor4D, ws, w2, x.shape, stride, pad)];
        if (trainW) {
          // A 1 x 1 convolution at stride 1 is a matMul on the [b * h * w, c] view: its patch matrix is x itself.
          const cols = k === 1 && stride === 1 && pad === 0 ? (tf.reshape(xs!, [-1, inC]) as tf.Tensor2D) : im2col(xs!, k, stride, pad);
          // dW = cols^T dy. XNNPACK packs a matMul's right operand first: pack the narrower one (as ops.linear).
          const dw = k * k * inC < outC ? transpose2d(tf.matMul(transpose2d(dy2), cols)) : tf.matMul(transpose2d(cols), dy2);
          grads.push(tf.reshape(dw, w.shape));
        }
        return grads;
      },
    };
  });
  return (trainW ? op(x, w) : op(x)) as tf.Tensor4D;
}

/**
 * dx of a convolution from dy. At stride 1 with "same" padding it is again a convolution: of dy by the filter
 * turned half a turn with its in and out channels swapped (one small kernel; tfjs-wasm's Reverse is slow), on
 * XNNPACK's forward kernel, with no patch matrix (about twice as fast as dy W^T and col2im at 28 x 28 x 16; tfjs-wasm's
 * Conv2DBackpropInput is a plain loop, about ten times slower). Otherwise dpatches = dy W^T (a plain matMul) and
 * col2im; for a 1 x 1 convolution at stride 1, dy W^T is dx.
 */
function inputGradient(dy: tf.Tensor4D, w: tf.Tensor4D, w2: tf.Tensor2D, xShape: [number, number, number, number], stride: number, pad: number): tf.Tensor4D {
  const k = w.shape[0];
  if (k === 1 && stride === 1 && pad === 0) return tf.reshape(tf.matMul(tf.reshape(dy, [-1, w.shape[3]]), transpose2d(w2)), xShape);
  if (stride === 1 && 2 * pad === k - 1) return tf.conv2d(dy, tf.engine().runKernel(FLIP_FILTER, { w }) as tf.Tensor4D, 1, pad);
  return col2im(tf.matMul(tf.reshape(dy, [-1, w.shape[3]]), transpose2d(w2)) as tf.Tensor2D, xShape[1], xShape[2], k, stride, pad);
}

/**
 * The convolution as k * k shifted slices of the padded input, concatenated, and one matMul: differentiable
 * with tfjs's own gradients everywhere. The fallback for a wasm backend without these kernels (no SIMD).
 */
export function convBySlices(x: tf.Tensor4D, w: tf.Tensor4D, stride: number, pad: number): tf.Tensor4D {
  const [B, H, W, C] = x.shape;
  const [k, , , out] = w.shape;
  const geometry = { k, stride, pad };
  const [Ho, Wo] = [outputSize(H, geometry), outputSize(W, geometry)];
  // Zeros past the end where the last window's stride-sized slice would run over (odd sizes at stride 2).
  const extraH = Math.max(0, stride * Ho + k - 1 - (H + 2 * pad));
  const extraW = Math.max(0, stride * Wo + k - 1 - (W + 2 * pad));
  const padded = tf.pad(x, [[0, 0], [pad, pad + extraH], [pad, pad + extraW], [0, 0]]);
  const shifted: tf.Tensor4D[] = [];
  for (let dy = 0; dy < k; dy++) {
    for (let dx = 0; dx < k; dx++) {
      const s = tf.slice(padded, [0, dy, dx, 0], [B, stride * Ho, stride * Wo, C]);
      // Every stride-th row and column, starting at the first (tfjs has no gradient for stridedSlice).
      const grid = tf.reshape(s, [B, Ho, stride, Wo, stride, C]);
      shifted.push(stride === 1 ? s : tf.reshape(tf.slice(grid, [0, 0, 0, 0, 0, 0], [B, Ho, 1, Wo, 1, C]), [B, Ho, Wo, C]));
    }
  }
  // Patch features ordered (dy, dx, c): the row-major order of w's first three axes.
  const patches = tf.reshape(shifted.length === 1 ? shifted[0] : tf.concat(shifted, 3), [B * Ho * Wo, k * k * C]);
  return tf.reshape(tf.matMul(patches, tf.reshape(w, [k * k * C, out])), [B, Ho, Wo, out]);
}

// ---- BatchNorm -----------------------------------------------------------------------------------------

/** Whether the BatchNorm kernels run for x here: float32 on the wasm backend, channels a multiple of 4. */
function usesBatchNormKernels(x: tf.Tensor4D): boolean {
  return x.dtype === 'float32' && x.shape[3] % 4 === 0 && x.size > 0 && convKernelsReady();
}

function rowsOf(x: tf.Tensor4D): tf.Tensor2D {
  const [b, h, w, c] = x.shape;
  return tf.reshape(x, [b * h * w, c]);
}

/**
 * Receives a batch's statistics [c] while they exist, and the rows (batch x height x width) they are over: keep
 * (tf.keep) what is to outlive the forward pass.
 */
export type BatchStatisticsSink = (mean: tf.Tensor1D, variance: tf.Tensor1D, rows: number) => void;

/**
 * Synchronised BatchNorm's exchange between the shards of one training step (parallel/shardSync.ts): each
 * shard's per-channel vector in, every shard's out, in shard order (the same on every shard).
 */
export interface ShardGather {
  gather(values: ArrayLike<number>): Float64Array[];
}

/** The exchange BatchNorm's training mode synchronises over, while withSynchronisedBatchNorm runs; else null. */
let shardGather: ShardGather | null = null;

/**
 * Runs fn (one shard's forward and backward pass of a data-parallel step) with BatchNorm's batch statistics over
 * the whole batch, as SyncBatchNorm computes them: every BatchNorm in training mode combines the shards' means
 * and variances, and its gradient the shards' sums of dy and dy xhat, through `gather`. The shards then compute
 * what one thread computes on the whole batch, up to float summation order, whatever their number.
 */
export function withSynchronisedBatchNorm<T>(gather: ShardGather | null, fn: () => T): T {
  const before = shardGather;
  shardGather = gather;
  try {
    return fn();
  } finally {
    shardGather = before;
  }
}

/** The whole batch's mean, biased variance and rows from each shard's (Chan et al.'s pairwise combination, in shard order). */
function combinedStatistics(gather: ShardGather, mean: tf.Tensor1D, variance: tf.Tensor1D, rows: number): { mean: tf.Tensor1D; variance: tf.Tensor1D; rows: number } {
  const c = mean.size;
  const mine = new Float64Array(2 * c + 1);
  mine[0] = rows;
  mine.set(mean.dataSync(), 1);
  mine.set(variance.dataSync(), 1 + c);
  const shards = gather.gather(mine);
  let total = 0;
  for (const s of shards) total += s[0];
  const m = new Float64Array(c);
  for (const s of shards) for (let j = 0; j < c; j++) m[j] += (s[0] * s[1 + j]) / total;
  const v = new Float64Array(c);
  for (const s of shards) {
    for (let j = 0; j < c; j++) {
      const d = s[1 + j] - m[j];
      v[j] += (s[0] * (s[1 + c + j] + d * d)) / total;
    }
  }
  return { mean: tf.tensor1d(Float32Array.from(m)), variance: tf.tensor1d(Float32Array.from(v)), rows: total };
}

/** The whole batch's sums of dy and dy xhat [c] from each shard's, in shard order. */
function summedOverShards(gather: ShardGather, sdy: tf.Tensor1D, sdyx: tf.Tensor1D): [tf.Tensor1D, tf.Tensor1D] {
  const c = sdy.size;
  const mine = new Float64Array(2 * c);
  mine.set(sdy.dataSync(), 0);
  mine.set(sdyx.dataSync(), c);
  const sum = new Float64Array(2 * c);
  for (const s of gather.gather(mine)) for (let j = 0; j < 2 * c; j++) sum[j] += s[j];
  return [tf.tensor1d(Float32Array.from(sum.subarray(0, c))), tf.tensor1d(Float32Array.from(sum.subarray(c)))];
}

/**
 * BatchNorm over batch, height and width with the batch's statistics: y = (x - mean) / sqrt(var + eps) * gamma
 * + beta, the variance biased (PyTorch's training mode). The gradient reaches x through the statistics as well.
 * `onStatistics` sees the statistics (for the running averages; no gradient flows through what it makes).
 * Inside withSynchronisedBatchNorm the statistics and the gradient's sums are the whole batch's.
 */
export function batchNormTraining(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number, onStatistics?: BatchStatisticsSink): tf.Tensor4D {
  const gather = shardGather;
  if (!usesBatchNormKernels(x)) {
    if (gather) return synchronisedBatchNormOps(x, gamma, beta, eps, gather, onStatistics);
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    onStatistics?.(mean as tf.Tensor1D, variance as tf.Tensor1D, x.shape[0] * x.shape[1] * x.shape[2]);
    const normalised = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
    return tf.add(tf.mul(normalised, gamma), beta);
  }
  const trainGamma = needsGradient(gamma);
  const trainBeta = needsGradient(beta);
  const shardRows = x.shape[0] * x.shape[1] * x.shape[2];
  let rows = shardRows;
  const op = withGradient((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const xx = rowsOf(args[0] as tf.Tensor4D);
    const gg = trainGamma ? (args[1] as tf.Tensor1D) : gamma;
    const bb = trainBeta ? (args[trainGamma ? 2 : 1] as tf.Tensor1D) : beta;
    let [mean, variance] = tf.engine().runKernel(BN_STATS, { x: xx }) as tf.Tensor1D[];
    if (gather) ({ mean, variance, rows } = combinedStatistics(gather, mean, variance, shardRows));
    // Inside the op, where tfjs disposes what the forward pass makes and does not return or save.
    onStatistics?.(mean, variance, rows);
    const rstd = tf.rsqrt(tf.add(variance, eps));
    const y = tf.engine().runKernel(BN_APPLY, { x: xx, mean, scale: tf.mul(gg, rstd), shift: bb }) as tf.Tensor2D;
    const restore = saveForBackward(save, [xx, mean, rstd, gg]);
    return {
      value: tf.reshape(y, x.shape),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, m, rs, gm] = restore(saved) as tf.Tensor[];
        const dy2 = tf.reshape(dy, xs.shape);
        // With xhat = (x - mean) rstd: dbeta = sum dy, dgamma = sum dy xhat, and
        // dx = gamma rstd (dy - sum(dy) / n - xhat sum(dy xhat) / n) = dy a + (x - mean) b + c.
        // Synchronised, the sums in dx are the whole batch's; gamma's and beta's are this shard's part.
        const [sdy, sdyx] = tf.engine().runKernel(BN_GRAD_SUMS, { x: xs, dy: dy2, mean: m, rstd: rs }) as tf.Tensor1D[];
        const [batchSdy, batchSdyx] = gather ? summedOverShards(gather, sdy, sdyx) : [sdy, sdyx];
        const a = tf.mul(gm, rs);
        const b = tf.mul(tf.mul(a, rs), tf.mul(batchSdyx, -1 / rows));
        const c = tf.mul(a, tf.mul(batchSdy, -1 / rows));
        const dx = tf.engine().runKernel(BN_GRAD_APPLY, { dy: dy2, x: xs, mean: m, a, b, c }) as tf.Tensor2D;
        const grads: tf.Tensor[] = [tf.reshape(dx, x.shape)];
        if (trainGamma) grads.push(sdyx);
        if (trainBeta) grads.push(sdy);
        return grads;
      },
    };
  });
  const inputs: tf.Tensor[] = [x];
  if (trainGamma) inputs.push(gamma);
  if (trainBeta) inputs.push(beta);
  return op(...inputs) as tf.Tensor4D;
}

/** Synchronised BatchNorm in tfjs ops (the backends without this module's kernels), its gradient written out. */
function synchronisedBatchNormOps(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number, gather: ShardGather, onStatistics?: BatchStatisticsSink): tf.Tensor4D {
  const op = tf.customGrad((...args: unknown[]) => {
    const [xx, gg, bb] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const local = tf.moments(xx, [0, 1, 2]);
    const { mean, variance, rows } = combinedStatistics(gather, local.mean as tf.Tensor1D, local.variance as tf.Tensor1D, x.shape[0] * x.shape[1] * x.shape[2]);
    onStatistics?.(mean, variance, rows);
    const rstd = tf.rsqrt(tf.add(variance, eps));
    const xhat = tf.mul(tf.sub(xx, mean), rstd);
    save([xhat, rstd, gg]);
    return {
      value: tf.add(tf.mul(xhat, gg), bb) as tf.Tensor4D,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, rs, gm] = saved;
        const sdy = tf.sum(dy, [0, 1, 2]) as tf.Tensor1D;
        const sdyx = tf.sum(tf.mul(dy, xh), [0, 1, 2]) as tf.Tensor1D;
        const [batchSdy, batchSdyx] = summedOverShards(gather, sdy, sdyx);
        const dx = tf.mul(tf.mul(gm, rs), tf.sub(tf.sub(dy, tf.div(batchSdy, rows)), tf.mul(xh, tf.div(batchSdyx, rows))));
        return [dx, sdyx, sdy];
      },
    };
  });
  return op(x, gamma, beta) as tf.Tensor4D;
}

/**
 * BatchNorm with given statistics (evaluation, or a frozen BatchNorm): y = (x - mean) * (gamma / sqrt(var +
 * eps)) + beta, in this order on every backend (one pass on wasm). The statistics are state, never trained.
 */
export function batchNormInference(x: tf.Tensor4D, mean: tf.Tensor, variance: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor4D {
  if (!usesBatchNormKernels(x) || needsGradient(mean) || needsGradient(variance)) {
    const scale = tf.mul(gamma, tf.rsqrt(tf.add(variance, eps)));
    return tf.add(tf.mul(tf.sub(x, mean), scale), beta);
  }
  const trainGamma = needsGradient(gamma);
  const trainBeta = needsGradient(beta);
  const op = withGradient((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const xx = rowsOf(args[0] as tf.Tensor4D);
    const gg = trainGamma ? (args[1] as tf.Tensor1D) : gamma;
    const bb = trainBeta ? (args[trainGamma ? 2 : 1] as tf.Tensor1D) : beta;
    const rstd = tf.rsqrt(tf.add(variance, eps));
    const scale = tf.mul(gg, rstd);
    // x is read only for dgamma.
    const restore = saveForBackward(save, [trainGamma || trainBeta ? xx : null, scale, rstd]);
    return {
      value: tf.reshape(tf.engine().runKernel(BN_APPLY, { x: xx, mean, scale, shift: bb }) as tf.Tensor, x.shape),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, sc, rs] = restore(saved) as tf.Tensor[];
        const dy2 = rowsOf(dy as tf.Tensor4D);
        // dx = dy * scale: the same kernel with mean and shift zero.
        const zeros = tf.zeros([x.shape[3]]);
        const grads: tf.Tensor[] = [tf.reshape(tf.engine().runKernel(BN_APPLY, { x: dy2, mean: zeros, scale: sc, shift: zeros }) as tf.Tensor, x.shape)];
        if (trainGamma || trainBeta) {
          // dgamma = sum dy (x - mean) rstd, dbeta = sum dy.
          const [sdy, sdyx] = tf.engine().runKernel(BN_GRAD_SUMS, { x: xs, dy: dy2, mean, rstd: rs }) as tf.Tensor1D[];
          if (trainGamma) grads.push(sdyx);
          if (trainBeta) grads.push(sdy);
        }
        return grads;
      },
    };
  });
  const inputs: tf.Tensor[] = [x];
  if (trainGamma) inputs.push(gamma);
  if (trainBeta) inputs.push(beta);
  return op(...inputs) as tf.Tensor4D;
}
