import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from 'tokenizers';
import { readSafetensors } from '../../src/engine/model/safetensors';
import { hubCacheDir } from '../../src/engine/model/hfCache';
import { Architecture, referenceFirstTokenAsync, writeHfEncoderAsync } from '../helpers/hfEncoders';
import { tempDir, writeToyTask } from '../helpers/fixtures';
import { runPythonAsync } from '../helpers/python';
import { cliAsync } from '../helpers/cliRun';

/**
 * The BERT family's members through the built bin: `adapter-lab encode` on small random checkpoints in the
 * Hugging Face layout (each with its own config keys, parameter names and tokenizer.json) against PyTorch
 * forward passes written from Hugging Face's modeling files; model ids in a Hugging Face cache; Houlsby
 * adapters trained on each member and saved under AdapterHub's names for its model type.
 */
const cli = (args: string[], cwd: string, env?: NodeJS.ProcessEnv) => cliAsync(args, cwd, { env });

const ARCHITECTURES: Architecture[] = ['bert', 'roberta', 'xlm-roberta', 'distilbert', 'electra'];

const TEXTS = [
  { text: 'The movie was very good!', pair: 'it is awful' },
  { text: 'bad', pair: 'a nice film, the best film' },
  { text: 'it is not a great film, it was the worst movie', pair: 'love' },
  { text: 'happy happy sad', pair: 'poor ugly film' },
];

const root = tempDir('adapter-lab-encoders-');
const models = new Map<Architecture, string>();

beforeAll(async () => {
  fs.writeFileSync(path.join(root, 'inputs.jsonl'), TEXTS.map((t) => JSON.stringify(t)).join('\n') + '\n');
  for (const arch of ARCHITECTURES) models.set(arch, await writeHfEncoderAsync(arch, path.join(root, arch), ARCHITECTURES.indexOf(arch) + 1));
  // Five PyTorch processes: minutes on a loaded machine.
}, 300_000);

function maxAbsDiff(a: number[][], b: number[][]): number {
  let m = 0;
  a.forEach((row, i) => row.forEach((v, j) => (m = Math.max(m, Math.abs(v - b[i][j])))));
  return m;
}

describe('adapter-lab encode on each member of the BERT family matches PyTorch', () => {
  for (const arch of ARCHITECTURES) {
    for (const pairs of [false, true]) {
      it(`${arch}${pairs ? ', text pairs' : ''}: the first token's final hidden state within 1e-4`, async () => {
        const dir = models.get(arch)!;
        const r = await cli(['encode', '--model', dir, '--input', 'inputs.jsonl', ...(pairs ? ['--pair-field', 'pair'] : [])], root);
        expect(r.code, r.stderr).toBe(0);
        const ours = r.lines.map((l) => l.embedding as number[]);
        expect(ours).toHaveLength(TEXTS.length);
        expect(ours[0]).toHaveLength(32);
        // The ids as the tokenizer's own post-processor lays them out (not this tool's template code); PyTorch
        // runs each example alone, unpadded, where the CLI batched them with padding.
        const native = Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
        const rows = [];
        for (const t of TEXTS) {
          const enc = await native.encode(t.text, pairs ? t.pair : null, { addSpecialTokens: true });
          rows.push({ ids: enc.getIds(), types: enc.getTypeIds() });
        }
        expect(new Set(rows.map((row) => row.ids.length)).size).toBeGreaterThan(1);
        const reference = await referenceFirstTokenAsync(arch, dir, rows, root);
        expect(maxAbsDiff(ours, reference)).toBeLessThan(1e-4);
        // The rows differ from one another: a forward pass that ignored its input would not pass.
        expect(maxAbsDiff([reference[0]], [reference[1]])).toBeGreaterThan(1e-2);
      });
    }
  }
});

describe('random-init in the shape of a member', () => {
  it('writes the member\'s own config keys and parameter names, and the copy encodes', async () => {
    for (const [arch, ownNames] of [
      ['distilbert', ['transformer.layer.0.attention.q_lin.weight', 'transformer.layer.1.output_layer_norm.bias']],
      ['electra', ['embeddings_project.weight', 'encoder.layer.0.attention.self.query.weight']],
    ] as const) {
      const out = path.join(tempDir(), 'copy');
      const r = await cli(['random-init', '--model', models.get(arch)!, '--out', out, '--seed', '3'], root);
      expect(r.code, r.stderr).toBe(0);
      const original = JSON.parse(fs.readFileSync(path.join(models.get(arch)!, 'config.json'), 'utf8'));
      const copy = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
      for (const key of arch === 'distilbert' ? ['model_type', 'dim', 'n_layers', 'hidden_dim', 'activation'] : ['model_type', 'embedding_size', 'hidden_size', 'hidden_act']) expect(copy[key], key).toEqual(original[key]);
      const names = [...readSafetensors(path.join(out, 'model.safetensors')).tensors.keys()];
      for (const name of ownNames) expect(names).toContain(name);
      const encoded = await cli(['encode', '--model', out, '--input', 'inputs.jsonl'], root);
      expect(encoded.code, encoded.stderr).toBe(0);
      expect(encoded.lines[0].embedding).toHaveLength(32);
    }
  });
});

