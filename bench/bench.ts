/**
 * `npm run bench`: training and evaluation throughput on fixed shapes, against the naive formulation
 * (bench/naive.ts) and against the backend's own matMul throughput on the same shapes, all measured in one run,
 * so the ratios hold on a noisy shared machine. Prints a table and one JSON object.
 *
 *   npm run bench                 # the default shapes (4 layers, d 256, 4 heads, batch 32, 64 tokens)
 *   npm run bench -- --quick      # fewer repetitions
 *   npm run bench -- --workers N  # data parallelism with 1..N workers (default: the machine's cores)
 *   npm run bench -- --workers-only  # that section alone
 *   npm run bench -- --conv-only     # the convolutional section alone (the ResNet training step)
 *   npm run bench -- --image-workers-only  # the workers section's image training step alone
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { BackendName, initBackend } from '../src/engine/tf/backend';
import { WorkerPool } from '../src/engine/parallel/pool';
import { BertConfig } from '../src/engine/model/config';
import { encoderFromArrays, initEncoderArrays, listBuiltinModels, builtinModelsDir, loadEncoder, saveEncoderHf } from '../src/engine/model/checkpoint';
import { methodDefinition } from '../src/engine/methods/registry';
import { TaskHead } from '../src/engine/model/head';
import { AdapterModel } from '../src/engine/model/adapterModel';
import { EncoderInput, ForwardContext } from '../src/engine/model/bert';
import { buildModel as buildModelFromConfig, EVAL_CONTEXT } from '../src/engine/experiment';
import { AdamW } from '../src/engine/train/adamw';
import { trainStep } from '../src/engine/train/trainer';
import { FrozenPrefixCache } from '../src/engine/train/frozenPrefix';
import { predict } from '../src/engine/analysis/evaluate';
import { layerAblation } from '../src/engine/analysis/ablation';
import { predictMultiTask } from '../src/engine/analysis/multiTask';
import { mlmModelFromArrays, pretrainStep } from '../src/engine/pretrain/pretrain';
import { initHeadArrays } from '../src/engine/pretrain/mlm';
import { maskBatch } from '../src/engine/pretrain/data';
import { makeBatches, paddingStats } from '../src/engine/data/batching';
import { Batch, EncodedExample } from '../src/engine/data/types';
import { resolveConfig } from '../src/engine/config/load';
import { ResolvedConfig } from '../src/engine/config/types';
import { loadTokenizer, encodeExamples } from '../src/engine/data/tokenizer';
import { loadTaskData } from '../src/engine/data/load';
import { Rng } from '../src/engine/util/random';
import { naiveAblation, naiveLoss, naiveOutputs, naiveResNetLoss } from './naive';
import { applyBatchNormUpdates, BatchNormUpdate, ResNet, ResNetConfig } from '../src/engine/families/resnet/network';
import { ResNetDomainModel } from '../src/engine/families/resnet/model';
import { VisionMethodType } from '../src/engine/families/resnet/methods';
import { batchedMatMul } from '../src/engine/tf/kernels/simd';
import { loadNetwork, ResNetFamilyModel, resnetFamily, saveNetwork } from '../src/engine/families/resnet/family';
import { startFamilyPool } from '../src/engine/parallel/familyParallel';
import type { ModelFamily, TrainableFamilyModel } from '../src/engine/model/family';

const quick = process.argv.includes('--quick');
const execFileAsync = promisify(execFile);
/** The built-in text model the bench trains on an example task (section 5). */
const BUILTIN_TEXT_MODEL = 'tiny-bert';

const SHAPES = { layers: 4, hidden: 256, heads: 4, intermediate: 1024, batch: 32, tokens: 64, bottleneck: 64, vocab: 8000 };

let peakRss = 0;
let peakTensorBytes = 0;
const sampleMemory = () => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  peakTensorBytes = Math.max(peakTensorBytes, tf.memory().numBytes);
};
let sampler: ReturnType<typeof setInterval> | undefined;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Median wall times in ms of a and b over n runs each, interleaved (a, b, a, b, ...) after one warm-up run of
 * each, so that both arms see the same machine load: the ratio is what this benchmark reports.
 */
function timePair(a: () => void, b: () => void, n: number): [number, number] {
  a();
  b();
  const ta: number[] = [];
  const tb: number[] = [];
  for (let i = 0; i < n; i++) {
    let t0 = performance.now();
    a();
    ta.push(performance.now() - t0);
    t0 = performance.now();
    b();
    tb.push(performance.now() - t0);
    sampleMemory();
  }
  return [median(ta), median(tb)];
}

function config(cfgOverrides: { method: Record<string, unknown>; training?: Record<string, unknown> }): ResolvedConfig {
  return resolveConfig(
    {
      name: 'bench',
      task: { name: 'bench', type: 'classification', train: 'train.jsonl', dev: 'dev.jsonl', textField: 'text', labelField: 'label' },
      model: 'bench-model',
      method: cfgOverrides.method,
      training: { batchSize: SHAPES.batch, maxSeqLength: SHAPES.tokens, dropout: 0.1, seed: 1, ...cfgOverrides.training },
      runsDir: '/tmp/adapter-lab-bench-runs',
    },
    null,
    process.cwd(),
  );
}

function buildModel(bert: BertConfig, method: Record<string, unknown>): { model: AdapterModel; cfg: ResolvedConfig } {
  const cfg = config({ method });
  const encoder = encoderFromArrays(bert, initEncoderArrays(bert, new Rng(1)));
  const rng = new Rng(2);
  const m = methodDefinition(cfg.method.type).create(encoder, { adapterName: 'bench', config: cfg.method, rng });
  return { model: new AdapterModel(encoder, m, new TaskHead('bench', 'classification', bert.hiddenSize, ['a', 'b'], rng)), cfg };
}

