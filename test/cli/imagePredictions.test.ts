import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cliAsync } from '../helpers/cliRun';
import { tempDir, useBackend } from '../helpers/fixtures';
import { writeImageConfig } from '../helpers/imageTask';
import { decodePng } from '../../src/engine/data/images/png';
import { readIdx } from '../../src/engine/data/images/idx';

/**
 * What an image run's evaluation keeps for the prediction grid (predictions-<split>.json and its sprite), written
 * by the built CLI in child processes, checked against the run's own confusion matrix and the task's IDX pixels;
 * and the training rate of an image task, in images per second.
 */

const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));

/** Checks a grid file against its eval file and the split's IDX images; returns the grid. */
function checkGrid(runDir: string, split: 'dev' | 'test', imagesFile: string) {
  const grid = readJson(path.join(runDir, `predictions-${split}.json`));
  const evaluation = readJson(path.join(runDir, `eval-${split}.json`));
  const confusion: number[][] = evaluation.classes.confusion;
  expect([grid.split, grid.examples, grid.labels]).toEqual([split, 60, ['rows', 'columns', 'square']]);
  // 60 examples fit the grid: every one is there once, and the pairs (true, predicted) rebuild the confusion matrix.
  expect(grid.items.map((i: { index: number }) => i.index).sort((a: number, b: number) => a - b)).toEqual([...Array(60).keys()]);
  const rebuilt = confusion.map((row) => row.map(() => 0));
  for (const item of grid.items) rebuilt[item.true][item.predicted]++;
  expect(rebuilt).toEqual(confusion);
  const wrong = 60 - confusion.reduce((n, row, i) => n + row[i], 0);
  expect(wrong).toBeGreaterThan(0); // the tiny network makes mistakes on this split, so the order below is tested
  expect(grid.misclassified).toBe(wrong);
  // The misclassified first, each group in split order.
  const head = grid.items.slice(0, wrong);
  const tail = grid.items.slice(wrong);
  expect(head.every((i: { true: number; predicted: number }) => i.true !== i.predicted)).toBe(true);
  expect(tail.every((i: { true: number; predicted: number }) => i.true === i.predicted)).toBe(true);
  for (const group of [head, tail]) for (let k = 1; k < group.length; k++) expect(group[k].index).toBeGreaterThan(group[k - 1].index);
  // A softmax probability of the top class among 3: at least 1/3.
  for (const item of grid.items) expect(item.confidence >= 1 / 3 - 1e-9 && item.confidence <= 1).toBe(true);
  expect(grid.items[0].source).toBe(`${imagesFile}#${grid.items[0].index}`);

  // The sprite: 16 tiles a row, each the IDX image of its item, pixel for pixel (8 x 8 inputs: no resizing).
  expect(grid.tile).toEqual({ width: 8, height: 8, channels: 1, columns: 16 });
  const sprite = decodePng(fs.readFileSync(path.join(runDir, grid.sprite)), grid.sprite);
  expect([sprite.width, sprite.height, sprite.channels]).toEqual([128, 32, 1]);
  const idx = readIdx(imagesFile);
  grid.items.forEach((item: { index: number }, k: number) => {
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 8; x++) {
        const inSprite = Math.round(sprite.data[(Math.floor(k / 16) * 8 + y) * 128 + (k % 16) * 8 + x] * 255);
        if (inSprite !== idx.data[item.index * 64 + y * 8 + x]) throw new Error(`tile ${k} (example ${item.index}) differs at ${x},${y}`);
      }
    }
  });
  return { grid, evaluation };
}

describe('image prediction grid through the CLI', () => {
  beforeAll(useBackend);

  it('training writes the dev grid and says images/s; eval --split test writes the test grid beside eval-test.json', async () => {
    const dir = tempDir();
    const file = writeImageConfig(dir, { training: { epochs: 1 } });
    const trained = await cliAsync(['train', file], dir);
    expect(trained.code, trained.stderr).toBe(0);
    // The progress line counts images, not tokens.
    expect(trained.stderr).toMatch(/step 10\/10 \(100%\)\s+loss \d+\.\d+\s+\d+ images\/s/);
    expect(trained.stderr).not.toContain('tok/s');
    const runDir = /run folder: (.*)/.exec(trained.stdout + trained.stderr)![1].trim();
    const steps = fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.type === 'train');
    expect(steps.length).toBe(10);
    for (const s of steps) {
      expect(s.imagesPerSecond).toBeGreaterThan(0);
      expect(s.tokensPerSecond).toBeUndefined();
    }

    checkGrid(runDir, 'dev', path.join(dir, 'dev-images.idx'));

    const evaluated = await cliAsync(['eval', runDir, '--split', 'test', '--json'], dir);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    const { grid, evaluation } = checkGrid(runDir, 'test', path.join(dir, 'test-images.idx'));
    // Written by the same evaluation as eval-test.json.
    expect(grid.time).toBe(evaluation.time);
  }, 120_000);
});
