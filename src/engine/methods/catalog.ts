/**
 * What each method is, as plain data (no TensorFlow.js import: the extension reads it too): its name, a one-line
 * description, its option defaults and default learning rate, the base parameters it trains by default, how its
 * parameter count follows from the model's shape, and AdapterHub's config class and keys for it.
 *
 * The method's computation lives in its own file under methods/ and one line of registry.ts. The schema's method
 * list, New Experiment, the results rows and the README's method table are checked against this catalog
 * (test/engine/methods/catalog.test.ts); config/load.ts takes its per-method defaults from it.
 */

/** The shape of a model, as far as method sizes depend on it. */
export interface ModelShape {
  /** Hidden size d. */
  d: number;
  /** Layers L. */
  L: number;
  /** Feed-forward inner size (4d in BERT). */
  intermediate: number;
  /**
   * A convolutional network's convolutions (the ResNet family: families/resnet/network.ts convSites): input and
   * output channels, and the block each belongs to (null: the stem). Absent for transformer encoders.
   */
  convSites?: readonly { in: number; out: number; block: number | null }[];
}

/**
 * The model families (src/engine/families), by name, and the family each task type belongs to: plain data, so that
 * the config loader and the extension know which methods a task can use without loading a family's code.
 * families/index.ts checks that the registered families agree (test/engine/methods/catalog.test.ts).
 */
export type FamilyName = 'bert' | 'resnet';
export const TASK_TYPE_FAMILY = { classification: 'bert', regression: 'bert', 'image-classification': 'resnet' } as const satisfies Record<string, FamilyName>;
export type CatalogTaskType = keyof typeof TASK_TYPE_FAMILY;

/** The method options a size rule reads (a resolved config's `method`, or part of it). */
export type MethodOptionValues = Record<string, unknown>;

export type MethodKind = 'bottleneck' | 'adapter' | 'reparametrisation' | 'prefix' | 'baseline' | 'fusion' | 'domain';

/** Which of the base model's own parameters a method trains by default (besides the head, which all train). */
export type TrainedBase = 'none' | 'all LayerNorms' | 'FFN LayerNorms' | 'biases' | 'top k layers' | 'everything';

export interface MethodCatalogEntry {
  /** The paper (or the baseline's origin), for tables. */
  readonly title: string;
  /** One line: what the method trains and where. */
  readonly description: string;
  readonly kind: MethodKind;
  /** The model families that implement it (a method of several families has one name in configs and tables). */
  readonly families: readonly FamilyName[];
  /** A family's own default learning rate, where it differs from `learningRate` (the first family's). */
  readonly learningRateByFamily?: Readonly<Partial<Record<FamilyName, number>>>;
  /** Option defaults the config loader fills in for this method (beyond the common ones). */
  readonly defaults: Readonly<MethodOptionValues>;
  /** Options this method reads (the schema's `method` properties; `type` aside). */
  readonly options: readonly string[];
  readonly learningRate: number;
  /** Base parameters trained by default (`trainLayerNorm` changes it where the method has that option). */
  readonly trainsBase: TrainedBase;
  /** Modules placed per layer: `leaveOut`, the layer ablation and AdapterDrop apply; leaving out all is an error. */
  readonly perLayerModules: boolean;
  /** The size rule in words, for the README (d hidden size, L layers, L' layers with modules, f inner size). */
  readonly sizeRule: string;
  /** Parameters the method adds (its own modules; trained base parameters and the head not counted). */
  addedParams(shape: ModelShape, options: MethodOptionValues): number;
  /** AdapterHub's config class and its defaults (the keys of `to_dict()`), or null where AdapterHub has none. */
  readonly adapterHub: { readonly configClass: string; readonly defaults: Readonly<MethodOptionValues> } | null;
  /** Offered by New Experiment, with this method block; absent: not offered (it needs inputs, as fusion). */
  readonly newExperiment?: Readonly<MethodOptionValues>;
}

const COMMON_ADAPTER_OPTIONS = ['leaveOut', 'dropLowest'] as const;
const BOTTLENECK_OPTIONS = ['bottleneck', 'reductionFactor', 'bottleneckPerLayer', 'nonLinearity', 'initStd', 'trainLayerNorm', ...COMMON_ADAPTER_OPTIONS] as const;