function syntheticBatch(vocab: number, B: number, T: number, seed: number): Batch {
  const rng = new Rng(seed);
  const inputIds = new Int32Array(B * T).map((_, i) => (i % T === 0 ? 2 : 5 + rng.int(vocab - 5)));
  return {
    inputIds,
    tokenTypeIds: new Int32Array(B * T),
    attentionMask: new Float32Array(B * T).fill(1),
    labels: new Float32Array(B).map(() => rng.int(2)),
    batchSize: B,
    seqLen: T,
    realTokens: B * T,
    indices: [...Array(B).keys()],
  };
}

function syntheticExamples(vocab: number, n: number, maxLen: number, seed: number): EncodedExample[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, index) => {
    const len = 8 + rng.int(maxLen - 8 + 1);
    return { inputIds: [2, ...Array.from({ length: len - 2 }, () => 5 + rng.int(vocab - 5)), 3], tokenTypeIds: new Array(len).fill(0), label: rng.int(2), index };
  });
}

/**
 * Every matMul of one step, as one function that runs them all (each as often as the step does) on operands of
 * the same shapes: the time a step would take if it were matMuls only. The 2-D ones on the backend's matMul
 * (XNNPACK on wasm); the attention products on the SIMD kernel the step uses for them (the fastest this backend
 * has for those shapes: its own batched matMul is about 4x slower). Timed interleaved with the step itself, so
 * both see the same machine load.
 */
async function matmulLimit(step: () => void): Promise<{ run: () => void; flops: number; dispose: () => void }> {
  const prof = await tf.profile(step);
  const byKey = new Map<string, { a: number[]; b: number[]; simd: boolean; count: number }>();
  for (const k of prof.kernels) {
    if (k.name !== 'BatchMatMul' && k.name !== '_FusedMatMul' && k.name !== 'AdapterLabBatchMatMul') continue;
    const [a, b] = [k.inputShapes[0] as number[], k.inputShapes[1] as number[]];
    const simd = k.name === 'AdapterLabBatchMatMul';
    const key = JSON.stringify([a, b, simd]);
    byKey.set(key, { a, b, simd, count: (byKey.get(key)?.count ?? 0) + 1 });
  }
  let flops = 0;
  const products: { product: () => tf.Tensor; count: number }[] = [];
  const operands: tf.Tensor[] = [];
  for (const { a, b, simd, count } of byKey.values()) {
    const x = tf.randomNormal(a);
    const y = tf.randomNormal(b);
    operands.push(x, y);
    const batch = a.length === 3 ? a[0] : 1;
    // The kernel's forms: A B, A B^T (B stored [m, k]), A^T B (A stored [k, n]); told apart by the shapes.
    const form = !simd || a[2] === b[1] ? {} : a[2] === b[2] ? { transposeB: true } : { transposeA: true };
    const [n, k] = 'transposeA' in form ? [a[2], a[1]] : a.slice(-2);
    const m = 'transposeB' in form ? b[1] : b[b.length - 1];
    flops += 2 * batch * n * k * m * count;
    products.push({ product: simd ? () => batchedMatMul(x as tf.Tensor3D, y as tf.Tensor3D, form) : () => tf.matMul(x as tf.Tensor3D, y as tf.Tensor3D), count });
  }
  // The wasm and cpu backends compute synchronously: each product is done when its call returns.
  const run = () => {
    for (const { product, count } of products) for (let c = 0; c < count; c++) tf.tidy(() => void product());
  };
  return { run, flops, dispose: () => operands.forEach((t) => t.dispose()) };
}

interface Row {
  what: string;
  fast: string;
  naive: string;
  ratio: string;
}

