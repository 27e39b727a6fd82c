import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir, tinyModelDir, writeToyTask } from '../helpers/fixtures';
import { runAsync, runPythonAsync as runPython } from '../helpers/python';

/**
 * Interop with AdapterHub, checked against PyTorch (Debian's python3-torch) as the independent side:
 * test/interop/adapterhub.py computes AdapterHub's forward (written from its source, on a BERT forward written
 * from Hugging Face's modeling_bert.py) from the .bin files through torch.load(weights_only=True); the tool's
 * logits come from the built CLI. Adapter weights are large (std 0.3 to 0.5), so that a wrong placement cannot
 * hide behind near-identity adapters.
 */
const BIN = path.resolve(__dirname, '../../bin/adapter-lab.js');
const AH = path.resolve(__dirname, 'adapterhub.py');
const MODEL = { layers: 3, hidden: 32, heads: 2, intermediate: 64 };
const SENTENCES = ['the movie was good', 'a film is not very bad', 'the film was great', 'awful movie', 'a very good film'];

// Child processes are awaited, never run with spawnSync: a test that blocks its vitest worker for a minute (PyTorch
// reference passes and CLI runs add up to that on a loaded machine) fails the run with "Timeout calling onTaskUpdate".
async function cli(args: string[], cwd: string) {
  const r = await runAsync(process.execPath, [BIN, ...args], { cwd, timeoutMs: 240_000 });
  const lines = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, lines };
}

function writeConfig(dir: string, file: string, task: string, method: Record<string, unknown>, model: string): string {
  const cfg = {
    name: file.replace('.adapter.json', ''),
    task: { name: task, type: 'classification', train: 'data/train.jsonl', dev: 'data/dev.jsonl', textField: 'text', labelField: 'label' },
    model,
    method,
    training: { epochs: 1, batchSize: 16, learningRate: 3e-3, maxSeqLength: 16, seed: task.length },
  };
  fs.writeFileSync(path.join(dir, file), JSON.stringify(cfg, null, 2));
  return file;
}

async function train(dir: string, config: string, learningRate?: number): Promise<string> {
  if (learningRate !== undefined) {
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, config), 'utf8'));
    cfg.training.learningRate = learningRate;
    fs.writeFileSync(path.join(dir, config), JSON.stringify(cfg, null, 2));
  }
  const r = (await cli(['train', config, '--max-steps', '3', '--json'], dir));
  expect(r.code, r.stderr).toBe(0);
  return r.lines[r.lines.length - 1].runDir as string;
}

/** Token ids as BERT's tokenizer gives them for sentences of whole vocabulary words: [CLS] words [SEP]. */
function ids(modelDir: string): number[][] {
  const vocab = fs.readFileSync(path.join(modelDir, 'vocab.txt'), 'utf8').split('\n');
  const id = (w: string) => {
    const i = vocab.indexOf(w);
    if (i < 0) throw new Error(`${w} is not in the vocabulary`);
    return i;
  };
  return SENTENCES.map((s) => [id('[CLS]'), ...s.split(' ').map(id), id('[SEP]')]);
}

/** The tool's logits for SENTENCES, by `predict --logits`. */
async function toolLogits(dir: string, target: string): Promise<number[][]> {
  const input = path.join(dir, 'sentences.jsonl');
  fs.writeFileSync(input, SENTENCES.map((text) => JSON.stringify({ text })).join('\n') + '\n');
  const r = (await cli(['predict', target, '--input', input, '--logits', '--json'], dir));
  expect(r.code, r.stderr).toBe(0);
  return r.lines.filter((l) => l.type === 'prediction').map((l) => l.logits);
}

/** AdapterHub's logits (test/interop/adapterhub.py). */
async function adapterHubLogits(modelDir: string, spec: { adapters: string[]; fusion?: string; head: string }): Promise<number[][]> {
  const file = path.join(tempDir(), 'spec.json');
  fs.writeFileSync(file, JSON.stringify({ ids: ids(modelDir), ...spec }));
  return JSON.parse((await runPython(fs.readFileSync(AH, 'utf8'), [modelDir, file]))).logits;
}

