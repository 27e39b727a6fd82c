import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserInputError } from '../../errors';
import { Rng } from '../../util/random';
import { IdxArray, readIdx } from './idx';
import { decodeJpeg, isJpeg } from './jpeg';
import { decodePng, DecodedImage, isPng } from './png';

/**
 * Image classification data: IDX files (images and labels, as MNIST ships) or a folder with one subfolder of
 * images per class. Every image becomes the network's input size and channels (area-averaged resize, alpha
 * composited onto white, colour to grey by luminance or grey repeated to colour), values in [0, 1].
 */

export interface ImageExample {
  /** size x size x channels, row-major, in [0, 1] before normalisation. */
  pixels: Float32Array;
  label: number;
  /** Where it came from, for messages and the prediction grid: `file` or `file#index`. */
  source: string;
}

export interface ImageShape {
  size: number;
  channels: 1 | 3;
}

export interface ImageSplit {
  examples: ImageExample[];
  /** Class names in label order. */
  labels: string[];
}

/** Image files a class folder may hold (by extension, case-insensitive; the format itself is read from the bytes). */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg'];

/**
 * An IDX pair: images [N, H, W] (grey) or [N, H, W, C] (C = 1 or 3), unsigned bytes 0..255, and labels [N], class
 * indices. `labelNames` names the classes (default: the indices as strings, 0..max).
 */
export function readIdxSplit(imagesFile: string, labelsFile: string, shape: ImageShape, labelNames?: string[]): ImageSplit {
  const images = readIdx(imagesFile);
  const labels = readIdx(labelsFile);
  const [n, h, w, c] = idxImageShape(images.shape, imagesFile);
  if (labels.shape.length !== 1) throw new UserInputError(`IDX labels must have one dimension (N), not ${labels.shape.length} (${labels.shape.join(' x ')})`, { file: labelsFile });
  if (labels.shape[0] !== n) throw new UserInputError(`${labels.shape[0]} labels for ${n} images in ${imagesFile}`, { file: labelsFile });
  let max = 0;
  for (let i = 0; i < n; i++) {
    const y = labels.data[i];
    if (!Number.isInteger(y) || y < 0) throw new UserInputError(`label ${i} is ${y}, not a class index (a non-negative integer)`, { file: labelsFile });
    max = Math.max(max, y);
  }
  const names = labelNames ?? [...Array(max + 1).keys()].map(String);
  if (max >= names.length) throw new UserInputError(`label ${max} has no name: ${names.length} classes are named`, { file: labelsFile });
  return { examples: idxImages(images, imagesFile, shape, (i) => labels.data[i]), labels: names };
}

/** N, height, width and channels of an IDX images array (3 dimensions: grey, 4: 1 or 3 channels). */
function idxImageShape(shape: number[], file: string): [number, number, number, 1 | 3] {
  if (shape.length !== 3 && shape.length !== 4) {
    throw new UserInputError(`IDX images must have 3 dimensions (N, height, width) or 4 (N, height, width, channels), not ${shape.length} (${shape.join(' x ')})`, { file });
  }
  const c = shape[3] ?? 1;
  if (c !== 1 && c !== 3) throw new UserInputError(`IDX images must have 1 or 3 channels, not ${c}`, { file });
  return [shape[0], shape[1], shape[2], c];
}

/** An IDX images array's images at the network's shape (values / 255), labelled by `labelOf`. */
function idxImages(images: IdxArray, file: string, shape: ImageShape, labelOf: (i: number) => number): ImageExample[] {
  const [n, h, w, c] = idxImageShape(images.shape, file);
  const perImage = h * w * c;
  const examples: ImageExample[] = [];
  for (let i = 0; i < n; i++) {
    const data = new Float32Array(perImage);
    for (let k = 0; k < perImage; k++) data[k] = images.data[i * perImage + k] / 255;
    const img: DecodedImage = { width: w, height: h, channels: c, data };
    examples.push({ pixels: toInput(img, shape), label: labelOf(i), source: `${file}#${i}` });
  }
  return examples;
}

/**
 * Images without labels, for prediction: an IDX images file (each image's source `file#index`), one PNG or JPEG
 * file, or a folder of them (its subfolders too, in sorted order; hidden files skipped, any other file an error
 * naming it). Every example's label is 0 (none is known).
 */