async function main(): Promise<void> {
  const backend = await initBackend((process.env.ADAPTER_LAB_BACKEND as 'wasm') ?? 'auto');
  // Sampled only once a backend is up: tf.memory() would otherwise start one of its own choosing.
  sampler = setInterval(sampleMemory, 50);
  const bert: BertConfig = {
    vocabSize: SHAPES.vocab,
    hiddenSize: SHAPES.hidden,
    numLayers: SHAPES.layers,
    numHeads: SHAPES.heads,
    intermediateSize: SHAPES.intermediate,
    hiddenAct: 'gelu',
    maxPositions: 128,
    typeVocabSize: 2,
    layerNormEps: 1e-12,
    hiddenDropout: 0.1,
    attentionDropout: 0.1,
  };
  const child = process.argv.indexOf(INDEPENDENT_CHILD);
  if (child > 0) {
    clearInterval(sampler);
    return independentSteps(process.argv[child + 1], Number(process.argv[child + 2]), Number(process.argv[child + 3]));
  }
  if (process.argv.includes('--workers-only')) {
    clearInterval(sampler);
    return workersSection(bert, backend.name);
  }
  if (process.argv.includes('--conv-only')) {
    clearInterval(sampler);
    return convSection(backend.name);
  }
  if (process.argv.includes('--image-workers-only')) {
    clearInterval(sampler);
    await imageWorkersSection(workerCounts());
    return;
  }
  const rows: Row[] = [];
  const json: Record<string, unknown> = { backend: backend.name, backendNotes: backend.notes, shapes: SHAPES, quick };
  const tokens = SHAPES.batch * SHAPES.tokens;

  // 1. Training step, houlsby adapters, against the naive formulation and the matMul limit.
  const { model, cfg } = buildModel(bert, { type: 'houlsby', bottleneck: SHAPES.bottleneck });
  const params = model.trainableParams();
  const vars = [...params.values()];
  const nameOfVar = new Map([...params].map(([n, v]) => [v.name, n]));
  const optimizer = new AdamW(params, { weightDecay: 0.01 });
  const batch = syntheticBatch(SHAPES.vocab, SHAPES.batch, SHAPES.tokens, 3);
  let stepCounter = 0;
  const fastStep = () => void trainStep(model, batch, cfg, stepCounter++, vars, nameOfVar, optimizer, () => 1e-4);
  const naiveCtx: ForwardContext = { training: true, hiddenDropout: 0.1, attentionDropout: 0.1, rng: new Rng(5) };
  const naiveStep = () => {
    const { value, grads } = tf.variableGrads(() => naiveLoss(model, batch, batch.labels, naiveCtx), vars);
    value.dataSync();
    value.dispose();
    for (const g of Object.values(grads)) g.dispose();
  };
  const [fastMs, naiveMs] = timePair(fastStep, naiveStep, quick ? 2 : 3);
  const limit = await matmulLimit(fastStep);
  const stepFlops = limit.flops;
  // The step and its matMuls alone, interleaved: the efficiency compares two times taken under the same load.
  const [stepMs, limitMs] = timePair(fastStep, limit.run, quick ? 3 : 5);
  limit.dispose();
  json.trainStep = { fastMs, naiveMs, tokensPerSecond: (tokens * 1000) / fastMs, naiveTokensPerSecond: (tokens * 1000) / naiveMs, stepFlops };
  json.speedupVsNaive = naiveMs / fastMs;
  json.matmul = { limitMs, stepMs, gflops: stepFlops / limitMs / 1e6, stepGflops: stepFlops / stepMs / 1e6 };
  json.matmulEfficiency = limitMs / stepMs;
  rows.push({ what: 'train step (houlsby m=64), ms', fast: fastMs.toFixed(0), naive: naiveMs.toFixed(0), ratio: `${(naiveMs / fastMs).toFixed(2)}x` });
  rows.push({ what: 'train tokens/s', fast: ((tokens * 1000) / fastMs).toFixed(0), naive: ((tokens * 1000) / naiveMs).toFixed(0), ratio: '' });
  rows.push({ what: 'matMul-only time of a step, ms (the limit)', fast: limitMs.toFixed(0), naive: '', ratio: `${(100 * (limitMs / stepMs)).toFixed(0)}% efficiency (step ${stepMs.toFixed(0)} ms, interleaved)` });
  rows.push({ what: 'step GFLOP/s vs backend matMul GFLOP/s', fast: (stepFlops / stepMs / 1e6).toFixed(1), naive: '', ratio: `matMul ${(stepFlops / limitMs / 1e6).toFixed(1)}` });
  const leakBefore = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) fastStep();
  json.leakedTensorsPerStep = (tf.memory().numTensors - leakBefore) / 3;

  // 2. Evaluation throughput: no gradients, batches of 128, against the naive forward at the training batch size.
  const evalExamples = syntheticExamples(SHAPES.vocab, quick ? 128 : 256, SHAPES.tokens, 4).map((e) => ({ ...e, inputIds: [...e.inputIds, ...Array(SHAPES.tokens - e.inputIds.length).fill(5)], tokenTypeIds: new Array(SHAPES.tokens).fill(0) }));
  const evalTokens = evalExamples.length * SHAPES.tokens;
  const [fastEvalMs, naiveEvalMs] = timePair(
    () => void predict(model, evalExamples, 128),
    () => {
      for (const b of makeBatches(evalExamples, SHAPES.batch, { shuffle: false, padId: 0, taskType: 'classification' })) tf.tidy(() => void naiveOutputs(model, b, EVAL_CONTEXT).dataSync());
    },
    quick ? 1 : 3,
  );
  json.eval = { fastTokensPerSecond: (evalTokens * 1000) / fastEvalMs, naiveTokensPerSecond: (evalTokens * 1000) / naiveEvalMs };
  json.evalSpeedup = naiveEvalMs / fastEvalMs;
  rows.push({ what: 'eval tokens/s', fast: ((evalTokens * 1000) / fastEvalMs).toFixed(0), naive: ((evalTokens * 1000) / naiveEvalMs).toFixed(0), ratio: `${(naiveEvalMs / fastEvalMs).toFixed(2)}x` });

  // 3. Layer ablation of the 4-layer model: shared prefixes against every span from scratch.
  const ablationExamples = evalExamples.slice(0, quick ? 64 : 128);
  const [fastAblation, naiveAblationMs] = timePair(
    () => void layerAblation(model, ablationExamples, { metric: 'accuracy', batchSize: 128 }),
    () => void naiveAblation(model, ablationExamples, { metric: 'accuracy', batchSize: 128 }),
    quick ? 1 : 2,
  );
  json.ablation = { fastMs: fastAblation, naiveMs: naiveAblationMs, examples: ablationExamples.length };
  json.ablationSpeedup = naiveAblationMs / fastAblation;
  rows.push({ what: `layer ablation, ${ablationExamples.length} examples, ms`, fast: fastAblation.toFixed(0), naive: naiveAblationMs.toFixed(0), ratio: `${(naiveAblationMs / fastAblation).toFixed(2)}x` });
  model.dispose();
  optimizer.dispose();

  // 4. An epoch with the lowest half of the layers frozen (leaveOut [0, 1]): cached prefix against recomputing.
  const half = buildModel(bert, { type: 'houlsby', bottleneck: SHAPES.bottleneck, leaveOut: [0, 1], trainLayerNorm: false });
  const hParams = half.model.trainableParams();
  const hVars = [...hParams.values()];
  const hNames = new Map([...hParams].map(([n, v]) => [v.name, n]));
  const hOpt = new AdamW(hParams, { weightDecay: 0.01 });
  const epochExamples = syntheticExamples(SHAPES.vocab, quick ? 128 : 256, SHAPES.tokens, 6);
  const devExamples = syntheticExamples(SHAPES.vocab, epochExamples.length / 4, SHAPES.tokens, 8);
  const epochBatches = makeBatches(epochExamples, SHAPES.batch, { shuffle: true, rng: new Rng(7), padId: 0, taskType: 'classification' });
  let s = 0;
  // An epoch as the trainer runs it: its steps, then the dev evaluation.
  const epoch = (cache?: FrozenPrefixCache, devCache?: FrozenPrefixCache) => {
    for (const b of epochBatches) trainStep(half.model, b, half.cfg, s++, hVars, hNames, hOpt, () => 1e-4, cache);
    predict(half.model, devExamples, 128, EVAL_CONTEXT, devCache);
  };
  const cacheBuild0 = performance.now();
  const cache = new FrozenPrefixCache(half.model, half.model.frozenDepth());
  cache.build(epochExamples, 128, 0);
  const devCache = new FrozenPrefixCache(half.model, half.model.frozenDepth());
  devCache.build(devExamples, 128, 0);
  const cacheBuildMs = performance.now() - cacheBuild0;
  const [cachedEpoch, plainEpoch] = timePair(() => epoch(cache, devCache), () => epoch(), quick ? 1 : 2);
  json.cache = { depth: cache.depth, buildMs: cacheBuildMs, cachedEpochMs: cachedEpoch, plainEpochMs: plainEpoch, examples: epochExamples.length };
  json.cacheSpeedup = plainEpoch / cachedEpoch;
  rows.push({ what: `epoch (+dev), layers 0-1 frozen, ${epochExamples.length} ex., ms`, fast: cachedEpoch.toFixed(0), naive: plainEpoch.toFixed(0), ratio: `${(plainEpoch / cachedEpoch).toFixed(2)}x (cache built once in ${cacheBuildMs.toFixed(0)} ms)` });
  half.model.dispose();
  hOpt.dispose();

  // 5. Padding: length buckets against plain batches, and the built-in model on an example task when it exists.
  // The built-in text model (models/ also holds image networks, which have no tokenizer).
  const builtin = listBuiltinModels().find((name) => name === BUILTIN_TEXT_MODEL);
  const spamTrain = path.resolve(__dirname, '../examples/data/spam/train.jsonl');
  if (builtin && fs.existsSync(spamTrain)) {
    const modelDir = path.join(builtinModelsDir(), builtin);
    const tokenizer = await loadTokenizer(modelDir);
    const data = loadTaskData({ name: 'spam', type: 'classification', train: spamTrain, dev: spamTrain, textField: 'text', labelField: 'label' }, process.cwd());
    const encoded = await encodeExamples(tokenizer, data.train.slice(0, quick ? 256 : 512), 128);
    const bucketed = paddingStats(makeBatches(encoded, 32, { shuffle: true, rng: new Rng(1), padId: tokenizer.padId, taskType: 'classification' }));
    const plain = paddingStats(makeBatches(encoded, 32, { shuffle: true, rng: new Rng(1), padId: tokenizer.padId, taskType: 'classification', bucketByLength: false }));
    json.padding = { realTokens: bucketed.realTokens, paddedTokensBucketed: bucketed.paddedTokens, paddedTokensPlain: plain.paddedTokens };
    rows.push({ what: 'spam: padded tokens per real token', fast: (bucketed.paddedTokens / bucketed.realTokens).toFixed(2), naive: (plain.paddedTokens / plain.realTokens).toFixed(2), ratio: `buckets vs none` });

    const { encoder } = loadEncoder(modelDir);
    const cfgB = config({ method: { type: 'houlsby', bottleneck: 64 } });
    const rng = new Rng(3);
    const m = methodDefinition('houlsby').create(encoder, { adapterName: 'spam', config: cfgB.method, rng });
    const bm = new AdapterModel(encoder, m, new TaskHead('spam', 'classification', encoder.config.hiddenSize, ['ham', 'spam'], rng));
    const bp = bm.trainableParams();
    const bOpt = new AdamW(bp, { weightDecay: 0.01 });
    const bBatches = makeBatches(encoded, 32, { shuffle: true, rng: new Rng(1), padId: tokenizer.padId, taskType: 'classification' }).slice(0, quick ? 3 : 6);
    const t0 = performance.now();
    let realTokens = 0;
    bBatches.forEach((b, i) => {
      trainStep(bm, b, cfgB, i, [...bp.values()], new Map([...bp].map(([n, v]) => [v.name, n])), bOpt, () => 1e-4);
      realTokens += b.realTokens;
    });
    const ms = performance.now() - t0;
    json.builtin = { model: `builtin:${builtin}`, task: 'spam', steps: bBatches.length, msPerStep: ms / bBatches.length, realTokensPerSecond: (realTokens * 1000) / ms };
    rows.push({ what: `builtin:${builtin} houlsby on spam, real tokens/s`, fast: ((realTokens * 1000) / ms).toFixed(0), naive: '', ratio: `${(ms / bBatches.length).toFixed(0)} ms/step` });
    bm.dispose();
    bOpt.dispose();
  } else {
    json.builtin = null;
    rows.push({ what: `builtin:${BUILTIN_TEXT_MODEL} on an example task`, fast: 'n/a', naive: '', ratio: `no models/${BUILTIN_TEXT_MODEL} or examples/data/spam` });
  }

  sampleMemory();
  clearInterval(sampler);
  json.peakMemory = { rssMB: peakRss / 2 ** 20, tensorMB: peakTensorBytes / 2 ** 20 };
  rows.push({ what: 'peak memory, MB (RSS / live tensors)', fast: (peakRss / 2 ** 20).toFixed(0), naive: (peakTensorBytes / 2 ** 20).toFixed(0), ratio: '' });

  const w = [46, 10, 10, 40];
  console.log(`Adapter Lab benchmark: backend ${backend.name}; ${SHAPES.layers} layers, d ${SHAPES.hidden}, ${SHAPES.heads} heads, batch ${SHAPES.batch} x ${SHAPES.tokens} tokens, houlsby bottleneck ${SHAPES.bottleneck}\n`);
  console.log(['', 'fast', 'naive', 'ratio'].map((h, i) => h.padEnd(w[i])).join(' '));
  for (const r of rows) console.log([r.what, r.fast, r.naive, r.ratio].map((c, i) => c.padEnd(w[i])).join(' '));
  console.log('\n' + JSON.stringify(json));
  multiTaskSection(bert);
  convSection(backend.name);
  await workersSection(bert, backend.name);
}