function expectClose(a: number[][], b: number[][], tol = 1e-4): void {
  expect(a.length).toBe(b.length);
  let worst = 0;
  a.forEach((row, i) => row.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - b[i][j])))));
  expect(worst).toBeLessThan(tol);
  // Logits that differ between sentences: the comparison is not between constants.
  expect(Math.abs(a[0][0] - a[1][0])).toBeGreaterThan(1e-3);
}

/**
 * An adapter folder as AdapterHub's save_adapter writes it (json.dump(sort_keys, indent 2) of build_full_config,
 * torch.save of a plain dict of the adapter's weights), with random weights; and with_head's head files.
 */
async function adapterHubFolder(dir: string, name: string, kind: 'seq_bn' | 'double_seq_bn' | 'par_bn', opts: { head?: string[]; reductionFactor?: number; leaveOut?: number[]; scaling?: number; model?: string; mhAdapter?: boolean } = {}): Promise<string> {
  fs.mkdirSync(dir, { recursive: true });
  (await runPython(
    `
import json, sys, torch
dir, name, kind, spec = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
d, L = 32, 3
# BnConfig's fields (adapters v1.2.0 configuration/adapter_config.py) with SeqBnConfig's / DoubleSeqBnConfig's defaults
config = dict(mh_adapter=False, output_adapter=True, reduction_factor=16, non_linearity="relu", original_ln_before=False,
    original_ln_after=True, ln_before=False, ln_after=False, init_weights="bert", init_weights_seed=None, is_parallel=False,
    scaling=1.0, use_gating=False, residual_before_ln=True, adapter_residual_before_ln=False, inv_adapter=None,
    inv_adapter_reduction_factor=None, cross_adapter=False, leave_out=[], dropout=0.0, phm_layer=False, phm_dim=4,
    factorized_phm_W=True, shared_W_phm=False, shared_phm_rule=True, factorized_phm_rule=False, phm_c_init="normal",
    phm_init_range=0.0001, learn_phm=True, hypercomplex_nonlinearity="glorot-uniform", phm_rank=1, phm_bias=True, stochastic_depth=0.0)
if kind == "seq_bn":
    config.update(original_ln_before=True, original_ln_after=True, residual_before_ln=True, mh_adapter=False, output_adapter=True, non_linearity="relu", reduction_factor=16)
elif kind == "par_bn":
    # ParBnConfig's defaults; its reduction_factor is the int 2, as to_dict writes it
    config.update(original_ln_before=False, original_ln_after=True, ln_before=False, ln_after=False, mh_adapter=False, output_adapter=True,
                  non_linearity="relu", reduction_factor=2, init_weights="mam_adapter", is_parallel=True, scaling=4.0)
    if spec.get("mhAdapter"): config["mh_adapter"] = True
else:
    config.update(original_ln_before=False, original_ln_after=True, residual_before_ln=True, mh_adapter=True, output_adapter=True, non_linearity="swish", reduction_factor=16)
if spec.get("reductionFactor") is not None: config["reduction_factor"] = spec["reductionFactor"]
if spec.get("leaveOut") is not None: config["leave_out"] = spec["leaveOut"]
if spec.get("scaling") is not None: config["scaling"] = spec["scaling"]
m = max(1, int(d // config["reduction_factor"]))
g = torch.Generator().manual_seed(len(name) + len(kind))
state = {}
for i in range(L):
    if i in config["leave_out"]: continue
    for sub, on in (("attention.output", config["mh_adapter"]), ("output", config["output_adapter"])):
        if not on: continue
        p = f"bert.encoder.layer.{i}.{sub}.adapters.{name}."
        state[p + "adapter_down.0.weight"] = torch.randn(m, d, generator=g) * 0.5
        state[p + "adapter_down.0.bias"] = torch.randn(m, generator=g) * 0.5
        state[p + "adapter_up.weight"] = torch.randn(d, m, generator=g) * 0.5
        state[p + "adapter_up.bias"] = torch.randn(d, generator=g) * 0.5
full = {"model_type": "bert", "hidden_size": d, "model_name": spec.get("model"), "name": name, "model_class": "BertAdapterModel", "config": config, "version": "adapters.1.2.0"}
json.dump(full, open(f"{dir}/adapter_config.json", "w"), indent=2, sort_keys=True)
torch.save(state, f"{dir}/pytorch_adapter.bin")
labels = spec.get("head")
if labels:
    head = {"head_type": "classification", "num_labels": len(labels), "layers": 2, "activation_function": "tanh",
            "label2id": {l: i for i, l in enumerate(labels)}, "use_pooler": False, "bias": True, "dropout_prob": None}
    json.dump({"config": head, "hidden_size": d, "model_name": None, "model_class": "BertAdapterModel", "model_type": "bert", "name": name, "version": "adapters.1.2.0"},
              open(f"{dir}/head_config.json", "w"), indent=2, sort_keys=True)
    torch.save({f"heads.{name}.1.weight": torch.randn(d, d, generator=g) * 0.5, f"heads.{name}.1.bias": torch.randn(d, generator=g) * 0.1,
                f"heads.{name}.4.weight": torch.randn(len(labels), d, generator=g) * 0.5, f"heads.{name}.4.bias": torch.randn(len(labels), generator=g) * 0.1},
               f"{dir}/pytorch_model_head.bin")
`,
    [dir, name, kind, JSON.stringify(opts)],
  ));
  return dir;
}

