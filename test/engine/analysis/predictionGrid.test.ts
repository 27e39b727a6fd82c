import { describe, expect, it } from 'vitest';
import { buildPredictionGrid, PREDICTION_GRID_LIMIT } from '../../../src/engine/analysis/predictionGrid';
import { decodePng } from '../../../src/engine/data/images/png';
import type { FamilyEvaluation, GridEntry } from '../../../src/engine/model/family';

/** 2 x 2 RGB images whose every byte says which example it is (example i: value i % 256), labels i % 3. */
const entryOf = (i: number): GridEntry => ({ label: i % 3, source: `set#${i}`, image: { width: 2, height: 2, channels: 3, pixels: new Uint8Array(12).fill(i % 256) } });

function evaluationOf(n: number, wrongEvery: number): FamilyEvaluation {
  const predictions = [...Array(n).keys()].map((i) => (i % wrongEvery === 0 ? (i + 1) % 3 : i % 3));
  return { metrics: {}, loss: 0, examples: n, predictions, confidences: predictions.map(() => 0.5), classes: { labels: ['a', 'b', 'c'], perClass: [], confusion: [] } };
}

describe('buildPredictionGrid', () => {
  it(`keeps at most ${PREDICTION_GRID_LIMIT} examples, every misclassified one first, and lays their images out 16 a row`, () => {
    const n = 300;
    const examples = [...Array(n).keys()];
    const grid = buildPredictionGrid('dev', examples, evaluationOf(n, 7), entryOf)!;
    const wrong = examples.filter((i) => i % 7 === 0);
    expect(grid.file.examples).toBe(300);
    expect(grid.file.misclassified).toBe(wrong.length);
    expect(grid.file.items.length).toBe(PREDICTION_GRID_LIMIT);
    expect(grid.file.items.slice(0, wrong.length).map((i) => i.index)).toEqual(wrong);
    const right = examples.filter((i) => i % 7 !== 0).slice(0, PREDICTION_GRID_LIMIT - wrong.length);
    expect(grid.file.items.slice(wrong.length).map((i) => i.index)).toEqual(right);
    expect(grid.file.items[0]).toEqual({ index: 0, source: 'set#0', true: 0, predicted: 1, confidence: 0.5 });
    const sprite = decodePng(grid.sprite, 'sprite');
    expect([sprite.width, sprite.height, sprite.channels]).toEqual([32, 32, 3]);
    // Tile k holds example items[k]: its top-left red value.
    grid.file.items.forEach((item, k) => {
      const at = ((Math.floor(k / 16) * 2) * 32 + (k % 16) * 2) * 3;
      expect(Math.round(sprite.data[at] * 255)).toBe(item.index % 256);
    });
  });

  it('is null without confidences or classes (a regression run, a family without them)', () => {
    const e = evaluationOf(5, 2);
    expect(buildPredictionGrid('dev', [0, 1, 2, 3, 4], { ...e, confidences: undefined }, entryOf)).toBeNull();
    expect(buildPredictionGrid('dev', [0, 1, 2, 3, 4], { ...e, classes: undefined }, entryOf)).toBeNull();
  });

  it('a short split makes a sprite one row high, as wide as its examples', () => {
    const grid = buildPredictionGrid('test', [0, 1, 2], evaluationOf(3, 2), entryOf)!;
    expect(grid.file.tile).toEqual({ width: 2, height: 2, channels: 3, columns: 3 });
    const sprite = decodePng(grid.sprite, 'sprite');
    expect([sprite.width, sprite.height]).toEqual([6, 2]);
  });
});
