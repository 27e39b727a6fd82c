import { encodePng } from '../data/images/png';
import { writeConfined } from '../runs/confined';
import type { RunHandle } from '../runs/runFolder';
import type { FamilyEvaluation, GridEntry } from '../model/family';

/**
 * The prediction grid of an image run's evaluation: which examples of a split it got right and wrong, for the
 * Per-class Metrics view's Images tab. Written next to eval-<split>.json as two files:
 *
 *   predictions-<split>.json  the examples shown: index in the split, source (`file` or `file#index`), true and
 *                             predicted class, the softmax probability of the predicted class; the tile layout
 *   predictions-<split>.png   one sprite of their images at the network's input size, in the JSON's order
 *
 * At most PREDICTION_GRID_LIMIT examples, the misclassified first (in split order), then the correct ones in split
 * order: a run folder stays small (a few hundred kB at most) and the mistakes are always there to see. The pixels
 * are the ones the network saw (resized, before normalisation), so the view needs neither the task's files nor
 * their readers.
 */

export const PREDICTION_GRID_LIMIT = 256;
/** Tiles per sprite row. */
export const PREDICTION_GRID_COLUMNS = 16;

export function predictionGridName(split: string): string {
  return `predictions-${split}`;
}

export function predictionSpriteName(split: string): string {
  return `${predictionGridName(split)}.png`;
}

export interface PredictionGridItem {
  /** Position in the split (0-based). */
  index: number;
  source: string;
  true: number;
  predicted: number;
  /** The predicted class's softmax probability. */
  confidence: number;
}

export interface PredictionGridFile {
  split: string;
  labels: string[];
  /** Examples in the split; `items` holds at most PREDICTION_GRID_LIMIT of them. */
  examples: number;
  /** Misclassified examples in the split (all of them are in `items` when they fit). */
  misclassified: number;
  selection: 'misclassified first';
  /** The sprite's file name in the run folder. */
  sprite: string;
  /** Each tile's size in pixels, the sprite's channels (1 grey, 3 RGB) and its tiles per row. */
  tile: { width: number; height: number; channels: 1 | 3; columns: number };
  items: PredictionGridItem[];
  time?: string;
}

/** The grid's file and sprite for a split's evaluation; null where the family has no images or no confidences. */
export function buildPredictionGrid<E>(
  split: string,
  examples: readonly E[],
  evaluation: FamilyEvaluation,
  entryOf: (example: E) => GridEntry,
): { file: PredictionGridFile; sprite: Buffer } | null {
  const labels = evaluation.classes?.labels;
  const confidences = evaluation.confidences;
  if (!labels || !confidences || !examples.length) return null;
  const entries = examples.map(entryOf);
  const wrong: number[] = [];
  const right: number[] = [];
  entries.forEach((e, i) => (evaluation.predictions[i] === e.label ? right : wrong).push(i));
  const chosen = [...wrong, ...right].slice(0, PREDICTION_GRID_LIMIT);
  const { width, height, channels } = entries[0].image;
  const columns = Math.min(PREDICTION_GRID_COLUMNS, chosen.length);
  const rows = Math.ceil(chosen.length / columns);
  const spriteWidth = columns * width;
  const pixels = new Uint8Array(spriteWidth * rows * height * channels);
  chosen.forEach((index, k) => {
    const img = entries[index].image;
    if (img.width !== width || img.height !== height || img.channels !== channels) throw new Error(`prediction grid: example ${index} is ${img.width} x ${img.height} x ${img.channels}, not ${width} x ${height} x ${channels} as the first`);
    const x0 = (k % columns) * width;
    const y0 = Math.floor(k / columns) * height;
    for (let y = 0; y < height; y++) {
      pixels.set(img.pixels.subarray(y * width * channels, (y + 1) * width * channels), ((y0 + y) * spriteWidth + x0) * channels);
    }
  });
  const file: PredictionGridFile = {
    split,
    labels,
    examples: examples.length,
    misclassified: wrong.length,
    selection: 'misclassified first',
    sprite: predictionSpriteName(split),
    tile: { width, height, channels, columns },
    items: chosen.map((index) => ({
      index,
      source: entries[index].source,
      true: entries[index].label,
      predicted: evaluation.predictions[index],
      confidence: confidences[index],
    })),
  };
  return { file, sprite: encodePng(spriteWidth, rows * height, channels, pixels) };
}

/**
 * Writes a split's grid into the run folder (the sprite first, so that the JSON never names a sprite that is not
 * there yet) when the model can show its examples as images; returns whether it wrote one.
 */
export function writePredictionGrid<E>(
  run: Pick<RunHandle, 'dir' | 'writeResult'>,
  split: string,
  examples: readonly E[],
  evaluation: FamilyEvaluation,
  model: { gridEntry?(example: E): GridEntry },
  time?: string,
): boolean {
  if (!model.gridEntry) return false;
  const grid = buildPredictionGrid(split, examples, evaluation, (e) => model.gridEntry!(e));
  if (!grid) return false;
  writeConfined(run.dir, grid.file.sprite, grid.sprite);
  run.writeResult(predictionGridName(split), time ? { ...grid.file, time } : grid.file);
  return true;
}