/**
 * A prefix-tuning folder as AdapterHub's save_adapter writes it: PrefixTuningConfig's `to_dict()`, and the state dict
 * filtered by `.prefix_tunings.<name>.`, which holds the pool under the base model and again under every layer's
 * PrefixTuningLayer (the pool is a submodule of each; torch.save stores the shared tensors once). Reparametrised
 * (wte, control_trans.0, control_trans.2) or flat (control_trans), with random weights; with_head's head files.
 */
async function adapterHubPrefixFolder(dir: string, name: string, opts: { flat?: boolean; prefixLength?: number; bottleneckSize?: number; leaveOut?: number[]; head?: string[]; ejectedButNotFlat?: boolean; model?: string } = {}): Promise<string> {
  fs.mkdirSync(dir, { recursive: true });
  (await runPython(
    `
import json, sys, torch
dir, name, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
d, L = 32, 3
config = dict(architecture="prefix_tuning", encoder_prefix=True, cross_prefix=True, leave_out=spec.get("leaveOut", []), flat=bool(spec.get("flat")),
              prefix_length=spec.get("prefixLength", 30), bottleneck_size=spec.get("bottleneckSize", 512), non_linearity="tanh", dropout=0.0,
              use_gating=False, shared_gating=True, init_weights_seed=None)
P, b, n = config["prefix_length"], config["bottleneck_size"], L - len(config["leave_out"])
g = torch.Generator().manual_seed(len(name))
if config["flat"] or spec.get("ejectedButNotFlat"):
    pool = {"control_trans": torch.randn(P * n * 2 * d, generator=g)}
else:
    pool = {"wte.weight": torch.randn(P, d, generator=g), "control_trans.0.weight": torch.randn(b, d, generator=g) * 0.3,
            "control_trans.0.bias": torch.randn(b, generator=g) * 0.3, "control_trans.2.weight": torch.randn(n * 2 * d, b, generator=g) * 0.5,
            "control_trans.2.bias": torch.randn(n * 2 * d, generator=g) * 0.5}
state = {}
for i in range(L):  # every layer has a PrefixTuningLayer, a left-out one too
    for k, v in pool.items():
        state[f"bert.encoder.layer.{i}.attention.self.prefix_tuning.pool.prefix_tunings.{name}.self_prefix.{k}"] = v
for k, v in pool.items():
    state[f"bert.prefix_tuning.prefix_tunings.{name}.self_prefix.{k}"] = v
full = {"model_type": "bert", "hidden_size": d, "model_name": spec.get("model"), "name": name, "model_class": "BertAdapterModel", "config": config, "version": "adapters.1.2.0"}
json.dump(full, open(f"{dir}/adapter_config.json", "w"), indent=2, sort_keys=True)
torch.save(state, f"{dir}/pytorch_adapter.bin")
labels = spec["head"]
head = {"head_type": "classification", "num_labels": len(labels), "layers": 2, "activation_function": "tanh",
        "label2id": {l: i for i, l in enumerate(labels)}, "use_pooler": False, "bias": True, "dropout_prob": None}
json.dump({"config": head, "hidden_size": d, "model_name": None, "model_class": "BertAdapterModel", "model_type": "bert", "name": name, "version": "adapters.1.2.0"},
          open(f"{dir}/head_config.json", "w"), indent=2, sort_keys=True)
torch.save({f"heads.{name}.1.weight": torch.randn(d, d, generator=g) * 0.5, f"heads.{name}.1.bias": torch.randn(d, generator=g) * 0.1,
            f"heads.{name}.4.weight": torch.randn(len(labels), d, generator=g) * 0.5, f"heads.{name}.4.bias": torch.randn(len(labels), generator=g) * 0.1},
           f"{dir}/pytorch_model_head.bin")
`,
    [dir, name, JSON.stringify({ head: ['neg', 'pos'], ...opts })],
  ));
  return dir;
}

