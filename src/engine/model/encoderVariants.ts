/**
 * The BERT family's members, as data: BERT, RoBERTa (with XLM-R and CamemBERT, the same architecture),
 * DistilBERT and ELECTRA discriminators are one post-LayerNorm encoder (bert.ts) that differ only in
 *   - the keys of their config.json,
 *   - the names of their parameters (a visible table of prefix renames, both ways),
 *   - a few structural switches the config carries: position ids after the padding index (RoBERTa), no token
 *     types (DistilBERT), an embedding size other than the hidden size with a projection (ELECTRA).
 * Inside this codebase every member uses BertModel's parameter names (`encoder.layer.0.attention.self.query`),
 * so methods, trainer and analyses see one model; checkpoints and AdapterHub exports use each model's own.
 * Nothing outside the model folder asks which member a model is.
 */

export interface ConfigField {
  /** This codebase's name (a key of BertConfig). */
  key: string;
  /** The key in Hugging Face's config.json, or null when the member has a fixed value (`fallback`). */
  hfKey: string | null;
  kind: 'int' | 'number' | 'string';
  /** Value when config.json lacks the key (Hugging Face's config class default); absent: required. */
  fallback?: unknown;
}

export interface EncoderVariant {
  /** Hugging Face `model_type` values read as this member. */
  modelTypes: string[];
  fields: ConfigField[];
  /**
   * The base model's attribute name in Hugging Face's task models (RobertaForMaskedLM keeps the encoder under
   * `roberta.`) and in AdapterHub's flex-head models (RobertaAdapterModel.roberta), with the dot.
   */
  prefix: string;
  /**
   * Renames between this codebase's names and the model's own, as [ours, theirs] prefixes; `{i}` is a layer
   * index. The first rule whose prefix matches applies; names no rule matches are the same on both sides.
   */
  renames: [string, string][];
  /** RoBERTa: position ids are padding_idx + 1 + t for tokens (padding_idx for padding), not t. */
  positionsAfterPadding: boolean;
  /** AdapterHub's flex-head model class for each model_type (adapter_config.json's model_class). */
  adapterHubClass: Record<string, string>;
  /**
   * AdapterHub's location key of the self-attention's prefix (PrefixTuningLayer), part of a prefix-tuning's
   * parameter names: "self_prefix" in BERT's mixin (RoBERTa and ELECTRA use it), "self" in DistilBERT's.
   */
  prefixLocation: string;
}

const bertLayerFields = (defaults: { layerNormEps: number; typeVocabSize: number; padTokenId: number }): ConfigField[] => [
  { key: 'vocabSize', hfKey: 'vocab_size', kind: 'int' },
  { key: 'hiddenSize', hfKey: 'hidden_size', kind: 'int' },
  { key: 'numLayers', hfKey: 'num_hidden_layers', kind: 'int' },
  { key: 'numHeads', hfKey: 'num_attention_heads', kind: 'int' },
  { key: 'intermediateSize', hfKey: 'intermediate_size', kind: 'int' },
  { key: 'hiddenAct', hfKey: 'hidden_act', kind: 'string', fallback: 'gelu' },
  { key: 'maxPositions', hfKey: 'max_position_embeddings', kind: 'int', fallback: 512 },
  { key: 'typeVocabSize', hfKey: 'type_vocab_size', kind: 'int', fallback: defaults.typeVocabSize },
  { key: 'layerNormEps', hfKey: 'layer_norm_eps', kind: 'number', fallback: defaults.layerNormEps },
  { key: 'hiddenDropout', hfKey: 'hidden_dropout_prob', kind: 'number', fallback: 0.1 },
  { key: 'attentionDropout', hfKey: 'attention_probs_dropout_prob', kind: 'number', fallback: 0.1 },
  { key: 'padTokenId', hfKey: 'pad_token_id', kind: 'int', fallback: defaults.padTokenId },
];

/**
 * A member with BERT's module names and config keys: what BERT, RoBERTa and ELECTRA share; each states only
 * where it differs.
 */
function bertLayout(member: Pick<EncoderVariant, 'modelTypes' | 'prefix' | 'adapterHubClass'> & Partial<EncoderVariant>, padTokenId: number): EncoderVariant {
  return {
    fields: bertLayerFields({ layerNormEps: 1e-12, typeVocabSize: 2, padTokenId }),
    renames: [],
    positionsAfterPadding: false,
    prefixLocation: 'self_prefix',
    ...member,
  };
}

export const BERT = bertLayout({ modelTypes: ['bert'], prefix: 'bert.', adapterHubClass: { bert: 'BertAdapterModel' } }, 0);

/** modeling_roberta.py: BERT's layers; positions from padding_idx + 1; one token type; LayerNorm eps 1e-5 in the released configs. */
export const ROBERTA = bertLayout(
  {
    modelTypes: ['roberta', 'xlm-roberta', 'camembert'],
    prefix: 'roberta.',
    positionsAfterPadding: true,
    // AdapterHub 1.2.0 has no CamemBERT model; its weights load into the RoBERTa class (the same modules).
    adapterHubClass: { roberta: 'RobertaAdapterModel', 'xlm-roberta': 'XLMRobertaAdapterModel', camembert: 'RobertaAdapterModel' },
  },
  1,
);

/** modeling_electra.py: BERT's layers; embeddings of embedding_size, projected to hidden_size when they differ. */
export const ELECTRA = bertLayout(
  {
    modelTypes: ['electra'],
    prefix: 'electra.',
    fields: [...bertLayerFields({ layerNormEps: 1e-12, typeVocabSize: 2, padTokenId: 0 }), { key: 'embeddingSize', hfKey: 'embedding_size', kind: 'int', fallback: 128 }],
    adapterHubClass: { electra: 'ElectraAdapterModel' },
  },
  0,
);

