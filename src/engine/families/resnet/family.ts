import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { UserInputError } from '../../errors';
import { Rng } from '../../util/random';
import { readSafetensors, writeSafetensors } from '../../model/safetensors';
import { assignParams, snapshot } from '../../model/adapterIo';
import { writeJsonAtomic } from '../../util/atomicFile';
import { baseFingerprint } from '../../model/fingerprint';
import { computeMetrics } from '../../metrics/metrics';
import { classReport } from '../../analysis/evaluate';
import { FamilyBatch, FamilyBatchOutputs, FamilyData, FamilyEvaluation, FamilyParallelism, FamilyRunConfig, GridEntry, ModelFamily, TrainableFamilyModel } from '../../model/family';
import { derivedRng } from '../../parallel/shard';
import { AugmentOptions, channelStats, ImageExample, imageBatch, ImageShape, ImageSplit, readIdxSplit, readImageFolder, readUnlabelledImages } from '../../data/images/imageSet';
import { checkResNetConfig, ResNet, ResNetConfig } from './network';
import { isVisionMethod, VISION_METHOD_NAMES, VisionMethodType } from './methods';
import { crossEntropy, ResNetDomainModel } from './model';
import { resnetPretrainCommand } from './pretrainCommand';
import { BUILTIN_PREFIX, resolveModelDir } from '../../model/checkpoint';

/**
 * The ResNet family: image classification on a network for small images (families/resnet/network.ts). A network
 * folder holds `config.json` (the ResNetConfig, `model_type` "resnet") and `model.safetensors` (parameters and
 * BatchNorm statistics); a trained domain is the folder ResNetDomainModel.save writes, plus the normalisation
 * its inputs need.
 */

export const NETWORK_FILES = { config: 'config.json', weights: 'model.safetensors' } as const;

/** Where an image task's split comes from: a folder with one subfolder per class, or an IDX pair. */
export type ImageSource = string | { images: string; labels: string };

/** The `task` block of an image-classification config. */
export interface ImageTaskSpec {
  name: string;
  type: 'image-classification';
  train: ImageSource;
  dev?: ImageSource | null;
  test?: ImageSource | null;
  /** When dev is absent: fractions of train split off with a fixed seed. */
  split?: { dev: number; test?: number; seed?: number } | null;
  labels?: string[] | null;
  augment?: Partial<AugmentOptions>;
}

export interface ImageBatch extends FamilyBatch {
  examples: ImageExample[];
  /** Seed of the batch's augmentation (each example's drawn from it and the example's row); null: none (evaluation). */
  augmentSeed: number | null;
  /** A shard of a training batch (FamilyParallelism): its first row in the whole batch, and the whole batch's rows. */
  firstRow: number;
  batchRows: number;
}

/** What a worker thread builds its copy of a domain model from (ResNetFamilyModel.parallel.replica). */
interface ResNetReplica {
  networkDir: string;
  method: VisionMethodType;
  domain: string;
  labels: string[];
  inputStats: { mean: number[]; std: number[] };
  augmentation: AugmentOptions;
}

export function saveNetwork(dir: string, network: ResNet): void {
  fs.mkdirSync(dir, { recursive: true });
  writeSafetensors(path.join(dir, NETWORK_FILES.weights), new Map([...snapshot(network.params), ...snapshot(network.stats)]));
  writeJsonAtomic(path.join(dir, NETWORK_FILES.config), { model_type: 'resnet', ...network.config });
}

export function loadNetwork(dir: string): ResNet {
  const configFile = path.join(dir, NETWORK_FILES.config);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  } catch (err) {
    throw new UserInputError(`cannot read the network's config: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (err as Error).message}`, { file: configFile });
  }
  if (raw?.model_type !== 'resnet') throw new UserInputError(`not a ResNet network folder (model_type is ${JSON.stringify(raw?.model_type)}, not "resnet")`, { file: configFile });
  const config: ResNetConfig = { modelType: 'resnet', inputChannels: raw.inputChannels as number, imageSize: raw.imageSize as number, widths: raw.widths as ResNetConfig['widths'], blocksPerStage: raw.blocksPerStage as number };
  try {
    checkResNetConfig(config);
  } catch (err) {
    throw new UserInputError((err as Error).message, { file: configFile });
  }
  const network = ResNet.init(config, new Rng(0));
  try {
    const values = readSafetensors(path.join(dir, NETWORK_FILES.weights)).tensors;
    assignParams(network.params, values, `network ${dir}`);
    assignParams(network.stats, values, `network ${dir}`);
  } catch (err) {
    network.dispose();
    throw err;
  }
  return network;
}

function baseDirOf(cfg: FamilyRunConfig): string {
  return cfg.configFile ? path.dirname(cfg.configFile) : process.cwd();
}