describe('AdapterHub interop (PyTorch as the independent side)', () => {
  it('evaluates adapters AdapterHub saved (pytorch_adapter.bin from torch.save) as AdapterHub computes them', async () => {
    const dir = tempDir();
    const model = tinyModelDir(MODEL);
    // AdapterHub records the hub id as model_name; here, the test's base model folder.
    const seq = (await adapterHubFolder(path.join(dir, 'seq'), 'sst', 'seq_bn', { head: ['neg', 'pos'], reductionFactor: 4.0, leaveOut: [1], model }));
    const dbl = (await adapterHubFolder(path.join(dir, 'double'), 'rte', 'double_seq_bn', { head: ['no', 'yes', 'maybe'], reductionFactor: 5.0, scaling: 0.7, model }));
    for (const folder of [seq, dbl]) {
      expectClose((await toolLogits(dir, folder)), (await adapterHubLogits(model, { adapters: [folder], head: folder })));
    }
  });

  it('refuses a .bin whose pickle names anything but a tensor dict, and runs nothing', async () => {
    const dir = tempDir();
    const model = tinyModelDir(MODEL);
    const folder = (await adapterHubFolder(path.join(dir, 'evil'), 'sst', 'seq_bn', { head: ['neg', 'pos'], model }));
    const marker = path.join(dir, 'ran');
    (await runPython(
      `
import os, sys, torch
class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + sys.argv[2],))
torch.save({"bert.encoder.layer.0.output.adapters.sst.adapter_up.bias": Evil()}, sys.argv[1])
`,
      [path.join(folder, 'pytorch_adapter.bin'), marker],
    ));
    fs.writeFileSync(path.join(dir, 'x.jsonl'), '{"text": "good"}\n');
    const r2 = (await cli(['predict', folder, '--input', path.join(dir, 'x.jsonl'), '--logits'], dir));
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/pytorch_adapter\.bin.*refused to load: the pickle names (posix|os)\.system/);
    expect(fs.existsSync(marker)).toBe(false);
  });

  it('exports Houlsby and Pfeiffer adapters and fusions that AdapterHub loads and computes the same with, .bin equal to .safetensors', async () => {
    const dir = tempDir();
    writeToyTask(dir);
    const model = tinyModelDir(MODEL);
    const houlsby = (await train(dir, writeConfig(dir, 'h.adapter.json', 'alpha', { type: 'houlsby', bottleneck: 5, initStd: 0.3, trainLayerNorm: true, leaveOut: [1], nonLinearity: 'swish' }, model)));
    const pfeiffer = (await train(dir, writeConfig(dir, 'p.adapter.json', 'beta', { type: 'pfeiffer', reductionFactor: 7, initStd: 0.3, trainLayerNorm: false, nonLinearity: 'relu' }, model)));
    const exported: string[] = [];
    for (const [run, name] of [[houlsby, 'houlsby'], [pfeiffer, 'pfeiffer']] as const) {
      const out = path.join(dir, `export-${name}`);
      expect((await cli(['export', run, out], dir)).code).toBe(0);
      exported.push(out);
      expectClose((await toolLogits(dir, out)), (await adapterHubLogits(model, { adapters: [out], head: out })));
    }
    const cfg = JSON.parse(fs.readFileSync(path.join(exported[1], 'adapter_config.json'), 'utf8'));
    expect(cfg.config).not.toHaveProperty('architecture');
    expect(fs.readFileSync(path.join(exported[1], 'adapter_config.json'), 'utf8')).toMatch(/"scaling": 1\.0/);

    // Fusions of a trained adapter with one AdapterHub saved (no head): Pfeiffer's, and Houlsby's (fused at the attention output too).
    const seq = (await adapterHubFolder(path.join(dir, 'ah-seq'), 'gamma', 'seq_bn', { reductionFactor: 8.0 }));
    const dbl = (await adapterHubFolder(path.join(dir, 'ah-double'), 'delta', 'double_seq_bn', { reductionFactor: 8.0, leaveOut: [1] }));
    for (const [fused, name] of [[[pfeiffer, seq], 'pf'], [[dbl, houlsby], 'hf']] as const) {
      const run = (await train(dir, writeConfig(dir, `${name}.adapter.json`, `fused_${name}`, { type: 'fusion', adapters: fused, trainLayerNorm: false }, model)));
      const out = path.join(dir, `export-${name}`);
      expect((await cli(['export', run, out], dir)).code).toBe(0);
      exported.push(out);
      const fcfg = JSON.parse(fs.readFileSync(path.join(out, 'adapter_fusion_config.json'), 'utf8'));
      const folders = fcfg.adapter_lab.fused.map((f: { folder: string }) => path.join(out, f.folder));
      exported.push(...folders);
      expectClose((await toolLogits(dir, out)), (await adapterHubLogits(model, { adapters: folders, fusion: out, head: out })));
      if (name === 'hf') {
        const keys = Object.keys(JSON.parse((await runPython(`import torch, sys, json; print(json.dumps({k: 0 for k in torch.load(sys.argv[1], weights_only=True)}))`, [path.join(out, 'pytorch_model_adapter_fusion.bin')]))));
        expect(keys.some((k) => k.includes('.attention.output.adapter_fusion_layer.'))).toBe(true);
        // The Houlsby run trained its LayerNorms: the fusion computed with them and carries them.
        expect(keys.some((k) => k.includes('LayerNorm'))).toBe(true);
      }
    }

    // Every .bin the tool wrote reads, under torch.load(weights_only=True), to the tensors of its .safetensors.
    const pairs: [string, string][] = [];
    for (const folder of exported) {
      for (const [bin, safe] of [['pytorch_adapter.bin', 'adapter.safetensors'], ['pytorch_model_head.bin', 'model_head.safetensors'], ['pytorch_model_adapter_fusion.bin', 'model_adapter_fusion.safetensors']]) {
        if (fs.existsSync(path.join(folder, safe))) pairs.push([path.join(folder, bin), path.join(folder, safe)]);
      }
    }
    expect(pairs.length).toBeGreaterThanOrEqual(8);
    const checked = (await runPython(
      `
import json, struct, sys, torch
def read_safetensors(path):
    b = open(path, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; header = json.loads(b[8:8 + n]); out = {}
    for k, v in header.items():
        if k == "__metadata__": continue
        s, e = v["data_offsets"]
        out[k] = torch.frombuffer(bytearray(b[8 + n + s:8 + n + e]), dtype=torch.float32).reshape(v["shape"])
    return out
count = 0
for bin_path, safe_path in json.loads(sys.argv[1]):
    a, b = torch.load(bin_path, map_location="cpu", weights_only=True), read_safetensors(safe_path)
    assert sorted(a.keys()) == sorted(b.keys()), (bin_path, sorted(a.keys())[:3], sorted(b.keys())[:3])
    for k in a:
        assert a[k].dtype == torch.float32 and a[k].shape == b[k].shape and torch.equal(a[k], b[k]), (bin_path, k)
        count += 1
print(count)
`,
      [JSON.stringify(pairs)],
    ));
    expect(Number(checked)).toBeGreaterThan(20);
  });

  it('evaluates parallel adapters (ParBnConfig) and prefix-tunings (either form) AdapterHub saved as AdapterHub computes them', async () => {
    const dir = tempDir();
    const model = tinyModelDir(MODEL);
    const folders = [
      (await adapterHubFolder(path.join(dir, 'par'), 'sst', 'par_bn', { head: ['neg', 'pos'], model })),
      (await adapterHubFolder(path.join(dir, 'par-mh'), 'rte', 'par_bn', { head: ['no', 'yes'], mhAdapter: true, scaling: 2.5, reductionFactor: 4.0, leaveOut: [0], model })),
      (await adapterHubPrefixFolder(path.join(dir, 'prefix'), 'cola', { prefixLength: 5, bottleneckSize: 8, leaveOut: [1], model })),
      (await adapterHubPrefixFolder(path.join(dir, 'prefix-flat'), 'mrpc', { prefixLength: 4, flat: true, model })),
    ];
    for (const folder of folders) {
      expectClose((await toolLogits(dir, folder)), (await adapterHubLogits(model, { adapters: [folder], head: folder })));
    }
    // The adapters matter: without them (a bare head on the base model) the logits are far from these.
    const bare = (await adapterHubLogits(model, { adapters: [], head: folders[2] }));
    const withPrefix = (await adapterHubLogits(model, { adapters: [folders[2]], head: folders[2] }));
    expect(Math.max(...bare.flatMap((row, i) => row.map((v, j) => Math.abs(v - withPrefix[i][j]))))).toBeGreaterThan(1e-2);
  });

  it('exports parallel adapters and prefix-tunings (the flat form) that AdapterHub loads and computes the same with', async () => {
    const dir = tempDir();
    writeToyTask(dir);
    const model = tinyModelDir(MODEL);
    // A large learning rate, so that the parallel adapter's up projection (zero at the start) is far from zero after 3 steps.
    const parallel = (await train(dir, writeConfig(dir, 'par.adapter.json', 'alpha', { type: 'parallel', reductionFactor: 4, scaling: 4, leaveOut: [2] }, model), 5e-2));
    const prefix = (await train(dir, writeConfig(dir, 'pre.adapter.json', 'beta', { type: 'prefix-tuning', prefixLength: 6, bottleneckSize: 16, leaveOut: [0] }, model)));
    for (const [run, name] of [[parallel, 'parallel'], [prefix, 'prefix']] as const) {
      const out = path.join(dir, `export-${name}`);
      expect((await cli(['export', run, out], dir)).code).toBe(0);
      expectClose((await toolLogits(dir, out)), (await adapterHubLogits(model, { adapters: [out], head: out })));
      const cfg = JSON.parse(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8'));
      const keys = Object.keys(JSON.parse((await runPython(`import torch, sys, json; print(json.dumps({k: list(v.shape) for k, v in torch.load(sys.argv[1], weights_only=True).items()}))`, [path.join(out, 'pytorch_adapter.bin')]))));
      if (name === 'parallel') {
        expect(cfg.config).toMatchObject({ is_parallel: true, scaling: 4, init_weights: 'mam_adapter', leave_out: [2] });
        expect(cfg.config).not.toHaveProperty('architecture');
        expect(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8')).toMatch(/"scaling": 4\.0/);
        const up = (await runPython(`import torch, sys; print(float(torch.load(sys.argv[1], weights_only=True)["bert.encoder.layer.0.output.adapters.alpha.adapter_up.weight"].abs().max()))`, [path.join(out, 'pytorch_adapter.bin')]));
        expect(Number(up)).toBeGreaterThan(0.05);
      } else {
        expect(cfg.config).toMatchObject({ architecture: 'prefix_tuning', flat: true, prefix_length: 6, bottleneck_size: 16, leave_out: [0], non_linearity: 'tanh' });
        expect(keys).toEqual(['bert.prefix_tuning.prefix_tunings.beta.self_prefix.control_trans']);
      }
    }
  });

  it('an ejected prefix AdapterHub saved with flat: false still in its config loads as the flat prefix it is', async () => {
    const dir = tempDir();
    const model = tinyModelDir(MODEL);
    const folder = (await adapterHubPrefixFolder(path.join(dir, 'ejected'), 'qnli', { prefixLength: 3, ejectedButNotFlat: true, model }));
    const cfg = JSON.parse(fs.readFileSync(path.join(folder, 'adapter_config.json'), 'utf8'));
    expect(cfg.config.flat).toBe(false);
    const logits = (await toolLogits(dir, folder));
    // The same weights declared flat, as AdapterHub computes them.
    cfg.config.flat = true;
    fs.writeFileSync(path.join(folder, 'adapter_config.json'), JSON.stringify(cfg, null, 2));
    expectClose(logits, (await adapterHubLogits(model, { adapters: [folder], head: folder })));
  });

  it('refuses to fuse a Houlsby adapter with a Pfeiffer adapter, as AdapterHub does', async () => {
    const dir = tempDir();
    writeToyTask(dir);
    const model = tinyModelDir(MODEL);
    const seq = (await adapterHubFolder(path.join(dir, 'ah-seq'), 'gamma', 'seq_bn', { reductionFactor: 8.0 }));
    const dbl = (await adapterHubFolder(path.join(dir, 'ah-double'), 'delta', 'double_seq_bn', { reductionFactor: 8.0 }));
    const r = (await cli(['train', writeConfig(dir, 'mixed.adapter.json', 'mixed', { type: 'fusion', adapters: [seq, dbl] }, model), '--max-steps', '1'], dir));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/differ in mh_adapter.*AdapterHub refuses/);
  });
});