/**
 * The convolutional training step: the ResNet for small images (src/engine/families/resnet) at Rebuffi's layout
 * scaled down (widths 16, 32, 64; batch 32 of 28 x 28 grey images), forward and backward with BatchNorm in
 * training mode and the running statistics updated, with the engine's convolutions and BatchNorm
 * (src/engine/tf/conv.ts) against the network's first formulation (bench/naive.ts: on wasm nine shifted slices,
 * a concatenation and a matMul per 3 x 3 convolution, tfjs's BatchNorm ops), timed interleaved.
 */
function convSection(backendName: BackendName): void {
  const loadBefore = os.loadavg();
  const B = 32;
  const layouts: { blocksPerStage: number; method: VisionMethodType; reps: number }[] = [
    { blocksPerStage: 1, method: 'full', reps: quick ? 2 : 5 },
    { blocksPerStage: 4, method: 'full', reps: quick ? 1 : 3 },
    { blocksPerStage: 4, method: 'residual-series', reps: quick ? 1 : 3 },
  ];
  const steps: Record<string, unknown>[] = [];
  console.log(`\nconvolutional training step (ResNet, widths 16/32/64, batch ${B} x 28 x 28 grey), backend ${backendName}, load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')}; median ms`);
  console.log(['network, method', 'fast', 'naive', 'ratio'].map((h, i) => h.padEnd([36, 10, 10, 8][i])).join(' '));
  for (const { blocksPerStage, method, reps } of layouts) {
    const config: ResNetConfig = { modelType: 'resnet', inputChannels: 1, imageSize: 28, widths: [16, 32, 64], blocksPerStage };
    const model = ResNetDomainModel.create(ResNet.init(config, new Rng(1)), method, 'bench', Array.from({ length: 10 }, (_, i) => `c${i}`), 2);
    const images = tf.randomNormal([B, 28, 28, 1], 0, 1, 'float32', 3) as tf.Tensor4D;
    const labels = Int32Array.from({ length: B }, (_, i) => i % 10);
    const vars = [...model.trainableParams().values()];
    const fastStep = () => {
      for (const g of model.lossAndGradients(images, labels).grads.values()) g.dispose();
    };
    const naiveStep = () => {
      const updates: BatchNormUpdate[] = [];
      const { value, grads } = tf.variableGrads(() => naiveResNetLoss(model, images, labels, { training: true, batchNormUpdates: updates }), vars);
      value.dataSync();
      value.dispose();
      applyBatchNormUpdates(updates);
      for (const g of Object.values(grads)) g.dispose();
    };
    const [fastMs, naiveMs] = timePair(fastStep, naiveStep, reps);
    const name = `ResNet-${2 + 6 * blocksPerStage}, ${method}`;
    steps.push({ network: name, blocksPerStage, method, fastMs, naiveMs, speedup: naiveMs / fastMs, imagesPerSecond: (B * 1000) / fastMs });
    console.log([name, fastMs.toFixed(0), naiveMs.toFixed(0), `${(naiveMs / fastMs).toFixed(2)}x`].map((c, i) => c.padEnd([36, 10, 10, 8][i])).join(' '));
    images.dispose();
    model.dispose();
  }
  const loadAfter = os.loadavg();
  console.log(`load average at the end ${loadAfter.map((l) => l.toFixed(2)).join(' ')}`);
  const resnet26 = steps.find((st) => st.blocksPerStage === 4 && st.method === 'full')!;
  console.log(JSON.stringify({ conv: { backend: backendName, batch: B, imageSize: 28, widths: [16, 32, 64], quick, loadAverage: { start: loadBefore, end: loadAfter }, steps, convSpeedupVsNaive: resnet26.speedup } }));
}

