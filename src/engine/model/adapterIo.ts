import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { transposedInPytorch, transpose2d } from './checkpoint';
import { readSafetensors, TensorMap, writeSafetensors } from './safetensors';
import { readTorchBin, writeTorchBin } from './torchPickle';
import { AdapterHubNaming, adapterHubNaming } from './encoderVariants';
import { UserInputError } from '../errors';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomicFile';
import { BN_FLOAT_KEYS, placementFromBnConfig } from '../methods/bottleneck';
import { PER_LAYER_POOL, prefixOptionsFromConfig } from '../methods/prefixTuning';
import { catalogEntry, isCatalogMethod, METHOD_CATALOG } from '../methods/catalog';

/**
 * Adapters on disk in AdapterHub's layout, so a Python user can load them with the `adapters` library:
 *   adapter_config.json      {config, hidden_size, model_class, model_name, model_type, name, version}
 *   adapter.safetensors      the method's parameters and any base parameters it trained, full names
 *   pytorch_adapter.bin      (`bert.encoder.layer.0.output.adapters.<name>.adapter_down.0.weight`, PyTorch [out, in]);
 *                            the .bin (torch.save's format) is what `model.load_adapter(dir)` reads by default
 *   head_config.json         AdapterHub's head config (classification head, 2 layers, tanh)
 *   model_head.safetensors   `heads.<name>.1.weight` ... in PyTorch layout
 *   pytorch_model_head.bin
 * adapter_config.json is written as AdapterHub's json.dump writes it (sorted keys, indent 2, floats as floats)
 * and also carries an `adapter_lab` block (task, method options, labels, model; AdapterHub's save_adapter
 * `meta_dict` puts extra keys there the same way) so this tool can rebuild the exact model from the folder alone.
 *
 * A folder AdapterHub saved (no `adapter_lab` block) is read too: its BnConfig, its weights (adapter.safetensors
 * or pytorch_adapter.bin) and its head when it has one (see `readAdapterHubFolder`).
 */

export const ADAPTER_WEIGHTS = { safetensors: 'adapter.safetensors', bin: 'pytorch_adapter.bin' };
export const HEAD_WEIGHTS = { safetensors: 'model_head.safetensors', bin: 'pytorch_model_head.bin' };

/** Writes one weights map both ways: safetensors, and the .bin AdapterHub's loaders read by default. */
export function writeWeights(dir: string, names: { safetensors: string; bin: string }, tensors: TensorMap): void {
  writeSafetensors(path.join(dir, names.safetensors), tensors, { metadata: { format: 'pt' } });
  writeTorchBin(path.join(dir, names.bin), tensors);
}

/** Reads a weights map: the safetensors file when there is one, else the .bin (torch.save's format). */
export function readWeights(dir: string, names: { safetensors: string; bin: string }): TensorMap {
  const safe = path.join(dir, names.safetensors);
  if (fs.existsSync(safe)) return readSafetensors(safe).tensors;
  const bin = path.join(dir, names.bin);
  if (fs.existsSync(bin)) return readTorchBin(bin);
  throw new UserInputError(`neither ${names.safetensors} nor ${names.bin} is there`, { file: dir });
}

/** The safetensors/.bin pairs a folder in AdapterHub's layout may hold (adapters, heads, fusions). */
export const WEIGHT_FILE_PAIRS: readonly { safetensors: string; bin: string }[] = [
  ADAPTER_WEIGHTS,
  HEAD_WEIGHTS,
  { safetensors: 'model_adapter_fusion.safetensors', bin: 'pytorch_model_adapter_fusion.bin' },
];

/**
 * Checks a folder's weight files before they are handed out (export): each reads whole, and where both
 * twins exist they hold the same tensors (Python loads the .bin, this tool the safetensors: a difference would
 * be silent). A folder this tool wrote (`adapter_lab` in adapter_config.json) must have its safetensors; a .bin
 * missing beside one (a run from before .bin files were written) is written when `completeBin` is set.
 * UserInputError naming the file otherwise. Recurses into a fusion's fused-adapter folders.
 */
