import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cliAsync } from '../helpers/cliRun';
import { tempDir, useBackend } from '../helpers/fixtures';
import { trainImageRun } from '../helpers/imageTask';
import { evalFilesSignature, loadClassReport, readImagePredictions } from '../../src/extension/webviews/viewData';
import { cellFilter, describeGrid, filterItems, NO_FILTER, validFilter } from '../../webview-ui/classReport/imageGrid';

/**
 * The Images tab's data on a real image run trained by the CLI: loadClassReport reads each split's prediction grid
 * and sprite, says what is wrong with a broken one, and the grid's filters agree with the run's confusion matrix.
 */

let work = '';
let runDir = '';

beforeAll(async () => {
  await useBackend();
  work = tempDir('adapter-lab-image-grid-');
  runDir = await trainImageRun(work, { training: { epochs: 1 } });
}, 120_000);

/** A copy of the run to break. */
function copyRun(): string {
  const dir = path.join(tempDir(), 'run');
  fs.cpSync(runDir, dir, { recursive: true });
  return dir;
}

describe('the prediction grid in the per-class view', () => {
  it('loadClassReport gives the dev report its images: the grid file with the sprite as a data: URL', () => {
    const { data, missing } = loadClassReport(runDir);
    expect(missing).toBeUndefined();
    expect(data!.inputs).toBe('images');
    const dev = data!.splits.find((s) => s.split === 'dev')!;
    const file = JSON.parse(fs.readFileSync(path.join(runDir, 'predictions-dev.json'), 'utf8'));
    expect(dev.imagesProblem).toBeUndefined();
    expect(dev.images!.items).toEqual(file.items);
    expect([dev.images!.examples, dev.images!.misclassified, dev.images!.labels]).toEqual([file.examples, file.misclassified, dev.labels]);
    expect(dev.images!.spriteUrl).toBe(`data:image/png;base64,${fs.readFileSync(path.join(runDir, 'predictions-dev.png')).toString('base64')}`);
    // Test is not evaluated yet: no report, so no grid.
    expect(data!.unevaluated).toEqual(['test']);
  });

  it("the filters keep what the confusion matrix counts: a cell's images, the misclassified, a true and a predicted class", () => {
    const dev = loadClassReport(runDir).data!.splits[0];
    const p = dev.images!;
    const k = dev.labels.length;
    for (let t = 0; t < k; t++) {
      for (let q = 0; q < k; q++) {
        const shown = filterItems(p.items, cellFilter(t, q));
        expect(shown.length, `cell ${t},${q}`).toBe(dev.confusion[t][q]);
        for (const { item, tile } of shown) expect(p.items[tile]).toBe(item);
      }
      expect(filterItems(p.items, { ...NO_FILTER, trueClass: t }).length).toBe(dev.perClass[t].support);
      expect(filterItems(p.items, { ...NO_FILTER, predictedClass: t }).length).toBe(dev.perClass[t].predicted);
      expect(filterItems(p.items, { show: 'misclassified', trueClass: t, predictedClass: null }).length).toBe(dev.perClass[t].support - dev.confusion[t][t]);
    }
    const wrong = filterItems(p.items, { ...NO_FILTER, show: 'misclassified' });
    expect(wrong.length).toBe(p.misclassified);
    // Misclassified first: their tiles are the first ones.
    expect(wrong.map((w) => w.tile)).toEqual([...Array(p.misclassified).keys()]);
    expect(filterItems(p.items, NO_FILTER).length).toBe(60);
    expect(describeGrid(p, NO_FILTER, 60, 'dev')).toBe('60 of 60 images; the evaluation kept all 60 dev examples.');
    expect(describeGrid(p, cellFilter(0, 2), dev.confusion[0][2], 'dev')).toBe(`${dev.confusion[0][2]} of 60 images (true rows, predicted square); the evaluation kept all 60 dev examples.`);
    // A saved filter naming a class this run does not have falls back to any class.
    expect(validFilter({ show: 'misclassified', trueClass: 7, predictedClass: 1 }, dev.labels)).toEqual({ show: 'misclassified', trueClass: null, predictedClass: 1 });
  });

  it('describes a grid that kept part of a large split', () => {
    const items = [
      { index: 4, source: 's#4', true: 0, predicted: 1, confidence: 0.6 },
      { index: 0, source: 's#0', true: 0, predicted: 0, confidence: 0.9 },
    ];
    expect(describeGrid({ labels: ['a', 'b'], examples: 500, misclassified: 1, items }, NO_FILTER, 2, 'test')).toBe('2 of 2 images; the evaluation kept 2 of 500 test examples, all 1 misclassified first.');
    expect(describeGrid({ labels: ['a', 'b'], examples: 500, misclassified: 9, items }, NO_FILTER, 2, 'test')).toBe('2 of 2 images; the evaluation kept 2 of 500 test examples, 1 of the 9 misclassified first.');
  });

  it('eval --split test adds the test grid, and the eval files signature (what the view polls) changes with it', async () => {
    const dir = copyRun();
    const before = evalFilesSignature(dir);
    const evaluated = await cliAsync(['eval', dir, '--split', 'test', '--json'], work);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    expect(evalFilesSignature(dir)).not.toBe(before);
    const test = loadClassReport(dir).data!.splits.find((s) => s.split === 'test')!;
    expect(test.images!.items.length).toBe(60);
    expect(test.images!.time).toBe(test.time);
    // Rewriting only the grid changes the signature too.
    const signature = evalFilesSignature(dir);
    const grid = path.join(dir, 'predictions-test.json');
    fs.writeFileSync(grid, fs.readFileSync(grid, 'utf8') + '\n');
    expect(evalFilesSignature(dir)).not.toBe(signature);
  }, 60_000);

  it('a broken grid is named in imagesProblem and the rest of the report still shows; no grid file is no problem', () => {
    const labels = ['rows', 'columns', 'square'];
    const broken = (edit: (dir: string) => void) => {
      const dir = copyRun();
      edit(dir);
      const dev = loadClassReport(dir).data!.splits[0];
      expect(dev.perClass.length).toBe(3);
      expect(dev.images).toBeUndefined();
      return [dev.imagesProblem, readImagePredictions(dir, 'dev', labels)];
    };
    const editJson = (dir: string, f: (j: any) => void) => {
      const file = path.join(dir, 'predictions-dev.json');
      const j = JSON.parse(fs.readFileSync(file, 'utf8'));
      f(j);
      fs.writeFileSync(file, JSON.stringify(j));
    };
    const [torn] = broken((d) => fs.writeFileSync(path.join(d, 'predictions-dev.json'), '{"split": "dev", "ite'));
    expect(torn).toMatch(/predictions-dev\.json is unreadable: /);
    const [noSprite] = broken((d) => fs.rmSync(path.join(d, 'predictions-dev.png')));
    expect(noSprite).toMatch(/predictions-dev\.png is unreadable: /);
    const [otherLabels] = broken((d) => editJson(d, (j) => (j.labels = ['a', 'b', 'c'])));
    expect(otherLabels).toMatch(/predictions-dev\.json: labels are not the evaluation's \(rows, columns, square\)/);
    const [badItem] = broken((d) => editJson(d, (j) => (j.items[5].predicted = 3)));
    expect(badItem).toMatch(/predictions-dev\.json: items\[5\] is not \{index, source, true, predicted, confidence\} within 60 examples and 3 classes/);
    const [smallSprite] = broken((d) => editJson(d, (j) => (j.tile.width = 16)));
    expect(smallSprite).toMatch(/predictions-dev\.png is not a PNG of 60 tiles of 16 x 8 \(256 x 32 pixels\)/);
    const [elsewhere] = broken((d) => editJson(d, (j) => (j.sprite = '../other.png')));
    expect(elsewhere).toMatch(/sprite is not "predictions-dev\.png"/);

    const none = copyRun();
    fs.rmSync(path.join(none, 'predictions-dev.json'));
    const dev = loadClassReport(none).data!.splits[0];
    expect([dev.images, dev.imagesProblem]).toEqual([undefined, undefined]);
  });
});
