import * as tf from '@tensorflow/tfjs-core';
import { TaskType } from '../config/types';
import { dropout, linear } from '../tf/ops';
import { ForwardContext } from './bert';
import { Rng } from '../util/random';

/**
 * The task head on the first token ([CLS]), as AdapterHub's two-layer classification head builds it:
 * dropout, dense d -> d, tanh, dropout, dense d -> C (C = 1 for regression). Its parameters carry
 * AdapterHub's names (`heads.<name>.1.*` and `heads.<name>.4.*`, the indices of its nn.Sequential).
 */
export class TaskHead {
  readonly params: Map<string, tf.Variable>;

  constructor(
    readonly name: string,
    readonly taskType: TaskType,
    readonly hiddenSize: number,
    /** Class names (classification); null for regression. */
    readonly labels: string[] | null,
    rng: Rng,
    initStd = 0.02,
  ) {
    const d = hiddenSize;
    const outputs = this.numOutputs;
    this.params = new Map([
      [`heads.${name}.1.weight`, tf.variable(tf.truncatedNormal([d, d], 0, initStd, 'float32', rng.seed()), true)],
      [`heads.${name}.1.bias`, tf.variable(tf.zeros([d]), true)],
      [`heads.${name}.4.weight`, tf.variable(tf.truncatedNormal([d, outputs], 0, initStd, 'float32', rng.seed()), true)],
      [`heads.${name}.4.bias`, tf.variable(tf.zeros([outputs]), true)],
    ]);
  }

  get numOutputs(): number {
    return this.taskType === 'regression' ? 1 : this.labels!.length;
  }

  private v<R extends tf.Rank>(suffix: string): tf.Tensor<R> {
    return this.params.get(`heads.${this.name}.${suffix}`) as unknown as tf.Tensor<R>;
  }

  private drop(x: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    return ctx.training && ctx.rng && ctx.hiddenDropout > 0 ? (dropout(x, ctx.hiddenDropout, ctx.rng.seed()) as tf.Tensor2D) : x;
  }

  /** [B, d] first-token states -> [B, C] logits (or [B, 1] predictions for regression). */
  forward(cls: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    const hidden = tf.tanh(linear(this.drop(cls, ctx), this.v('1.weight'), this.v('1.bias'))) as tf.Tensor2D;
    return linear(this.drop(hidden, ctx), this.v('4.weight'), this.v('4.bias'));
  }

  /** Mean softmax cross-entropy (classification) or mean squared error (regression). */
  loss(outputs: tf.Tensor2D, labels: Float32Array): tf.Scalar {
    if (this.taskType === 'regression') {
      return tf.mean(tf.square(tf.sub(tf.reshape(outputs, [-1]), tf.tensor1d(labels)))) as tf.Scalar;
    }
    const oneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), this.numOutputs);
    return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(outputs)), -1))) as tf.Scalar;
  }

  /** AdapterHub's head_config.json. */
  headConfig(modelName: string): Record<string, unknown> {
    const label2id = this.labels ? Object.fromEntries(this.labels.map((l, i) => [l, i])) : null;
    return {
      config: {
        head_type: 'classification',
        num_labels: this.numOutputs,
        layers: 2,
        activation_function: 'tanh',
        label2id,
        use_pooler: false,
        bias: true,
        dropout_prob: null,
      },
      hidden_size: this.hiddenSize,
      model_class: 'BertAdapterModel',
      model_name: modelName,
      model_type: 'bert',
      name: this.name,
      version: 'adapters.1.0.0',
    };
  }
}
