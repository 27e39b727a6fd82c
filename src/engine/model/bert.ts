import * as tf from '@tensorflow/tfjs-core';
import { BertConfig, embeddingSize, maxSequenceLength, variantOfConfig } from './config';
import { EncoderVariant } from './encoderVariants';
import { activate, batchMatMul, dropout, embeddingLookup, layerNorm, linear, releaseFrozenTransposes } from '../tf/ops';
import { Rng } from '../util/random';

/**
 * A post-LayerNorm BERT encoder (Devlin et al. 2019), written to read top to bottom like the paper:
 * embeddings, then L layers of self-attention and feed-forward sublayers, each followed by residual add and
 * LayerNorm. Parameters keep Hugging Face's BertModel names; linear weights are stored [in, out] (transposed
 * from PyTorch's [out, in] on load) so the forward pass needs no transposed matMul.
 *
 * RoBERTa (XLM-R, CamemBERT), DistilBERT and ELECTRA are this encoder with other names and a few switches in
 * the embeddings (encoderVariants.ts); their layers compute the same thing.
 *
 * Methods plug into every layer through `LayerHooks`: the attention and feed-forward sublayers' outputs, before
 * (or around) the residual add and LayerNorm (bottleneck adapters, Houlsby et al. 2019, figure 2); the outputs of
 * the six projections (LoRA, (IA)³); the attention's keys and values (prefix-tuning). A layer in
 * `disabledAdapterLayers` runs none of its hooks, so the layer ablation and AdapterDrop apply to every method.
 */

export interface EncoderInput {
  inputIds: Int32Array;
  tokenTypeIds: Int32Array;
  /** 1 for tokens, 0 for padding. */
  attentionMask: Float32Array;
  batchSize: number;
  seqLen: number;
}

export type SublayerHook = (layer: number, output: tf.Tensor2D, ctx: ForwardContext) => tf.Tensor2D;

/**
 * Replaces a sublayer's residual add and LayerNorm, for modules placed around them (AdapterHub's bottleneck
 * placements): `output` is the sublayer's output, `residual` its input, `norm(x, r)` the sublayer's LayerNorm
 * of x + r (of x alone without r). Returns the sublayer's final output.
 */
export type SublayerOutputHook = (
  layer: number,
  output: tf.Tensor2D,
  residual: tf.Tensor2D,
  norm: (x: tf.Tensor2D, residual?: tf.Tensor2D) => tf.Tensor2D,
  ctx: ForwardContext,
) => tf.Tensor2D;

/** The six linear projections of a layer, named after their Hugging Face modules. */
export type Projection = 'query' | 'key' | 'value' | 'attention.output' | 'intermediate' | 'output';

export const PROJECTIONS: readonly Projection[] = ['query', 'key', 'value', 'attention.output', 'intermediate', 'output'];

/** The parameter-name prefix of a projection of layer i (its `.weight` and `.bias`). */
export function projectionModule(i: number, projection: Projection): string {
  const p = `encoder.layer.${i}`;
  switch (projection) {
    case 'query':
    case 'key':
    case 'value':
      return `${p}.attention.self.${projection}`;
    case 'attention.output':
      return `${p}.attention.output.dense`;
    case 'intermediate':
      return `${p}.intermediate.dense`;
    case 'output':
      return `${p}.output.dense`;
  }
}

/**
 * Replaces a projection's output y = x W + b (`output`, [N, out]) given its input x (`input`, [N, in]): LoRA adds
 * s x A B, (IA)³ scales y. The intermediate projection's output is taken before the activation (where AdapterHub's
 * LoRALinear wraps `intermediate.dense`). Rows are independent: a hook must compute row by row.
 */
export type ProjectionHook = (layer: number, input: tf.Tensor2D, output: tf.Tensor2D, ctx: ForwardContext) => tf.Tensor2D;

/** A layer's attention keys and values, [B, T, d] each (before the split into heads), and the additive mask bias [B, 1, 1, T]. */
export interface KeysValues {
  keys: tf.Tensor3D;
  values: tf.Tensor3D;
  bias: tf.Tensor4D;
}