/**
 * A LoRA or (IA)³ folder as AdapterHub's save_adapter writes it for LoRAConfig / IA3Config (every key of to_dict(),
 * v1.2.0 defaults, some changed), with random non-trivial lora_A / lora_B and a head.
 */
async function adapterHubLoraFolder(dir: string, name: string, kind: 'lora' | 'ia3', model: string): Promise<string> {
  fs.mkdirSync(dir, { recursive: true });
  (await runPython(
    `
import json, sys, torch
dir, name, kind, model = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
d, f, L = 32, 64, 3
config = dict(architecture="lora", selfattn_lora=True, intermediate_lora=False, output_lora=False, leave_out=[], r=8, alpha=8,
    dropout=0.0, attn_matrices=["q", "v"], composition_mode="add", init_weights="lora", init_weights_seed=None, use_gating=False,
    vera_d=None, vera_b=None, dtype=None)
if kind == "ia3":
    config.update(intermediate_lora=True, r=1, alpha=1, attn_matrices=["k", "v"], composition_mode="scale", init_weights="ia3")
    config.update(output_lora=True, leave_out=[2])
else:
    config.update(r=3, alpha=5, attn_matrices=["q", "k", "v"], intermediate_lora=True, leave_out=[1])
sizes = {"attention.self.query": (d, d), "attention.self.key": (d, d), "attention.self.value": (d, d), "intermediate.dense": (d, f), "output.dense": (f, d)}
on = {"attention.self.query": "q" in config["attn_matrices"], "attention.self.key": "k" in config["attn_matrices"],
      "attention.self.value": "v" in config["attn_matrices"], "intermediate.dense": config["intermediate_lora"], "output.dense": config["output_lora"]}
g = torch.Generator().manual_seed(len(name))
state = {}
for i in range(L):
    if i in config["leave_out"]: continue
    for module, (n_in, n_out) in sizes.items():
        if not on[module]: continue
        p = f"bert.encoder.layer.{i}.{module}.loras.{name}."
        if kind == "lora":
            state[p + "lora_A"] = torch.randn(config["r"], n_in, generator=g) * 0.3
            state[p + "lora_B"] = torch.randn(n_out, config["r"], generator=g) * 0.3
        else:
            state[p + "lora_B"] = 1 + torch.randn(n_out, 1, generator=g) * 0.5
full = {"model_type": "bert", "hidden_size": d, "model_name": model, "name": name, "model_class": "BertAdapterModel", "config": config, "version": "adapters.1.2.0"}
json.dump(full, open(f"{dir}/adapter_config.json", "w"), indent=2, sort_keys=True)
torch.save(state, f"{dir}/pytorch_adapter.bin")
head = {"head_type": "classification", "num_labels": 2, "layers": 2, "activation_function": "tanh", "label2id": {"neg": 0, "pos": 1}, "use_pooler": False, "bias": True, "dropout_prob": None}
json.dump({"config": head, "hidden_size": d, "model_name": None, "model_class": "BertAdapterModel", "model_type": "bert", "name": name, "version": "adapters.1.2.0"},
          open(f"{dir}/head_config.json", "w"), indent=2, sort_keys=True)
torch.save({f"heads.{name}.1.weight": torch.randn(d, d, generator=g) * 0.5, f"heads.{name}.1.bias": torch.randn(d, generator=g) * 0.1,
            f"heads.{name}.4.weight": torch.randn(2, d, generator=g) * 0.5, f"heads.{name}.4.bias": torch.randn(2, generator=g) * 0.1},
           f"{dir}/pytorch_model_head.bin")
`,
    [dir, name, kind, model],
  ));
  return dir;
}