function resolveIn(baseDir: string, p: string): string {
  return path.isAbsolute(p) ? p : path.join(baseDir, p);
}

/** A split's images; a reader's error also names the config field (`field`: task.train, task.dev, task.test). */
function readSource(source: ImageSource, baseDir: string, shape: ImageShape, labels: string[] | null | undefined, field: string): ImageSplit {
  try {
    if (typeof source === 'string') return readImageFolder(resolveIn(baseDir, source), shape, labels ?? undefined);
    return readIdxSplit(resolveIn(baseDir, source.images), resolveIn(baseDir, source.labels), shape, labels ?? undefined);
  } catch (err) {
    if (!(err instanceof UserInputError) || err.location?.field) throw err;
    const file = err.location?.file;
    const part = typeof source === 'string' ? '' : file === resolveIn(baseDir, source.labels) ? '.labels' : file === resolveIn(baseDir, source.images) ? '.images' : '';
    throw new UserInputError(err.detail, { ...err.location, field: field + part });
  }
}

function imageShape(config: ResNetConfig): ImageShape {
  return { size: config.imageSize, channels: config.inputChannels as 1 | 3 };
}

/** The network's input shape without loading its weights. */
function networkConfig(dir: string): ResNetConfig {
  const network = loadNetwork(dir);
  const config = network.config;
  network.dispose();
  return config;
}

export class ResNetFamilyModel implements TrainableFamilyModel<ImageExample, ImageBatch> {
  private readonly baseFingerprint: string;

  constructor(
    readonly domain: ResNetDomainModel,
    /** The network's folder (recorded with the trained domain). */
    readonly networkDir: string,
    /** Per-channel normalisation of the inputs (the training set's), saved with the domain. */
    readonly inputStats: { mean: number[]; std: number[] },
    readonly augmentation: AugmentOptions,
  ) {
    this.baseFingerprint = baseFingerprint({ params: new Map([...domain.network.params, ...domain.network.stats]) });
  }

  get shape(): ImageShape {
    return imageShape(this.domain.network.config);
  }

  trainableParams(): Map<string, tf.Variable> {
    return this.domain.trainableParams();
  }

  headParamNames(): ReadonlySet<string> {
    return new Set(this.domain.head.keys());
  }

  /** Every BatchNorm's running statistics (the domain's own and the network's). */
  trainingState(): Map<string, tf.Variable> {
    return new Map([...this.domain.network.stats, ...this.domain.method.stats]);
  }

  parameterCounts() {
    return this.domain.parameterCounts();
  }

  get ablationUnits(): readonly number[] {
    return this.domain.method.adapterBlocks;
  }

  setDisabledUnits(units: ReadonlySet<number>): void {
    this.domain.method.disabledBlocks.clear();
    for (const u of units) this.domain.method.disabledBlocks.add(u);
  }

  batches(examples: ImageExample[], batchSize: number, opts: { training: boolean; rng: Rng | null }): ImageBatch[] {
    const order = examples.map((_, i) => i);
    if (opts.training && opts.rng) opts.rng.shuffle(order);
    const out: ImageBatch[] = [];
    for (let i = 0; i < order.length; i += batchSize) {
      const chunk = order.slice(i, i + batchSize).map((k) => examples[k]);
      // Units are images (the progress line's images/s).
      out.push({ examples: chunk, size: chunk.length, units: chunk.length, augmentSeed: opts.training && opts.rng ? opts.rng.seed() : null, firstRow: 0, batchRows: chunk.length });
    }
    return out;
  }

  private tensorOf(batch: ImageBatch): { images: tf.Tensor4D; labels: Int32Array } {
    const s = this.shape;
    const seed = batch.augmentSeed;
    // Each example's augmentation drawn from the batch's seed and its row: a shard augments as the whole batch.
    const augmentation = seed === null ? undefined : { options: this.augmentation, rng: (i: number) => derivedRng(seed, 5, batch.firstRow + i) };
    const { pixels, labels } = imageBatch(batch.examples, s, this.inputStats, augmentation);
    return { images: tf.tensor4d(pixels, [batch.size, s.size, s.size, s.channels]), labels };
  }

  /** A shard's loss is its mean weighted by its share of the batch's rows (1 for a whole batch). */
  lossAndGradients(batch: ImageBatch): { loss: number; grads: Map<string, tf.Tensor> } {
    const { images, labels } = this.tensorOf(batch);
    try {
      return this.domain.lossAndGradients(images, labels, batch.size / batch.batchRows);
    } finally {
      images.dispose();
    }
  }

  evaluate(examples: ImageExample[], batchSize: number): FamilyEvaluation {
    return this.evaluation(examples, this.batches(examples, batchSize, { training: false, rng: null }).map((b) => this.batchOutputs(b)));
  }

  classLabels(): string[] {
    return this.domain.labels;
  }