/**
 * Replaces a layer's attention keys and values, possibly with more positions T' (prefix-tuning prepends trained
 * ones); the bias must then cover all T' (0 where attended). The queries stay the tokens'.
 */
export type KeyValueHook = (layer: number, kv: KeysValues, ctx: ForwardContext) => KeysValues;

export interface LayerHooks {
  afterAttention?: SublayerHook;
  afterFeedForward?: SublayerHook;
  attentionOutput?: SublayerOutputHook;
  feedForwardOutput?: SublayerOutputHook;
  /** Hooks on the projections' outputs, by projection. */
  projections?: Partial<Record<Projection, ProjectionHook>>;
  keyValues?: KeyValueHook;
}

export interface ForwardContext {
  training: boolean;
  /** Dropout probabilities; zero (or `training` false) turns dropout off. */
  hiddenDropout: number;
  attentionDropout: number;
  /** Source of dropout seeds; one seed is drawn per dropout call, so the same Rng state gives the same masks. */
  rng: Rng | null;
  hooks?: LayerHooks;
  /** Layers whose adapters are switched off (layer-removal ablation, AdapterDrop). */
  disabledAdapterLayers?: ReadonlySet<number>;
}

/** Per-layer parameter names, as in Hugging Face's BertModel. */
export function layerParamNames(i: number): string[] {
  const p = `encoder.layer.${i}`;
  const lin = (n: string) => [`${n}.weight`, `${n}.bias`];
  return [
    ...lin(`${p}.attention.self.query`),
    ...lin(`${p}.attention.self.key`),
    ...lin(`${p}.attention.self.value`),
    ...lin(`${p}.attention.output.dense`),
    ...lin(`${p}.attention.output.LayerNorm`),
    ...lin(`${p}.intermediate.dense`),
    ...lin(`${p}.output.dense`),
    ...lin(`${p}.output.LayerNorm`),
  ];
}

/** Embedding parameter names: token types only where the model has them, the projection only for ELECTRA-style sizes. */
export function embeddingParamNames(cfg: BertConfig): string[] {
  return [...embeddingParamShapes(cfg).keys()];
}

function embeddingParamShapes(cfg: BertConfig): Map<string, number[]> {
  const e = embeddingSize(cfg);
  const shapes = new Map<string, number[]>([
    ['embeddings.word_embeddings.weight', [cfg.vocabSize, e]],
    ['embeddings.position_embeddings.weight', [cfg.maxPositions, e]],
  ]);
  if (cfg.typeVocabSize > 0) shapes.set('embeddings.token_type_embeddings.weight', [cfg.typeVocabSize, e]);
  shapes.set('embeddings.LayerNorm.weight', [e]);
  shapes.set('embeddings.LayerNorm.bias', [e]);
  if (e !== cfg.hiddenSize) {
    shapes.set('embeddings_project.weight', [e, cfg.hiddenSize]);
    shapes.set('embeddings_project.bias', [cfg.hiddenSize]);
  }
  return shapes;
}

export function encoderParamNames(cfg: BertConfig): string[] {
  return [...encoderParamShapes(cfg).keys()];
}

/** Shapes in this codebase's layout ([in, out] for linear weights). */
export function encoderParamShapes(cfg: BertConfig): Map<string, number[]> {
  const d = cfg.hiddenSize;
  const shapes = embeddingParamShapes(cfg);
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `encoder.layer.${i}`;
    for (const n of ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense']) {
      shapes.set(`${p}.${n}.weight`, [d, d]);
      shapes.set(`${p}.${n}.bias`, [d]);
    }
    for (const n of ['attention.output.LayerNorm', 'output.LayerNorm']) {
      shapes.set(`${p}.${n}.weight`, [d]);
      shapes.set(`${p}.${n}.bias`, [d]);
    }
    shapes.set(`${p}.intermediate.dense.weight`, [d, cfg.intermediateSize]);
    shapes.set(`${p}.intermediate.dense.bias`, [cfg.intermediateSize]);
    shapes.set(`${p}.output.dense.weight`, [cfg.intermediateSize, d]);
    shapes.set(`${p}.output.dense.bias`, [d]);
  }
  return shapes;
}