/**
 * modeling_distilbert.py: no token types, no pooler, its own config keys and module names. AdapterHub
 * (mixin_distilbert.py) keeps a block's adapters in `attention_adapters` and `output_adapters` modules.
 */
export const DISTILBERT: EncoderVariant = {
  modelTypes: ['distilbert'],
  fields: [
    { key: 'vocabSize', hfKey: 'vocab_size', kind: 'int' },
    { key: 'hiddenSize', hfKey: 'dim', kind: 'int' },
    { key: 'numLayers', hfKey: 'n_layers', kind: 'int' },
    { key: 'numHeads', hfKey: 'n_heads', kind: 'int' },
    { key: 'intermediateSize', hfKey: 'hidden_dim', kind: 'int' },
    { key: 'hiddenAct', hfKey: 'activation', kind: 'string', fallback: 'gelu' },
    { key: 'maxPositions', hfKey: 'max_position_embeddings', kind: 'int', fallback: 512 },
    { key: 'typeVocabSize', hfKey: null, kind: 'int', fallback: 0 },
    // DistilBERT's LayerNorms are built with eps=1e-12, whatever config.json says.
    { key: 'layerNormEps', hfKey: null, kind: 'number', fallback: 1e-12 },
    { key: 'hiddenDropout', hfKey: 'dropout', kind: 'number', fallback: 0.1 },
    { key: 'attentionDropout', hfKey: 'attention_dropout', kind: 'number', fallback: 0.1 },
    { key: 'padTokenId', hfKey: 'pad_token_id', kind: 'int', fallback: 0 },
  ],
  prefix: 'distilbert.',
  renames: [
    ['encoder.layer.{i}.attention.self.query.', 'transformer.layer.{i}.attention.q_lin.'],
    ['encoder.layer.{i}.attention.self.key.', 'transformer.layer.{i}.attention.k_lin.'],
    ['encoder.layer.{i}.attention.self.value.', 'transformer.layer.{i}.attention.v_lin.'],
    ['encoder.layer.{i}.attention.output.dense.', 'transformer.layer.{i}.attention.out_lin.'],
    ['encoder.layer.{i}.attention.output.LayerNorm.', 'transformer.layer.{i}.sa_layer_norm.'],
    ['encoder.layer.{i}.intermediate.dense.', 'transformer.layer.{i}.ffn.lin1.'],
    ['encoder.layer.{i}.output.dense.', 'transformer.layer.{i}.ffn.lin2.'],
    ['encoder.layer.{i}.output.LayerNorm.', 'transformer.layer.{i}.output_layer_norm.'],
    // Adapters and fusion layers at the two positions of a block (AdapterHub's BottleneckLayer modules).
    ['encoder.layer.{i}.attention.output.', 'transformer.layer.{i}.attention_adapters.'],
    ['encoder.layer.{i}.output.', 'transformer.layer.{i}.output_adapters.'],
    ['encoder.', 'transformer.'],
  ],
  positionsAfterPadding: false,
  adapterHubClass: { distilbert: 'DistilBertAdapterModel' },
  prefixLocation: 'self',
};

export const ENCODER_VARIANTS: EncoderVariant[] = [BERT, ROBERTA, DISTILBERT, ELECTRA];

export const SUPPORTED_MODEL_TYPES = ENCODER_VARIANTS.flatMap((v) => v.modelTypes);

/** The member for a config.json `model_type`; BERT when absent (old BERT configs have none). */
export function variantOf(modelType: string | undefined): EncoderVariant | undefined {
  return ENCODER_VARIANTS.find((v) => v.modelTypes.includes(modelType ?? 'bert'));
}

/** `{i}` in a rename prefix matches a layer index. */
function prefixPattern(prefix: string): RegExp {
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp('^' + prefix.split('{i}').map(escape).join('(\\d+)'));
}

function rename(name: string, rules: [string, string][], from: 0 | 1): string {
  for (const rule of rules) {
    const m = prefixPattern(rule[from]).exec(name);
    if (m) return rule[1 - from].replace('{i}', m[1] ?? '') + name.slice(m[0].length);
  }
  return name;
}

/** This codebase's name -> the model's own name, without its prefix (`transformer.layer.0.attention.q_lin.weight`). */
export function ownName(variant: EncoderVariant, name: string): string {
  return rename(name, variant.renames, 0);
}

/** The model's own name (without its prefix) -> this codebase's name. */
export function ourName(variant: EncoderVariant, own: string): string {
  return rename(own, variant.renames, 1);
}

/**
 * How AdapterHub names what an adapter folder holds for a model type: the flex-head model class and type
 * written in adapter_config.json and head_config.json, and full parameter names in its weight files
 * (`roberta.encoder.layer.0.output.adapters.<name>.adapter_down.0.weight`,
 * `distilbert.transformer.layer.0.output_adapters.adapters.<name>...`).
 */
export interface AdapterHubNaming {
  modelType: string;
  modelClass: string;
  /** The name in AdapterHub's state dict of a parameter by this codebase's name. */
  toHub(name: string): string;
  /** This codebase's name of a name in AdapterHub's state dict (the base model's prefix optional). */
  fromHub(name: string): string;
}

export function adapterHubNaming(modelType = 'bert'): AdapterHubNaming {
  const variant = variantOf(modelType);
  if (!variant) throw new Error(`model_type "${modelType}" is not a BERT-family encoder`);
  return {
    modelType,
    modelClass: variant.adapterHubClass[modelType],
    toHub: (name) => variant.prefix + ownName(variant, name),
    fromHub: (name) => ourName(variant, name.startsWith(variant.prefix) ? name.slice(variant.prefix.length) : name),
  };
}
