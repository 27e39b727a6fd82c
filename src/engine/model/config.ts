import { UserInputError } from '../errors';
import { ACTIVATIONS } from '../tf/ops';
import { EncoderVariant, SUPPORTED_MODEL_TYPES, variantOf } from './encoderVariants';

/**
 * The fields of a Hugging Face encoder's `config.json` the encoder uses, in this codebase's names. One shape for
 * every member of the BERT family (encoderVariants.ts reads each member's own keys into it).
 */
export interface BertConfig {
  vocabSize: number;
  /** d: the hidden size. */
  hiddenSize: number;
  /** L: the number of layers. */
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  hiddenAct: string;
  maxPositions: number;
  /** 0: the model has no token type embeddings (DistilBERT). */
  typeVocabSize: number;
  layerNormEps: number;
  hiddenDropout: number;
  attentionDropout: number;
  /** Hugging Face's `model_type`; absent means "bert". */
  modelType?: string;
  /** Width of the embedding tables when it differs from hiddenSize (ELECTRA; projected to d by `embeddings_project`). */
  embeddingSize?: number;
  /** The padding token's id (RoBERTa's position ids count from it). */
  padTokenId?: number;
}

/** The family member a config belongs to. */
export function variantOfConfig(cfg: BertConfig): EncoderVariant {
  const v = variantOf(cfg.modelType);
  if (!v) throw new Error(`model_type "${cfg.modelType}" is not a BERT-family encoder`);
  return v;
}

/** Position id of the first token: 0, or padding_idx + 1 for RoBERTa. */
export function positionOffset(cfg: BertConfig): number {
  return variantOfConfig(cfg).positionsAfterPadding ? (cfg.padTokenId ?? 1) + 1 : 0;
}

/** The longest input the position table allows (514 positions are 512 tokens for RoBERTa). */
export function maxSequenceLength(cfg: BertConfig): number {
  return cfg.maxPositions - positionOffset(cfg);
}

export function embeddingSize(cfg: BertConfig): number {
  return cfg.embeddingSize ?? cfg.hiddenSize;
}

export function parseBertConfig(raw: Record<string, unknown>, file: string): BertConfig {
  const modelType = raw.model_type === undefined ? undefined : String(raw.model_type);
  const variant = variantOf(modelType);
  if (!variant) {
    throw new UserInputError(`model_type "${modelType}" is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`, { file, field: 'model_type' });
  }
  const out: Record<string, unknown> = { modelType: modelType ?? 'bert' };
  for (const { key, hfKey, kind, fallback } of variant.fields) {
    const value = (hfKey === null ? undefined : raw[hfKey]) ?? fallback;
    const name = hfKey ?? key;
    if (value === undefined) throw new UserInputError(`missing "${name}"`, { file, field: name });
    const ok = kind === 'string' ? typeof value === 'string' : typeof value === 'number' && (kind === 'number' || Number.isInteger(value));
    if (!ok) throw new UserInputError(`"${name}" must be ${kind === 'string' ? 'a string' : kind === 'int' ? 'an integer' : 'a number'}`, { file, field: name });
    out[key] = value;
  }
  const cfg = out as unknown as BertConfig;
  if (cfg.hiddenSize % cfg.numHeads !== 0) {
    throw new UserInputError(`hidden_size ${cfg.hiddenSize} is not a multiple of num_attention_heads ${cfg.numHeads}`, { file });
  }
  if (!ACTIVATIONS.includes(cfg.hiddenAct)) {
    throw new UserInputError(`activation "${cfg.hiddenAct}" is not supported (supported: ${ACTIVATIONS.join(', ')})`, { file, field: variant.fields.find((f) => f.key === 'hiddenAct')!.hfKey! });
  }
  if (cfg.embeddingSize === cfg.hiddenSize) delete cfg.embeddingSize;
  if (raw.position_embedding_type !== undefined && raw.position_embedding_type !== 'absolute') {
    throw new UserInputError(`position_embedding_type "${String(raw.position_embedding_type)}" is not supported (only "absolute")`, { file, field: 'position_embedding_type' });
  }
  if (maxSequenceLength(cfg) < 2) throw new UserInputError(`max_position_embeddings ${cfg.maxPositions} leaves no room for a sequence`, { file, field: 'max_position_embeddings' });
  return cfg;
}

/** config.json in the member's own keys (a BERT this tool pretrained, a random-init copy of any member). */
export function toHfConfig(cfg: BertConfig): Record<string, unknown> {
  const modelType = cfg.modelType ?? 'bert';
  const out: Record<string, unknown> = modelType === 'bert' ? { architectures: ['BertForMaskedLM'], model_type: 'bert' } : { model_type: modelType };
  const values = cfg as unknown as Record<string, unknown>;
  for (const { key, hfKey, fallback } of variantOfConfig(cfg).fields) if (hfKey) out[hfKey] = values[key] ?? (key === 'embeddingSize' ? cfg.hiddenSize : fallback);
  out.position_embedding_type = 'absolute';
  out.initializer_range = 0.02;
  return out;
}
