/// <reference lib="dom" />
import type { Frame, Page } from 'playwright-core';

/**
 * How much of a canvas is drawn: painted (not transparent) pixels and distinct colours (5 bits a channel), in a
 * page (the webview harness) or a frame (a webview inside the VS Code workbench).
 */
export async function canvasInk(where: Page | Frame, selector: string): Promise<{ painted: number; colours: number; width: number; height: number }> {
  return where.$eval(selector, (el) => {
    const canvas = el as HTMLCanvasElement;
    const ctx = canvas.getContext('2d');
    if (!ctx || !canvas.width || !canvas.height) return { painted: 0, colours: 0, width: canvas.width, height: canvas.height };
    const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    let painted = 0;
    const colours = new Set<number>();
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] === 0) continue;
      painted++;
      colours.add(((data[i] >> 3) << 10) | ((data[i + 1] >> 3) << 5) | (data[i + 2] >> 3));
    }
    return { painted, colours: colours.size, width: canvas.width, height: canvas.height };
  });
}