/**
 * Data parallelism (src/engine/parallel): the training step (houlsby m = 64), evaluation, the layer ablation and
 * the pretraining step (every weight of the encoder and MLM head, 15% of the tokens masked) with 1..N workers (N: the machine's cores, or --workers N), timed interleaved (1, 2, .., N, 1, 2, ..) on one
 * pool so every count sees the same machine load, and the scaling against one worker. Peak memory: the process's
 * RSS (every thread's memory) after a pool of k workers has started and run a step, one pool at a time.
 */
/** 1..N workers: N the machine's cores, or --workers N. */
function workerCounts(): number[] {
  const flag = process.argv.indexOf('--workers');
  const most = flag > 0 ? Number(process.argv[flag + 1]) : os.availableParallelism();
  return [...Array(most).keys()].map((i) => i + 1);
}

/**
 * Where a k-worker step's time goes: the shards computed side by side (the longest of them, against one worker's
 * step / k, the ideal if each thread ran as fast as one alone), then the exchange of gradients and weights and the
 * update.
 */
function splitLine(what: string, k: number, total: number, shard: number, oneWorker: number): string {
  const ideal = oneWorker / k;
  return `${what}, ${k} workers: ${total.toFixed(0)} ms = ${shard.toFixed(0)} ms computing the shards side by side (the longest; one worker's step / ${k} is ${ideal.toFixed(0)} ms: the threads ran at ${((ideal / shard) * 100).toFixed(0)}% of one thread alone) + ${(total - shard).toFixed(0)} ms exchange and update`;
}

/**
 * The image training step over 1..N workers (src/engine/parallel/familyParallel.ts): ResNet-8 (widths 16/32/64),
 * residual-series adapters (their BatchNorms and the domain's synchronised over the shards), a batch of 32
 * 28 x 28 grey images, the optimizer step included; timed interleaved on one pool, as the text steps are.
 */
