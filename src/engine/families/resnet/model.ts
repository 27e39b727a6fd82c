import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../util/random';
import { UserInputError } from '../../errors';
import { readSafetensors, TensorMap, writeSafetensors } from '../../model/safetensors';
import { assignParams, snapshot } from '../../model/adapterIo';
import { writeJsonAtomic } from '../../util/atomicFile';
import { applyBatchNormUpdates, BatchNormUpdate, featureSize, ResNet, ResNetConfig, ResNetContext } from './network';
import { createVisionMethod, isVisionMethod, VISION_METHODS, VisionMethodInstance, VisionMethodType } from './methods';

/**
 * A ResNet with one domain's method and classifier: what an image-classification run trains. Only the method's
 * modules, the network parameters it unfreezes and the classifier are trainable; the network's own BatchNorms
 * stay in evaluation mode unless the method trains them (full, scratch).
 */

export interface ResNetParameterCounts {
  trainable: number;
  /** Parameters of the network (convolutions and BatchNorm scales and shifts). */
  base: number;
  trainablePercent: number;
}

/** Files of a saved domain (the run's adapter/ folder): the method's tensors, the head's, and what they are. */
export const DOMAIN_FILES = { weights: 'domain.safetensors', meta: 'domain.json' } as const;

export interface DomainMeta {
  family: 'resnet';
  method: VisionMethodType;
  domain: string;
  labels: string[];
  network: ResNetConfig;
}

/** Mean softmax cross-entropy of logits [B, C] against class indices. */
export function crossEntropy(logits: tf.Tensor2D, labels: Int32Array | Float32Array): tf.Scalar {
  const oneHot = tf.oneHot(tf.tensor1d(Int32Array.from(labels), 'int32'), logits.shape[1]);
  return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), -1))) as tf.Scalar;
}

export class ResNetDomainModel {
  readonly head: Map<string, tf.Variable>;

  constructor(
    readonly network: ResNet,
    readonly method: VisionMethodInstance,
    readonly domain: string,
    readonly labels: string[],
    rng: Rng,
  ) {
    for (const v of network.params.values()) v.trainable = false;
    for (const n of method.trainedBaseParams) network.params.get(n)!.trainable = true;
    const F = featureSize(network.config);
    // PyTorch's nn.Linear initialisation bound, drawn as a normal of the same scale.
    this.head = new Map([
      [`heads.${domain}.weight`, tf.variable(tf.truncatedNormal([F, labels.length], 0, 1 / Math.sqrt(F), 'float32', rng.seed()), true)],
      [`heads.${domain}.bias`, tf.variable(tf.zeros([labels.length]), true)],
    ]);
  }

  /** A network (which the model then owns) with a new method and head for `domain`, seeded by `seed`. */
  static create(network: ResNet, type: VisionMethodType, domain: string, labels: string[], seed: number): ResNetDomainModel {
    const rng = new Rng(seed);
    return new ResNetDomainModel(network, createVisionMethod(type, network, { domain, rng }), domain, labels, rng);
  }

