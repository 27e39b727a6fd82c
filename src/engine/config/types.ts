/**
 * The experiment config, as users write it in `*.adapter.json` (SPEC section 4), and its resolved form
 * (defaults filled in, paths absolute) that a run records in `run.json`.
 * The JSON Schema in `schema/adapter-config.schema.json` is the single source of validation.
 */
import type { SlurmOptions } from '../slurm/options';
import type { MethodName } from '../methods/catalog';

/** The task types (each belongs to one model family: methods/catalog.ts TASK_TYPE_FAMILY). */
export type TaskType = 'classification' | 'regression' | 'image-classification';

/** Image tasks: an IDX pair (images and class indices), as an alternative to a folder of class subfolders. */
export interface IdxPair {
  images: string;
  labels: string;
}

/** Where a split's data is: a file or folder, or (image tasks) an IDX pair. */
export type DataSource = string | IdxPair;

/** Every method's name: the catalog's keys (methods/catalog.ts). */
export type MethodType = MethodName;

export type NonLinearity = 'relu' | 'gelu' | 'swish' | 'tanh';

export type MetricName = 'accuracy' | 'macroF1' | 'matthews' | 'pearson' | 'spearman' | 'loss';

export interface TaskConfig {
  name: string;
  type: TaskType;
  /** Path to the training file (relative to the config file); image tasks: a folder of class subfolders or an IDX pair. */
  train: DataSource;
  dev?: DataSource | null;
  test?: DataSource | null;
  /** When dev/test are absent: fractions of `train` split off with a fixed seed. */
  split?: { dev: number; test?: number; seed?: number } | null;
  /** 'auto' picks by extension: .jsonl/.json -> jsonl, .csv -> csv, .tsv -> tsv. */
  format?: 'auto' | 'jsonl' | 'csv' | 'tsv';
  /** For CSV/TSV: whether the first line is a header (default true). Without a header, fields are column indices ("0", "1", ...). */
  header?: boolean;
  textField: string;
  textPairField?: string | null;
  labelField: string;
  /** Class names in index order; inferred from the training file (sorted) when absent. */
  labels?: string[] | null;
  /** Skip bad rows (listing each) instead of stopping with an error; at most a quarter of a file (data/load.ts). */
  skipBadRows?: boolean;
  /** Image tasks: seeded augmentation of the training images. */
  augment?: { cropPadding?: number; flip?: boolean };
}

export interface MethodConfig {
  type: MethodType;
  /** Bottleneck size m of each adapter. */
  bottleneck?: number;
  /** Alternative to `bottleneck`: m = d / reductionFactor. */
  reductionFactor?: number;
  /** Per-layer bottleneck sizes (length L); overrides `bottleneck` where given. */
  bottleneckPerLayer?: number[];
  nonLinearity?: NonLinearity;
  initStd?: number;
  trainLayerNorm?: boolean;
  /** Layers (0-based) that get no adapter: static AdapterDrop. */
  leaveOut?: number[];
  /** Robust AdapterDrop: each step drops the adapters of the lowest n layers, n uniform in 0..dropLowest. */
  dropLowest?: number;
  /** top-k: number of top layers trained. */
  k?: number;
  /** adapterbias: one L_alpha shared by all layers. */
  sharedAlpha?: boolean;
  /** adapterbias: weight of the L0 (hard-concrete) penalty on L_alpha; 0 = off. */
  l0Lambda?: number;
  /** lora: rank r of the update B A. */
  r?: number;
  /** lora: the update is scaled by alpha / r. */
  alpha?: number;
  /** lora: dropout on the LoRA branch's input while training. */
  dropout?: number;
  /** lora, ia3: which attention projections are adapted ("q", "k", "v"; AdapterHub's attn_matrices). */
  attnMatrices?: ('q' | 'k' | 'v')[];
  /** lora, ia3: adapt the intermediate (FFN inner) projection too (AdapterHub's intermediate_lora). */
  intermediateLora?: boolean;
  /** lora, ia3: adapt the FFN output projection too (AdapterHub's output_lora). */
  outputLora?: boolean;
  /** parallel: the adapter's output is multiplied by this (AdapterHub's scaling; 4 in ParBnConfig). */
  scaling?: number;
  /** prefix-tuning: number P of trained key/value positions per layer. */
  prefixLength?: number;
  /** prefix-tuning: hidden size of the reparametrisation MLP (AdapterHub's bottleneck_size). */
  bottleneckSize?: number;
  /** prefix-tuning: train the keys and values directly, without the reparametrisation MLP. */
  flat?: boolean;
  /** fusion: the run folders or adapter folders of the adapters to fuse (houlsby or pfeiffer, same base model). */
  adapters?: string[];
}

export interface TrainingConfig {
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Learning rate of the head, when different (default: learningRate). */
  headLearningRate?: number;
  warmupRatio: number;
  weightDecay: number;
  maxGradNorm: number;
  /** Dropout probability inside the encoder and the head (default: the model's hidden_dropout_prob). */
  dropout?: number | null;
  maxSeqLength: number;
  seed: number;
  /** Dev metric that picks the best checkpoint. */
  metric: MetricName;
  /** Also evaluate on dev every N steps (0 = only at the end of each epoch). */
  evalEverySteps: number;
  evalBatchSize: number;
  /**
   * Compute the frozen layers below the lowest trained module once per example and reuse their outputs
   * across epochs (dropout off in those layers). Default true.
   */
  cacheFrozenLayers?: boolean;
  /** Optional cap on the number of training steps (for smoke tests and quick looks). */
  maxSteps?: number | null;
  /**
   * Workers for data-parallel training and evaluation (threads, the coordinator's own included); absent or null:
   * the machine's cores (one on tfjs-node). Results do not depend on it beyond float summation order.
   */
  workers?: number | null;
}

export interface ExperimentConfig {
  name: string;
  task: TaskConfig;
  /** A folder in the Hugging Face layout (relative to the config file) or `builtin:<name>`. */
  model: string;
  method: MethodConfig;
  training: TrainingConfig;
  /** Sweep axes: dotted field path -> values. */
  sweep?: Record<string, unknown[]> | null;
  /** Where runs go (relative to the config file); default `.adapter-lab/runs` in the workspace. */
  runsDir?: string | null;
  /** What `train|sweep --slurm` asks the cluster for (src/engine/slurm/options.ts). */
  slurm?: SlurmOptions | null;
}

/** A config with every default filled in and every path absolute. */
export interface ResolvedConfig extends ExperimentConfig {
  /** Absolute path of the config file this came from (null when built in code). */
  configFile: string | null;
  task: Required<Omit<TaskConfig, 'dev' | 'test' | 'split' | 'labels' | 'augment'>> &
    Pick<TaskConfig, 'dev' | 'test' | 'split' | 'labels' | 'augment'>;
  method: MethodConfig & {
    nonLinearity: NonLinearity;
    initStd: number;
    trainLayerNorm: boolean;
    leaveOut: number[];
    dropLowest: number;
  };
  training: TrainingConfig;
  runsDir: string;
}