async function imageWorkersSection(counts: number[]): Promise<Record<string, unknown>> {
  const most = counts[counts.length - 1];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adapter-lab-bench-image-'));
  const networkDir = path.join(dir, 'network');
  const network = ResNet.init({ modelType: 'resnet', inputChannels: 1, imageSize: 28, widths: [16, 32, 64], blocksPerStage: 1 }, new Rng(1));
  saveNetwork(networkDir, network);
  network.dispose();
  const labels = Array.from({ length: 10 }, (_, i) => `c${i}`);
  const model = new ResNetFamilyModel(ResNetDomainModel.create(loadNetwork(networkDir), 'residual-series', 'bench', labels, 2), networkDir, { mean: [0.5], std: [0.25] }, { cropPadding: 2, flip: false });
  const rng = new Rng(3);
  const examples = Array.from({ length: 32 }, (_, i) => ({ pixels: Float32Array.from({ length: 784 }, () => rng.next()), label: i % 10, source: `synthetic#${i}` }));
  const [batch] = model.batches(examples, 32, { training: true, rng: new Rng(4) });
  const optimizer = new AdamW(model.trainableParams(), { weightDecay: 0.01 });
  const pool = await startFamilyPool(resnetFamily as unknown as ModelFamily, model as unknown as TrainableFamilyModel<unknown>, most);
  let step = 0;
  const times: Record<number, number[]> = {};
  const longestShard: Record<number, number[]> = {};
  const reps = quick ? 3 : 5;
  for (let r = 0; r <= reps; r++) {
    for (const k of counts) {
      if (pool) pool.using = k;
      const t0 = performance.now();
      const { grads } = pool && k > 1 ? await pool.familyStep(model as unknown as TrainableFamilyModel<unknown>, batch, 1, step++) : model.lossAndGradients(batch);
      optimizer.apply(grads, () => 1e-3);
      for (const g of grads.values()) g.dispose();
      pool?.publishWeights();
      // Round 0 warms up every count and is not kept.
      if (r > 0) (times[k] ??= []).push(performance.now() - t0);
      if (r > 0 && pool && k > 1) (longestShard[k] ??= []).push(Math.max(...pool.lastShardMs));
    }
  }
  await pool?.close();
  optimizer.dispose();
  model.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(`
image training step over workers (ResNet-8, residual-series, batch 32 x 28 x 28 grey), load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; median ms (scaling vs 1 worker)`);
  for (const k of counts) console.log([String(k), `${median(times[k]).toFixed(0)} (${(median(times[1]) / median(times[k])).toFixed(2)}x)`].map((c, i) => c.padEnd(i ? 18 : 8)).join(' '));
  for (const k of counts.slice(1)) console.log(splitLine('image step', k, median(times[k]), median(longestShard[k]), median(times[1])));
  const result = Object.fromEntries(counts.map((k) => [k, { ms: median(times[k]), scaling: median(times[1]) / median(times[k]), ...(longestShard[k] ? { longestShardMs: median(longestShard[k]) } : {}) }]));
  console.log(JSON.stringify({ imageWorkers: result }));
  return result;
}

/** The workers section's training config: Houlsby m = 64 on the benchmark's random encoder saved in `dir`. */
function workersConfig(dir: string): ResolvedConfig {
  return resolveConfig(
    {
      name: 'bench',
      task: { name: 'bench', type: 'classification', train: 'train.jsonl', dev: 'dev.jsonl', textField: 'text', labelField: 'label' },
      model: dir,
      method: { type: 'houlsby', bottleneck: SHAPES.bottleneck },
      training: { batchSize: SHAPES.batch, maxSeqLength: SHAPES.tokens, dropout: 0.1, seed: 1 },
      runsDir: path.join(dir, 'runs'),
    },
    null,
    dir,
  );
}

/** The workers section's model over the encoder saved in `dir`, with what a training step of it needs. */
function workersTrainer(dir: string) {
  const cfg = workersConfig(dir);
  const model = buildModelFromConfig(cfg, dir, ['a', 'b']);
  const params = model.trainableParams();
  return { cfg, model, params, vars: [...params.values()], nameOfVar: new Map([...params].map(([n, v]) => [v.name, n])), optimizer: new AdamW(params, { weightDecay: 0.01 }) };
}

const INDEPENDENT_CHILD = '--independent-steps';
const INDEPENDENT_STEPS = 6;

/**
 * A child process of independentCeiling: training steps on `rows` rows of the workers section's model, from
 * `startAt` (epoch ms, so that the children start together); prints the median step time as JSON.
 */
async function independentSteps(dir: string, rows: number, startAt: number): Promise<void> {
  const { cfg, model, vars, nameOfVar, optimizer } = workersTrainer(dir);
  const batch = syntheticBatch(SHAPES.vocab, rows, SHAPES.tokens, 3);
  const step = (i: number) => trainStep(model, batch, cfg, i, vars, nameOfVar, optimizer, () => 1e-4);
  step(0);
  while (Date.now() < startAt) await new Promise((resolve) => setTimeout(resolve, 5));
  const times: number[] = [];
  for (let i = 1; i <= INDEPENDENT_STEPS; i++) {
    const t0 = performance.now();
    step(i);
    times.push(performance.now() - t0);
  }
  console.log(JSON.stringify({ independentMs: median(times) }));
}

/**
 * What the machine itself allows k workers: k processes that never meet, each running training steps on
 * batch / k rows, against one such process alone (interleaved: alone, together, alone, together). Their
 * slowdown together is the machine's (shared caches and memory bandwidth, the hypervisor), which nothing in the
 * pool (exchange, scheduling) can remove: k x (alone / together) is the most any synchronous data parallelism
 * of this step can scale here.
 */
