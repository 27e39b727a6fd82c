import * as zlib from 'node:zlib';
import { UserInputError } from '../../errors';
import { crc32 } from '../../util/crc32';

/**
 * A PNG decoder (www.w3.org/TR/png): every colour type (grey, RGB, palette, grey with alpha, RGBA), bit depths 1
 * to 16, the five scanline filters, palette transparency (tRNS), chunk CRCs checked. Interlaced (Adam7) images are
 * refused with a message. Written here rather than taken from npm because the format needs only zlib, which Node
 * has, and the decoder is short enough to own.
 */

export interface DecodedImage {
  width: number;
  height: number;
  /** 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA. */
  channels: 1 | 2 | 3 | 4;
  /** Row-major, interleaved channels, in [0, 1]. */
  data: Float32Array;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);


/** Samples per pixel of each colour type. */
const SAMPLES: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const ALLOWED_DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && SIGNATURE.equals(Buffer.from(bytes.subarray(0, 8)));
}

/** Decodes PNG bytes; `file` names the file in errors. */
export function decodePng(bytes: Buffer, file: string): DecodedImage {
  const fail = (why: string): never => {
    throw new UserInputError(`cannot read the PNG image: ${why}`, { file });
  };
  if (!isPng(bytes)) fail('not a PNG file (its first bytes are not the PNG signature)');
  let pos = 8;
  let header: { width: number; height: number; depth: number; colourType: number; interlace: number } | null = null;
  let palette: Uint8Array | null = null;
  let paletteAlpha: Uint8Array | null = null;
  const idat: Buffer[] = [];
  let ended = false;
  while (pos < bytes.length) {
    if (pos + 12 > bytes.length) fail(`truncated chunk at byte ${pos}`);
    const length = bytes.readUInt32BE(pos);
    const type = bytes.toString('latin1', pos + 4, pos + 8);
    if (pos + 12 + length > bytes.length) fail(`truncated ${type} chunk at byte ${pos} (the file ends before its ${length} bytes)`);
    const data = bytes.subarray(pos + 8, pos + 8 + length);
    if (crc32(bytes, pos + 4, pos + 8 + length) !== bytes.readUInt32BE(pos + 8 + length)) fail(`bad CRC in the ${type} chunk at byte ${pos} (the file is corrupt)`);
    pos += 12 + length;
    if (type === 'IHDR') {
      if (length !== 13) fail('IHDR chunk of the wrong length');
      header = { width: data.readUInt32BE(0), height: data.readUInt32BE(4), depth: data[8], colourType: data[9], interlace: data[12] };
    } else if (!header) {
      fail('the first chunk is not IHDR');
    } else if (type === 'PLTE') palette = data;
    else if (type === 'tRNS') paletteAlpha = data;
    else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') {
      ended = true;
      break;
    }
  }
  if (!header) return fail('no IHDR chunk');
  if (!ended) fail('no IEND chunk (truncated)');
  const { width, height, depth, colourType, interlace } = header;
  if (width === 0 || height === 0) fail(`empty image (${width} x ${height})`);
  if (!(colourType in SAMPLES) || !ALLOWED_DEPTHS[colourType].includes(depth)) fail(`invalid colour type ${colourType} with bit depth ${depth}`);
  if (interlace !== 0) fail('interlaced (Adam7) PNGs are not supported: save it without interlacing');
  if (colourType === 3 && !palette) fail('palette image without a PLTE chunk');
  if (idat.length === 0) fail('no image data (IDAT)');
  let raw: Buffer;
  try {
    raw = zlib.inflateSync(Buffer.concat(idat));
  } catch (err) {
    return fail(`corrupt compressed data (${(err as Error).message})`);
  }
  const samples = SAMPLES[colourType];
  const bitsPerPixel = samples * depth;
  const rowBytes = Math.ceil((width * bitsPerPixel) / 8);
  const bpp = Math.max(1, bitsPerPixel >> 3);
  if (raw.length < height * (rowBytes + 1)) fail(`image data cut short: ${raw.length} bytes for ${height} rows of ${rowBytes + 1}`);
  const pixels = unfilter(raw, width, height, rowBytes, bpp, fail);

  const hasPaletteAlpha = colourType === 3 && paletteAlpha !== null;
  const channels = (colourType === 3 ? (hasPaletteAlpha ? 4 : 3) : samples) as DecodedImage['channels'];
  const out = new Float32Array(width * height * channels);
  const max = (1 << depth) - 1;
  const sample = (row: number, i: number): number => {
    const base = row * rowBytes;
    if (depth === 8) return pixels[base + i];
    if (depth === 16) return (pixels[base + 2 * i] << 8) | pixels[base + 2 * i + 1];
    const bit = i * depth;
    return (pixels[base + (bit >> 3)] >> (8 - depth - (bit & 7))) & max;
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * channels;
      if (colourType === 3) {
        const index = sample(y, x);
        if (3 * index + 2 >= palette!.length) fail(`palette index ${index} beyond the ${palette!.length / 3} colours of PLTE`);
        for (let c = 0; c < 3; c++) out[o + c] = palette![3 * index + c] / 255;
        if (hasPaletteAlpha) out[o + 3] = (index < paletteAlpha!.length ? paletteAlpha![index] : 255) / 255;
      } else {
        for (let c = 0; c < samples; c++) out[o + c] = sample(y, x * samples + c) / max;
      }
    }
  }
  return { width, height, channels, data: out };
}