export class BertEncoder {
  /** Which member of the family (encoderVariants.ts): its structural switches. */
  readonly variant: EncoderVariant;

  constructor(
    readonly config: BertConfig,
    /** Every encoder parameter by its BertModel name; frozen unless a method marks it trainable. */
    readonly params: Map<string, tf.Variable>,
  ) {
    this.variant = variantOfConfig(config);
  }

  private p<R extends tf.Rank>(name: string): tf.Tensor<R> {
    const v = this.params.get(name);
    if (!v) throw new Error(`encoder parameter ${name} is missing`);
    return v as unknown as tf.Tensor<R>;
  }

  private drop(x: tf.Tensor2D, rate: number, ctx: ForwardContext): tf.Tensor2D {
    if (!ctx.training || rate <= 0 || !ctx.rng) return x;
    return dropout(x, rate, ctx.rng.seed()) as tf.Tensor2D;
  }

  /** Additive attention bias [B, 1, 1, T]: 0 for tokens, a large negative number for padding. */
  attentionBias(input: EncoderInput): tf.Tensor4D {
    return tf.tidy(() =>
      tf.reshape(tf.mul(tf.sub(1, tf.tensor1d(input.attentionMask)), -1e9), [input.batchSize, 1, 1, input.seqLen]),
    );
  }

  /**
   * Token + position (+ segment) embeddings, LayerNorm, dropout: [B*T, d]; for ELECTRA with a smaller
   * embedding size, then the projection to d (modeling_electra.py: embeddings_project after the dropout).
   */
  embed(input: EncoderInput, ctx: ForwardContext): tf.Tensor2D {
    const { batchSize: B, seqLen: T } = input;
    const maxLength = maxSequenceLength(this.config);
    if (T > maxLength) throw new Error(`sequence length ${T} exceeds the ${maxLength} tokens max_position_embeddings ${this.config.maxPositions} allows`);
    const e = embeddingSize(this.config);
    const ids = tf.tensor1d(input.inputIds, 'int32');
    const positionTable = this.p<tf.Rank.R2>('embeddings.position_embeddings.weight');
    const positions = this.variant.positionsAfterPadding
      ? tf.reshape(embeddingLookup(positionTable, tf.tensor1d(this.positionIdsAfterPadding(input), 'int32')), [B, T, e])
      : // Positions are 0..T-1 in every row: a slice of the table broadcast over the batch, not a gather.
        tf.slice(positionTable, [0, 0], [T, e]);
    const words = tf.reshape(embeddingLookup(this.p('embeddings.word_embeddings.weight'), ids), [B, T, e]);
    let sum = tf.add(words, positions);
    if (this.config.typeVocabSize > 0) {
      // Single-sentence input (every segment id 0): row 0 broadcast, the same values as a gather of it.
      const typeTable = this.p<tf.Rank.R2>('embeddings.token_type_embeddings.weight');
      const segments = input.tokenTypeIds.every((t) => t === 0)
        ? tf.slice(typeTable, [0, 0], [1, e])
        : tf.reshape(embeddingLookup(typeTable, tf.tensor1d(input.tokenTypeIds, 'int32')), [B, T, e]);
      sum = tf.add(sum, segments);
    }
    const normed = layerNorm(tf.reshape(sum, [B * T, e]) as tf.Tensor2D, this.p('embeddings.LayerNorm.weight'), this.p('embeddings.LayerNorm.bias'), this.config.layerNormEps);
    const dropped = this.drop(normed, ctx.hiddenDropout, ctx);
    return e === this.config.hiddenSize ? dropped : linear(dropped, this.p('embeddings_project.weight'), this.p('embeddings_project.bias'));
  }

  /**
   * RoBERTa's position ids (create_position_ids_from_input_ids): padding_idx + 1 + t for the t-th token,
   * padding_idx for padding. Taken from the attention mask, which marks exactly the non-pad tokens.
   */
  private positionIdsAfterPadding(input: EncoderInput): Int32Array {
    const pad = this.config.padTokenId ?? 1;
    const ids = new Int32Array(input.batchSize * input.seqLen);
    for (let r = 0; r < input.batchSize; r++) {
      let count = 0;
      for (let t = 0; t < input.seqLen; t++) {
        const k = r * input.seqLen + t;
        ids[k] = input.attentionMask[k] > 0 ? pad + ++count : pad;
      }
    }
    return ids;
  }