export function readUnlabelledImages(input: string, shape: ImageShape): ImageExample[] {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(input);
  } catch (err) {
    throw new UserInputError(`cannot read the input: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (err as Error).message}`, { file: input });
  }
  if (stat.isDirectory()) {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
        if (e.name.startsWith('.')) continue;
        const file = path.join(dir, e.name);
        if (e.isDirectory()) walk(file);
        else if (IMAGE_EXTENSIONS.includes(path.extname(e.name).toLowerCase())) files.push(file);
        else throw new UserInputError(`not an image this tool reads (${IMAGE_EXTENSIONS.join(', ')})`, { file });
      }
    };
    walk(input);
    if (files.length === 0) throw new UserInputError(`the folder holds no images (${IMAGE_EXTENSIONS.join(', ')})`, { file: input });
    return files.map((file) => ({ pixels: toInput(readImage(file), shape), label: 0, source: file }));
  }
  const head = Buffer.alloc(8);
  const fd = fs.openSync(input, 'r');
  try {
    fs.readSync(fd, head, 0, 8, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (isPng(head) || isJpeg(head)) return [{ pixels: toInput(readImage(input), shape), label: 0, source: input }];
  return idxImages(readIdx(input), input, shape, () => 0);
}

/** A folder with one subfolder per class (the class names, sorted), each holding images. */
export function readImageFolder(dir: string, shape: ImageShape, labelNames?: string[]): ImageSplit {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    throw new UserInputError(`cannot read the image folder: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (err as Error).message}`, { file: dir });
  }
  const classes = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
  if (classes.length === 0) throw new UserInputError('no class folders: an image folder holds one subfolder of images per class', { file: dir });
  const names = labelNames ?? classes;
  const unknown = classes.filter((c) => !names.includes(c));
  if (unknown.length) throw new UserInputError(`class folders not among the task's labels: ${unknown.join(', ')}`, { file: dir });
  const examples: ImageExample[] = [];
  for (const cls of classes) {
    const classDir = path.join(dir, cls);
    const files = fs.readdirSync(classDir).filter((f) => !f.startsWith('.')).sort();
    // An empty class would be a label the network can never be shown: most likely a copy that went wrong.
    if (files.length === 0) throw new UserInputError(`the class folder "${cls}" holds no images`, { file: classDir });
    for (const f of files) {
      const file = path.join(classDir, f);
      if (!IMAGE_EXTENSIONS.includes(path.extname(f).toLowerCase())) {
        throw new UserInputError(`not an image this tool reads (${IMAGE_EXTENSIONS.join(', ')})`, { file });
      }
      examples.push({ pixels: toInput(readImage(file), shape), label: names.indexOf(cls), source: file });
    }
  }
  return { examples, labels: names };
}

export function readImage(file: string): DecodedImage {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new UserInputError(`cannot read the image: ${(err as Error).message}`, { file });
  }
  // By content, not by name: a JPEG saved as .png is still read.
  if (isPng(bytes)) return decodePng(bytes, file);
  if (isJpeg(bytes)) return decodeJpeg(bytes, file);
  throw new UserInputError(`cannot read the image: ${bytes.length === 0 ? 'the file is empty' : 'neither a PNG nor a JPEG file (unknown format)'}`, { file });
}

/** An image at the network's size and channels, values in [0, 1]. */
export function toInput(img: DecodedImage, shape: ImageShape): Float32Array {
  const opaque = flattenAlpha(img);
  const channels = convertChannels(opaque.data, opaque.width * opaque.height, opaque.channels as 1 | 3, shape.channels);
  return resizeArea(channels, opaque.width, opaque.height, shape.channels, shape.size, shape.size);
}

/** Transparent pixels composited onto white (drawings and emoji on transparent backgrounds become dark on white). */
function flattenAlpha(img: DecodedImage): DecodedImage {
  if (img.channels === 1 || img.channels === 3) return img;
  const colour = img.channels - 1;
  const n = img.width * img.height;
  const data = new Float32Array(n * colour);
  for (let i = 0; i < n; i++) {
    const alpha = img.data[i * img.channels + colour];
    for (let c = 0; c < colour; c++) data[i * colour + c] = img.data[i * img.channels + c] * alpha + (1 - alpha);
  }
  return { ...img, channels: colour as 1 | 3, data };
}