/** A Hugging Face hub cache as huggingface_hub lays it out: blobs by hash, snapshot files as links to them. */
function writeHubCache(hubDir: string, modelId: string, modelDir: string): string {
  const repo = path.join(hubDir, `models--${modelId.replace('/', '--')}`);
  const commit = crypto.createHash('sha1').update(modelId).digest('hex');
  const snapshot = path.join(repo, 'snapshots', commit);
  fs.mkdirSync(path.join(repo, 'blobs'), { recursive: true });
  fs.mkdirSync(path.join(repo, 'refs'), { recursive: true });
  fs.mkdirSync(snapshot, { recursive: true });
  for (const file of fs.readdirSync(modelDir)) {
    const data = fs.readFileSync(path.join(modelDir, file));
    const blob = crypto.createHash('sha256').update(data).digest('hex');
    fs.writeFileSync(path.join(repo, 'blobs', blob), data);
    fs.symlinkSync(path.join('..', '..', 'blobs', blob), path.join(snapshot, file));
  }
  fs.writeFileSync(path.join(repo, 'refs', 'main'), commit);
  return snapshot;
}

describe('older checkpoints: pytorch_model.bin', () => {
  it('a folder with only the pytorch_model.bin torch.save wrote encodes as its model.safetensors twin', async () => {
    const src = models.get('roberta')!;
    const onlyBin = tempDir('adapter-lab-bin-model-');
    for (const f of fs.readdirSync(src)) if (f !== 'model.safetensors') fs.copyFileSync(path.join(src, f), path.join(onlyBin, f));
    // PyTorch itself writes the .bin, from the safetensors' tensors (read by hand: the safetensors package is absent).
    await runPythonAsync(
      `import json, struct, sys, torch
b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
sd = {k: torch.frombuffer(bytearray(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]), dtype=torch.float32).reshape(v["shape"]).clone() for k, v in h.items() if k != "__metadata__"}
torch.save(sd, sys.argv[2])`,
      [path.join(src, 'model.safetensors'), path.join(onlyBin, 'pytorch_model.bin')],
    );
    const fromBin = await cli(['encode', '--model', onlyBin, '--input', 'inputs.jsonl'], root);
    expect(fromBin.code, fromBin.stderr).toBe(0);
    const fromSafetensors = await cli(['encode', '--model', src, '--input', 'inputs.jsonl'], root);
    expect(fromBin.lines.map((l) => l.embedding)).toEqual(fromSafetensors.lines.map((l) => l.embedding));
    fs.rmSync(path.join(onlyBin, 'pytorch_model.bin'));
    const neither = await cli(['encode', '--model', onlyBin, '--input', 'inputs.jsonl'], root);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toContain('neither model.safetensors nor pytorch_model.bin is there');
  });
});