  trainableParams(): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>();
    for (const [n, v] of this.method.params) out.set(n, v);
    for (const n of this.method.trainedBaseParams) out.set(n, this.network.params.get(n)!);
    for (const [n, v] of this.head) out.set(n, v);
    return out;
  }

  parameterCounts(): ResNetParameterCounts {
    let trainable = 0;
    for (const v of this.trainableParams().values()) trainable += v.size;
    const base = this.network.parameterCount();
    return { trainable, base, trainablePercent: (100 * trainable) / base };
  }

  /** Logits [B, C] of images [B, H, W, C]. */
  outputs(images: tf.Tensor4D, ctx: ResNetContext): tf.Tensor2D {
    const features = this.network.features(images, ctx, this.method.hooks);
    return tf.add(tf.matMul(features, this.head.get(`heads.${this.domain}.weight`)!), this.head.get(`heads.${this.domain}.bias`)!) as tf.Tensor2D;
  }

  /** Mean softmax cross-entropy, times `weight` (a shard's share of its batch's rows) unless that is 1. */
  loss(images: tf.Tensor4D, labels: Int32Array | Float32Array, ctx: ResNetContext, weight = 1): tf.Scalar {
    const mean = crossEntropy(this.outputs(images, ctx), labels);
    return weight === 1 ? mean : (tf.mul(mean, weight) as tf.Scalar);
  }

  /**
   * Loss and gradients of the trainable parameters for one batch in training mode; the running statistics of the
   * BatchNorms that normalised with batch statistics are updated after the gradients are taken.
   */
  lossAndGradients(images: tf.Tensor4D, labels: Int32Array | Float32Array, weight = 1): { loss: number; grads: Map<string, tf.Tensor> } {
    const params = this.trainableParams();
    const names = [...params.keys()];
    const vars = [...params.values()];
    const updates: BatchNormUpdate[] = [];
    const { value, grads } = tf.variableGrads(() => this.loss(images, labels, { training: true, batchNormUpdates: updates }, weight), vars);
    const loss = value.dataSync()[0];
    value.dispose();
    applyBatchNormUpdates(updates);
    const named = new Map<string, tf.Tensor>();
    vars.forEach((v, i) => named.set(names[i], grads[v.name]));
    return { loss, grads: named };
  }

  /** Saves the domain: the method's parameters and statistics, trained network parameters, head; and its meta. */
  save(dir: string): void {
    fs.mkdirSync(dir, { recursive: true });
    const tensors: TensorMap = new Map([...snapshot(this.method.params), ...snapshot(this.method.stats), ...snapshot(this.head)]);
    if (this.method.trainedBaseParams.length) {
      for (const [n, v] of snapshot(this.network.params)) tensors.set(n, v);
      for (const [n, v] of snapshot(this.network.stats)) tensors.set(n, v);
    }
    writeSafetensors(path.join(dir, DOMAIN_FILES.weights), tensors);
    const meta: DomainMeta = { family: 'resnet', method: this.method.type, domain: this.domain, labels: this.labels, network: this.network.config };
    writeJsonAtomic(path.join(dir, DOMAIN_FILES.meta), meta);
  }

  /**
   * The domain saved in `dir`, on `network` (which the model then owns; it must be the network the domain was
   * trained on, and is changed in place when the method trained the network's own parameters).
   */
  static load(dir: string, network: ResNet): ResNetDomainModel {
    const metaFile = path.join(dir, DOMAIN_FILES.meta);
    let meta: DomainMeta;
    try {
      meta = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as DomainMeta;
    } catch (err) {
      throw new UserInputError(`cannot read the domain's description: ${(err as Error).message}`, { file: metaFile });
    }
    if (meta?.family !== 'resnet' || !isVisionMethod(meta.method) || !Array.isArray(meta.labels) || typeof meta.domain !== 'string') {
      throw new UserInputError('not a ResNet domain (family, method, domain or labels missing or unknown)', { file: metaFile });
    }
    if (JSON.stringify(meta.network) !== JSON.stringify(network.config)) {
      throw new UserInputError(`the domain was trained on a network ${JSON.stringify(meta.network)}, not ${JSON.stringify(network.config)}`, { file: metaFile });
    }
    // `scratch` re-initialises the network before its saved values are assigned; the seed does not matter.
    const model = ResNetDomainModel.create(network, meta.method, meta.domain, meta.labels, 0);
    const where = `domain ${dir}`;
    const values = readSafetensors(path.join(dir, DOMAIN_FILES.weights)).tensors;
    assignParams(model.method.params, values, where);
    assignParams(model.method.stats, values, where);
    assignParams(model.head, values, where);
    if (VISION_METHODS[meta.method].trainsBase) {
      assignParams(network.params, values, where);
      assignParams(network.stats, values, where);
    }
    return model;
  }

  dispose(): void {
    this.network.dispose();
    for (const v of this.method.params.values()) v.dispose();
    for (const v of this.method.stats.values()) v.dispose();
    for (const v of this.head.values()) v.dispose();
  }
}