  readInputs(input: string): { examples: ImageExample[]; sources: { file: string; image?: number }[] } {
    const examples = readUnlabelledImages(input, this.shape);
    const sources = examples.map((e) => {
      // An IDX file's images are `file#index`; an image file is itself.
      const at = e.source.lastIndexOf('#');
      return at > 0 && e.source.slice(0, at) === input ? { file: input, image: Number(e.source.slice(at + 1)) } : { file: e.source };
    });
    return { examples, sources };
  }

  readonly parallel: FamilyParallelism<ImageExample, ImageBatch> = {
    replica: (): ResNetReplica => ({ networkDir: this.networkDir, method: this.domain.method.type, domain: this.domain.domain, labels: this.domain.labels, inputStats: this.inputStats, augmentation: this.augmentation }),
    shardBatch: (batch, n) => {
      const count = Math.max(1, Math.min(n, batch.size));
      if (count === 1) return [batch];
      const pixels = batch.units / batch.size;
      return Array.from({ length: count }, (_, k) => {
        const [from, to] = [Math.floor((k * batch.size) / count), Math.floor(((k + 1) * batch.size) / count)];
        return { ...batch, examples: batch.examples.slice(from, to), size: to - from, units: (to - from) * pixels, firstRow: batch.firstRow + from };
      });
    },
    batchOutputs: (batch) => this.batchOutputs(batch),
    evaluation: (examples, outputs) => this.evaluation(examples, outputs),
  };

  private batchOutputs(batch: ImageBatch): FamilyBatchOutputs {
    const { images, labels } = this.tensorOf(batch);
    try {
      const [scores, loss] = tf.tidy(() => {
        const o = this.domain.outputs(images, { training: false });
        return [o.arraySync() as number[][], crossEntropy(o, labels).dataSync()[0]];
      }) as [number[][], number];
      return { scores, lossSum: loss * batch.size };
    } finally {
      images.dispose();
    }
  }

  private evaluation(examples: ImageExample[], outputs: FamilyBatchOutputs[]): FamilyEvaluation {
    const predictions: number[] = [];
    const confidences: number[] = [];
    let lossSum = 0;
    for (const o of outputs) {
      lossSum += o.lossSum;
      for (const row of o.scores) {
        const top = Math.max(...row);
        predictions.push(row.indexOf(top));
        confidences.push(1 / row.reduce((sum, v) => sum + Math.exp(v - top), 0)); // softmax at the top class
      }
    }
    const gold = examples.map((e) => e.label);
    const labels = this.domain.labels;
    return {
      metrics: { ...computeMetrics('classification', predictions, gold, labels.length), loss: lossSum / Math.max(1, examples.length) },
      loss: lossSum / Math.max(1, examples.length),
      examples: examples.length,
      predictions,
      confidences,
      classes: classReport(predictions, gold, labels),
    };
  }

  gridEntry(example: ImageExample): GridEntry {
    const { size, channels } = this.shape;
    const pixels = new Uint8Array(example.pixels.length);
    for (let i = 0; i < pixels.length; i++) pixels[i] = Math.round(Math.min(1, Math.max(0, example.pixels[i])) * 255);
    return { label: example.label, source: example.source, image: { width: size, height: size, channels, pixels } };
  }

  saveTrained(dir: string): void {
    this.domain.save(dir);
    const input: SavedInput = { network: this.networkDir, normalisation: this.inputStats, augment: this.augmentation };
    writeJsonAtomic(path.join(dir, INPUT_FILE), input);
  }

  fingerprint(): string {
    return this.baseFingerprint;
  }

  dispose(): void {
    this.domain.dispose();
  }
}

/** The network the domain was trained on, its inputs' normalisation and the training augmentation. */
export const INPUT_FILE = 'input.json';

interface SavedInput {
  network: string;
  normalisation: { mean: number[]; std: number[] };
  augment: AugmentOptions;
}

const DEFAULT_AUGMENT: AugmentOptions = { cropPadding: 0, flip: false };

/** Splits off `fraction` of the examples (at least one) with a seeded shuffle. */
function splitOff(examples: ImageExample[], fraction: number, seed: number): [ImageExample[], ImageExample[]] {
  const order = new Rng(seed).shuffle(examples.map((_, i) => i));
  const n = Math.max(1, Math.round(fraction * examples.length));
  const held = new Set(order.slice(0, n));
  return [examples.filter((_, i) => !held.has(i)), examples.filter((_, i) => held.has(i))];
}