/** The convolutions inside blocks (where residual adapters sit; not the stem). */
function blockConvs(shape: ModelShape): readonly { in: number; out: number }[] {
  return (shape.convSites ?? []).filter((s) => s.block !== null);
}

/** A domain's own BatchNorm at every convolution, the stem's included: scale and shift per output channel. */
function domainBatchNorms(shape: ModelShape): number {
  return (shape.convSites ?? []).reduce((n, s) => n + 2 * s.out, 0);
}

/** Layers with modules: L minus the ones left out. */
export function layersWithModules(shape: ModelShape, options: MethodOptionValues): number {
  const leaveOut = Array.isArray(options.leaveOut) ? new Set(options.leaveOut as number[]) : new Set<number>();
  return [...Array(shape.L).keys()].filter((i) => !leaveOut.has(i)).length;
}

/** m at layer i: bottleneckPerLayer, bottleneck, or floor(d / reductionFactor) (at least 1), default 64. */
function bottleneckAt(shape: ModelShape, options: MethodOptionValues, i: number): number {
  const per = options.bottleneckPerLayer as number[] | undefined;
  if (per?.[i] !== undefined) return per[i];
  if (typeof options.bottleneck === 'number') return options.bottleneck;
  if (typeof options.reductionFactor === 'number') return Math.max(1, Math.floor(shape.d / options.reductionFactor));
  return 64;
}

function bottleneckParams(adaptersPerLayer: number) {
  return (shape: ModelShape, options: MethodOptionValues): number => {
    const leaveOut = new Set((options.leaveOut as number[] | undefined) ?? []);
    let n = 0;
    for (let i = 0; i < shape.L; i++) if (!leaveOut.has(i)) n += adaptersPerLayer * (2 * bottleneckAt(shape, options, i) * shape.d + shape.d + bottleneckAt(shape, options, i));
    return n;
  };
}

/** The LoRA family's target projections and their (in, out) sizes: AdapterHub's attn_matrices, intermediate_lora, output_lora. */
export function loraTargets(shape: ModelShape, options: MethodOptionValues): { name: string; in: number; out: number }[] {
  const matrices = (options.attnMatrices as string[] | undefined) ?? [];
  const targets: { name: string; in: number; out: number }[] = [];
  for (const [key, name] of [['q', 'query'], ['k', 'key'], ['v', 'value']] as const) if (matrices.includes(key)) targets.push({ name, in: shape.d, out: shape.d });
  if (options.intermediateLora === true) targets.push({ name: 'intermediate', in: shape.d, out: shape.intermediate });
  if (options.outputLora === true) targets.push({ name: 'output', in: shape.intermediate, out: shape.d });
  return targets;
}

/** AdapterHub's LoRAConfig defaults (configuration/adapter_config.py, v1.2.0): every key `to_dict()` writes. */
const LORA_CONFIG_DEFAULTS = {
  architecture: 'lora',
  selfattn_lora: true,
  intermediate_lora: false,
  output_lora: false,
  leave_out: [],
  r: 8,
  alpha: 8,
  dropout: 0.0,
  attn_matrices: ['q', 'v'],
  composition_mode: 'add',
  init_weights: 'lora',
  init_weights_seed: null,
  use_gating: false,
  vera_d: null,
  vera_b: null,
  dtype: null,
} as const;

/** The bottleneck keys where AdapterHub's SeqBnConfig and DoubleSeqBnConfig differ, with their class defaults. */
const SEQ_BN_DEFAULTS = { mh_adapter: false, output_adapter: true, reduction_factor: 16, non_linearity: 'relu', original_ln_before: true, original_ln_after: true, residual_before_ln: true, scaling: 1.0, is_parallel: false, init_weights: 'bert' } as const;

/** AdapterHub's ParBnConfig (v1.2.0): the keys where it differs from BnConfig's defaults. */
const PAR_BN_DEFAULTS = { mh_adapter: false, output_adapter: true, reduction_factor: 2, non_linearity: 'relu', original_ln_before: false, original_ln_after: true, ln_before: false, ln_after: false, init_weights: 'mam_adapter', is_parallel: true, scaling: 4.0 } as const;

