import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/engine/tf/backend';
import { loadEncoder, readConfig } from '../../../src/engine/model/checkpoint';
import { readSafetensors } from '../../../src/engine/model/safetensors';
import { loadTokenizer } from '../../../src/engine/data/tokenizer';
import { loadPretrainConfig, PretrainConfig } from '../../../src/engine/pretrain/config';
import { packSequences, readTextLines } from '../../../src/engine/pretrain/data';
import { gatherRows, tiedDecoder } from '../../../src/engine/pretrain/mlm';
import { heldoutBatches, heldoutMetrics, loadMlmModel, runPretrain, shortenSome, specialIdsOf } from '../../../src/engine/pretrain/pretrain';
import { Rng } from '../../../src/engine/util/random';
import { readVocab, saveTokenizerFiles, trainWordPieceVocab } from '../../../src/engine/pretrain/vocab';
import { UserInputError } from '../../../src/engine/errors';
import { tempDir, tinyPretrainConfig, writeTinyCorpus } from './helpers';

/** Writes a config into `dir` (where the tiny corpus is) and loads it. */
function configIn(dir: string, name: string, overrides: Record<string, unknown> = {}, training: Record<string, unknown> = {}): PretrainConfig {
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(tinyPretrainConfig({ name, output: name, ...overrides }, training), null, 2));
  return loadPretrainConfig(file);
}

/** Held-out MLM loss and accuracy of a saved model folder, through loadEncoder/loadTokenizer only. */
async function heldoutOfSavedModel(modelDir: string, cfg: PretrainConfig) {
  const tokenizer = await loadTokenizer(modelDir);
  const vocab = readVocab(modelDir);
  // The tokenizer adds [CLS] ... [SEP]; the bare token ids are what the packing concatenates.
  const encoded = await tokenizer.encode(readTextLines([cfg.heldout]).map((text) => ({ text })), 100_000);
  const stream = Int32Array.from(encoded.flatMap((e) => e.inputIds.slice(1, -1)));
  const ids = specialIdsOf(vocab);
  const seqs = packSequences(stream, cfg.training.maxSeqLength, ids, true).slice(0, cfg.training.heldoutSequences);
  const masking = { maskProbability: cfg.training.maskProbability, vocabSize: vocab.length, ids, specialIds: new Set([0, 1, 2, 3, 4]) };
  const model = loadMlmModel(modelDir);
  try {
    return heldoutMetrics(model, heldoutBatches(seqs, masking, cfg.training.seed));
  } finally {
    model.dispose();
  }
}

