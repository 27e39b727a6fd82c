import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cliAsync, cliLive, trainSteps } from '../helpers/cliRun';
import { maxAbsDiff, tempDir, useBackend } from '../helpers/fixtures';
import { encodePng } from '../../src/engine/data/images/png';
import { TINY_RESNET, writeImageConfig } from '../helpers/imageTask';
import { catalogEntry } from '../../src/engine/methods/catalog';
import { convSites } from '../../src/engine/families/resnet/network';

/**
 * Image tasks as a user runs them: `adapter-lab` (the built bin) in child processes, on IDX files and a ResNet
 * network folder written in a temp folder. The tiny network (8 x 8 inputs, 3 blocks) keeps each test short.
 */

const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));
const runDirOf = (lines: any[]) => lines.find((l) => l.type === 'start' && l.command === 'train')?.runDir as string;

/** What residual-series adds to the tiny network, plus the head (features 8 -> 3 classes): from the catalog's rule. */
const RESIDUAL_SERIES_TRAINABLE = catalogEntry('residual-series').addedParams({ d: 0, L: 0, intermediate: 0, convSites: convSites(TINY_RESNET) }, {}) + 8 * 3 + 3;

describe('image classification through the CLI', () => {
  beforeAll(useBackend);

  it('trains from IDX files into a run folder; eval prints per-class scores and the confusion matrix; ablate, info, list and compare read the run', async () => {
    const dir = tempDir();
    const file = writeImageConfig(dir);
    const trained = await cliAsync(['train', file, '--json', '--workers', '2'], dir);
    expect(trained.code, trained.stderr).toBe(0);
    const runDir = runDirOf(trained.lines);
    // Two workers (test/engine/parallel/imageParallel.test.ts shows they compute what one thread does).
    expect(trained.lines.some((l) => l.type === 'log' && /, 2 workers$/.test(l.message))).toBe(true);
    expect(trained.lines.some((l) => l.type === 'log' && /^started 1 worker thread in/.test(l.message))).toBe(true);
    expect(trained.lines.some((l) => /one thread/.test(l.message ?? ''))).toBe(false);

    const record = readJson(path.join(runDir, 'run.json'));
    expect(record.status).toBe('done');
    expect(record.resumable).toBe(false);
    expect(record.params.trainable).toBe(RESIDUAL_SERIES_TRAINABLE);
    expect(record.config.task.train.images).toBe(path.join(dir, 'train-images.idx'));
    expect(fs.existsSync(path.join(runDir, 'run.lock'))).toBe(false);
    expect(fs.readdirSync(path.join(runDir, 'adapter')).sort()).toEqual(['domain.json', 'domain.safetensors', 'input.json']);
    expect(readJson(path.join(runDir, 'checkpoint', 'state.json')).step).toBe(30);
    // 200 images in batches of 20 for 3 epochs; a dev evaluation after each epoch.
    expect(trainSteps(runDir).map((s) => s.step)).toEqual([...Array(30).keys()].map((i) => i + 1));
    const metrics = fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(metrics.filter((m) => m.type === 'eval').map((m) => m.step)).toEqual([10, 20, 30]);

    const dev = readJson(path.join(runDir, 'eval-dev.json'));
    expect(dev.classes.labels).toEqual(['rows', 'columns', 'square']);
    const diagonal = (c: number[][]) => c.reduce((n, row, i) => n + row[i], 0);
    expect(dev.classes.confusion.flat().reduce((a: number, b: number) => a + b, 0)).toBe(60);
    expect(dev.metrics.accuracy).toBeCloseTo(diagonal(dev.classes.confusion) / 60, 10);
    expect(dev.metrics.accuracy).toBe(record.best.value);
    // Learned the shapes: well above chance (1/3).
    expect(dev.metrics.accuracy).toBeGreaterThan(0.55);

    const evaluated = await cliAsync(['eval', runDir, '--split', 'test'], dir);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    const test = readJson(path.join(runDir, 'eval-test.json'));
    expect(test.examples).toBe(60);
    expect(evaluated.stdout).toContain('confusion matrix (rows: true class, columns: predicted class)');
    const printedRow = evaluated.stdout.split('\n').find((l) => /^columns\s+\d+\s+\d+\s+\d+$/.test(l.trim()))!;
    expect(printedRow.trim().split(/\s+/).slice(1).map(Number)).toEqual(test.classes.confusion[1]);
    expect(evaluated.stdout).toMatch(new RegExp(`test accuracy ${test.metrics.accuracy.toFixed(4)}`));

    const ablated = await cliAsync(['ablate', runDir, '--json'], dir);
    expect(ablated.code, ablated.stderr).toBe(0);
    const ablation = readJson(path.join(runDir, 'ablation.json'));
    // The layer ablation's shape (the heatmap reads it): one row and column per block, upper triangle filled.
    expect([ablation.numLayers, ablation.adapterLayers, ablation.split, ablation.examples]).toEqual([3, [0, 1, 2], 'dev', 60]);
    expect(ablation.baseline).toBe(dev.metrics.accuracy);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) expect(ablation.matrix[i][j] === null, `${i},${j}`).toBe(j < i);
    // Removing every block's adapters changes what the network computes.
    expect(ablation.matrix[0][2]).not.toBe(ablation.baseline);

    const info = await cliAsync(['info', runDir, '--json'], dir);
    expect(info.code, info.stderr).toBe(0);
    const infoResult = info.lines.find((l) => l.type === 'result');
    expect([infoResult.method, infoResult.status, infoResult.trainableParams]).toEqual(['residual-series', 'done', RESIDUAL_SERIES_TRAINABLE]);
    const listed = await cliAsync(['list', '--runs-dir', path.join(dir, 'runs')], dir);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/shapes-residual\s+done\s+residual-series\s+shapes\s+accuracy/);
    const compared = await cliAsync(['compare', runDir], dir);
    expect(compared.code, compared.stderr).toBe(0);
    expect(compared.stdout).toContain(`${RESIDUAL_SERIES_TRAINABLE}`);
  }, 120_000);

  it('predict prints each image\'s class and probabilities from an IDX file, an image folder and one image, the same with 1 and 2 workers; eval too; a failing worker fails the run', async () => {
    const dir = tempDir();
    const file = writeImageConfig(dir, { training: { maxSteps: 8 } });
    const trained = await cliAsync(['train', file, '--json', '--workers', '2'], dir);
    expect(trained.code, trained.stderr).toBe(0);
    const runDir = runDirOf(trained.lines);
    const predictionsOf = (r: { lines: any[] }) => r.lines.filter((l) => l.type === 'prediction');

    const idx = path.join(dir, 'test-images.idx');
    const one = await cliAsync(['predict', runDir, '--input', idx, '--json', '--workers', '1', '--batch-size', '16'], dir);
    expect(one.code, one.stderr).toBe(0);
    const lines = predictionsOf(one);
    expect(lines).toHaveLength(60);
    lines.forEach((l, i) => {
      expect(l.index).toBe(i);
      expect(l.source).toEqual({ file: idx, image: i });
      expect(l.labels).toEqual(['rows', 'columns', 'square']);
      expect(l.probabilities.reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1, 6);
      expect(l.prediction).toBe(l.labels[l.probabilities.indexOf(Math.max(...l.probabilities))]);
    });
    // Spread over two workers (whole batches each): the same lines.
    const two = await cliAsync(['predict', runDir, '--input', idx, '--json', '--workers', '2', '--batch-size', '16'], dir);
    expect(two.code, two.stderr).toBe(0);
    expect(predictionsOf(two)).toEqual(lines);
    // The predictions are eval's: the count of each predicted class is its column of the test confusion matrix.
    for (const workers of ['1', '3']) {
      const evaluated = await cliAsync(['eval', runDir, '--split', 'test', '--json', '--workers', workers], dir);
      expect(evaluated.code, evaluated.stderr).toBe(0);
      const confusion: number[][] = readJson(path.join(runDir, 'eval-test.json')).classes.confusion;
      const predictedCounts = ['rows', 'columns', 'square'].map((c) => lines.filter((l) => l.prediction === c).length);
      expect(predictedCounts).toEqual([0, 1, 2].map((j) => confusion.reduce((n, row) => n + row[j], 0)));
    }

    // The first four test images as PNG files in a folder (one in a subfolder): the same inputs, so the same lines.
    const images = fs.readFileSync(idx).subarray(16);
    const folder = path.join(dir, 'to-predict');
    fs.mkdirSync(path.join(folder, 'more'), { recursive: true });
    const pngs = ['a.png', 'b.png', 'c.png', path.join('more', 'd.png')].map((name) => path.join(folder, name));
    pngs.forEach((f, i) => fs.writeFileSync(f, encodePng(8, 8, 1, images.subarray(i * 64, (i + 1) * 64))));
    const fromFolder = await cliAsync(['predict', runDir, '--input', folder, '--json'], dir);
    expect(fromFolder.code, fromFolder.stderr).toBe(0);
    const folderLines = predictionsOf(fromFolder);
    expect(folderLines.map((l) => l.source)).toEqual(pngs.map((f) => ({ file: f })));
    folderLines.forEach((l, i) => {
      expect(l.prediction).toBe(lines[i].prediction);
      expect(maxAbsDiff(l.probabilities, lines[i].probabilities)).toBeLessThan(1e-6);
    });
    const single = await cliAsync(['predict', runDir, '--input', pngs[1], '--json', '--logits'], dir);
    expect(single.code, single.stderr).toBe(0);
    expect(predictionsOf(single).map((l) => [l.prediction, l.logits.length])).toEqual([[lines[1].prediction, 3]]);
    // A file that is not an image: exit 2, naming it.
    fs.writeFileSync(path.join(folder, 'notes.txt'), 'not an image');
    const bad = await cliAsync(['predict', runDir, '--input', folder, '--json'], dir);
    expect(bad.code, bad.stderr).toBe(2);
    expect(bad.lines.find((l) => l.type === 'error')).toMatchObject({ exitCode: 2, file: path.join(folder, 'notes.txt') });

    // Worker 1 throws at step 3: the run fails (exit 1) with its error, recorded in run.json.
    const failing = await cliAsync(['train', file, '--json', '--workers', '2'], dir, { env: { ...process.env, ADAPTER_LAB_TEST_WORKER_FAIL: '1:3' } });
    expect(failing.code).toBe(1);
    expect(failing.lines.find((l) => l.type === 'error').message).toMatch(/worker 1 failed: test hook: worker 1 fails at step 3/);
    const failed = readJson(path.join(runDirOf(failing.lines), 'run.json'));
    expect([failed.status, failed.resumable]).toEqual(['failed', true]);
  }, 180_000);

  it('a run killed mid-training, or cancelled with SIGINT, resumes to exactly the uninterrupted run', async () => {
    const dir = tempDir();
    // A checkpoint every 5 steps (after a dev evaluation), besides the one before step 1.
    const file = writeImageConfig(dir, { training: { epochs: 2, evalEverySteps: 5 } });
    const whole = await cliAsync(['train', file, '--json'], dir);
    expect(whole.code, whole.stderr).toBe(0);
    const wholeDir = runDirOf(whole.lines);

    const killed = cliLive(['train', file, '--json'], dir, (line, child) => {
      if (line.type === 'progress' && line.step === 7) child.kill('SIGKILL');
    });
    const k = await killed.done;
    expect(k.signal).toBe('SIGKILL');
    const killedDir = runDirOf(k.lines);
    expect(readJson(path.join(killedDir, 'checkpoint', 'state.json')).step).toBe(5);

    const cancelled = cliLive(['train', file, '--json'], dir, (line, child) => {
      if (line.type === 'progress' && line.step === 3) child.kill('SIGINT');
    });
    const c = await cancelled.done;
    expect(c.code).toBe(1);
    const cancelledDir = runDirOf(c.lines);
    const cancelledRecord = readJson(path.join(cancelledDir, 'run.json'));
    expect([cancelledRecord.status, cancelledRecord.resumable]).toEqual(['cancelled', true]);
    expect(readJson(path.join(cancelledDir, 'checkpoint', 'state.json')).step).toBeGreaterThanOrEqual(3);

    for (const runDir of [killedDir, cancelledDir]) {
      const resumed = await cliAsync(['train', '--resume', runDir, '--json'], dir);
      expect(resumed.code, resumed.stderr).toBe(0);
      // Every step's loss, the dev metrics and the trained domain's bytes: as if it had never stopped.
      expect(trainSteps(runDir)).toEqual(trainSteps(wholeDir));
      expect(readJson(path.join(runDir, 'eval-dev.json')).metrics).toEqual(readJson(path.join(wholeDir, 'eval-dev.json')).metrics);
      expect(fs.readFileSync(path.join(runDir, 'adapter', 'domain.safetensors')).equals(fs.readFileSync(path.join(wholeDir, 'adapter', 'domain.safetensors')))).toBe(true);
    }
  }, 180_000);

  it('bad input exits 2 and names the file and the field: a missing labels file, a corrupt IDX file, a text method, a text field, no dev set', async () => {
    const dir = tempDir();
    const errorOf = (r: { lines: any[] }) => r.lines.find((l) => l.type === 'error');

    const missing = writeImageConfig(dir, { task: { train: { images: 'train-images.idx', labels: 'no-such-labels.idx' } } }, 'missing.adapter.json');
    const m = await cliAsync(['train', missing, '--json'], dir);
    expect(m.code, m.stderr).toBe(2);
    expect(errorOf(m)).toMatchObject({ exitCode: 2, file: path.join(dir, 'no-such-labels.idx'), field: 'task.train.labels' });

    fs.writeFileSync(path.join(dir, 'corrupt-images.idx'), Buffer.from([0, 0, 8, 3, 0, 0, 0, 200, 0, 0, 0, 8, 0, 0, 0, 8, 1, 2, 3]));
    const corrupt = writeImageConfig(dir, { task: { dev: { images: 'corrupt-images.idx', labels: 'dev-labels.idx' } } }, 'corrupt.adapter.json');
    const c = await cliAsync(['train', corrupt, '--json'], dir);
    expect(c.code, c.stderr).toBe(2);
    expect(errorOf(c)).toMatchObject({ exitCode: 2, file: path.join(dir, 'corrupt-images.idx'), field: 'task.dev.images' });

    const textMethod = writeImageConfig(dir, { method: { type: 'houlsby' } }, 'houlsby.adapter.json');
    const t = await cliAsync(['train', textMethod, '--json'], dir);
    expect(t.code, t.stderr).toBe(2);
    expect(errorOf(t).message).toMatch(/houlsby\.adapter\.json:\d+: method\.type: method "houlsby" does not apply to image-classification tasks; they can use full, head, residual-series, residual-parallel, batchnorm, scratch/);

    const textField = writeImageConfig(dir, { task: { textField: 'text' } }, 'field.adapter.json');
    const f = await cliAsync(['train', textField, '--json'], dir);
    expect(f.code, f.stderr).toBe(2);
    expect(errorOf(f).message).toMatch(/field\.adapter\.json:\d+: task\.textField: does not apply to image-classification tasks/);
    const noDev = writeImageConfig(dir, { task: { dev: null } }, 'nodev.adapter.json');
    const d = await cliAsync(['train', noDev, '--json'], dir);
    expect(d.code, d.stderr).toBe(2);
    expect(errorOf(d)).toMatchObject({ exitCode: 2, file: path.join(dir, noDev), field: 'task.dev' });
    // A config error leaves no run folder behind; the data errors are found by the run (as for text tasks).
    expect(fs.readdirSync(path.join(dir, 'runs')).length).toBe(3);
  }, 120_000);

  it('pretrain writes a network folder from a config with taskType (errors name the field); train uses it, and builtin:resnet-fashion', async () => {
    const dir = tempDir();
    writeImageConfig(dir); // the shapes IDX files
    const recipe = {
      taskType: 'image-classification',
      output: 'pretrained',
      network: { inputChannels: 1, imageSize: 8, widths: [4, 8, 8], blocksPerStage: 1 },
      train: { images: 'train-images.idx', labels: 'train-labels.idx' },
      test: { images: 'test-images.idx', labels: 'test-labels.idx' },
      training: { epochs: 1, batchSize: 40, learningRate: 1e-2, seed: 2 },
    };
    fs.writeFileSync(path.join(dir, 'bad.json'), JSON.stringify({ ...recipe, network: { ...recipe.network, widths: [8, 4, 4] } }));
    const bad = await cliAsync(['pretrain', 'bad.json', '--json'], dir);
    expect(bad.code, bad.stderr).toBe(2);
    expect(bad.lines.find((l) => l.type === 'error')).toMatchObject({ field: 'network', file: path.join(dir, 'bad.json') });
    fs.writeFileSync(path.join(dir, 'pretrain.json'), JSON.stringify(recipe));
    const pretrained = await cliAsync(['pretrain', 'pretrain.json', '--json'], dir);
    expect(pretrained.code, pretrained.stderr).toBe(0);
    const result = pretrained.lines.find((l) => l.type === 'result');
    expect(result.steps).toBe(5);
    expect(fs.readFileSync(path.join(dir, 'pretrained', 'README.md'), 'utf8')).toContain(`Test accuracy of the pretraining classifier: ${(100 * result.testAccuracy).toFixed(2)}% on 60 images`);

    // The network the command wrote is a model for training, as the built-in one is.
    for (const model of [path.join(dir, 'pretrained'), 'builtin:resnet-fashion']) {
      const file = writeImageConfig(dir, { method: { type: 'residual-parallel' }, training: { maxSteps: 2 } }, 'on-network.adapter.json');
      const cfg = readJson(path.join(dir, file));
      fs.writeFileSync(path.join(dir, file), JSON.stringify({ ...cfg, model }));
      const trained = await cliAsync(['train', file, '--json'], dir);
      expect(trained.code, trained.stderr).toBe(0);
      const runDir = runDirOf(trained.lines);
      // A built-in network is recorded by name, so that the run moves with the project.
      expect(readJson(path.join(runDir, 'adapter', 'input.json')).network).toBe(model);
      expect(readJson(path.join(runDir, 'eval-dev.json')).examples).toBe(60);
    }
  }, 120_000);

  it("a sweep's image runs train on one thread (the family's default) unless --workers says otherwise", async () => {
    const dir = tempDir();
    const file = writeImageConfig(dir, { training: { epochs: 1 } });
    const cfg = readJson(path.join(dir, file));
    fs.writeFileSync(path.join(dir, file), JSON.stringify({ ...cfg, sweep: { 'training.seed': [1, 2] } }));
    const workersOf = (lines: any[]) => lines.filter((l) => l.type === 'log' && / examples, \d+ steps, backend /.test(l.message)).map((l) => /(\d+) workers?$/.exec(l.message)?.[1]);
    const byDefault = await cliAsync(['sweep', file, '--jobs', '1', '--json'], dir);
    expect(byDefault.code, byDefault.stderr).toBe(0);
    expect(workersOf(byDefault.lines)).toEqual(['1', '1']);
    const asked = await cliAsync(['sweep', file, '--jobs', '1', '--workers', '2', '--json'], dir);
    expect(asked.code, asked.stderr).toBe(0);
    expect(workersOf(asked.lines)).toEqual(['2', '2']);
  });
});