function convertChannels(data: Float32Array, n: number, from: 1 | 3, to: 1 | 3): Float32Array {
  if (from === to) return data;
  const out = new Float32Array(n * to);
  if (to === 1) for (let i = 0; i < n; i++) out[i] = 0.299 * data[3 * i] + 0.587 * data[3 * i + 1] + 0.114 * data[3 * i + 2];
  else for (let i = 0; i < n; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = data[i];
  return out;
}

/**
 * Resize by area averaging: each output pixel is the mean of the input area it covers (exact for integer
 * factors, no aliasing when shrinking; piecewise constant when enlarging). Same size: a copy.
 */
export function resizeArea(data: Float32Array, w: number, h: number, channels: number, outW: number, outH: number): Float32Array {
  if (w === outW && h === outH) return data.slice();
  const xw = areaWeights(w, outW);
  const yw = areaWeights(h, outH);
  const out = new Float32Array(outW * outH * channels);
  for (let oy = 0; oy < outH; oy++) {
    for (const [iy, wy] of yw[oy]) {
      for (let ox = 0; ox < outW; ox++) {
        for (const [ix, wx] of xw[ox]) {
          const weight = wy * wx;
          const src = (iy * w + ix) * channels;
          const dst = (oy * outW + ox) * channels;
          for (let c = 0; c < channels; c++) out[dst + c] += weight * data[src + c];
        }
      }
    }
  }
  return out;
}

/** For each output index, the input indices it covers and their weights (summing to 1). */
function areaWeights(inSize: number, outSize: number): [number, number][][] {
  const scale = inSize / outSize;
  return [...Array(outSize).keys()].map((o) => {
    const start = o * scale;
    const end = (o + 1) * scale;
    const covered: [number, number][] = [];
    for (let i = Math.floor(start); i < Math.min(inSize, Math.ceil(end)); i++) {
      const overlap = Math.min(end, i + 1) - Math.max(start, i);
      if (overlap > 0) covered.push([i, overlap / scale]);
    }
    return covered;
  });
}

/** Per-channel mean and standard deviation over a set of examples (the training set's, for normalisation). */
export function channelStats(examples: ImageExample[], channels: number): { mean: number[]; std: number[] } {
  const sum = new Float64Array(channels);
  const sq = new Float64Array(channels);
  let n = 0;
  for (const ex of examples) {
    for (let i = 0; i < ex.pixels.length; i++) {
      const v = ex.pixels[i];
      sum[i % channels] += v;
      sq[i % channels] += v * v;
    }
    n += ex.pixels.length / channels;
  }
  const mean = [...sum].map((s) => s / Math.max(1, n));
  const std = [...sq].map((s, c) => Math.sqrt(Math.max(0, s / Math.max(1, n) - mean[c] * mean[c])) || 1);
  return { mean, std };
}

export interface AugmentOptions {
  /** Zero padding around the image before a random crop of the original size; 0: no crop. */
  cropPadding: number;
  /** Mirror left-right with probability 1/2 (not for digits or text, whose mirror image is another thing). */
  flip: boolean;
}

/**
 * A seeded random crop (after zero padding, as in the CIFAR recipes Rebuffi et al. follow) and flip. It runs after
 * normalisation, so the padding is the training set's mean colour.
 */
export function augment(pixels: Float32Array, size: number, channels: number, opts: AugmentOptions, rng: Rng): Float32Array {
  const p = opts.cropPadding;
  const dy = p > 0 ? rng.int(2 * p + 1) - p : 0;
  const dx = p > 0 ? rng.int(2 * p + 1) - p : 0;
  const flip = opts.flip && rng.next() < 0.5;
  if (dx === 0 && dy === 0 && !flip) return pixels;
  const out = new Float32Array(pixels.length);
  for (let y = 0; y < size; y++) {
    const sy = y + dy;
    if (sy < 0 || sy >= size) continue;
    for (let x = 0; x < size; x++) {
      const sx = (flip ? size - 1 - x : x) + dx;
      if (sx < 0 || sx >= size) continue;
      for (let c = 0; c < channels; c++) out[(y * size + x) * channels + c] = pixels[(sy * size + sx) * channels + c];
    }
  }
  return out;
}

/** (x - mean) / std per channel. */
export function normalise(pixels: Float32Array, stats: { mean: number[]; std: number[] }): Float32Array {
  const channels = stats.mean.length;
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = (pixels[i] - stats.mean[i % channels]) / stats.std[i % channels];
  return out;
}

/**
 * A batch of images as one array [B, size, size, channels]: normalised, then (for training) augmented with
 * `rng`, which draws in example order so the same seed gives the same batch; or with a generator per example
 * (`rng` a function of the example's index), so that any part of a batch is augmented as in the whole batch.
 */
export function imageBatch(
  examples: ImageExample[],
  shape: ImageShape,
  stats: { mean: number[]; std: number[] },
  augmentation?: { options: AugmentOptions; rng: Rng | ((index: number) => Rng) },
): { pixels: Float32Array; labels: Int32Array } {
  const per = shape.size * shape.size * shape.channels;
  const pixels = new Float32Array(examples.length * per);
  const labels = new Int32Array(examples.length);
  examples.forEach((ex, i) => {
    let x = normalise(ex.pixels, stats);
    if (augmentation) x = augment(x, shape.size, shape.channels, augmentation.options, typeof augmentation.rng === 'function' ? augmentation.rng(i) : augmentation.rng);
    pixels.set(x, i * per);
    labels[i] = ex.label;
  });
  return { pixels, labels };
}