describe('pretraining', () => {
  const dir = tempDir();
  writeTinyCorpus(dir);
  let vocabFile: string;

  beforeAll(async () => {
    await initBackend('wasm');
    // One learnt vocabulary shared by the runs below: which pieces are learnt is not bit-for-bit repeatable when
    // equally frequent pairs straddle the cut (ties are broken in hash-map order), and the resume test compares two
    // runs exactly.
    const vocab = trainWordPieceVocab([path.join(dir, 'train.txt')], 120);
    saveTokenizerFiles(path.join(dir, 'vocab'), vocab, 32);
    vocabFile = path.join(dir, 'vocab', 'vocab.txt');
  });

  it('learns a WordPiece vocabulary with the special tokens first, which loadTokenizer loads', async () => {
    const vocab = readVocab(path.join(dir, 'vocab'));
    expect(vocab.slice(0, 5)).toEqual(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
    expect(vocab.length).toBe(120);
    expect(new Set(vocab).size).toBe(vocab.length);
    expect(vocab.some((t) => t.startsWith('##'))).toBe(true);
    // Ids in a fixed order (the trainer's own order changes from one training to the next).
    const learnt = vocab.slice(5);
    expect(learnt).toEqual([...learnt].sort());
    const tok = await loadTokenizer(path.join(dir, 'vocab'));
    expect([tok.padId, tok.unkId, tok.clsId, tok.sepId, tok.maskId]).toEqual([0, 1, 2, 3, 4]);
    const [enc] = await tok.encode([{ text: 'The WHALE sees [MASK] captain.' }], 32);
    expect(enc.inputIds[0]).toBe(2);
    expect(enc.inputIds[enc.inputIds.length - 1]).toBe(3);
    expect(enc.inputIds).toContain(4);
    expect(enc.inputIds).not.toContain(1); // every word of the corpus's alphabet can be spelt
    // The same vocabulary through vocab.txt alone (no tokenizer.json) splits text the same way.
    const alone = tempDir();
    fs.copyFileSync(vocabFile, path.join(alone, 'vocab.txt'));
    fs.copyFileSync(path.join(dir, 'vocab', 'tokenizer_config.json'), path.join(alone, 'tokenizer_config.json'));
    const [enc2] = await (await loadTokenizer(alone)).encode([{ text: 'The WHALE sees [MASK] captain.' }], 32);
    expect(enc2.inputIds).toEqual(enc.inputIds);
  });

  it('learns the same vocabulary, with the same ids, from the same text twice', () => {
    // Ten two-letter words, each as often as no other (so no ties decide what is learnt): the trainer numbers the
    // twenty letters in hash-map order, which changed the ids from one training to the next before they were sorted.
    const text = path.join(tempDir(), 'words.txt');
    const letters = 'abcdefghijklmnopqrst';
    const words = Array.from({ length: 10 }, (_, i) => Array(i + 1).fill(letters[2 * i] + letters[2 * i + 1])).flat();
    fs.writeFileSync(text, words.join(' ') + '\n');
    const first = trainWordPieceVocab([text], 100);
    expect(first).toContain('st');
    for (let i = 0; i < 4; i++) expect(trainWordPieceVocab([text], 100)).toEqual(first);
  });

  it('computes the MLM head gradients (gathered rows, tied decoder) as tfjs does', () => {
    const x = tf.variable(tf.randomNormal([6, 4], 0, 1, 'float32', 1), true) as unknown as tf.Variable<tf.Rank.R2> & tf.Tensor2D;
    const E = tf.variable(tf.randomNormal([9, 4], 0, 1, 'float32', 2), true) as unknown as tf.Variable<tf.Rank.R2> & tf.Tensor2D;
    const b = tf.variable(tf.randomNormal([9], 0, 1, 'float32', 3), true) as unknown as tf.Variable<tf.Rank.R1> & tf.Tensor1D;
    const idx = [5, 0, 3];
    const labels = tf.tensor1d([1, 7, 2], 'int32');
    const ours = () => tf.sum(tf.mul(tf.logSoftmax(tiedDecoder(gatherRows(x, tf.tensor1d(idx, 'int32')), E, b)), tf.cast(tf.oneHot(labels, 9), 'float32'))) as tf.Scalar;
    const reference = () =>
      tf.sum(tf.mul(tf.logSoftmax(tf.add(tf.matMul(tf.gather(x, tf.tensor1d(idx, 'int32')), E, false, true), b)), tf.cast(tf.oneHot(labels, 9), 'float32'))) as tf.Scalar;
    const g1 = tf.variableGrads(ours, [x, E, b]);
    expect(g1.value.dataSync()[0]).toBeCloseTo(reference().dataSync()[0], 4);
    // The reference gradient of gather needs a kernel wasm lacks; take it from one-hot row selection instead.
    const sel = tf.cast(tf.oneHot(tf.tensor1d(idx, 'int32'), 6), 'float32');
    const reference2 = () => tf.sum(tf.mul(tf.logSoftmax(tf.add(tf.matMul(tf.matMul(sel, x), E, false, true), b)), tf.cast(tf.oneHot(labels, 9), 'float32'))) as tf.Scalar;
    const g2 = tf.variableGrads(reference2, [x, E, b]);
    for (const v of [x, E, b]) {
      const a = g1.grads[v.name].dataSync();
      const r = g2.grads[v.name].dataSync();
      for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(r[i], 4);
    }
  });

  let fullRun: Awaited<ReturnType<typeof runPretrain>>;
  let fullCfg: PretrainConfig;

  it('pretrains: the held-out MLM loss falls, and the model folder is in the Hugging Face layout', async () => {
    fullCfg = configIn(dir, 'full', { vocab: 'vocab/vocab.txt', vocabSize: 120 });
    const progress: number[] = [];
    fullRun = await runPretrain({ config: fullCfg, callbacks: { progress: (p) => progress.push(p.step) } });
    expect(fullRun.status).toBe('done');
    expect(progress).toEqual([...Array(100).keys()].map((i) => i + 1));
    expect(fullRun.evals.map((e) => e.step)).toEqual([0, 25, 50, 75, 100]);
    const [start, end] = [fullRun.evals[0], fullRun.evals[fullRun.evals.length - 1]];
    expect(start.loss).toBeGreaterThan(Math.log(120) - 0.5); // a random model: about ln V
    // 100 steps take a tiny model from a uniform guess to the corpus's token frequencies (and the article and
    // full stop that most often fill a mask), not further: a clear, reliable fall.
    expect(end.loss).toBeLessThan(start.loss - 0.5);
    expect(fullRun.evals[2].loss).toBeLessThan(fullRun.evals[1].loss);
    expect(end.accuracy).toBeGreaterThan(start.accuracy + 0.05);

    const out = fullCfg.output;
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'vocab.txt', 'tokenizer_config.json', 'pretrain-log.json']) {
      expect(fs.existsSync(path.join(out, f)), f).toBe(true);
    }
    expect(fs.existsSync(fullCfg.checkpointDir)).toBe(false); // removed after a finished run
    const hf = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(hf).toMatchObject({ model_type: 'bert', architectures: ['BertForMaskedLM'], hidden_act: 'quick_gelu', vocab_size: 120, hidden_size: 32, num_hidden_layers: 2 });
    const names = [...readSafetensors(path.join(out, 'model.safetensors')).tensors.keys()];
    expect(names).toContain('bert.embeddings.word_embeddings.weight');
    expect(names).toContain('bert.encoder.layer.1.output.LayerNorm.weight');
    expect(names.filter((n) => n.startsWith('cls.')).sort()).toEqual([
      'cls.predictions.bias',
      'cls.predictions.transform.LayerNorm.bias',
      'cls.predictions.transform.LayerNorm.weight',
      'cls.predictions.transform.dense.bias',
      'cls.predictions.transform.dense.weight',
    ]);
    expect(names.every((n) => n.startsWith('bert.') || n.startsWith('cls.'))).toBe(true);
    const log = JSON.parse(fs.readFileSync(path.join(out, 'pretrain-log.json'), 'utf8'));
    expect(log.steps).toBe(100);
    expect(log.heldout.curve).toHaveLength(5);
    expect(log.heldout.end.loss).toBeCloseTo(end.loss, 10);
    expect(log.recipe.train).toEqual(['train.txt']);
  });

  it('reloads the saved model (loadEncoder + loadTokenizer) with the same MLM predictions', async () => {
    const end = fullRun.evals[fullRun.evals.length - 1];
    const again = await heldoutOfSavedModel(fullCfg.output, fullCfg);
    expect(again.loss).toBeCloseTo(end.loss, 5);
    expect(again.accuracy).toBe(end.accuracy);
    // The encoder alone loads like any Hugging Face checkpoint (the MLM head is ignored).
    const { encoder, extra } = loadEncoder(fullCfg.output);
    expect(encoder.config).toEqual(readConfig(fullCfg.output));
    expect([...extra.keys()].every((n) => n.startsWith('cls.'))).toBe(true);
    encoder.dispose();
  });

  it('resumes after an interruption to exactly the results of an uninterrupted run', async () => {
    const cfg = configIn(dir, 'resumed', { vocab: 'vocab/vocab.txt', vocabSize: 120 });
    // Stop at step 37: past the checkpoint at 30, between evaluations, so the resumed run must restore the
    // parameters, the optimizer moments, the data position and the training-loss tally of the interval.
    const first = await runPretrain({ config: cfg, stopAfterSteps: 37 });
    expect(first.status).toBe('cancelled');
    expect(first.step).toBe(37);
    expect(fs.existsSync(path.join(cfg.checkpointDir, 'state.safetensors'))).toBe(true);
    expect(fs.existsSync(path.join(cfg.output, 'config.json'))).toBe(false);
    // Starting over on top of a checkpoint is refused: resume it or delete it.
    await expect(runPretrain({ config: cfg })).rejects.toBeInstanceOf(UserInputError);
    const second = await runPretrain({ config: cfg, resume: true });
    expect(second.status).toBe('done');
    expect(second.evals.map((e) => [e.step, e.loss, e.accuracy, e.trainLoss])).toEqual(fullRun.evals.map((e) => [e.step, e.loss, e.accuracy, e.trainLoss]));
    const a = readSafetensors(path.join(fullCfg.output, 'model.safetensors')).tensors;
    const b = readSafetensors(path.join(cfg.output, 'model.safetensors')).tensors;
    for (const [name, arr] of a) expect([...b.get(name)!.data], name).toEqual([...arr.data]);
  });

  it('cuts a share of the training windows short (shortSequenceProbability): [CLS], the text\'s start, [SEP]', () => {
    const SEP = 3;
    const windows = Array.from({ length: 2000 }, (_, i) => Int32Array.from({ length: 16 }, (_, j) => (j === 0 ? 2 : j === 15 ? SEP : 100 + ((i + j) % 50))));
    expect(shortenSome(windows, 0, SEP, new Rng(1))).toBe(windows);
    const out = shortenSome(windows, 0.3, SEP, new Rng(1));
    const shortened = out.filter((s, i) => s !== windows[i]);
    expect(shortened.length / windows.length).toBeGreaterThan(0.25);
    expect(shortened.length / windows.length).toBeLessThan(0.35);
    const lengths = new Set(shortened.map((s) => s.length));
    expect(Math.min(...lengths)).toBe(3);
    expect(Math.max(...lengths)).toBe(16);
    out.forEach((s, i) => {
      expect(s[0]).toBe(2);
      expect(s[s.length - 1]).toBe(SEP);
      expect([...s.slice(0, -1)]).toEqual([...windows[i].slice(0, s.length - 1)]);
    });
    // The same generator state, the same cuts: a resumed run repeats them.
    expect(shortenSome(windows, 0.3, SEP, new Rng(1)).map((s) => s.length)).toEqual(out.map((s) => s.length));
  });

  it('pretrains with short sequences mixed in, and resumes them exactly', async () => {
    const training = { shortSequenceProbability: 0.5 };
    const fullShort = await runPretrain({ config: configIn(dir, 'short-full', { vocab: 'vocab/vocab.txt', vocabSize: 120 }, training) });
    const cfg = configIn(dir, 'short-resumed', { vocab: 'vocab/vocab.txt', vocabSize: 120 }, training);
    await runPretrain({ config: cfg, stopAfterSteps: 23 });
    const resumed = await runPretrain({ config: cfg, resume: true });
    expect(resumed.evals.map((e) => [e.step, e.loss, e.accuracy])).toEqual(fullShort.evals.map((e) => [e.step, e.loss, e.accuracy]));
    expect(fullShort.evals[fullShort.evals.length - 1].loss).toBeLessThan(fullShort.evals[0].loss);
    expect(() => configIn(dir, 'bad-short', {}, { shortSequenceProbability: 1.5 })).toThrow(/training\.shortSequenceProbability/);
  });

  it('continues from a saved model (initFrom): its weights, head and vocabulary, where the first run ended', async () => {
    const cfg = configIn(dir, 'continued', { initFrom: 'full' }, { steps: 20, warmupSteps: 2, evalEvery: 10 });
    expect(cfg.vocab).toBe(path.join(fullCfg.output, 'vocab.txt'));
    const run = await runPretrain({ config: cfg });
    expect(run.status).toBe('done');
    // Step 0 of the continued run is the first run's final model on the same held-out positions.
    const end = fullRun.evals[fullRun.evals.length - 1];
    expect(run.evals[0].loss).toBeCloseTo(end.loss, 5);
    expect(run.evals[0].accuracy).toBe(end.accuracy);
    expect(readVocab(cfg.output)).toEqual(readVocab(fullCfg.output));
    const log = JSON.parse(fs.readFileSync(path.join(cfg.output, 'pretrain-log.json'), 'utf8'));
    expect(log.recipe.initFrom).toMatch(/^full \(/);
    // A different shape is refused, field by field, before anything runs.
    expect(() => configIn(dir, 'wrong-shape', { initFrom: 'full', model: { ...tinyPretrainConfig().model as object, hidden: 48 } })).toThrow(/model\.hidden: 48 differs from 32 of initFrom/);
    expect(() => configIn(dir, 'both', { initFrom: 'full', vocab: 'vocab/vocab.txt' })).toThrow(/vocab: give vocab or initFrom, not both/);
    expect(() => configIn(dir, 'nowhere', { initFrom: 'no-such-model' })).toThrow(/initFrom: model "no-such-model" not found\. Looked in:/);
  });

  it('stores float16 weights on request: half the size, nearly the same held-out loss', async () => {
    const cfg = configIn(dir, 'half', { vocab: 'vocab/vocab.txt', vocabSize: 120, float16: true });
    const run = await runPretrain({ config: cfg });
    const end = run.evals[run.evals.length - 1];
    expect(end.loss).toBeCloseTo(fullRun.evals[fullRun.evals.length - 1].loss, 6);
    const sizeHalf = fs.statSync(path.join(cfg.output, 'model.safetensors')).size;
    const sizeFull = fs.statSync(path.join(fullCfg.output, 'model.safetensors')).size;
    expect(sizeHalf).toBeLessThan(sizeFull * 0.55);
    const again = await heldoutOfSavedModel(cfg.output, cfg);
    expect(Math.abs(again.loss - end.loss)).toBeLessThan(0.01);
  });

  it('learns its own vocabulary when none is given', async () => {
    const cfg = configIn(dir, 'own-vocab', {}, { steps: 3, warmupSteps: 1, evalEvery: 3 });
    const run = await runPretrain({ config: cfg });
    expect(run.status).toBe('done');
    const vocab = readVocab(cfg.output);
    expect(vocab.slice(0, 5)).toEqual(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
    expect(vocab.length).toBe(120);
  });
});
