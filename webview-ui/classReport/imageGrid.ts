/**
 * The Images tab's filter, with no DOM (test/extension/imagePredictions.test.ts tests it on a real run's grid):
 * all examples or the misclassified ones, narrowed to a true class and/or a predicted class (a confusion-matrix
 * cell sets both), and the sentence that says what is shown out of what the evaluation kept.
 */
import type { ImagePredictions } from '../../src/protocol/webview';

export type GridItem = ImagePredictions['items'][number];

export interface GridFilter {
  show: 'all' | 'misclassified';
  /** Class indices; null: any. */
  trueClass: number | null;
  predictedClass: number | null;
}

export const NO_FILTER: GridFilter = { show: 'all', trueClass: null, predictedClass: null };

/** The filter for a confusion-matrix cell (row the true class, column the predicted one). */
export function cellFilter(trueClass: number, predictedClass: number): GridFilter {
  return { show: 'all', trueClass, predictedClass };
}

/** The items the filter keeps, with their positions in the sprite (tile), in the grid's order. */
export function filterItems(items: readonly GridItem[], f: GridFilter): { item: GridItem; tile: number }[] {
  const out: { item: GridItem; tile: number }[] = [];
  items.forEach((item, tile) => {
    if (f.show === 'misclassified' && item.true === item.predicted) return;
    if (f.trueClass !== null && item.true !== f.trueClass) return;
    if (f.predictedClass !== null && item.predicted !== f.predictedClass) return;
    out.push({ item, tile });
  });
  return out;
}

/** A filter whose classes exist in `labels` (a saved filter may name a class of another run): else none. */
export function validFilter(f: Partial<GridFilter> | undefined, labels: readonly string[]): GridFilter {
  const cls = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < labels.length ? v : null);
  return { show: f?.show === 'misclassified' ? 'misclassified' : 'all', trueClass: cls(f?.trueClass), predictedClass: cls(f?.predictedClass) };
}

/** What the grid shows, in words: "12 of 256 images shown (true 3, predicted 8); the evaluation kept 256 of 360 dev examples, all 31 misclassified among them." */
export function describeGrid(p: Pick<ImagePredictions, 'labels' | 'examples' | 'misclassified' | 'items'>, f: GridFilter, shown: number, split: string): string {
  const parts: string[] = [];
  if (f.show === 'misclassified') parts.push('misclassified');
  if (f.trueClass !== null) parts.push(`true ${p.labels[f.trueClass]}`);
  if (f.predictedClass !== null) parts.push(`predicted ${p.labels[f.predictedClass]}`);
  const kept = p.items.length;
  const wrongKept = p.items.filter((i) => i.true !== i.predicted).length;
  const coverage =
    kept === p.examples
      ? `all ${p.examples} ${split} examples`
      : `${kept} of ${p.examples} ${split} examples, ${wrongKept === p.misclassified ? `all ${p.misclassified}` : `${wrongKept} of the ${p.misclassified}`} misclassified first`;
  return `${shown} of ${kept} images${parts.length ? ` (${parts.join(', ')})` : ''}; the evaluation kept ${coverage}.`;
}