export function checkWeightTwins(dir: string, { completeBin = false }: { completeBin?: boolean } = {}): void {
  const ours = isOwnAdapterFolder(dir);
  for (const pair of WEIGHT_FILE_PAIRS) {
    const safe = path.join(dir, pair.safetensors);
    const bin = path.join(dir, pair.bin);
    const hasSafe = fs.existsSync(safe);
    const hasBin = fs.existsSync(bin);
    if (!hasSafe && ours && (hasBin || (pair === ADAPTER_WEIGHTS && fs.existsSync(path.join(dir, 'adapter_config.json'))))) throw new UserInputError('file not found', { file: safe });
    if (!hasSafe) {
      if (hasBin) readTorchBin(bin);
      continue;
    }
    const fromSafe = readSafetensors(safe).tensors;
    if (!hasBin) {
      if (completeBin) writeTorchBin(bin, fromSafe);
      continue;
    }
    const fromBin = readTorchBin(bin);
    const differs = [...new Set([...fromSafe.keys(), ...fromBin.keys()])].find((name) => {
      const a = fromSafe.get(name);
      const b = fromBin.get(name);
      return !a || !b || a.shape.join() !== b.shape.join() || !Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength));
    });
    if (differs !== undefined) throw new UserInputError(`does not hold the same tensors as ${pair.safetensors} (first difference: ${differs})`, { file: bin });
  }
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory() && fs.existsSync(path.join(dir, e.name, 'adapter_config.json'))) checkWeightTwins(path.join(dir, e.name), { completeBin });
  }
}

function isOwnAdapterFolder(dir: string): boolean {
  for (const f of ['adapter_config.json', 'adapter_fusion_config.json']) {
    try {
      if ('adapter_lab' in JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'))) return true;
    } catch {
      // absent or unreadable: the JSON check reports it
    }
  }
  return false;
}

/**
 * JSON as Python's json.dump(obj, indent=2, sort_keys=True) writes it, with the numbers under `floatKeys`
 * written as floats (1.0, not 1): AdapterHub's BnConfig refuses an integer scaling.
 */
export function pythonJson(value: unknown, floatKeys: ReadonlySet<string> = new Set(), indent = ''): string {
  const float = (n: number) => (Number.isInteger(n) && Math.abs(n) < 1e16 ? `${n}.0` : JSON.stringify(n));
  const write = (v: unknown, asFloat: boolean, ind: string): string => {
    if (typeof v === 'number') return asFloat ? float(v) : JSON.stringify(v);
    if (Array.isArray(v)) return v.length ? `[\n${v.map((x) => ind + '  ' + write(x, asFloat, ind + '  ')).join(',\n')}\n${ind}]` : '[]';
    if (v && typeof v === 'object') {
      const keys = Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined).sort();
      if (!keys.length) return '{}';
      return `{\n${keys.map((k) => `${ind}  ${JSON.stringify(k)}: ${write((v as Record<string, unknown>)[k], asFloat || floatKeys.has(k), ind + '  ')}`).join(',\n')}\n${ind}}`;
    }
    return JSON.stringify(v ?? null);
  };
  return write(value, false, indent);
}

export interface AdapterLabMeta {
  /** The model reference the adapter was trained on (`builtin:...` or a folder). */
  model: string;
  method: Record<string, unknown> & { type: string };
  task: { name: string; type: 'classification' | 'regression'; labels: string[] | null };
  maxSeqLength: number;
  adapterName: string;
  /**
   * Hidden size and layers of the base, to refuse loading onto another model; its fingerprint (model/fingerprint.ts)
   * when recorded; its Hugging Face model_type (absent: bert), which sets AdapterHub's parameter names.
   */
  base: { hiddenSize: number; numLayers: number; vocabSize: number; fingerprint?: string; modelType?: string };
  /** An adapter saved without a head (AdapterHub's save_adapter without with_head): it can be fused, not evaluated. */
  noHead?: boolean;
}

/** `naming`: a prefix for every name, or a model type's AdapterHub naming (encoderVariants.ts). */
export function toPytorch(params: Map<string, tf.Variable>, naming: string | AdapterHubNaming): TensorMap {
  const out: TensorMap = new Map();
  const hubName = typeof naming === 'string' ? (n: string) => naming + n : naming.toHub;
  for (const [name, v] of params) {
    const arr = { shape: v.shape, data: v.dataSync() as Float32Array };
    out.set(hubName(name), transposedInPytorch(name, arr.shape) ? transpose2d(arr) : arr);
  }
  return out;
}

export function fromPytorch(tensors: TensorMap, naming: string | AdapterHubNaming): TensorMap {
  const out: TensorMap = new Map();
  const ourName = typeof naming === 'string' ? (n: string) => (n.startsWith(naming) ? n.slice(naming.length) : n) : naming.fromHub;
  for (const [fullName, arr] of tensors) {
    const name = ourName(fullName);
    out.set(name, transposedInPytorch(name, arr.shape) ? transpose2d(arr) : arr);
  }
  return out;
}