async function independentCeiling(dir: string, k: number): Promise<{ aloneMs: number; togetherMs: number; efficiency: number }> {
  const rows = Math.ceil(SHAPES.batch / k);
  const run = (n: number) => {
    const startAt = Date.now() + 15_000; // after every child has built its model and taken a first step
    return Promise.all(
      Array.from({ length: n }, () => {
        const out = execFileAsync(process.execPath, [...process.execArgv, process.argv[1], INDEPENDENT_CHILD, dir, String(rows), String(startAt)], { env: { ...process.env, ADAPTER_LAB_BACKEND: 'wasm' }, maxBuffer: 1 << 24 });
        return out.then(({ stdout }) => {
          const line = stdout.split('\n').find((l) => l.startsWith('{"independentMs"'));
          if (!line) throw new Error(`the independent-steps child printed no result: ${stdout.slice(-500)}`);
          return (JSON.parse(line) as { independentMs: number }).independentMs;
        });
      }),
    );
  };
  const alone: number[] = [];
  const together: number[] = [];
  for (let r = 0; r < 2; r++) {
    alone.push(...(await run(1)));
    together.push(Math.max(...(await run(k))));
  }
  const aloneMs = median(alone);
  const togetherMs = median(together);
  return { aloneMs, togetherMs, efficiency: aloneMs / togetherMs };
}