/** AdapterHub's PrefixTuningConfig (v1.2.0): every key `to_dict()` writes, with its defaults. */
export const PREFIX_TUNING_DEFAULTS = {
  architecture: 'prefix_tuning',
  encoder_prefix: true,
  cross_prefix: true,
  leave_out: [],
  flat: false,
  prefix_length: 30,
  bottleneck_size: 512,
  non_linearity: 'tanh',
  dropout: 0.0,
  use_gating: false,
  shared_gating: true,
  init_weights_seed: null,
} as const;

export const METHOD_CATALOG = {
  houlsby: {
    title: 'Houlsby et al. 2019',
    description: 'two bottleneck adapters per layer (after the attention output projection and after the FFN output), all LayerNorms and the head trained',
    kind: 'bottleneck',
    families: ['bert'],
    defaults: { bottleneck: 64, trainLayerNorm: true },
    options: BOTTLENECK_OPTIONS,
    learningRate: 3e-4,
    trainsBase: 'all LayerNorms',
    perLayerModules: true,
    sizeRule: "2 (2md + d + m) per layer with adapters: 2L'(2md + d + m)",
    addedParams: bottleneckParams(2),
    adapterHub: { configClass: 'DoubleSeqBnConfig', defaults: { ...SEQ_BN_DEFAULTS, mh_adapter: true, original_ln_before: false, init_weights: 'bert' } },
    newExperiment: { bottleneck: 64, nonLinearity: 'gelu', initStd: 0.01, trainLayerNorm: true, leaveOut: [] },
  },
  pfeiffer: {
    title: 'Pfeiffer et al. 2021',
    description: 'one bottleneck adapter per layer at the FFN sublayer (AdapterHub SeqBnConfig placement), LayerNorms and the head trained',
    kind: 'bottleneck',
    families: ['bert'],
    defaults: { bottleneck: 64, trainLayerNorm: true },
    options: BOTTLENECK_OPTIONS,
    learningRate: 3e-4,
    trainsBase: 'all LayerNorms',
    perLayerModules: true,
    sizeRule: "2md + d + m per layer with an adapter: L'(2md + d + m)",
    addedParams: bottleneckParams(1),
    adapterHub: { configClass: 'SeqBnConfig', defaults: SEQ_BN_DEFAULTS },
    newExperiment: { bottleneck: 64, nonLinearity: 'relu', initStd: 0.01, leaveOut: [] },
  },
  parallel: {
    title: 'He et al. 2022',
    description: "a bottleneck adapter beside each FFN sublayer: it reads the sublayer's input and its output, scaled by 4, is added to the FFN's (AdapterHub ParBnConfig); the head trained",
    kind: 'bottleneck',
    families: ['bert'],
    defaults: { reductionFactor: 2, scaling: 4, nonLinearity: 'relu', trainLayerNorm: false },
    options: [...BOTTLENECK_OPTIONS.filter((o) => o !== 'initStd'), 'scaling'],
    // He et al. 2022 train their parallel adapters at 1e-4; the scaling of 4 makes the adapter's steps larger.
    learningRate: 1e-4,
    trainsBase: 'none',
    perLayerModules: true,
    sizeRule: "2md + d + m per layer with an adapter, m = d / 2 by default: L'(2md + d + m)",
    addedParams: bottleneckParams(1),
    adapterHub: { configClass: 'ParBnConfig', defaults: PAR_BN_DEFAULTS },
    newExperiment: { reductionFactor: 2, scaling: 4, nonLinearity: 'relu', leaveOut: [] },
  },
  'prefix-tuning': {
    title: 'Li & Liang 2021',
    description: "prefix-tuning: P trained key/value pairs per layer that every token's attention also attends to, computed by an MLP while training (flat when saved); the head trained",
    kind: 'prefix',
    families: ['bert'],
    defaults: { prefixLength: 30, bottleneckSize: 512, flat: false, nonLinearity: 'tanh', dropout: 0, trainLayerNorm: false },
    options: ['prefixLength', 'bottleneckSize', 'flat', 'nonLinearity', 'dropout', 'trainLayerNorm', ...COMMON_ADAPTER_OPTIONS],
    learningRate: 1e-3,
    trainsBase: 'none',
    perLayerModules: true,
    sizeRule: "training: the MLP, Pd + (d + 1)b + (b + 1)·2L'd (b = bottleneckSize, P = prefixLength); saved (flat): 2PL'd",
    addedParams(shape, o) {
      const P = typeof o.prefixLength === 'number' ? o.prefixLength : 30;
      const kv = 2 * layersWithModules(shape, o) * shape.d;
      if (o.flat === true) return P * kv;
      const b = typeof o.bottleneckSize === 'number' ? o.bottleneckSize : 512;
      return P * shape.d + (shape.d + 1) * b + (b + 1) * kv;
    },
    adapterHub: { configClass: 'PrefixTuningConfig', defaults: PREFIX_TUNING_DEFAULTS },
    newExperiment: { prefixLength: 30, bottleneckSize: 512, leaveOut: [] },
  },
  adapterbias: {
    title: 'Fu et al. 2022',
    description: 'AdapterBias: per layer a vector v and a linear layer L_alpha (d -> 1); token i of the FFN output is shifted by alpha_i * v; the FFN LayerNorms and the head trained',
    kind: 'adapter',
    families: ['bert'],
    defaults: { trainLayerNorm: true, sharedAlpha: false, l0Lambda: 0 },
    options: ['sharedAlpha', 'l0Lambda', 'initStd', 'trainLayerNorm', ...COMMON_ADAPTER_OPTIONS],
    learningRate: 3e-4,
    trainsBase: 'FFN LayerNorms',
    perLayerModules: true,
    sizeRule: "v and L_alpha per layer: L'(2d + 1) (sharedAlpha: L'd + d + 1); l0Lambda > 0 adds d log-alphas per L_alpha",
    addedParams(shape, o) {
      const layers = layersWithModules(shape, o);
      const alphas = o.sharedAlpha === true ? 1 : layers;
      const perAlpha = shape.d + 1 + (typeof o.l0Lambda === 'number' && o.l0Lambda > 0 ? shape.d : 0);
      return layers * shape.d + alphas * perAlpha;
    },
    adapterHub: null,
    newExperiment: {},
  },
  lora: {
    title: 'Hu et al. 2022',
    description: 'LoRA: a low-rank update B A (rank r, scaled by alpha / r, B zero at the start) beside the query and value projections (optionally key, intermediate, output); mergeable into the weights',
    kind: 'reparametrisation',
    families: ['bert'],
    defaults: { r: 8, alpha: 8, dropout: 0, attnMatrices: ['q', 'v'], intermediateLora: false, outputLora: false, trainLayerNorm: false },
    options: ['r', 'alpha', 'dropout', 'attnMatrices', 'intermediateLora', 'outputLora', 'trainLayerNorm', ...COMMON_ADAPTER_OPTIONS],
    learningRate: 5e-4,
    trainsBase: 'none',
    perLayerModules: true,
    sizeRule: "r (in + out) per adapted projection per layer: 2rdL' for query and value",
    addedParams(shape, o) {
      const r = typeof o.r === 'number' ? o.r : 8;
      return layersWithModules(shape, o) * loraTargets(shape, o).reduce((n, t) => n + r * (t.in + t.out), 0);
    },
    adapterHub: { configClass: 'LoRAConfig', defaults: LORA_CONFIG_DEFAULTS },
    newExperiment: { r: 8, alpha: 8, attnMatrices: ['q', 'v'], leaveOut: [] },
  },
  ia3: {
    title: 'Liu et al. 2022',
    description: '(IA)³: learned vectors that rescale the keys, the values and the intermediate (FFN inner) activations, initialised to ones',
    kind: 'reparametrisation',
    families: ['bert'],
    defaults: { alpha: 1, attnMatrices: ['k', 'v'], intermediateLora: true, outputLora: false, trainLayerNorm: false },
    options: ['alpha', 'attnMatrices', 'intermediateLora', 'outputLora', 'trainLayerNorm', ...COMMON_ADAPTER_OPTIONS],
    learningRate: 3e-3,
    trainsBase: 'none',
    perLayerModules: true,
    sizeRule: "one vector per rescaled output per layer: L'(2d + f) for keys, values and the intermediate",
    addedParams(shape, o) {
      return layersWithModules(shape, o) * loraTargets(shape, o).reduce((n, t) => n + t.out, 0);
    },
    adapterHub: {
      configClass: 'IA3Config',
      defaults: { ...LORA_CONFIG_DEFAULTS, intermediate_lora: true, r: 1, alpha: 1, attn_matrices: ['k', 'v'], composition_mode: 'scale', init_weights: 'ia3' },
    },
    newExperiment: { attnMatrices: ['k', 'v'], intermediateLora: true, leaveOut: [] },
  },
  bitfit: {
    title: 'Ben Zaken et al. 2022',
    description: 'BitFit: every bias term (LayerNorm biases included) and the head trained',
    kind: 'baseline',
    families: ['bert'],
    defaults: {},
    options: [],
    learningRate: 1e-3,
    trainsBase: 'biases',
    perLayerModules: false,
    sizeRule: 'none added; trains the base biases',
    addedParams: () => 0,
    adapterHub: null,
    newExperiment: {},
  },
  layernorm: {
    title: 'baseline',
    description: 'only the LayerNorm gains and biases, and the head, trained',
    kind: 'baseline',
    families: ['bert'],
    defaults: {},
    options: [],
    learningRate: 1e-3,
    trainsBase: 'all LayerNorms',
    perLayerModules: false,
    sizeRule: 'none added; trains the LayerNorms',
    addedParams: () => 0,
    adapterHub: null,
    newExperiment: {},
  },
  'top-k': {
    title: 'Houlsby et al. 2019 (baseline)',
    description: 'fine-tune the top k layers entirely, and the head',
    kind: 'baseline',
    families: ['bert'],
    defaults: {},
    options: ['k'],
    learningRate: 2e-5,
    trainsBase: 'top k layers',
    perLayerModules: false,
    sizeRule: 'none added; trains k whole layers',
    addedParams: () => 0,
    adapterHub: null,
    newExperiment: { k: 2 },
  },
  full: {
    title: 'Devlin et al. 2019',
    description: 'full fine-tuning: every parameter trained; the reference the other methods are compared against',
    kind: 'baseline',
    families: ['bert', 'resnet'],
    learningRateByFamily: { resnet: 1e-3 },
    defaults: {},
    options: [],
    learningRate: 2e-5,
    trainsBase: 'everything',
    perLayerModules: false,
    sizeRule: 'none added; trains everything',
    addedParams: () => 0,
    adapterHub: null,
    newExperiment: {},
  },
  head: {
    title: 'baseline',
    description: 'head only: a linear probe on frozen features',
    kind: 'baseline',
    families: ['bert', 'resnet'],
    learningRateByFamily: { resnet: 1e-2 },
    defaults: {},
    options: [],
    learningRate: 1e-3,
    trainsBase: 'none',
    perLayerModules: false,
    sizeRule: 'none added',
    addedParams: () => 0,
    adapterHub: null,
    newExperiment: {},
  },
  fusion: {
    title: 'Pfeiffer et al. 2021',
    description: 'AdapterFusion stage 2: attention, at each layer, over the outputs of adapters trained earlier (kept frozen)',
    kind: 'fusion',
    families: ['bert'],
    defaults: {},
    options: ['adapters'],
    learningRate: 5e-5, // AdapterFusion (Pfeiffer et al. 2021) trains the fusion layers with 5e-5
    trainsBase: 'none',
    perLayerModules: true,
    sizeRule: 'query and key (d^2 + d each) and value (d^2) per fused sublayer: L(3d^2 + 2d) for Pfeiffer adapters, twice that for Houlsby adapters',
    // The FFN position only (Pfeiffer adapters); Houlsby adapters are fused at the attention output too.
    addedParams: (shape) => shape.L * (3 * shape.d * shape.d + 2 * shape.d),
    adapterHub: { configClass: 'DynamicFusionConfig', defaults: {} },
  },
  'residual-series': {
    title: 'Rebuffi et al. 2017',
    description: "residual adapters in series (ResNet): a 1x1 convolution with its own BatchNorm after each block convolution, in residual form (the identity at the start), and the domain's own BatchNorms",
    kind: 'domain',
    families: ['resnet'],
    defaults: {},
    options: [],
    learningRate: 1e-2,
    trainsBase: 'none',
    perLayerModules: false,
    sizeRule: 'per block convolution c_out^2 + 2c_out, plus 2c_out per BatchNorm (the domain\'s own)',
    addedParams: (shape) => blockConvs(shape).reduce((n, s) => n + s.out * s.out + 2 * s.out, 0) + domainBatchNorms(shape),
    adapterHub: null,
    newExperiment: {},
  },
  'residual-parallel': {
    title: 'Rebuffi et al. 2018',
    description: "residual adapters in parallel (ResNet): a 1x1 convolution beside each block convolution, added to its output, and the domain's own BatchNorms",
    kind: 'domain',
    families: ['resnet'],
    defaults: {},
    options: [],
    learningRate: 1e-2,
    trainsBase: 'none',
    perLayerModules: false,
    sizeRule: 'per block convolution c_in c_out, plus 2c_out per BatchNorm (the domain\'s own)',
    addedParams: (shape) => blockConvs(shape).reduce((n, s) => n + s.in * s.out, 0) + domainBatchNorms(shape),
    adapterHub: null,
    newExperiment: {},
  },
  batchnorm: {
    title: 'Bilen and Vedaldi 2017',
    description: "BatchNorm only (ResNet): the domain's own BatchNorm scales, shifts and statistics at every convolution",
    kind: 'domain',
    families: ['resnet'],
    defaults: {},
    options: [],
    learningRate: 1e-2,
    trainsBase: 'none',
    perLayerModules: false,
    sizeRule: '2c_out per BatchNorm (the domain\'s own)',
    addedParams: (shape) => domainBatchNorms(shape),
    adapterHub: null,
    newExperiment: {},
  },
  scratch: {
    title: 'baseline',
    description: 'from scratch (ResNet): every parameter of the network, freshly initialised (the pretraining is not used)',
    kind: 'baseline',
    families: ['resnet'],
    defaults: {},
    options: [],
    learningRate: 1e-2,
    trainsBase: 'everything',
    perLayerModules: false,
    sizeRule: 'none added; trains everything from a new initialisation',
    addedParams: () => 0,
    adapterHub: null,
    newExperiment: {},
  },
} as const satisfies Record<string, MethodCatalogEntry>;

