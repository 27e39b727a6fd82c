import * as tf from '@tensorflow/tfjs-core';
import { BertEncoder, EncoderInput, ForwardContext } from './bert';
import { TaskHead } from './head';
import { MethodInstance } from '../methods/method';

export interface ParameterCounts {
  trainable: number;
  /** Parameters of the base encoder (embeddings and layers). */
  base: number;
  /** trainable / base, in percent. */
  trainablePercent: number;
}

/**
 * An encoder with a method's modules and a task head: the thing a run trains. Only the method's parameters,
 * the base parameters the method unfreezes and the head are trainable; everything else stays frozen.
 */
export class AdapterModel {
  constructor(
    readonly encoder: BertEncoder,
    readonly method: MethodInstance,
    readonly head: TaskHead,
  ) {
    for (const v of encoder.params.values()) v.trainable = false;
    for (const name of method.trainedBaseParams) {
      const v = encoder.params.get(name);
      if (!v) throw new Error(`method ${method.type} trains ${name}, which the encoder does not have`);
      v.trainable = true;
    }
  }

  /** Every trained parameter by name: method modules, unfrozen base parameters, head. */
  trainableParams(): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>();
    for (const [n, v] of this.method.params) out.set(n, v);
    for (const n of this.method.trainedBaseParams) out.set(n, this.encoder.params.get(n)!);
    for (const [n, v] of this.head.params) out.set(n, v);
    return out;
  }

  parameterCounts(): ParameterCounts {
    let trainable = 0;
    for (const v of this.trainableParams().values()) trainable += v.size;
    const base = this.encoder.parameterCount();
    return { trainable, base, trainablePercent: (100 * trainable) / base };
  }

  withHooks(ctx: ForwardContext): ForwardContext {
    return this.method.hooks ? { ...ctx, hooks: this.method.hooks } : ctx;
  }

  /** Final hidden states of the encoder with the method's modules in place: [B*T, d]. */
  hidden(input: EncoderInput, ctx: ForwardContext): tf.Tensor2D {
    return this.encoder.forward(input, this.withHooks(ctx));
  }

  /** Head outputs on the first token: [B, C] (the last layer computed for that token only). */
  outputs(input: EncoderInput, ctx: ForwardContext): tf.Tensor2D {
    const withHooks = this.withHooks(ctx);
    return this.head.forward(this.encoder.firstTokenOutput(this.encoder.embed(input, withHooks), input, withHooks), ctx);
  }

  /**
   * Head outputs from the hidden states entering layer `from` (0 = the embeddings' output): the rest of the
   * encoder, then the head. With `from` = 0 and h = embed(input) this is `outputs`.
   */
  outputsFrom(h: tf.Tensor2D, from: number, input: EncoderInput, ctx: ForwardContext): tf.Tensor2D {
    return this.head.forward(this.encoder.firstTokenOutput(h, input, this.withHooks(ctx), from), ctx);
  }

  /**
   * Task loss plus the method's penalty, if any; from cached hidden states when `prefix` is given. With `share`
   * (a shard of a batch, data-parallel training): the shard's mean loss times its share of the batch's examples,
   * so the shards' losses and gradients sum to the whole batch's, and the penalty only where `share.penalty`
   * (one shard counts it).
   */
  loss(input: EncoderInput, labels: Float32Array, ctx: ForwardContext, prefix?: { hidden: tf.Tensor2D; from: number }, share?: { weight: number; penalty: boolean }): tf.Scalar {
    const outputs = prefix ? this.outputsFrom(prefix.hidden, prefix.from, input, ctx) : this.outputs(input, ctx);
    const mean = this.head.loss(outputs, labels);
    const loss: tf.Scalar = share && share.weight !== 1 ? tf.mul(mean, share.weight) : mean;
    const penalty = this.method.penalty(ctx);
    return penalty && (share?.penalty ?? true) ? tf.add(loss, penalty) : loss;
  }

  /**
   * How many of the lowest layers compute nothing trainable: no trained parameter and no method module in
   * them or below (the embeddings count as below layer 0). Their outputs can be computed once and reused.
   */
  frozenDepth(): number {
    let depth = this.encoder.config.numLayers;
    for (const name of this.method.trainedBaseParams) {
      const layer = /^encoder\.layer\.(\d+)\./.exec(name);
      // Anything outside the layers (embeddings, ELECTRA's embeddings_project) is below layer 0.
      if (!layer) return 0;
      depth = Math.min(depth, Number(layer[1]));
    }
    if (this.method.hooks) for (const i of this.method.adapterLayers) depth = Math.min(depth, i);
    return depth;
  }

  dispose(): void {
    this.encoder.dispose();
    for (const v of this.method.params.values()) v.dispose();
    for (const v of this.method.fixedParams?.values() ?? []) v.dispose();
    for (const v of this.head.params.values()) v.dispose();
  }
}