describe('model ids resolve in the local Hugging Face cache', () => {
  it('"org/name" is found under $HF_HOME/hub through refs/main and encodes as the folder does', async () => {
    const home = tempDir('adapter-lab-hf-home-');
    writeHubCache(path.join(home, 'hub'), 'test-org/tiny-roberta', models.get('roberta')!);
    const env = { ...process.env, HF_HOME: home, HF_HUB_CACHE: '' };
    const byId = await cli(['encode', '--model', 'test-org/tiny-roberta', '--input', 'inputs.jsonl'], root, env);
    expect(byId.code, byId.stderr).toBe(0);
    const byFolder = await cli(['encode', '--model', models.get('roberta')!, '--input', 'inputs.jsonl'], root);
    expect(byId.lines.map((l) => l.embedding)).toEqual(byFolder.lines.map((l) => l.embedding));
  });

  it('a model in no place exits 2 and lists every place it looked', async () => {
    const home = tempDir('adapter-lab-hf-home-');
    const env = { ...process.env, HF_HOME: home, HF_HUB_CACHE: '' };
    const r = await cli(['encode', '--model', 'test-org/absent-model', '--input', 'inputs.jsonl'], root, env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('model "test-org/absent-model" not found');
    expect(r.stderr).toContain(`${path.join(root, 'test-org', 'absent-model')}: no such folder`);
    expect(r.stderr).toContain(`${path.join(home, 'hub', 'models--test-org--absent-model')} (the Hugging Face cache, $HF_HOME/hub): no such folder`);
  });

  it('the cache folder: $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub', async () => {
    expect(hubCacheDir({ HF_HUB_CACHE: '/a', HF_HOME: '/b', XDG_CACHE_HOME: '/c' }).dir).toBe('/a');
    expect(hubCacheDir({ HF_HOME: '/b', XDG_CACHE_HOME: '/c' }).dir).toBe(path.join('/b', 'hub'));
    expect(hubCacheDir({ XDG_CACHE_HOME: '/c' }).dir).toBe(path.join('/c', 'huggingface', 'hub'));
    expect(hubCacheDir({}).dir).toBe(path.join(require('node:os').homedir(), '.cache', 'huggingface', 'hub'));
  });
});

/** AdapterHub's names for a Houlsby adapter's parameters in layer 0 (its adapter modules and the LayerNorms it trains). */
const HOULSBY_NAMES: Record<Exclude<Architecture, 'bert'>, { modelType: string; modelClass: string; names: string[] }> = {
  roberta: {
    modelType: 'roberta',
    modelClass: 'RobertaAdapterModel',
    names: ['roberta.encoder.layer.0.attention.output.adapters.toy.adapter_down.0.weight', 'roberta.encoder.layer.0.output.adapters.toy.adapter_up.bias', 'roberta.encoder.layer.0.attention.output.LayerNorm.weight', 'roberta.embeddings.LayerNorm.bias'],
  },
  'xlm-roberta': {
    modelType: 'xlm-roberta',
    modelClass: 'XLMRobertaAdapterModel',
    names: ['roberta.encoder.layer.0.attention.output.adapters.toy.adapter_down.0.weight', 'roberta.encoder.layer.0.output.adapters.toy.adapter_up.weight', 'roberta.encoder.layer.0.output.LayerNorm.bias'],
  },
  distilbert: {
    modelType: 'distilbert',
    modelClass: 'DistilBertAdapterModel',
    names: ['distilbert.transformer.layer.0.attention_adapters.adapters.toy.adapter_down.0.weight', 'distilbert.transformer.layer.0.output_adapters.adapters.toy.adapter_up.weight', 'distilbert.transformer.layer.0.sa_layer_norm.weight', 'distilbert.transformer.layer.1.output_layer_norm.bias', 'distilbert.embeddings.LayerNorm.weight'],
  },
  electra: {
    modelType: 'electra',
    modelClass: 'ElectraAdapterModel',
    names: ['electra.encoder.layer.0.attention.output.adapters.toy.adapter_down.0.weight', 'electra.encoder.layer.1.output.adapters.toy.adapter_up.bias', 'electra.encoder.layer.0.output.LayerNorm.weight'],
  },
};

describe('Houlsby adapters train on each member and are saved under AdapterHub\'s names for it', () => {
  for (const arch of Object.keys(HOULSBY_NAMES) as (keyof typeof HOULSBY_NAMES)[]) {
    it(arch, async () => {
      const dir = tempDir();
      writeToyTask(dir);
      const config = {
        name: `toy-${arch}`,
        task: { name: 'toy', type: 'classification', train: 'data/train.jsonl', dev: 'data/dev.jsonl', textField: 'text', labelField: 'label' },
        model: models.get(arch)!,
        method: { type: 'houlsby', bottleneck: 4 },
        training: { epochs: 1, batchSize: 16, learningRate: 3e-3, maxSeqLength: 16, seed: 1 },
      };
      fs.writeFileSync(path.join(dir, 'toy.adapter.json'), JSON.stringify(config));
      const train = await cli(['train', 'toy.adapter.json', '--max-steps', '4', '--json'], dir);
      expect(train.code, train.stderr).toBe(0);
      const runDir = train.lines[train.lines.length - 1].runDir as string;
      const losses = train.lines.filter((l) => l.type === 'progress' && typeof l.loss === 'number').map((l) => l.loss);
      for (const loss of losses) expect(Number.isFinite(loss)).toBe(true);

      const expected = HOULSBY_NAMES[arch];
      const adapterConfig = JSON.parse(fs.readFileSync(path.join(runDir, 'adapter', 'adapter_config.json'), 'utf8'));
      expect(adapterConfig).toMatchObject({ model_type: expected.modelType, model_class: expected.modelClass });
      const headConfig = JSON.parse(fs.readFileSync(path.join(runDir, 'adapter', 'head_config.json'), 'utf8'));
      expect(headConfig).toMatchObject({ model_type: expected.modelType, model_class: expected.modelClass });
      const saved = readSafetensors(path.join(runDir, 'adapter', 'adapter.safetensors')).tensors;
      for (const name of expected.names) expect([...saved.keys()], name).toContain(name);
      // Every saved name is in the model's own namespace: nothing under BERT's names leaks into the export.
      for (const name of saved.keys()) expect(name.startsWith(expected.names[0].split('.')[0] + '.'), name).toBe(true);
      // PyTorch's [out, in]: adapter_down maps d = 32 to m = 4.
      expect(saved.get(expected.names[0])!.shape).toEqual([4, 32]);
      // Trained: the up-projection (initialised near zero) moved.
      const up = saved.get(expected.names[1])!.data;
      expect(Math.max(...Array.from(up, Math.abs))).toBeGreaterThan(0);

      // Read back under those names: eval reproduces the trainer's dev metrics.
      const evaluated = await cli(['eval', runDir, '--json'], dir);
      expect(evaluated.code, evaluated.stderr).toBe(0);
      expect(evaluated.lines.find((l) => l.type === 'result').metrics).toEqual(JSON.parse(fs.readFileSync(path.join(runDir, 'eval-dev.json'), 'utf8')).metrics);
    });
  }
});
