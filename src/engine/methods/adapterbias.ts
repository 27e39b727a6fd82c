import * as tf from '@tensorflow/tfjs-core';
import { adapterLayerIndices, initVariable, MethodDefinition, zerosVariable } from './method';
import { linear } from '../tf/ops';
import { ForwardContext } from '../model/bert';

/**
 * AdapterBias (Fu et al., NAACL 2022): a token-dependent shift added to the feed-forward output of each
 * layer. Token i gets alpha_i * v, where v (d) is a layer's shift vector and alpha = L_alpha(FFN output) is a
 * linear layer d -> 1 (2d + 1 parameters per layer); L_alpha may be shared by all layers. The FFN-sublayer
 * LayerNorm is trained too. Optionally an L0 penalty (hard-concrete gates, Louizos et al. 2018) on the
 * weights of L_alpha, as the paper's AdapterBias-L0 variant.
 */

// Hard-concrete constants of Louizos et al. 2018.
const BETA = 2 / 3;
const GAMMA = -0.1;
const ZETA = 1.1;
/** Gates start almost surely open: sigmoid(3) = 0.95. */
const LOG_ALPHA_INIT = 3;

export const adapterbias: MethodDefinition = {
  type: 'adapterbias',
  create(encoder, { adapterName, config, rng }) {
    const d = encoder.config.hiddenSize;
    const layers = adapterLayerIndices(encoder, config.leaveOut);
    const shared = config.sharedAlpha === true;
    const l0Lambda = config.l0Lambda ?? 0;
    const params = new Map<string, tf.Variable>();

    const alphaPrefix = (i: number) => (shared ? `encoder.adapters.${adapterName}.shared_alpha` : `encoder.layer.${i}.output.adapters.${adapterName}.adapter_bias.alpha`);
    const addAlpha = (prefix: string) => {
      params.set(`${prefix}.weight`, initVariable([d, 1], config.initStd, rng));
      params.set(`${prefix}.bias`, zerosVariable([1]));
      if (l0Lambda > 0) params.set(`${prefix}.log_alpha`, tf.variable(tf.fill([d, 1], LOG_ALPHA_INIT), true));
    };
    if (shared) addAlpha(alphaPrefix(0));
    for (const i of layers) {
      params.set(`encoder.layer.${i}.output.adapters.${adapterName}.adapter_bias.v`, initVariable([d], config.initStd, rng));
      if (!shared) addAlpha(alphaPrefix(i));
    }

    /** The hard-concrete gate z in [0, 1]: sampled while training, its expected value otherwise. */
    const gate = (logAlpha: tf.Tensor, ctx: ForwardContext): tf.Tensor => {
      let s: tf.Tensor;
      if (ctx.training && ctx.rng) {
        const u = tf.randomUniform(logAlpha.shape, 1e-6, 1 - 1e-6, 'float32', ctx.rng.seed());
        s = tf.sigmoid(tf.div(tf.add(tf.sub(tf.log(u), tf.log(tf.sub(1, u))), logAlpha), BETA));
      } else {
        s = tf.sigmoid(logAlpha);
      }
      return tf.clipByValue(tf.add(tf.mul(s, ZETA - GAMMA), GAMMA), 0, 1);
    };

    const alphaWeight = (prefix: string, ctx: ForwardContext): tf.Tensor2D => {
      const w = params.get(`${prefix}.weight`) as unknown as tf.Tensor2D;
      const logAlpha = params.get(`${prefix}.log_alpha`);
      return logAlpha ? (tf.mul(w, gate(logAlpha, ctx)) as tf.Tensor2D) : w;
    };

    return {
      type: 'adapterbias',
      params,
      trainedBaseParams: config.trainLayerNorm ? layers.flatMap((i) => [`encoder.layer.${i}.output.LayerNorm.weight`, `encoder.layer.${i}.output.LayerNorm.bias`]) : [],
      adapterLayers: layers,
      hooks: {
        afterFeedForward: (i, out, ctx) => {
          const v = params.get(`encoder.layer.${i}.output.adapters.${adapterName}.adapter_bias.v`);
          if (!v) return out;
          const prefix = alphaPrefix(i);
          const alpha = linear(out, alphaWeight(prefix, ctx), params.get(`${prefix}.bias`) as unknown as tf.Tensor1D); // [N, 1]
          return tf.add(out, tf.mul(alpha, v));
        },
      },
      penalty: () => {
        if (l0Lambda <= 0) return null;
        // Expected share of open gates: P(z > 0) = sigmoid(log_alpha - beta * log(-gamma / zeta)).
        const open = [...params.entries()]
          .filter(([n]) => n.endsWith('.log_alpha'))
          .map(([, la]) => tf.sum(tf.sigmoid(tf.sub(la, BETA * Math.log(-GAMMA / ZETA)))));
        const total = [...params.keys()].filter((n) => n.endsWith('.log_alpha')).length * d;
        return tf.mul(tf.div(tf.addN(open), total), l0Lambda) as tf.Scalar;
      },
      adapterConfig: () => ({
        architecture: 'adapterbias',
        shared_alpha: shared,
        l0_lambda: l0Lambda,
        leave_out: config.leaveOut,
        init_std: config.initStd,
        train_layer_norm: config.trainLayerNorm,
      }),
    };
  },
};
