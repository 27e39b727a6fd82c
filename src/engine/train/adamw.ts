import * as tf from '@tensorflow/tfjs-core';
import { NamedArray, TensorMap } from '../model/safetensors';
import { fusedAdamW, usesElementwiseKernels } from '../tf/kernels/simd';

/**
 * AdamW (Loshchilov and Hutter 2019) with decoupled weight decay, as Hugging Face's trainer applies it:
 * no decay on biases and LayerNorm parameters (1-D tensors). Written out because tfjs's Adam has no
 * decoupled decay and keeps its state out of reach of checkpoints.
 */
export class AdamW {
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  /** Number of updates applied (Adam's t). */
  step = 0;

  constructor(
    private readonly params: Map<string, tf.Variable>,
    private readonly options: { beta1?: number; beta2?: number; epsilon?: number; weightDecay: number },
  ) {
    for (const [name, p] of params) {
      this.m.set(name, tf.variable(tf.zerosLike(p), false));
      this.v.set(name, tf.variable(tf.zerosLike(p), false));
    }
  }

  /**
   * One update with learning rate `lr` (per parameter via lrFor, e.g. a different head rate), from the gradients
   * times gradScale (global-norm clipping's factor: the same floats as multiplying them first).
   */
  apply(grads: Map<string, tf.Tensor>, lrFor: (name: string) => number, gradScale = 1): void {
    const b1 = this.options.beta1 ?? 0.9;
    const b2 = this.options.beta2 ?? 0.999;
    const eps = this.options.epsilon ?? 1e-8;
    this.step++;
    const c1 = 1 - b1 ** this.step;
    const c2 = 1 - b2 ** this.step;
    tf.tidy(() => {
      for (const [name, p] of this.params) {
        const unscaled = grads.get(name);
        if (!unscaled) continue;
        const lr = lrFor(name);
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        const decays = p.rank > 1 && this.options.weightDecay > 0;
        if (usesElementwiseKernels(p)) {
          // One pass on the wasm backend, the same floats as the ops below.
          const [pNew, mNew, vNew] = fusedAdamW(p, unscaled, m, v, { beta1: b1, beta2: b2, epsilon: eps, c1, c2, lr, weightDecay: this.options.weightDecay, decay: decays, gradScale });
          m.assign(mNew);
          v.assign(vNew);
          p.assign(pNew);
          continue;
        }
        const g = gradScale === 1 ? unscaled : tf.mul(unscaled, gradScale);
        m.assign(tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1)));
        v.assign(tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2)));
        const update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), eps));
        const decay = decays ? tf.mul(p, this.options.weightDecay) : null;
        p.assign(tf.sub(p, tf.mul(decay ? tf.add(update, decay) : update, lr)));
      }
    });
  }

  /** Moments by parameter name (`m.<name>`, `v.<name>`), for checkpoints. */
  state(): TensorMap {
    const out: TensorMap = new Map();
    const put = (prefix: string, src: Map<string, tf.Variable>) => {
      for (const [n, t] of src) out.set(`${prefix}.${n}`, { shape: t.shape, data: t.dataSync() as Float32Array });
    };
    put('m', this.m);
    put('v', this.v);
    return out;
  }

  loadState(state: TensorMap, step: number): void {
    const load = (prefix: string, dst: Map<string, tf.Variable>) => {
      for (const [n, t] of dst) {
        const arr: NamedArray | undefined = state.get(`${prefix}.${n}`);
        if (!arr) throw new Error(`optimizer state has no ${prefix}.${n}`);
        tf.tidy(() => t.assign(tf.tensor(arr.data as Float32Array, t.shape)));
      }
    };
    load('m', this.m);
    load('v', this.v);
    this.step = step;
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
  }
}

/** The update from a step's gradients (clipped to the global norm maxGradNorm), unless the loss is NaN or infinite; disposes them. */
export function applyGradients(loss: number, grads: Map<string, tf.Tensor>, maxGradNorm: number, optimizer: AdamW, lrFor: (name: string) => number): void {
  if (Number.isFinite(loss)) optimizer.apply(grads, lrFor, globalNormClipScale(grads, maxGradNorm).scale);
  for (const g of grads.values()) g.dispose();
}

/**
 * Global-norm clipping's factor (Pascanu et al. 2013): maxNorm / (norm + 1e-6) when the gradients' global L2
 * norm exceeds maxNorm, else 1; and the norm before clipping.
 */
function globalNormClipScale(grads: Map<string, tf.Tensor>, maxNorm: number): { scale: number; norm: number } {
  const norm = tf.tidy(() => tf.sqrt(tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))))).dataSync()[0]);
  if (!(maxNorm > 0) || !Number.isFinite(norm) || norm <= maxNorm) return { scale: 1, norm };
  return { scale: maxNorm / (norm + 1e-6), norm };
}

/** Linear warm-up from 0 to the peak over warmupSteps, then linear decay to 0 at totalSteps. */
export function linearScheduleFactor(step: number, warmupSteps: number, totalSteps: number): number {
  if (step < warmupSteps) return (step + 1) / warmupSteps;
  return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
}
