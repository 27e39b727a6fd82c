import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ResolvedConfig } from '../../../src/engine/config/types';
import { trainRun } from '../../../src/engine/train/trainer';
import { createRun } from '../../../src/engine/runs';
import { loadAdapterModel, prepareData } from '../../../src/engine/experiment';
import { evaluate } from '../../../src/engine/analysis/evaluate';
import { ownName, ourName, DISTILBERT } from '../../../src/engine/model/encoderVariants';
import { Architecture, writeHfEncoder } from '../../helpers/hfEncoders';
import { tempDir, toyConfig, useBackend } from '../../helpers/fixtures';

/**
 * Every method trains and evaluates on every member of the BERT family: a few steps each, then the saved
 * folder (AdapterHub's names for the model type) is loaded back and evaluated to the trainer's own dev metrics.
 */
const MEMBERS: Architecture[] = ['roberta', 'xlm-roberta', 'distilbert', 'electra'];

const METHODS: Record<string, unknown>[] = [
  { type: 'houlsby', bottleneck: 4 },
  { type: 'pfeiffer', bottleneck: 4 },
  // A scaling far from 1 and a short prefix: the parallel adapter and the prefix names (DistilBERT's "self") round-trip.
  { type: 'parallel', bottleneck: 4, scaling: 2 },
  { type: 'prefix-tuning', prefixLength: 3, bottleneckSize: 8 },
  { type: 'adapterbias' },
  { type: 'bitfit' },
  { type: 'layernorm' },
  { type: 'top-k', k: 1 },
  { type: 'full' },
  { type: 'head' },
];

const root = tempDir('adapter-lab-family-');
const models = new Map<Architecture, string>();

beforeAll(async () => {
  await useBackend();
  for (const arch of MEMBERS) models.set(arch, writeHfEncoder(arch, path.join(root, arch), 11));
});

type Metrics = Record<string, number>;

/** The same metrics; the loss to float32 rounding (the trainer evaluates in other batches). */
function expectSameMetrics(reloaded: Metrics, trained: Metrics, what: string): void {
  const { loss, ...rest } = reloaded;
  const { loss: trainedLoss, ...trainedRest } = trained;
  expect(rest, what).toEqual(trainedRest);
  expect(Math.abs(loss - trainedLoss), what).toBeLessThan(1e-5);
}

async function trainAndReload(cfg: ResolvedConfig): Promise<{ runDir: string; trained: Metrics; reloaded: Metrics }> {
  const run = createRun(cfg.runsDir, cfg);
  const outcome = await trainRun({ config: cfg, run });
  expect(outcome.status).toBe('done');
  const trained = JSON.parse(fs.readFileSync(path.join(run.dir, 'eval-dev.json'), 'utf8')).metrics;
  const loaded = await loadAdapterModel(run.adapterDir);
  try {
    const prepared = await prepareData(cfg, loaded.tokenizer);
    return { runDir: run.dir, trained, reloaded: evaluate(loaded.model, prepared.dev, 16).metrics };
  } finally {
    loaded.model.dispose();
  }
}

describe('every method on every member of the family', () => {
  for (const arch of MEMBERS) {
    it(`${arch}: ${METHODS.map((m) => m.type).join(', ')} and fusion train, save and evaluate`, async () => {
      const training = { epochs: 1, maxSteps: 3, batchSize: 16, learningRate: 1e-2, maxSeqLength: 16 };
      const runDirs: Record<string, string> = {};
      for (const method of METHODS) {
        const dir = tempDir();
        const cfg = toyConfig(dir, models.get(arch)!, { method, training, task: { name: `t_${String(method.type).replace('-', '_')}` } });
        const { runDir, trained, reloaded } = await trainAndReload(cfg);
        expectSameMetrics(reloaded, trained, String(method.type));
        runDirs[String(method.type)] = runDir;
      }
      // AdapterFusion over two Houlsby adapters trained on this member.
      const second = toyConfig(tempDir(), models.get(arch)!, { method: METHODS[0], training, task: { name: 'second' } });
      runDirs.second = (await trainAndReload(second)).runDir;
      const fusion = toyConfig(tempDir(), models.get(arch)!, { method: { type: 'fusion', adapters: [runDirs.houlsby, runDirs.second] }, training, task: { name: 'fused' } });
      const { trained, reloaded } = await trainAndReload(fusion);
      expectSameMetrics(reloaded, trained, 'fusion');
    });
  }
});

describe('the name tables', () => {
  it('DistilBERT: every BertModel name maps to its own module and back', () => {
    const pairs: [string, string][] = [
      ['encoder.layer.3.attention.self.query.weight', 'transformer.layer.3.attention.q_lin.weight'],
      ['encoder.layer.0.attention.output.dense.bias', 'transformer.layer.0.attention.out_lin.bias'],
      ['encoder.layer.1.attention.output.LayerNorm.weight', 'transformer.layer.1.sa_layer_norm.weight'],
      ['encoder.layer.12.intermediate.dense.weight', 'transformer.layer.12.ffn.lin1.weight'],
      ['encoder.layer.2.output.dense.weight', 'transformer.layer.2.ffn.lin2.weight'],
      ['encoder.layer.2.output.LayerNorm.bias', 'transformer.layer.2.output_layer_norm.bias'],
      ['encoder.layer.4.attention.output.adapters.a.adapter_down.0.weight', 'transformer.layer.4.attention_adapters.adapters.a.adapter_down.0.weight'],
      ['encoder.layer.4.output.adapter_fusion_layer.a,b.query.weight', 'transformer.layer.4.output_adapters.adapter_fusion_layer.a,b.query.weight'],
      ['embeddings.word_embeddings.weight', 'embeddings.word_embeddings.weight'],
    ];
    for (const [ours, theirs] of pairs) {
      expect(ownName(DISTILBERT, ours)).toBe(theirs);
      expect(ourName(DISTILBERT, theirs)).toBe(ours);
    }
  });
});
