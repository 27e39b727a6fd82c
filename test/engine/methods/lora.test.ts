import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { adapterMeta, EVAL_CONTEXT, loadAdapterModel } from '../../../src/engine/experiment';
import { saveAdapterFolder, ADAPTER_WEIGHTS } from '../../../src/engine/model/adapterIo';
import { parseSafetensors } from '../../../src/engine/model/safetensors';
import { AdapterModel } from '../../../src/engine/model/adapterModel';
import { catalogEntry } from '../../../src/engine/methods/catalog';
import { withLowestDropped } from '../../../src/engine/analysis/drop';
import { fixedInput, maxAbsDiff, tempDir, tinyModelDir, toyConfig, toyModel, useBackend } from '../../helpers/fixtures';
import { checkGradients } from '../../helpers/gradcheck';
import { Rng } from '../../../src/engine/util/random';

const L = 3;
const d = 24;
const f = 40;
const modelOptions = { layers: L, hidden: d, heads: 2, intermediate: f };

/** Moves every parameter of the method away from its initial value (B away from zero, l away from ones). */
function perturb(model: AdapterModel, seed = 7, scale = 0.3): void {
  const rng = new Rng(seed);
  for (const v of model.method.params.values()) v.assign(tf.add(v, tf.randomNormal(v.shape, 0, scale, 'float32', rng.seed())));
}

const outputsOf = (model: AdapterModel, input: ReturnType<typeof fixedInput>, ctx = EVAL_CONTEXT) => tf.tidy(() => model.outputs(input, ctx).dataSync() as Float32Array);

const cases = [
  { type: 'lora', method: { type: 'lora', r: 4, alpha: 8, attnMatrices: ['q', 'k', 'v'], intermediateLora: true, outputLora: true } },
  { type: 'ia3', method: { type: 'ia3', outputLora: true, attnMatrices: ['q', 'k', 'v'] } },
];