/** What a trained adapter folder is written from. */
export interface AdapterFolderParts {
  /** The method's parameters and the base parameters it trained or set. */
  adapterParams: Map<string, tf.Variable>;
  headParams: Map<string, tf.Variable>;
  /** The `config` object of adapter_config.json (the method's adapterConfig()). */
  adapterConfig: Record<string, unknown>;
  headConfig: Record<string, unknown>;
  meta: AdapterLabMeta;
}

export function saveAdapterFolder(dir: string, parts: AdapterFolderParts): void {
  fs.mkdirSync(dir, { recursive: true });
  const naming = adapterHubNaming(parts.meta.base.modelType);
  writeWeights(dir, ADAPTER_WEIGHTS, toPytorch(parts.adapterParams, naming));
  writeWeights(dir, HEAD_WEIGHTS, toPytorch(parts.headParams, ''));
  writeAdapterHubJson(path.join(dir, 'adapter_config.json'), {
    config: parts.adapterConfig,
    hidden_size: parts.meta.base.hiddenSize,
    model_class: naming.modelClass,
    model_name: parts.meta.model,
    model_type: naming.modelType,
    name: parts.meta.adapterName,
    version: 'adapters.1.0.0',
    adapter_lab: parts.meta,
  });
  writeAdapterHubJson(path.join(dir, 'head_config.json'), { ...parts.headConfig, model_class: naming.modelClass, model_type: naming.modelType });
}

/** A config file as AdapterHub writes it (see pythonJson). */
export function writeAdapterHubJson(file: string, value: Record<string, unknown>): void {
  writeFileAtomic(file, pythonJson(value, BN_FLOAT_KEYS));
}

export interface AdapterFolder {
  meta: AdapterLabMeta;
  /** Parameter values by this codebase's names and layout. */
  adapterParams: TensorMap;
  headParams: TensorMap;
}

export function readAdapterFolder(dir: string): AdapterFolder {
  const cfgFile = path.join(dir, 'adapter_config.json');
  if (!fs.existsSync(cfgFile)) throw new UserInputError(`no adapter_config.json in ${dir}`, { file: cfgFile });
  const cfg = readJson(cfgFile) as { adapter_lab?: AdapterLabMeta; config?: Record<string, unknown>; model_type?: string };
  if (!cfg.adapter_lab) return readAdapterHubFolder(dir, cfg);
  const meta = cfg.adapter_lab;
  // The placement is the one adapter_config.json declares (an adapter saved by an earlier version keeps its own).
  const type = meta.method.type;
  if (isCatalogMethod(type) && METHOD_CATALOG[type].kind === 'bottleneck' && cfg.config) meta.method = { ...meta.method, bnConfig: cfg.config };
  return {
    meta,
    adapterParams: fromPytorch(readWeights(dir, ADAPTER_WEIGHTS), adapterHubNaming(meta.base.modelType ?? cfg.model_type)),
    headParams: fromPytorch(readWeights(dir, HEAD_WEIGHTS), ''),
  };
}

function readJson(file: string): Record<string, unknown> {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v;
  } catch (err) {
    throw new UserInputError(`cannot parse: ${(err as Error).message}`, { file });
  }
}

/** An AdapterHub folder's adapter name, model type and the parameter naming of that model type. */
function adapterHubIdentity(cfg: Record<string, unknown>, cfgFile: string): { name: string; modelType: string; naming: AdapterHubNaming } {
  const name = cfg.name;
  if (typeof name !== 'string' || !name) throw new UserInputError('adapter_config.json has no adapter "name"', { file: cfgFile, field: 'name' });
  const modelType = cfg.model_type === undefined ? 'bert' : String(cfg.model_type);
  try {
    return { name, modelType, naming: adapterHubNaming(modelType) };
  } catch {
    throw new UserInputError(`an adapter for a ${modelType} model; this loader reads adapters of BERT-family encoders (bert, roberta, xlm-roberta, camembert, distilbert, electra)`, { file: cfgFile, field: 'model_type' });
  }
}

/** AdapterHub's old parameter names, as its loader renames them (loading.py, legacy_weights_mapping). */
const LEGACY_NAMES: [string, string][] = [
  ['attention_text_task_adapters', 'adapters'],
  ['attention_text_lang_adapters', 'adapters'],
  ['layer_text_task_adapters', 'adapters'],
  ['layer_text_lang_adapters', 'adapters'],
];