  /**
   * Multi-head self-attention up to and including the output projection: [B*T, d] -> [B*T, d]. With
   * `firstTokenOnly`, only the first token of each row queries (keys and values still come from every token):
   * [B*T, d] -> [B, d], exactly those rows of the full result.
   */
  selfAttention(i: number, h: tf.Tensor2D, bias: tf.Tensor4D, B: number, T: number, ctx: ForwardContext, firstTokenOnly = false): tf.Tensor2D {
    const { hiddenSize: d, numHeads: H } = this.config;
    const dh = d / H;
    const hooks = this.activeHooks(i, ctx);
    const Tq = firstTokenOnly ? 1 : T;
    // [B*t, d] -> [B*H, t, dh]
    const heads = (x: tf.Tensor2D, t: number) => tf.reshape(tf.transpose(tf.reshape(x, [B, t, H, dh]), [0, 2, 1, 3]), [B * H, t, dh]) as tf.Tensor3D;
    const queries = firstTokenOnly ? BertEncoder.firstToken(h, B, T) : h;
    const q = heads(this.project(i, 'query', queries, hooks, ctx), Tq);
    let keys = this.project(i, 'key', h, hooks, ctx);
    let values = this.project(i, 'value', h, hooks, ctx);
    let Tk = T;
    let attnBias = bias;
    if (hooks?.keyValues) {
      const kv = hooks.keyValues(i, { keys: tf.reshape(keys, [B, T, d]), values: tf.reshape(values, [B, T, d]), bias }, ctx);
      Tk = kv.keys.shape[1];
      keys = tf.reshape(kv.keys, [B * Tk, d]);
      values = tf.reshape(kv.values, [B * Tk, d]);
      attnBias = kv.bias;
    }
    const k = heads(keys, Tk);
    const v = heads(values, Tk);
    // Q K^T with K as it is: the kernel reads K's rows, so K is never transposed in memory.
    const scores = tf.add(tf.reshape(tf.mul(batchMatMul(q, k, true), 1 / Math.sqrt(dh)), [B, H, Tq, Tk]), attnBias);
    let probs = tf.softmax(scores) as tf.Tensor4D;
    if (ctx.training && ctx.attentionDropout > 0 && ctx.rng) probs = dropout(probs, ctx.attentionDropout, ctx.rng.seed()) as tf.Tensor4D;
    const context = batchMatMul(tf.reshape(probs, [B * H, Tq, Tk]) as tf.Tensor3D, v);
    const merged = tf.reshape(tf.transpose(tf.reshape(context, [B, H, Tq, dh]), [0, 2, 1, 3]), [B * Tq, d]) as tf.Tensor2D;
    return this.project(i, 'attention.output', merged, hooks, ctx);
  }

  feedForward(i: number, h: tf.Tensor2D, ctx?: ForwardContext): tf.Tensor2D {
    const hooks = ctx ? this.activeHooks(i, ctx) : undefined;
    const inner = activate(this.project(i, 'intermediate', h, hooks, ctx), this.config.hiddenAct);
    return this.project(i, 'output', inner as tf.Tensor2D, hooks, ctx);
  }

  /** The hooks that apply at layer i: none where its modules are switched off (ablation, AdapterDrop). */
  private activeHooks(i: number, ctx: ForwardContext): LayerHooks | undefined {
    return ctx.hooks && !ctx.disabledAdapterLayers?.has(i) ? ctx.hooks : undefined;
  }

  /** x W + b of a projection, through its hook where the method has one. */
  private project(i: number, projection: Projection, x: tf.Tensor2D, hooks: LayerHooks | undefined, ctx: ForwardContext | undefined): tf.Tensor2D {
    const module = projectionModule(i, projection);
    const y = linear(x, this.p(`${module}.weight`), this.p(`${module}.bias`));
    const hook = hooks?.projections?.[projection];
    return hook && ctx ? hook(i, x, y, ctx) : y;
  }

