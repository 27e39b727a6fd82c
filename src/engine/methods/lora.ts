import * as tf from '@tensorflow/tfjs-core';
import { adapterLayerIndices, layerNormParams, MethodDefinition, MethodInstance, MethodOptions, zerosVariable } from './method';
import { BertEncoder, Projection, ProjectionHook, projectionModule } from '../model/bert';
import { dropout, linear } from '../tf/ops';
import { catalogEntry, loraTargets } from './catalog';
import { MethodType } from '../config/types';
import { TensorMap } from '../model/safetensors';

/**
 * LoRA (Hu et al. 2022) and the methods AdapterHub builds on the same `LoRALinear` wrapper ((IA)³), as its
 * methods/lora.py computes them (v1.2.0). At an adapted projection y = x W + b:
 *
 *   LoRA ("add"):     y' = y + s * dropout(x) A B        A [in, r], B [r, out], s = alpha / r
 *   (IA)³ ("scale"):  y' = y * (alpha * l)               l [out], the learned rescaling
 *
 * B starts at zero (A as PyTorch's nn.Linear default, uniform in +-1/sqrt(in)), so LoRA starts as the base
 * model; l starts at ones, so does (IA)³. The adapted projections are AdapterHub's: `attn_matrices` of the
 * self-attention (q, k, v), `intermediate_lora` (intermediate.dense, its output before the activation) and
 * `output_lora` (output.dense), in every layer but `leave_out`. Parameter names are AdapterHub's,
 * `…attention.self.query.loras.<name>.lora_A` / `lora_B`; here A and B are stored [in, r] and [r, out] (l as
 * [1, out]), PyTorch's lora_A [r, in] and lora_B [out, r] transposed (model/checkpoint.ts transposedInPytorch).
 */

export type Composition = 'add' | 'scale';

/** The projections a config adapts, with their sizes. */
function targets(encoder: BertEncoder, config: MethodOptions['config']): { projection: Projection; in: number; out: number }[] {
  const { hiddenSize: d, numLayers: L, intermediateSize } = encoder.config;
  return loraTargets({ d, L, intermediate: intermediateSize }, config as unknown as Record<string, unknown>).map((t) => ({ projection: t.name as Projection, in: t.in, out: t.out }));
}

/** The parameter-name prefix of the LoRA module on a projection of layer i. */
export function loraPrefix(i: number, projection: Projection, adapterName: string): string {
  return `${projectionModule(i, projection)}.loras.${adapterName}`;
}

export function loraFamilyMethod(type: MethodType, composition: Composition): MethodDefinition {
  return {
    type,
    create(encoder, { adapterName, config, rng }): MethodInstance {
      const defaults = catalogEntry(type).defaults as Record<string, unknown>;
      const option = <T>(key: string): T => ((config as unknown as Record<string, unknown>)[key] ?? defaults[key]) as T;
      const r = composition === 'scale' ? 1 : option<number>('r');
      const alpha = option<number>('alpha') ?? 1;
      const rate = composition === 'scale' ? 0 : option<number>('dropout') ?? 0;
      if (!Number.isInteger(r) || r < 1) throw new Error(`method.r must be a positive integer, got ${r}`);
      const scaling = composition === 'add' ? alpha / r : alpha;
      const layers = adapterLayerIndices(encoder, config.leaveOut);
      const adapted = targets(encoder, config);
      if (adapted.length === 0) throw new Error(`method ${type} adapts no projection: give method.attnMatrices, intermediateLora or outputLora`);
      const params = new Map<string, tf.Variable>();
      for (const i of layers) {
        for (const t of adapted) {
          const prefix = loraPrefix(i, t.projection, adapterName);
          if (composition === 'add') {
            // PyTorch's kaiming_uniform_(a=sqrt(5)) on lora_A [r, in]: uniform in +-1/sqrt(in).
            const bound = 1 / Math.sqrt(t.in);
            params.set(`${prefix}.lora_A`, tf.variable(tf.randomUniform([t.in, r], -bound, bound, 'float32', rng.seed()), true));
            params.set(`${prefix}.lora_B`, zerosVariable([r, t.out]));
          } else {
            params.set(`${prefix}.lora_B`, tf.variable(tf.ones([1, t.out]), true));
          }
        }
      }
      const v = (name: string) => params.get(name) as unknown as tf.Tensor2D;

      const hook =
        (projection: Projection): ProjectionHook =>
        (i, x, y, ctx) => {
          const prefix = loraPrefix(i, projection, adapterName);
          if (!params.has(`${prefix}.lora_B`)) return y; // a layer left out
          if (composition === 'scale') return tf.mul(y, scaling === 1 ? v(`${prefix}.lora_B`) : tf.mul(v(`${prefix}.lora_B`), scaling));
          const input = ctx.training && rate > 0 && ctx.rng ? (dropout(x, rate, ctx.rng.seed()) as tf.Tensor2D) : x;
          const update = linear(linear(input, v(`${prefix}.lora_A`), null), v(`${prefix}.lora_B`), null);
          return tf.add(y, scaling === 1 ? update : tf.mul(update, scaling));
        };

      const mergedBaseValues = (): TensorMap => {
        const out: TensorMap = new Map();
        tf.tidy(() => {
          const put = (name: string, t: tf.Tensor) => out.set(name, { shape: t.shape, data: t.dataSync() as Float32Array });
          for (const i of layers) {
            for (const t of adapted) {
              const prefix = loraPrefix(i, t.projection, adapterName);
              const module = projectionModule(i, t.projection);
              const w = encoder.params.get(`${module}.weight`)!;
              const b = encoder.params.get(`${module}.bias`)!;
              if (composition === 'add') {
                put(`${module}.weight`, tf.add(w, tf.mul(tf.matMul(v(`${prefix}.lora_A`), v(`${prefix}.lora_B`)), scaling)));
              } else {
                // y * s l = x (W * s l) + b * s l: the columns of W ([in, out] here) and the bias scale alike.
                const scale = tf.mul(v(`${prefix}.lora_B`), scaling);
                put(`${module}.weight`, tf.mul(w, scale));
                put(`${module}.bias`, tf.mul(b, tf.reshape(scale, [t.out])));
              }
            }
          }
        });
        return out;
      };

      const projections = Object.fromEntries(adapted.map((t) => [t.projection, hook(t.projection)]));
      const matrices = option<string[]>('attnMatrices') ?? [];
      return {
        type,
        params,
        trainedBaseParams: config.trainLayerNorm ? layerNormParams(encoder) : [],
        adapterLayers: layers,
        hooks: { projections },
        penalty: () => null,
        adapterConfig: () => ({
          ...(catalogEntry(type).adapterHub!.defaults as Record<string, unknown>),
          selfattn_lora: matrices.length > 0,
          intermediate_lora: option<boolean>('intermediateLora') === true,
          output_lora: option<boolean>('outputLora') === true,
          leave_out: config.leaveOut,
          r,
          alpha,
          dropout: rate,
          attn_matrices: matrices,
        }),
        mergedBaseValues,
      };
    },
  };
}

/** LoRA (Hu et al. 2022; AdapterHub's LoRAConfig): low-rank updates beside query and value by default. */
export const lora = loraFamilyMethod('lora', 'add');