/**
 * An adapter folder AdapterHub saved (`model.save_adapter(dir, name)`, with or without `with_head`): a
 * bottleneck adapter (any BnConfig placement this engine computes: sequential or parallel) or a prefix-tuning
 * (PrefixTuningConfig) on a BERT-family model. A bottleneck adapter's sizes come from the saved weights, layers
 * without weights are left out, and its head (a two-layer classification or regression head, if saved) becomes
 * the task.
 */
function readAdapterHubFolder(dir: string, cfg: Record<string, unknown>): AdapterFolder {
  const cfgFile = path.join(dir, 'adapter_config.json');
  const config = cfg.config as Record<string, unknown> | undefined;
  if (!config || typeof config !== 'object') throw new UserInputError('adapter_config.json has no "config" object', { file: cfgFile, field: 'config' });
  if (config.architecture === 'prefix_tuning') return readAdapterHubPrefixFolder(dir, cfg, config);
  if (config.architecture === 'lora') return readAdapterHubLoraFolder(dir, cfg, config);
  const placement = placementFromBnConfig(config, cfgFile);
  const { name, modelType, naming } = adapterHubIdentity(cfg, cfgFile);
  const nonLinearity = String(config.non_linearity ?? 'relu').toLowerCase();
  if (!['relu', 'gelu', 'gelu_new', 'swish', 'silu', 'tanh'].includes(nonLinearity)) {
    throw new UserInputError(`config.non_linearity "${String(config.non_linearity)}" is not supported here (relu, gelu, gelu_new, swish, silu, tanh)`, { file: cfgFile, field: 'config.non_linearity' });
  }
  const raw = readWeights(dir, ADAPTER_WEIGHTS);
  const renamed: TensorMap = new Map();
  for (const [n, v] of raw) renamed.set(LEGACY_NAMES.reduce((k, [from, to]) => k.replace(from, to), n), v);
  const adapterParams = fromPytorch(renamed, naming);
  // Sizes by layer, from the down projections ([in, out] here).
  const sizes: Record<string, number> = {};
  const sublayer = placement.outputAdapter ? 'output' : 'attention.output';
  const pattern = new RegExp(`^encoder\\.layer\\.(\\d+)\\.${sublayer.replace('.', '\\.')}\\.adapters\\.${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.adapter_down\\.0\\.weight$`);
  for (const [n, v] of adapterParams) {
    const m = pattern.exec(n);
    if (m) sizes[m[1]] = v.shape[1];
  }
  if (!Object.keys(sizes).length) throw new UserInputError(`no weights of the adapter "${name}" (…adapters.${name}.adapter_down.0.weight)`, { file: dir });
  const trainedLayerNorms = [...adapterParams.keys()].some((n) => n.includes('LayerNorm.'));
  const hidden = Number(cfg.hidden_size ?? adapterParams.get([...adapterParams.keys()].find((n) => pattern.test(n))!)!.shape[0]);
  const head = readAdapterHubHead(dir, name);
  const meta: AdapterLabMeta = {
    model: String(cfg.model_name ?? ''),
    method: {
      type: placement.isParallel ? 'parallel' : placement.mhAdapter ? 'houlsby' : 'pfeiffer',
      nonLinearity,
      initStd: 0.01,
      trainLayerNorm: trainedLayerNorms,
      leaveOut: Array.isArray(config.leave_out) ? (config.leave_out as number[]) : [],
      dropLowest: 0,
      bnConfig: config,
      sizesByLayer: sizes,
    },
    task: head?.task ?? { name, type: 'classification', labels: null },
    maxSeqLength: 128,
    adapterName: name,
    base: { hiddenSize: hidden, numLayers: 0, vocabSize: 0, modelType },
    ...(head ? {} : { noHead: true }),
  };
  return { meta, adapterParams, headParams: head?.params ?? new Map() };
}

/**
 * A prefix-tuning AdapterHub saved: the reparametrised form (`…self_prefix.wte.weight`, `control_trans.0`/`.2`)
 * or the flat one (`…self_prefix.control_trans`, after eject_prefix_tuning). The form is the weights': AdapterHub
 * saves an ejected prefix with its config still saying `flat: false`. AdapterHub's state dict holds the pool
 * once under the base model and again under every layer (`…attention.self.prefix_tuning.pool.…`); any copy serves.
 */
