import type * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../util/random';
import type { ClassReport } from '../analysis/evaluate';
import type { EngineMessage } from '../../protocol/messages';

/**
 * Model families: what the trainer, the data pipeline, the metrics, the run folders and the extension need from
 * a kind of model, as one interface. A family owns its folder (families/<name>/): its network, its data readers'
 * use, its methods and how a trained domain is saved. Code outside a family's folder reaches it only through
 * these types and `familyFor` (families/index.ts), never by asking which family it is.
 *
 * The BERT encoder is one family (text classification and regression; its code in model/, data/, methods/ and
 * experiment.ts predates the interface and stays there behind it); the ResNet for small images is another
 * (image classification, families/resnet/).
 *
 * A family's examples and batches are opaque to the engine (`unknown` here): token ids for BERT, pixel arrays for
 * the ResNet. The engine moves them between the family's own functions and counts them; it never looks inside.
 *
 * Status (issue 19): the trainer (train/familyTrainer.ts), `eval`, `ablate`, `info` and `pretrain` reach a family
 * through this interface. A family with `ownTrainer` (BERT: the frozen-prefix cache, AdapterDrop's measurements)
 * keeps its own implementation of those commands behind it; the others share the generic ones, which run on
 * worker threads where the model offers `parallel` (parallel/familyParallel.ts).
 */

/** The task types a config may name (`task.type`), across families. */
export type FamilyTaskType = 'classification' | 'regression' | 'image-classification';

/** What the trainer's loop handles of a batch; the rest is the family's. */
export interface FamilyBatch {
  /** Examples in the batch. */
  readonly size: number;
  /** What throughput counts, in the family's `throughputUnit` (real tokens for text, images for images), per batch. */
  readonly units: number;
}

/** A task's data, read and encoded for the family's model. */
export interface FamilyData<Example> {
  train: Example[];
  dev: Example[];
  test: Example[];
  /** Class names in index order (classification), or null (regression). */
  labels: string[] | null;
  /** Things worth telling the user (unseen dev classes, skipped rows), already worded. */
  warnings: string[];
}

export interface FamilyParameterCounts {
  trainable: number;
  /** Parameters of the pretrained network the method starts from. */
  base: number;
  /** trainable / base, in percent. */
  trainablePercent: number;
}

export interface FamilyEvaluation {
  metrics: Record<string, number>;
  loss: number;
  examples: number;
  /** Class index (classification) or value (regression), in input order. */
  predictions: number[];
  /** Classification: per-class scores and the confusion matrix. */
  classes?: ClassReport;
  /** Classification: each prediction's softmax probability, in input order (for the prediction grid). */
  confidences?: number[];
}

/** An example as the prediction grid shows it (analysis/predictionGrid.ts). */
export interface GridEntry {
  /** The true class's index. */
  label: number;
  /** Where it came from: `file` or `file#index`. */
  source: string;
  /** 8-bit pixels, row-major, channels interleaved. */
  image: { width: number; height: number; channels: 1 | 3; pixels: Uint8Array };
}

/** One evaluation batch's outputs, plain data (they cross threads): per row the class scores, and the loss summed over rows. */
export interface FamilyBatchOutputs {
  scores: number[][];
  lossSum: number;
}

/**
 * What data parallelism over worker threads (parallel/familyParallel.ts) needs of a model. A training batch is
 * cut into shards of rows; each shard's loss and gradients are its part of the whole batch's (its mean weighted
 * by its share of the rows), with every random draw made per example, so that the shards' sums are the whole
 * batch's whatever their number. Batches and shards are plain data (structured-cloned to the workers).
 */
export interface FamilyParallelism<Example, Batch extends FamilyBatch = FamilyBatch> {
  /** What ModelFamily.buildReplica builds a worker's copy from (plain data; the trained values come from the coordinator). */
  replica(): unknown;
  /** Up to n shards of a training batch, of as equal a size as can be (none empty), in row order. */
  shardBatch(batch: Batch, n: number): Batch[];
  /** One evaluation batch's outputs (evaluation mode, no gradients). */
  batchOutputs(batch: Batch): FamilyBatchOutputs;
  /** Metrics, loss and predictions of examples from the outputs of their evaluation batches (batches() order). */
  evaluation(examples: Example[], outputs: FamilyBatchOutputs[]): FamilyEvaluation;
}

/**
 * A pretrained network with a method and a task head: the thing a run trains, evaluates, ablates and saves.
 */
