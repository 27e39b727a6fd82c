import * as tf from '@tensorflow/tfjs-core';
import { ResolvedConfig } from '../../config/types';
import { loadTokenizer } from '../../data/tokenizer';
import { makeBatches } from '../../data/batching';
import { Batch, EncodedExample } from '../../data/types';
import { evaluate } from '../../analysis/evaluate';
import { AdapterModel } from '../../model/adapterModel';
import { baseFingerprint } from '../../model/fingerprint';
import { saveAdapterFolder } from '../../model/adapterIo';
import { writeTaskFields } from '../../model/taskFields';
import { implementedMethods } from '../../methods/registry';
import { adapterMeta, buildModel, checkConfigAgainstModel, EVAL_CONTEXT, loadAdapterModel, modelDirOf, prepareData, trainingContext } from '../../experiment';
import { FamilyBatch, FamilyEvaluation, FamilyRunConfig, ModelFamily, TrainableFamilyModel } from '../../model/family';
import { Rng } from '../../util/random';

/**
 * The BERT encoder family (BERT, RoBERTa, XLM-R, DistilBERT, ELECTRA: model/encoderVariants.ts) behind the family
 * interface. Its code stays where it grew (model/, data/, methods/, experiment.ts, analysis/); this file only
 * maps the interface onto it, so the text path computes exactly what it computed before.
 */

export type TextBatch = Batch & FamilyBatch;

function asTextBatch(b: Batch): TextBatch {
  return Object.assign(b, { size: b.batchSize, units: b.realTokens });
}

export class BertFamilyModel implements TrainableFamilyModel<EncodedExample, TextBatch> {
  private readonly baseFingerprint: string;
  private disabled: ReadonlySet<number> = new Set();

  constructor(
    readonly model: AdapterModel,
    readonly cfg: ResolvedConfig,
    readonly padId: number,
  ) {
    this.baseFingerprint = baseFingerprint(model.encoder);
  }

  trainableParams(): Map<string, tf.Variable> {
    return this.model.trainableParams();
  }

  headParamNames(): ReadonlySet<string> {
    return new Set(this.model.head.params.keys());
  }

  parameterCounts() {
    return this.model.parameterCounts();
  }

  get ablationUnits(): readonly number[] {
    return this.model.method.adapterLayers;
  }

  setDisabledUnits(units: ReadonlySet<number>): void {
    this.disabled = new Set(units);
  }

  batches(examples: EncodedExample[], batchSize: number, opts: { training: boolean; rng: Rng | null }): TextBatch[] {
    return makeBatches(examples, batchSize, { shuffle: opts.training, rng: opts.rng ?? undefined, padId: this.padId, taskType: this.cfg.task.type }).map(asTextBatch);
  }

  /** As the trainer's step computes it (train/trainer.ts trainStep): dropout and Robust AdapterDrop from `rng`. */
  lossAndGradients(batch: TextBatch, rng: Rng): { loss: number; grads: Map<string, tf.Tensor> } {
    const ctx = trainingContext(this.cfg, this.model, rng);
    const k = this.cfg.method.dropLowest;
    if (k > 0) ctx.disabledAdapterLayers = new Set([...Array(rng.int(k + 1)).keys()]);
    const params = this.model.trainableParams();
    const names = [...params.keys()];
    const vars = [...params.values()];
    const { value, grads } = tf.variableGrads(() => this.model.loss(batch, batch.labels, ctx), vars);
    const loss = value.dataSync()[0];
    value.dispose();
    return { loss, grads: new Map(vars.map((v, i) => [names[i], grads[v.name]])) };
  }

  evaluate(examples: EncodedExample[], batchSize: number): FamilyEvaluation {
    const ctx = this.disabled.size ? { ...EVAL_CONTEXT, disabledAdapterLayers: new Set(this.disabled) } : EVAL_CONTEXT;
    const { metrics, loss, examples: n, predictions, classes } = evaluate(this.model, examples, batchSize, ctx);
    return { metrics, loss, examples: n, predictions, ...(classes ? { classes } : {}) };
  }

  /** The adapter folder as the trainer writes it (AdapterHub's layout, or the method's own). */
  saveTrained(dir: string): void {
    const { model, cfg } = this;
    const method = model.method;
    const savedBase = [...method.trainedBaseParams, ...(method.baseValues?.keys() ?? [])];
    const adapterParams = new Map([...method.params, ...savedBase.map((n) => [n, model.encoder.params.get(n)!] as const)]);
    const parts = { adapterParams, headParams: model.head.params, adapterConfig: method.adapterConfig(), headConfig: model.head.headConfig(cfg.model), meta: adapterMeta(cfg, model, this.baseFingerprint) };
    if (method.saveAdapter) method.saveAdapter(dir, parts);
    else saveAdapterFolder(dir, parts);
    writeTaskFields(dir, cfg.task);
  }

  fingerprint(): string {
    return this.baseFingerprint;
  }

  dispose(): void {
    this.model.dispose();
  }
}

export const bertFamily: ModelFamily<EncodedExample, TextBatch> = {
  name: 'bert',
  taskTypes: ['classification', 'regression'],
  throughputUnit: 'tokens',
  methods: implementedMethods,
  // Its trainer and commands are train/trainer.ts and the CLI's own (worker threads, the frozen-prefix cache).
  ownTrainer: true,

  async readData(cfg) {
    const config = cfg as unknown as ResolvedConfig;
    const prepared = await prepareData(config, await loadTokenizer(modelDirOf(config)));
    return { train: prepared.train, dev: prepared.dev, test: prepared.test, labels: prepared.data.labels, warnings: prepared.data.warnings };
  },

  async buildModel(cfg: FamilyRunConfig, labels: string[] | null) {
    const config = cfg as unknown as ResolvedConfig;
    const modelDir = modelDirOf(config);
    const tokenizer = await loadTokenizer(modelDir);
    return new BertFamilyModel(buildModel(config, modelDir, labels), config, tokenizer.padId);
  },

  async checkConfig(cfg) {
    await checkConfigAgainstModel(cfg as unknown as ResolvedConfig);
  },

  async loadTrained(dir, network) {
    const loaded = await loadAdapterModel(dir, network);
    const meta = loaded.meta;
    // The parts of a config the trained model's batches and evaluation read.
    const cfg = { model: meta.model, task: meta.task, method: meta.method, training: { maxSeqLength: meta.maxSeqLength } } as unknown as ResolvedConfig;
    return new BertFamilyModel(loaded.model, cfg, loaded.tokenizer.padId);
  },
};