/** An image task's splits at the network's input shape (dev and test split off train when absent and asked for). */
export function readImageTask(spec: Pick<ImageTaskSpec, 'train' | 'dev' | 'test' | 'split' | 'labels'>, baseDir: string, shape: ImageShape): FamilyData<ImageExample> & { labels: string[] } {
  const train = readSource(spec.train, baseDir, shape, spec.labels, 'task.train');
  const labels = train.labels;
  let trainExamples = train.examples;
  let dev: ImageExample[] = [];
  let test: ImageExample[] = [];
  if (spec.dev) dev = readSource(spec.dev, baseDir, shape, labels, 'task.dev').examples;
  if (spec.test) test = readSource(spec.test, baseDir, shape, labels, 'task.test').examples;
  if (!spec.dev && spec.split) {
    const seed = spec.split.seed ?? 0;
    [trainExamples, dev] = splitOff(trainExamples, spec.split.dev, seed);
    if (!spec.test && spec.split.test) [trainExamples, test] = splitOff(trainExamples, spec.split.test, seed + 1);
  }
  const warnings: string[] = [];
  const seen = new Set(trainExamples.map((e) => e.label));
  const unseen = [...new Set(dev.map((e) => e.label))].filter((l) => !seen.has(l));
  if (unseen.length) warnings.push(`dev classes with no training image: ${unseen.map((l) => labels[l]).join(', ')}`);
  return { train: trainExamples, dev, test, labels, warnings };
}

export const resnetFamily: ModelFamily<ImageExample, ImageBatch> = {
  name: 'resnet',
  taskTypes: ['image-classification'],
  throughputUnit: 'images',
  methods: VISION_METHOD_NAMES,
  // One thread unless asked: a step's shards meet at every BatchNorm (synchronised statistics), and on 2 cores the
  // bench's ResNet-8 step (batch 32) gains 1.00x-1.09x from a second worker for ~350 MB more (README, Every core).
  defaultTrainingWorkers: 1,

  async readData(cfg): Promise<FamilyData<ImageExample>> {
    const baseDir = baseDirOf(cfg);
    const spec = cfg.task as unknown as ImageTaskSpec;
    if (!spec.dev && !spec.split) {
      throw new UserInputError(`task "${spec.name}" has no dev set: give task.dev (an image folder or an IDX pair), or task.split (e.g. {"dev": 0.1}) to split one off train`, { file: cfg.configFile ?? undefined, field: 'task.dev' });
    }
    return readImageTask(cfg.task as unknown as ImageTaskSpec, baseDir, imageShape(networkConfig(resolveModelDir(cfg.model, baseDir))));
  },

  async buildModel(cfg, labels, train) {
    const type = cfg.method.type;
    if (!isVisionMethod(type)) throw new UserInputError(`method "${type}" does not apply to the ResNet family; it has ${VISION_METHOD_NAMES.join(', ')}`, { field: 'method.type' });
    if (!labels) throw new UserInputError('image classification needs class labels', { field: 'task.labels' });
    const networkDir = resolveModelDir(cfg.model, baseDirOf(cfg));
    const network = loadNetwork(networkDir);
    const domain = ResNetDomainModel.create(network, type, cfg.task.name, labels, cfg.training.seed);
    const task = cfg.task as unknown as ImageTaskSpec;
    const channels = network.config.inputChannels;
    // Without training data (a config check), any normalisation does: the model is discarded.
    const stats = train && train.length ? channelStats(train, channels) : { mean: Array(channels).fill(0), std: Array(channels).fill(1) };
    // A built-in network is recorded by name (the run then moves with the project), a folder by its absolute path.
    return new ResNetFamilyModel(domain, cfg.model.startsWith(BUILTIN_PREFIX) ? cfg.model : networkDir, stats, { ...DEFAULT_AUGMENT, ...(task.augment ?? {}) });
  },

  pretrain: resnetPretrainCommand,

  async buildReplica(replica) {
    const r = replica as ResNetReplica;
    // The seed does not matter: every trained value and BatchNorm statistic comes from the coordinator.
    const domain = ResNetDomainModel.create(loadNetwork(resolveModelDir(r.networkDir, process.cwd())), r.method, r.domain, r.labels, 0);
    return new ResNetFamilyModel(domain, r.networkDir, r.inputStats, r.augmentation);
  },

  async checkConfig(cfg) {
    // The network and the method against it; the head's size does not matter here.
    const labels = ((cfg.task as unknown as ImageTaskSpec).labels ?? null) || ['a', 'b'];
    (await this.buildModel(cfg, labels, null)).dispose();
  },

  async loadTrained(dir, network) {
    const inputFile = path.join(dir, INPUT_FILE);
    let input: SavedInput;
    try {
      input = JSON.parse(fs.readFileSync(inputFile, 'utf8'));
    } catch (err) {
      throw new UserInputError(`cannot read the domain's input description: ${(err as Error).message}`, { file: inputFile });
    }
    const networkDir = network ?? input.network;
    const domain = ResNetDomainModel.load(dir, loadNetwork(resolveModelDir(networkDir, dir)));
    return new ResNetFamilyModel(domain, networkDir, input.normalisation, input.augment);
  },
};