export interface TrainableFamilyModel<Example, Batch extends FamilyBatch = FamilyBatch> {
  /** Every trained parameter by name (method modules, unfrozen network parameters, head). */
  trainableParams(): Map<string, tf.Variable>;
  /**
   * Values training changes that are not trained by gradient (BatchNorm running statistics), by name: checkpointed
   * and restored with the parameters, so that a resumed run computes what an uninterrupted one would.
   */
  trainingState?(): Map<string, tf.Variable>;
  /** Things worth telling the user about the model (notes of the method), already worded. */
  readonly notes?: readonly string[];
  /** Names among trainableParams() that belong to the head (trained with `training.headLearningRate`). */
  headParamNames(): ReadonlySet<string>;
  parameterCounts(): FamilyParameterCounts;
  /** Batches of examples; `training` batches are shuffled and augmented with `rng` (the epoch's). */
  batches(examples: Example[], batchSize: number, opts: { training: boolean; rng: Rng | null }): Batch[];
  /**
   * The loss of one training batch (or shard of one, see FamilyParallelism) and the gradients of
   * trainableParams() (by name), with the step's randomness from `rng` (dropout, AdapterDrop). State that is not trained by gradient (BatchNorm's running statistics) is
   * updated here. The caller applies the gradients and disposes them.
   */
  lossAndGradients(batch: Batch, rng: Rng): { loss: number; grads: Map<string, tf.Tensor> };
  /** Metrics, loss and predictions over examples (no gradients, evaluation mode). */
  evaluate(examples: Example[], batchSize: number): FamilyEvaluation;
  /** An example as an image with its label, for the prediction grid; absent where examples are not images. */
  gridEntry?(example: Example): GridEntry;
  /** Units (layers, blocks) that carry the method's modules: what the ablation switches off, one at a time. */
  readonly ablationUnits: readonly number[];
  /** Switches the method's modules off in these units (empty: all on). */
  setDisabledUnits(units: ReadonlySet<number>): void;
  /**
   * Inputs to predict, without labels, from a file or folder (`adapter-lab predict <run> --input`), each with
   * where it came from (file, and its index inside it where the file holds several). Absent: the family's runs
   * predict through their own command.
   */
  readInputs?(input: string): { examples: Example[]; sources: { file: string; image?: number }[] };
  /** The class names in the order of the outputs' scores (classification). */
  classLabels?(): string[];
  /** Data parallelism over worker threads; absent: the model trains and evaluates on one thread. */
  readonly parallel?: FamilyParallelism<Example, Batch>;
  /** Writes the trained method and head (the run's adapter/ folder), in the family's format. */
  saveTrained(dir: string): void;
  /** A hash of the pretrained network's values before training (model/fingerprint.ts for BERT). */
  fingerprint(): string;
  dispose(): void;
}

/** What `adapter-lab pretrain` hands a family's pretraining: the message stream of the CLI. */
export interface FamilyPretrainContext {
  json: boolean;
  emit(msg: EngineMessage): void;
  info(message: string): void;
}

/** One kind of model, registered in families/index.ts. */
export interface ModelFamily<Example = unknown, Batch extends FamilyBatch = FamilyBatch> {
  /** The family's name, in run records and messages ('bert', 'resnet'). */
  readonly name: string;
  /** The task types it serves; each task type belongs to one family. */
  readonly taskTypes: readonly FamilyTaskType[];
  /** The methods (catalog names) it implements. */
  readonly methods: readonly string[];
  /** What its batches' `units` count, for the training rate (tok/s, images/s). */
  readonly throughputUnit: 'tokens' | 'images';
  /** Reads a task's data as the config describes it (paths relative to the config file's folder). */
  readData(cfg: FamilyRunConfig): Promise<FamilyData<Example>>;
  /**
   * The pretrained network the config names (`model`) with a new method and head, seeded by `training.seed`.
   * `train`: the training examples, from which a family may take what its inputs need (the ResNet's
   * normalisation); null where the model is built only to check a config against it.
   */
  buildModel(cfg: FamilyRunConfig, labels: string[] | null, train: Example[] | null): Promise<TrainableFamilyModel<Example, Batch>>;
  /**
   * The checks that need the pretrained network (the method against it, its input shape), before a run folder is
   * made: a config error then leaves no failed run behind. Throws a UserInputError naming the field.
   */
  checkConfig(cfg: FamilyRunConfig): Promise<void>;
  /** A trained model from the folder saveTrained wrote, on the network it names (or `network`). */
  loadTrained(dir: string, network?: string): Promise<TrainableFamilyModel<Example, Batch>>;
  /**
   * The family's own trainer and commands (worker threads, caches, measurements the generic ones lack): the CLI's
   * train, eval, ablate and info then take the family's path. Absent: the generic ones.
   */
  readonly ownTrainer?: boolean;
  /**
   * The workers a training run takes when neither --workers nor training.workers says (absent: the engine's
   * default, every core). Evaluation and the ablation spread whole batches and keep the engine's default.
   */
  readonly defaultTrainingWorkers?: number;
  /** A worker thread's copy of a model, from what its `parallel.replica()` returned (with `parallel`). */
  buildReplica?(replica: unknown): Promise<TrainableFamilyModel<Example, Batch>>;
  /** `adapter-lab pretrain <file>` for a config whose `taskType` this family serves (`raw`: the parsed file). */
  pretrain?(file: string, raw: Record<string, unknown>, ctx: FamilyPretrainContext): Promise<number>;
}

/** The parts of a resolved config (config/types.ts) a family reads; the rest of each block is the family's to read. */
export interface FamilyRunConfig {
  /** The pretrained network: a folder (relative to the config file) or a built-in name. */
  model: string;
  configFile?: string | null;
  task: { name: string; type: string };
  method: { type: string };
  training: { seed: number; batchSize: number; evalBatchSize: number };
}