describe('LoRA and (IA)³', () => {
  beforeAll(useBackend);

  for (const { type, method } of cases) {
    it(`${type}: the adapted model starts exactly as the base model, and trained weights change it`, () => {
      const model = toyModel(tempDir(), tinyModelDir(modelOptions), method);
      const input = fixedInput(model.encoder.config.vocabSize);
      const base = outputsOf(model, input, { ...EVAL_CONTEXT, disabledAdapterLayers: new Set([0, 1, 2]) });
      expect(outputsOf(model, input)).toEqual(base);
      perturb(model);
      expect(maxAbsDiff(outputsOf(model, input), base)).toBeGreaterThan(1e-3);
      model.dispose();
    });

    it(`${type}: switching a layer off (ablation, AdapterDrop) removes exactly that layer's modules`, () => {
      const model = toyModel(tempDir(), tinyModelDir(modelOptions), method);
      const initial = new Map([...model.method.params].map(([n, v]) => [n, tf.clone(v)]));
      perturb(model);
      const input = fixedInput(model.encoder.config.vocabSize);
      for (let j = 0; j < L; j++) {
        const off = outputsOf(model, input, { ...EVAL_CONTEXT, disabledAdapterLayers: new Set([j]) });
        // The same model with layer j's modules put back to their (identity) initial values.
        const saved = new Map<string, tf.Tensor>();
        for (const [n, v] of model.method.params) {
          if (n.startsWith(`encoder.layer.${j}.`)) {
            saved.set(n, tf.clone(v));
            v.assign(initial.get(n)!);
          }
        }
        expect(saved.size).toBeGreaterThan(0);
        const reset = outputsOf(model, input);
        for (const [n, t] of saved) model.method.params.get(n)!.assign(t);
        expect(maxAbsDiff(off, reset), `layer ${j}`).toBeLessThan(1e-6);
        expect(maxAbsDiff(off, outputsOf(model, input)), `layer ${j} matters`).toBeGreaterThan(1e-4);
      }
      // AdapterDrop's context is the same switch for the lowest layers.
      expect(outputsOf(model, input, withLowestDropped(L))).toEqual(outputsOf(model, input, { ...EVAL_CONTEXT, disabledAdapterLayers: new Set([0, 1, 2]) }));
      model.dispose();
    });

    it(`${type}: gradients against finite differences`, () => {
      const model = toyModel(tempDir(), tinyModelDir({ layers: 2, hidden: 16, heads: 2, intermediate: 32 }), method);
      perturb(model, 3, 0.5);
      // The value, intermediate and output projections: the query's and key's gradients on a model this small are
      // too close to float32 noise for finite differences.
      const names = [...model.method.params.keys()].filter((n) => /layer\.(0|1)\.(attention\.self\.value|intermediate\.dense|output\.dense)\./.test(n));
      expect(names.length).toBeGreaterThan(3);
      checkGradients(model, names, new Float32Array([1, 0, 1]));
      model.dispose();
    });

    it(`${type}: saved in AdapterHub's names, layout and config keys, and loaded back to bit-identical logits`, async () => {
      const dir = tempDir();
      const modelDir = tinyModelDir(modelOptions);
      const cfg = toyConfig(dir, modelDir, { method });
      const model = toyModel(dir, modelDir, method);
      perturb(model);
      const adapterDir = path.join(dir, 'adapter');
      saveAdapterFolder(adapterDir, {
        adapterParams: model.method.params,
        headParams: model.head.params,
        adapterConfig: model.method.adapterConfig(),
        headConfig: model.head.headConfig(cfg.model),
        meta: adapterMeta(cfg, model),
      });
      const input = fixedInput(model.encoder.config.vocabSize);
      const before = outputsOf(model, input);
      const { model: loaded } = await loadAdapterModel(adapterDir);
      expect(outputsOf(loaded, input)).toEqual(before);

      // AdapterHub's names and PyTorch's layout: lora_A [r, in], lora_B [out, r] ((IA)³: [out, 1]).
      const file = path.join(adapterDir, ADAPTER_WEIGHTS.safetensors);
      const tensors = parseSafetensors(fs.readFileSync(file), file).tensors;
      const r = type === 'lora' ? 4 : 1;
      expect(tensors.get('bert.encoder.layer.0.attention.self.query.loras.toy.lora_B')!.shape).toEqual([d, r]);
      expect(tensors.get('bert.encoder.layer.2.intermediate.dense.loras.toy.lora_B')!.shape).toEqual([f, r]);
      expect(tensors.get('bert.encoder.layer.1.output.dense.loras.toy.lora_B')!.shape).toEqual([d, r]);
      if (type === 'lora') {
        expect(tensors.get('bert.encoder.layer.2.output.dense.loras.toy.lora_A')!.shape).toEqual([r, f]);
        // PyTorch's lora_A is this tool's A transposed.
        const A = model.method.params.get('encoder.layer.0.attention.self.key.loras.toy.lora_A')!;
        const saved = tensors.get('bert.encoder.layer.0.attention.self.key.loras.toy.lora_A')!;
        const At = tf.tidy(() => tf.transpose(A).dataSync());
        expect(Array.from(saved.data)).toEqual(Array.from(At));
      } else {
        expect([...tensors.keys()].some((n) => n.includes('lora_A'))).toBe(false);
      }
      const config = JSON.parse(fs.readFileSync(path.join(adapterDir, 'adapter_config.json'), 'utf8')).config;
      const hub = catalogEntry(type as 'lora').adapterHub!;
      expect(Object.keys(config).sort()).toEqual(Object.keys(hub.defaults).sort());
      expect(config).toMatchObject({ architecture: 'lora', composition_mode: type === 'lora' ? 'add' : 'scale', init_weights: type === 'lora' ? 'lora' : 'ia3', r, attn_matrices: ['q', 'k', 'v'], intermediate_lora: true, output_lora: true, selfattn_lora: true });
      // Floats written as Python floats (AdapterHub's dataclass takes them as written).
      expect(fs.readFileSync(path.join(adapterDir, 'adapter_config.json'), 'utf8')).toMatch(/"dropout": 0\.0/);
      model.dispose();
      loaded.dispose();
    });
  }

  it("the defaults are AdapterHub's: LoRA on query and value with r = alpha = 8; (IA)³ on key, value and intermediate", () => {
    const lora = toyModel(tempDir(), tinyModelDir(modelOptions), { type: 'lora' });
    expect([...lora.method.params.keys()].filter((n) => n.startsWith('encoder.layer.0.'))).toEqual([
      'encoder.layer.0.attention.self.query.loras.toy.lora_A',
      'encoder.layer.0.attention.self.query.loras.toy.lora_B',
      'encoder.layer.0.attention.self.value.loras.toy.lora_A',
      'encoder.layer.0.attention.self.value.loras.toy.lora_B',
    ]);
    expect(lora.method.adapterConfig()).toEqual(catalogEntry('lora').adapterHub!.defaults);
    const ia3 = toyModel(tempDir(), tinyModelDir(modelOptions), { type: 'ia3' });
    expect([...ia3.method.params.keys()].filter((n) => n.startsWith('encoder.layer.1.'))).toEqual([
      'encoder.layer.1.attention.self.key.loras.toy.lora_B',
      'encoder.layer.1.attention.self.value.loras.toy.lora_B',
      'encoder.layer.1.intermediate.dense.loras.toy.lora_B',
    ]);
    expect(ia3.method.adapterConfig()).toEqual(catalogEntry('ia3').adapterHub!.defaults);
    // Nothing of the base trains, and the frozen-prefix cache stops below the lowest adapted layer.
    expect(lora.method.trainedBaseParams).toEqual([]);
    expect(toyModel(tempDir(), tinyModelDir(modelOptions), { type: 'lora', leaveOut: [0, 1] }).frozenDepth()).toBe(2);
  });
});
