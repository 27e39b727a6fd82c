import * as tf from '@tensorflow/tfjs-core';
import { NamedArray, TensorMap } from '../model/safetensors';

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

  /** One update with learning rate `lr` (per parameter via lrFor, e.g. a different head rate). */
  apply(grads: Map<string, tf.Tensor>, lrFor: (name: string) => number): void {
    const b1 = this.options.beta1 ?? 0.9;
    const b2 = this.options.beta2 ?? 0.999;
    const eps = this.options.epsilon ?? 1e-8;
    this.step++;
    const c1 = 1 - b1 ** this.step;
    const c2 = 1 - b2 ** this.step;
    tf.tidy(() => {
      for (const [name, p] of this.params) {
        const g = grads.get(name);
        if (!g) continue;
        const lr = lrFor(name);
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        m.assign(tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1)));
        v.assign(tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2)));
        const update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), eps));
        const decay = p.rank > 1 && this.options.weightDecay > 0 ? tf.mul(p, this.options.weightDecay) : null;
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

/** The update from a step's gradients (clipped to the global norm), unless the loss is NaN or infinite; disposes them. */
export function applyGradients(loss: number, grads: Map<string, tf.Tensor>, cfg: { training: { maxGradNorm: number } }, optimizer: AdamW, lrFor: (name: string) => number): void {
  if (Number.isFinite(loss)) {
    const { clipped } = clipByGlobalNorm(grads, cfg.training.maxGradNorm);
    optimizer.apply(clipped, lrFor);
    if (clipped !== grads) for (const g of clipped.values()) g.dispose();
  }
  for (const g of grads.values()) g.dispose();
}

/** Clips gradients to a global L2 norm (Pascanu et al. 2013); returns the norm before clipping. */
export function clipByGlobalNorm(grads: Map<string, tf.Tensor>, maxNorm: number): { clipped: Map<string, tf.Tensor>; norm: number } {
  const norm = tf.tidy(() => tf.sqrt(tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))))).dataSync()[0]);
  if (!(maxNorm > 0) || !Number.isFinite(norm) || norm <= maxNorm) return { clipped: grads, norm };
  const scale = maxNorm / (norm + 1e-6);
  const clipped = new Map<string, tf.Tensor>();
  for (const [n, g] of grads) clipped.set(n, tf.mul(g, scale));
  return { clipped, norm };
}

/** Linear warm-up from 0 to the peak over warmupSteps, then linear decay to 0 at totalSteps. */
export function linearScheduleFactor(step: number, warmupSteps: number, totalSteps: number): number {
  if (step < warmupSteps) return (step + 1) / warmupSteps;
  return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
}