async function workersSection(bert: BertConfig, backendName: BackendName): Promise<void> {
  const counts = workerCounts();
  const most = counts[counts.length - 1];
  // Workers build their model from a folder: the benchmark's random encoder, written once.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adapter-lab-bench-'));
  saveEncoderHf(dir, bert, initEncoderArrays(bert, new Rng(1)));
  const { cfg, model, params, vars, nameOfVar, optimizer } = workersTrainer(dir);
  const batch = syntheticBatch(SHAPES.vocab, SHAPES.batch, SHAPES.tokens, 3);
  const evalExamples = syntheticExamples(SHAPES.vocab, quick ? 128 : 256, SHAPES.tokens, 4);
  const ablationExamples = evalExamples.slice(0, quick ? 64 : 128);
  const start = (workers: number) => WorkerPool.start({ workers, backend: backendName, source: { kind: 'config', cfg, labels: ['a', 'b'] }, params });
  let step = 0;
  // Pretraining (src/engine/pretrain): every weight of the encoder and the MLM head trained, on a batch of the
  // same shape masked as `pretrain` masks it (15% of the tokens); its workers read every weight each step.
  const mlmRng = new Rng(5);
  const mlmArrays = initEncoderArrays(bert, mlmRng);
  for (const [n, a] of initHeadArrays(bert.hiddenSize, bert.vocabSize, mlmRng)) mlmArrays.set(n, a);
  const mlm = mlmModelFromArrays(bert, mlmArrays, true);
  const mlmParams = mlm.allParams();
  const mlmNameOfVar = new Map([...mlmParams].map(([n, v]) => [v.name, n]));
  const mlmOptimizer = new AdamW(mlmParams, { weightDecay: 0.01 });
  const specialIds = { pad: 0, unk: 1, cls: 2, sep: 3, mask: 4 };
  const seqRng = new Rng(6);
  const mlmSequences = Array.from({ length: SHAPES.batch }, () => Int32Array.from({ length: SHAPES.tokens }, (_, i) => (i === 0 ? specialIds.cls : i === SHAPES.tokens - 1 ? specialIds.sep : 5 + seqRng.int(bert.vocabSize - 5))));
  const mlmBatch = maskBatch(mlmSequences, { maskProbability: 0.15, vocabSize: bert.vocabSize, ids: specialIds, specialIds: new Set(Object.values(specialIds)) }, new Rng(7));
  const startMlm = (workers: number) => WorkerPool.start({ workers, backend: backendName, source: { kind: 'mlm', bert }, params: mlmParams });
  let mlmStep = 0;
  const pretrainStepOn = (mlmPool: WorkerPool | null) =>
    pretrainStep(mlm, mlmBatch, { seed: 1, step: mlmStep++, dropout: bert.hiddenDropout }, { vars: [...mlmParams.values()], nameOfVar: mlmNameOfVar, optimizer: mlmOptimizer, learningRate: 1e-4, maxGradNorm: 1, pool: mlmPool });

  // Memory, one pool at a time.
  const memory: Record<number, number> = {};
  for (const k of counts) {
    const pool = k > 1 ? await start(k) : null;
    if (pool) await pool.trainStep(model, batch, cfg, step++, vars, nameOfVar, optimizer, () => 1e-4);
    else trainStep(model, batch, cfg, step++, vars, nameOfVar, optimizer, () => 1e-4);
    memory[k] = process.memoryUsage().rss / 2 ** 20;
    await pool?.close();
  }

  const pool = most > 1 ? await start(most) : null;
  const mlmPool = most > 1 ? await startMlm(most) : null;
  const times: Record<string, Record<number, number[]>> = { train: {}, eval: {}, ablation: {}, pretrain: {} };
  // For the steps over k > 1 workers: the longest shard's computation in each step (the rest is the exchange and
  // the update), so the scaling splits into the machine's part and the pool's.
  const longestShard: Record<string, Record<number, number[]>> = { train: {}, pretrain: {} };
  const timed = async (what: string, k: number, fn: () => unknown, poolOf?: WorkerPool | null) => {
    const t0 = performance.now();
    await fn();
    (times[what][k] ??= []).push(performance.now() - t0);
    if (poolOf && k > 1) (longestShard[what][k] ??= []).push(Math.max(...poolOf.lastShardMs));
  };
  const reps = quick ? 3 : 5;
  for (let r = 0; r <= reps; r++) {
    for (const k of counts) {
      if (pool) pool.using = k;
      if (mlmPool) mlmPool.using = k;
      const withPool = pool && k > 1 ? pool : null;
      // Round 0 warms up every count and is not kept.
      await timed('train', k, () => (withPool ? withPool.trainStep(model, batch, cfg, step++, vars, nameOfVar, optimizer, () => 1e-4) : trainStep(model, batch, cfg, step++, vars, nameOfVar, optimizer, () => 1e-4)), withPool);
      await timed('eval', k, () => (withPool ? withPool.predict(model, evalExamples, 32) : predict(model, evalExamples, 32)));
      if (r % 2 === 0) await timed('ablation', k, () => (withPool ? withPool.ablate(model, ablationExamples, { metric: 'accuracy', batchSize: 32 }) : layerAblation(model, ablationExamples, { metric: 'accuracy', batchSize: 32 })));
      await timed('pretrain', k, () => pretrainStepOn(mlmPool && k > 1 ? mlmPool : null), mlmPool);
    }
    if (r === 0) for (const what of Object.keys(times)) times[what] = {};
    if (r === 0) for (const what of Object.keys(longestShard)) longestShard[what] = {};
  }
  await pool?.close();
  await mlmPool?.close();
  model.dispose();
  optimizer.dispose();
  mlm.dispose();
  mlmOptimizer.dispose();

  const result: Record<string, unknown> = { cores: os.availableParallelism(), loadAverage: os.loadavg(), memoryMB: memory };
  console.log(`\nworkers (data parallelism), ${os.availableParallelism()} cores, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; median ms (scaling vs 1 worker)`);
  console.log(['workers', 'train step', 'eval ' + evalExamples.length + ' ex.', 'ablation ' + ablationExamples.length + ' ex.', 'pretraining step', 'RSS MB'].map((h, i) => h.padEnd(i ? 18 : 8)).join(' '));
  for (const k of counts) {
    const cell = (what: string) => {
      const ms = median(times[what][k]);
      return `${ms.toFixed(0)} (${(median(times[what][1]) / ms).toFixed(2)}x)`;
    };
    console.log([String(k), cell('train'), cell('eval'), cell('ablation'), cell('pretrain'), memory[k].toFixed(0)].map((c, i) => c.padEnd(i ? 18 : 8)).join(' '));
  }
  for (const what of Object.keys(times)) {
    result[what] = Object.fromEntries(counts.map((k) => [k, { ms: median(times[what][k]), scaling: median(times[what][1]) / median(times[what][k]), ...(longestShard[what]?.[k] ? { longestShardMs: median(longestShard[what][k]) } : {}) }]));
  }
  // Where the k-worker step's time goes (splitLine).
  for (const what of Object.keys(longestShard)) {
    for (const k of counts.slice(1)) {
      console.log(splitLine(`${what} step`, k, median(times[what][k]), median(longestShard[what][k]), median(times[what][1])));
    }
  }
  if (most > 1) {
    const ceiling = await independentCeiling(dir, most);
    result.independentCeiling = { ...ceiling, scaling: most * ceiling.efficiency };
    console.log(`the machine's ceiling: ${most} processes that never meet, each stepping ${Math.ceil(SHAPES.batch / most)} rows, took ${ceiling.togetherMs.toFixed(0)} ms a step (the slowest) against ${ceiling.aloneMs.toFixed(0)} ms for one alone: they ran at ${(ceiling.efficiency * 100).toFixed(0)}%, so ${most} workers can scale the training step at most ${(most * ceiling.efficiency).toFixed(2)}x here`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  result.imageTrain = await imageWorkersSection(counts);
  console.log(JSON.stringify({ workers: result }));
}

/**
 * Multi-task inference (AdapterDrop's parallel setting, src/engine/analysis/multiTask.ts): three tasks' pfeiffer
 * adapters, left out of the lowest two layers, on the same inputs in one pass that computes those two layers once,
 * against three separate predictions. Prints the speed-up and one JSON object.
 */
function multiTaskSection(bert: BertConfig): void {
  const encoder = encoderFromArrays(bert, initEncoderArrays(bert, new Rng(1)));
  const cfg = config({ method: { type: 'pfeiffer', bottleneck: SHAPES.bottleneck, leaveOut: [0, 1], trainLayerNorm: false } });
  const rng = new Rng(8);
  const models = ['a', 'b', 'c'].map(
    (task) => new AdapterModel(encoder, methodDefinition('pfeiffer').create(encoder, { adapterName: task, config: cfg.method, rng }), new TaskHead(task, 'classification', bert.hiddenSize, ['x', 'y'], rng)),
  );
  const examples = syntheticExamples(SHAPES.vocab, quick ? 128 : 256, SHAPES.tokens, 9);
  const tokens = examples.reduce((n, e) => n + e.inputIds.length, 0);
  const [sharedMs, separateMs] = timePair(
    () => void predictMultiTask(models, examples, 128),
    () => models.forEach((m) => void predict(m, examples, 128)),
    quick ? 1 : 3,
  );
  const shared = predictMultiTask(models, examples, 128);
  const same = JSON.stringify(shared.results.map((r) => r.outputs)) === JSON.stringify(models.map((m) => predict(m, examples, 128).outputs));
  const sharedLayers = shared.groups[0].depth;
  console.log(
    `\nmulti-task inference, ${models.length} tasks sharing layers 0-${sharedLayers - 1} (their adapters in layers ${sharedLayers}-${bert.numLayers - 1}), ${examples.length} examples: ` +
      `one shared pass ${sharedMs.toFixed(0)} ms, separate passes ${separateMs.toFixed(0)} ms, speed-up ${(separateMs / sharedMs).toFixed(2)}x` +
      ` (${((models.length * tokens * 1000) / sharedMs).toFixed(0)} vs ${((models.length * tokens * 1000) / separateMs).toFixed(0)} task-tokens/s); predictions equal: ${same}`,
  );
  console.log(JSON.stringify({ multiTask: { tasks: models.length, sharedLayers, examples: examples.length, sharedMs, separateMs, speedup: separateMs / sharedMs, samePredictions: same } }));
  for (const m of models) for (const v of [...m.method.params.values(), ...m.head.params.values()]) v.dispose();
  encoder.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