export type MethodName = keyof typeof METHOD_CATALOG;

/** Every method, in the catalog's order (the order of tables and menus). */
export const METHOD_NAMES = Object.keys(METHOD_CATALOG) as MethodName[];

export function catalogEntry(name: MethodName): MethodCatalogEntry {
  const entry = (METHOD_CATALOG as Record<string, MethodCatalogEntry>)[name];
  if (!entry) throw new Error(`method "${name}" is not in the catalog`);
  return entry;
}

/** Default peak learning rate of a method, on the family that serves the task type (default: the method's first). */
export function catalogLearningRate(name: MethodName, taskType?: string): number {
  const entry = catalogEntry(name);
  const family = taskType ? familyOfTaskType(taskType) : undefined;
  return (family && entry.learningRateByFamily?.[family]) ?? entry.learningRate;
}

/** The family a task type belongs to (undefined: not a task type). */
export function familyOfTaskType(taskType: string): FamilyName | undefined {
  return Object.prototype.hasOwnProperty.call(TASK_TYPE_FAMILY, taskType) ? TASK_TYPE_FAMILY[taskType as CatalogTaskType] : undefined;
}

/** The methods that apply to a task type (its family's), in the catalog's order. */
export function methodsForTaskType(taskType: string): MethodName[] {
  const family = familyOfTaskType(taskType);
  return METHOD_NAMES.filter((n) => family !== undefined && catalogEntry(n).families.includes(family));
}

export function isCatalogMethod(name: string): name is MethodName {
  return Object.prototype.hasOwnProperty.call(METHOD_CATALOG, name);
}

/** "3e-4 for houlsby, pfeiffer and adapterbias; 5e-4 for lora; ...": the default learning rates, for docs and the schema. */
export function learningRateSummary(): string {
  const groups = new Map<number, string[]>();
  for (const name of METHOD_NAMES) groups.set(METHOD_CATALOG[name].learningRate, [...(groups.get(METHOD_CATALOG[name].learningRate) ?? []), name]);
  const list = (names: string[]) => (names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}` : names[0]);
  const byFamily = METHOD_NAMES.flatMap((n) => Object.entries(catalogEntry(n).learningRateByFamily ?? {}).map(([family, lr]) => `${(lr as number).toExponential()} for ${n} on ${family}`));
  return [...[...groups].map(([lr, names]) => `${lr.toExponential()} for ${list(names)}`), ...byFamily].join('; ');
}