function readAdapterHubPrefixFolder(dir: string, cfg: Record<string, unknown>, config: Record<string, unknown>): AdapterFolder {
  const cfgFile = path.join(dir, 'adapter_config.json');
  const name = cfg.name;
  if (typeof name !== 'string' || !name) throw new UserInputError('adapter_config.json has no adapter "name"', { file: cfgFile, field: 'name' });
  const modelType = cfg.model_type === undefined ? 'bert' : String(cfg.model_type);
  let naming: AdapterHubNaming;
  try {
    naming = adapterHubNaming(modelType);
  } catch {
    throw new UserInputError(`an adapter for a ${modelType} model; this loader reads adapters of BERT-family encoders (bert, roberta, xlm-roberta, camembert, distilbert, electra)`, { file: cfgFile, field: 'model_type' });
  }
  const options = prefixOptionsFromConfig(config, cfgFile);
  const raw = readWeights(dir, ADAPTER_WEIGHTS);
  const pool: TensorMap = new Map();
  for (const [n, v] of raw) {
    const perLayer = n.indexOf(PER_LAYER_POOL);
    const canonical = perLayer >= 0 ? naming.toHub(`prefix_tuning.prefix_tunings.${n.slice(perLayer + PER_LAYER_POOL.length)}`) : n;
    if (!pool.has(canonical) || perLayer < 0) pool.set(canonical, v);
  }
  const adapterParams = fromPytorch(pool, naming);
  const own = [...adapterParams.keys()].filter((n) => n.startsWith(`prefix_tuning.prefix_tunings.${name}.`));
  if (!own.length) throw new UserInputError(`no weights of the prefix "${name}" (…prefix_tuning.prefix_tunings.${name}.…)`, { file: dir });
  const flat = own.some((n) => n.endsWith('.control_trans'));
  const head = readAdapterHubHead(dir, name);
  const meta: AdapterLabMeta = {
    model: String(cfg.model_name ?? ''),
    method: {
      type: 'prefix-tuning',
      ...options,
      flat,
      initStd: 0.01,
      trainLayerNorm: [...adapterParams.keys()].some((n) => n.includes('LayerNorm.')),
      dropLowest: 0,
    },
    task: head?.task ?? { name, type: 'classification', labels: null },
    maxSeqLength: 128,
    adapterName: name,
    base: { hiddenSize: Number(cfg.hidden_size ?? 0), numLayers: 0, vocabSize: 0, modelType },
    ...(head ? {} : { noHead: true }),
  };
  return { meta, adapterParams, headParams: head?.params ?? new Map() };
}

/**
 * A LoRA or (IA)³ adapter AdapterHub saved (LoRAConfig, IA3Config: architecture "lora", composition_mode "add"
 * or "scale"); refuses, naming the key, what this engine does not compute (gating, VeRA, other init-only keys
 * aside). Its options come from the config with LoRAConfig's defaults for missing keys.
 */
function readAdapterHubLoraFolder(dir: string, cfg: Record<string, unknown>, config: Record<string, unknown>): AdapterFolder {
  const cfgFile = path.join(dir, 'adapter_config.json');
  const at = (key: string) => ({ file: cfgFile, field: `config.${key}` });
  const mode = config.composition_mode ?? 'add';
  if (mode !== 'add' && mode !== 'scale') throw new UserInputError(`config.composition_mode "${String(mode)}" is not supported here (add: LoRA, scale: (IA)³)`, at('composition_mode'));
  const type = mode === 'add' ? 'lora' : 'ia3';
  const defaults = catalogEntry(type).adapterHub!.defaults as Record<string, unknown>;
  const get = (k: string) => (k in config ? config[k] : defaults[k]);
  if (get('use_gating') === true) throw new UserInputError('config.use_gating is true: gated LoRA modules are not supported here', at('use_gating'));
  if (get('vera_d') != null || get('vera_b') != null) throw new UserInputError('config.vera_d/vera_b are set: VeRA is not supported here', at(get('vera_d') != null ? 'vera_d' : 'vera_b'));
  const { name, modelType, naming } = adapterHubIdentity(cfg, cfgFile);
  const adapterParams = fromPytorch(readWeights(dir, ADAPTER_WEIGHTS), naming);
  if (![...adapterParams.keys()].some((n) => n.includes(`.loras.${name}.`))) throw new UserInputError(`no weights of the adapter "${name}" (…loras.${name}.lora_B)`, { file: dir });
  const matrices = get('selfattn_lora') === false ? [] : (get('attn_matrices') as string[]);
  const head = readAdapterHubHead(dir, name);
  const meta: AdapterLabMeta = {
    model: String(cfg.model_name ?? ''),
    method: {
      type,
      nonLinearity: 'gelu',
      initStd: 0.01,
      trainLayerNorm: [...adapterParams.keys()].some((n) => n.includes('LayerNorm.')),
      leaveOut: Array.isArray(get('leave_out')) ? (get('leave_out') as number[]) : [],
      dropLowest: 0,
      r: Number(get('r')),
      alpha: Number(get('alpha')),
      dropout: Number(get('dropout') ?? 0),
      attnMatrices: matrices,
      intermediateLora: get('intermediate_lora') === true,
      outputLora: get('output_lora') === true,
    },
    task: head?.task ?? { name, type: 'classification', labels: null },
    maxSeqLength: 128,
    adapterName: name,
    base: { hiddenSize: Number(cfg.hidden_size ?? 0), numLayers: 0, vocabSize: 0, modelType },
    ...(head ? {} : { noHead: true }),
  };
  return { meta, adapterParams, headParams: head?.params ?? new Map() };
}