  /**
   * One transformer layer, with the adapter hooks before each residual add and LayerNorm: [B*T, d] -> [B*T, d].
   * With `firstTokenOnly`, [B*T, d] -> [B, d]: the first token's output only. Everything after the attention
   * is row by row (the hooks too), so those rows equal the full layer's; for the last layer under a head that
   * reads the first token, this skips the query, output, feed-forward and module work of T - 1 tokens of T.
   */
  layer(i: number, h: tf.Tensor2D, bias: tf.Tensor4D, B: number, T: number, ctx: ForwardContext, firstTokenOnly = false): tf.Tensor2D {
    const p = `encoder.layer.${i}`;
    const hooks = this.activeHooks(i, ctx);
    let attn = this.drop(this.selfAttention(i, h, bias, B, T, ctx, firstTokenOnly), ctx.hiddenDropout, ctx);
    if (hooks?.afterAttention) attn = hooks.afterAttention(i, attn, ctx);
    const residual = firstTokenOnly ? BertEncoder.firstToken(h, B, T) : h;
    const eps = this.config.layerNormEps;
    const attnNorm = (x: tf.Tensor2D, r?: tf.Tensor2D) => layerNorm(x, this.p(`${p}.attention.output.LayerNorm.weight`), this.p(`${p}.attention.output.LayerNorm.bias`), eps, r);
    const h1 = hooks?.attentionOutput ? hooks.attentionOutput(i, attn, residual, attnNorm, ctx) : attnNorm(attn, residual);
    let ffn = this.drop(this.feedForward(i, h1, ctx), ctx.hiddenDropout, ctx);
    if (hooks?.afterFeedForward) ffn = hooks.afterFeedForward(i, ffn, ctx);
    const outNorm = (x: tf.Tensor2D, r?: tf.Tensor2D) => layerNorm(x, this.p(`${p}.output.LayerNorm.weight`), this.p(`${p}.output.LayerNorm.bias`), eps, r);
    return hooks?.feedForwardOutput ? hooks.feedForwardOutput(i, ffn, h1, outNorm, ctx) : outNorm(ffn, h1);
  }

  /** Runs layers [from, to) on hidden states h. */
  layers(h: tf.Tensor2D, input: EncoderInput, ctx: ForwardContext, from = 0, to = this.config.numLayers): tf.Tensor2D {
    const bias = this.attentionBias(input);
    let x = h;
    for (let i = from; i < to; i++) x = this.layer(i, x, bias, input.batchSize, input.seqLen, ctx);
    return x;
  }

  /**
   * The first token's final hidden state [B, d] from the states entering layer `from`: layers from..L-2 in
   * full, the last for the first token only (what a head on [CLS] reads; the same values as firstToken of the
   * full forward pass, at a fraction of the last layer's cost).
   */
  firstTokenOutput(h: tf.Tensor2D, input: EncoderInput, ctx: ForwardContext, from = 0): tf.Tensor2D {
    const L = this.config.numLayers;
    const { batchSize: B, seqLen: T } = input;
    if (from >= L) return BertEncoder.firstToken(h, B, T);
    const bias = this.attentionBias(input);
    let x = h;
    for (let i = from; i < L; i++) x = this.layer(i, x, bias, B, T, ctx, i === L - 1);
    return x;
  }

  /** The whole encoder: the final hidden states [B*T, d]. */
  forward(input: EncoderInput, ctx: ForwardContext): tf.Tensor2D {
    return this.layers(this.embed(input, ctx), input, ctx);
  }

  /** The hidden state of the first token ([CLS]) of each row: [B*T, d] -> [B, d]. */
  static firstToken(hidden: tf.Tensor2D, B: number, T: number): tf.Tensor2D {
    const d = hidden.shape[1];
    return tf.reshape(tf.slice(tf.reshape(hidden, [B, T, d]), [0, 0, 0], [B, 1, d]), [B, d]);
  }

  parameterCount(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  dispose(): void {
    const own = new Set(this.params.values());
    releaseFrozenTransposes((w) => own.has(w));
    for (const v of this.params.values()) v.dispose();
  }
}