/** Undoes the per-row filters (None, Sub, Up, Average, Paeth) into rows without their filter bytes. */
function unfilter(raw: Buffer, width: number, height: number, rowBytes: number, bpp: number, fail: (why: string) => never): Uint8Array {
  const out = new Uint8Array(height * rowBytes);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (rowBytes + 1)];
    const src = y * (rowBytes + 1) + 1;
    const dst = y * rowBytes;
    for (let i = 0; i < rowBytes; i++) {
      const a = i >= bpp ? out[dst + i - bpp] : 0;
      const b = y > 0 ? out[dst - rowBytes + i] : 0;
      const c = y > 0 && i >= bpp ? out[dst - rowBytes + i - bpp] : 0;
      let predictor: number;
      switch (filter) {
        case 0:
          predictor = 0;
          break;
        case 1:
          predictor = a;
          break;
        case 2:
          predictor = b;
          break;
        case 3:
          predictor = (a + b) >> 1;
          break;
        case 4:
          predictor = paeth(a, b, c);
          break;
        default:
          return fail(`unknown filter type ${filter} on row ${y}`);
      }
      out[dst + i] = (raw[src + i] + predictor) & 0xff;
    }
  }
  return out;
}

/**
 * PNG bytes of an 8-bit grey (1 channel) or RGB (3 channels) image, for the example builder and image grids.
 * Each row takes the filter whose output has the smallest sum of absolute values (the heuristic libpng uses);
 * deflate at level 9. Deterministic: the same pixels give the same bytes.
 */
export function encodePng(width: number, height: number, channels: 1 | 3, pixels: Uint8Array): Buffer {
  if (pixels.length !== width * height * channels) throw new Error(`encodePng: ${pixels.length} values for ${width} x ${height} x ${channels}`);
  const rowBytes = width * channels;
  const filtered = Buffer.alloc(height * (rowBytes + 1));
  const candidate = new Uint8Array(rowBytes);
  for (let y = 0; y < height; y++) {
    const row = pixels.subarray(y * rowBytes, (y + 1) * rowBytes);
    const above = y > 0 ? pixels.subarray((y - 1) * rowBytes, y * rowBytes) : null;
    let bestCost = Infinity;
    for (let filter = 0; filter <= 4; filter++) {
      let cost = 0;
      for (let i = 0; i < rowBytes; i++) {
        const a = i >= channels ? row[i - channels] : 0;
        const b = above ? above[i] : 0;
        const c = above && i >= channels ? above[i - channels] : 0;
        const predictor = filter === 0 ? 0 : filter === 1 ? a : filter === 2 ? b : filter === 3 ? (a + b) >> 1 : paeth(a, b, c);
        candidate[i] = (row[i] - predictor) & 0xff;
        cost += candidate[i] < 128 ? candidate[i] : 256 - candidate[i];
      }
      if (cost < bestCost) {
        bestCost = cost;
        filtered[y * (rowBytes + 1)] = filter;
        filtered.set(candidate, y * (rowBytes + 1) + 1);
      }
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8;
  header[9] = channels === 1 ? 0 : 2;
  return Buffer.concat([SIGNATURE, pngChunk('IHDR', header), pngChunk('IDAT', zlib.deflateSync(filtered, { level: 9 })), pngChunk('IEND', Buffer.alloc(0))]);
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write(type, 4, 'latin1');
  data.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(chunk, 4, 8 + data.length), 8 + data.length);
  return chunk;
}