describe('AdapterHub interop: LoRA and (IA)³', () => {
  it('imports LoRA and (IA)³ folders AdapterHub saved, and exports trained ones AdapterHub computes the same with', async () => {
    const dir = tempDir();
    writeToyTask(dir);
    const model = tinyModelDir(MODEL);
    for (const kind of ['lora', 'ia3'] as const) {
      const folder = (await adapterHubLoraFolder(path.join(dir, `ah-${kind}`), `t_${kind}`, kind, model));
      expectClose((await toolLogits(dir, folder)), (await adapterHubLogits(model, { adapters: [folder], head: folder })));
    }
    const methods = {
      lora: { type: 'lora', r: 4, alpha: 12, attnMatrices: ['q', 'k', 'v'], intermediateLora: true, outputLora: true, leaveOut: [0] },
      ia3: { type: 'ia3', outputLora: true },
    };
    for (const [name, method] of Object.entries(methods)) {
      // A high learning rate, so that three steps move B away from zero and the vectors away from ones.
      const config = writeConfig(dir, `${name}.adapter.json`, name, method, model);
      const cfg = JSON.parse(fs.readFileSync(path.join(dir, config), 'utf8'));
      cfg.training.learningRate = 5e-2;
      fs.writeFileSync(path.join(dir, config), JSON.stringify(cfg));
      const run = (await train(dir, config));
      const out = path.join(dir, `export-${name}`);
      expect((await cli(['export', run, out], dir)).code).toBe(0);
      expectClose((await toolLogits(dir, out)), (await adapterHubLogits(model, { adapters: [out], head: out })));
      const saved = JSON.parse(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8')).config;
      expect(saved.architecture).toBe('lora');
    }
  });
});