/** The head AdapterHub saved beside an adapter (`with_head`), as this tool's task; null when there is none. */
function readAdapterHubHead(dir: string, adapterName: string): { task: AdapterLabMeta['task']; params: TensorMap } | null {
  const file = path.join(dir, 'head_config.json');
  if (!fs.existsSync(file)) return null;
  const cfg = readJson(file) as { config?: Record<string, unknown>; name?: string };
  const c = cfg.config ?? {};
  const field = (k: string) => ({ file, field: `config.${k}` });
  if (c.head_type !== 'classification') throw new UserInputError(`a "${String(c.head_type)}" head; only classification heads (AdapterHub's add_classification_head) are supported here`, field('head_type'));
  if ((c.layers ?? 2) !== 2) throw new UserInputError(`a head with ${String(c.layers)} layers; only AdapterHub's default 2-layer head is supported here`, field('layers'));
  if ((c.activation_function ?? 'tanh') !== 'tanh') throw new UserInputError(`a head with activation "${String(c.activation_function)}"; only tanh is supported here`, field('activation_function'));
  if (c.use_pooler) throw new UserInputError('a head on the pooler output (use_pooler); only heads on the first token are supported here', field('use_pooler'));
  if (c.bias === false) throw new UserInputError('a head without biases; not supported here', field('bias'));
  const numLabels = Number(c.num_labels ?? 2);
  const headName = typeof cfg.name === 'string' ? cfg.name : adapterName;
  let labels: string[] | null = null;
  if (numLabels !== 1) {
    labels = [...Array(numLabels).keys()].map(String);
    const label2id = c.label2id as Record<string, number> | null | undefined;
    if (label2id) for (const [label, id] of Object.entries(label2id)) if (Number.isInteger(id) && id >= 0 && id < numLabels) labels[id] = label;
  }
  const weights = fromPytorch(readWeights(dir, HEAD_WEIGHTS), '');
  // The head's parameters under this adapter's name (a head saved under another name is renamed, as load_as would).
  const params: TensorMap = new Map();
  for (const [n, v] of weights) params.set(n.replace(`heads.${headName}.`, `heads.${adapterName}.`), v);
  return { task: { name: adapterName, type: numLabels === 1 ? 'regression' : 'classification', labels }, params };
}

/** Copies saved values into live variables, checking names and shapes. */
export function assignParams(target: Map<string, tf.Variable>, values: TensorMap, where: string): void {
  for (const [name, v] of target) {
    const arr = values.get(name);
    if (!arr) throw new UserInputError(`${where}: parameter ${name} is missing`);
    if (arr.shape.join(',') !== v.shape.join(',')) throw new UserInputError(`${where}: parameter ${name} has shape [${arr.shape}], expected [${v.shape}]`);
    // In a tidy, so that the tensor made for the assignment does not stay alive beside the variable.
    tf.tidy(() => v.assign(tf.tensor(arr.data as Float32Array, v.shape)));
  }
}

/** Current values of variables, by name (for checkpoints and best-model snapshots). */
export function snapshot(params: Map<string, tf.Variable>): TensorMap {
  const out: TensorMap = new Map();
  for (const [n, v] of params) out.set(n, { shape: v.shape, data: (v.dataSync() as Float32Array).slice() });
  return out;
}
