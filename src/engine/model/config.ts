import { UserInputError } from '../errors';

/** The fields of a Hugging Face BERT `config.json` the encoder uses, in this codebase's names. */
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
  typeVocabSize: number;
  layerNormEps: number;
  hiddenDropout: number;
  attentionDropout: number;
}

const fieldMap: [keyof BertConfig, string, 'int' | 'number' | 'string', unknown?][] = [
  ['vocabSize', 'vocab_size', 'int'],
  ['hiddenSize', 'hidden_size', 'int'],
  ['numLayers', 'num_hidden_layers', 'int'],
  ['numHeads', 'num_attention_heads', 'int'],
  ['intermediateSize', 'intermediate_size', 'int'],
  ['hiddenAct', 'hidden_act', 'string', 'gelu'],
  ['maxPositions', 'max_position_embeddings', 'int', 512],
  ['typeVocabSize', 'type_vocab_size', 'int', 2],
  ['layerNormEps', 'layer_norm_eps', 'number', 1e-12],
  ['hiddenDropout', 'hidden_dropout_prob', 'number', 0.1],
  ['attentionDropout', 'attention_probs_dropout_prob', 'number', 0.1],
];

export function parseBertConfig(raw: Record<string, unknown>, file: string): BertConfig {
  const modelType = raw.model_type;
  if (modelType !== undefined && modelType !== 'bert') {
    throw new UserInputError(`model_type "${String(modelType)}" is not supported (only "bert" encoders)`, { file, field: 'model_type' });
  }
  const out: Record<string, unknown> = {};
  for (const [key, hfKey, kind, fallback] of fieldMap) {
    const value = raw[hfKey] ?? fallback;
    if (value === undefined) throw new UserInputError(`missing "${hfKey}"`, { file, field: hfKey });
    const ok = kind === 'string' ? typeof value === 'string' : typeof value === 'number' && (kind === 'number' || Number.isInteger(value));
    if (!ok) throw new UserInputError(`"${hfKey}" must be ${kind === 'string' ? 'a string' : kind === 'int' ? 'an integer' : 'a number'}`, { file, field: hfKey });
    out[key] = value;
  }
  const cfg = out as unknown as BertConfig;
  if (cfg.hiddenSize % cfg.numHeads !== 0) {
    throw new UserInputError(`hidden_size ${cfg.hiddenSize} is not a multiple of num_attention_heads ${cfg.numHeads}`, { file });
  }
  return cfg;
}

export function toHfConfig(cfg: BertConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { architectures: ['BertForMaskedLM'], model_type: 'bert' };
  for (const [key, hfKey] of fieldMap) out[hfKey] = cfg[key];
  out.pad_token_id = 0;
  out.position_embedding_type = 'absolute';
  out.initializer_range = 0.02;
  return out;
}
