import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { encodeIdxUint8, readIdx } from '../../../src/engine/data/images/idx';
import { decodeJpeg } from '../../../src/engine/data/images/jpeg';
import { decodePng, encodePng } from '../../../src/engine/data/images/png';
import { augment, channelStats, imageBatch, readIdxSplit, readImage, readImageFolder, resizeArea, toInput } from '../../../src/engine/data/images/imageSet';
import { Rng } from '../../../src/engine/util/random';
import { tempDir } from '../../helpers/fixtures';
import { runPython } from '../../helpers/python';

/**
 * PNG and IDX files written by Python's standard library (zlib, struct, gzip), an encoder independent of the
 * decoder under test: every colour type and bit depth, each of the five filters, palette transparency.
 */
const WRITE_PNGS = String.raw`
import json, random, struct, sys, zlib
out = sys.argv[1]
random.seed(5)

def chunk(kind, data):
    c = struct.pack('>I', len(data)) + kind + data
    return c + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)

def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)

def filtered(rows, bpp):
    out, prev = b'', bytes(len(rows[0]))
    for y, row in enumerate(rows):
        f = y % 5
        enc = bytearray()
        for i, x in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][f]
            enc.append((x - pred) & 0xff)
        out += bytes([f]) + bytes(enc)
        prev = row
    return out

def pack(samples, depth):
    if depth == 8: return bytes(samples)
    if depth == 16: return b''.join(struct.pack('>H', s) for s in samples)
    bits, out, acc, n = depth, bytearray(), 0, 0
    for s in samples:
        acc = (acc << bits) | s; n += bits
        if n == 8: out.append(acc); acc, n = 0, 0
    if n: out.append(acc << (8 - n))
    return bytes(out)

cases = []
samples_per = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
for ctype, depth in [(0, 1), (0, 2), (0, 4), (0, 8), (0, 16), (2, 8), (2, 16), (3, 2), (3, 8), (4, 8), (6, 8), (6, 16)]:
    w, h = 7, 6
    s = samples_per[ctype]
    maxv = (1 << depth) - 1
    ncolours = min(5, 1 << depth)
    vals = [[random.randint(0, ncolours - 1 if ctype == 3 else maxv) for _ in range(w * s)] for _ in range(h)]
    rows = [pack(r, depth) for r in vals]
    bpp = max(1, s * depth // 8)
    ihdr = struct.pack('>IIBBBBB', w, h, depth, ctype, 0, 0, 0)
    body = chunk(b'IHDR', ihdr)
    palette = [[random.randint(0, 255) for _ in range(3)] for _ in range(ncolours)]
    alpha = [random.randint(0, 255) for _ in range(3)]
    if ctype == 3:
        body += chunk(b'PLTE', bytes(sum(palette, [])))
        body += chunk(b'tRNS', bytes(alpha))
    data = zlib.compress(filtered(rows, bpp))
    # Image data split over two IDAT chunks, as encoders may.
    body += chunk(b'IDAT', data[:10]) + chunk(b'IDAT', data[10:]) + chunk(b'IEND', b'')
    name = f'c{ctype}d{depth}.png'
    open(f'{out}/{name}', 'wb').write(b'\x89PNG\r\n\x1a\n' + body)
    if ctype == 3:
        expected = []
        for r in vals:
            for i in r:
                expected += [v / 255 for v in palette[i]] + [(alpha[i] if i < len(alpha) else 255) / 255]
    else:
        expected = [v / maxv for r in vals for v in r]
    cases.append({'file': name, 'width': w, 'height': h, 'expected': expected})
print(json.dumps(cases))
`;

describe('PNG decoder', () => {
  it('decodes every colour type, bit depth and filter as an independent encoder wrote them', () => {
    const dir = tempDir();
    const cases = JSON.parse(runPython(WRITE_PNGS, [dir])) as { file: string; width: number; height: number; expected: number[] }[];
    expect(cases).toHaveLength(12);
    for (const c of cases) {
      const img = decodePng(fs.readFileSync(path.join(dir, c.file)), c.file);
      expect([img.width, img.height], c.file).toEqual([c.width, c.height]);
      expect(img.data.length, c.file).toBe(c.expected.length);
      let worst = 0;
      for (let i = 0; i < c.expected.length; i++) worst = Math.max(worst, Math.abs(img.data[i] - c.expected[i]));
      expect(worst, c.file).toBeLessThan(1e-6);
    }
  });

  it('names the file and the fault for corrupt PNGs', () => {
    const dir = tempDir();
    const cases = JSON.parse(runPython(WRITE_PNGS, [dir])) as { file: string }[];
    const good = fs.readFileSync(path.join(dir, cases[5].file));
    const flipped = Buffer.from(good);
    flipped[40] ^= 0xff;
    expect(() => decodePng(flipped, 'flipped.png')).toThrow(/flipped\.png.*bad CRC|bad CRC.*flipped\.png/);
    expect(() => decodePng(good.subarray(0, good.length - 20), 'cut.png')).toThrow(/cut\.png/);
    expect(() => decodePng(good.subarray(0, good.length - 20), 'cut.png')).toThrow(/truncated/);
    expect(() => decodePng(Buffer.from('hello, not an image'), 'text.png')).toThrow(/text\.png.*not a PNG file|not a PNG file.*text\.png/);
    // The interlace flag set (CRC fixed up): refused by name.
    const interlaced = Buffer.from(good);
    interlaced[8 + 8 + 12] = 1;
    const crc = zlib.crc32(interlaced.subarray(12, 12 + 4 + 13));
    interlaced.writeUInt32BE(crc, 12 + 4 + 13);
    expect(() => decodePng(interlaced, 'adam7.png')).toThrow(/interlaced/);
  });
});

/**
 * JPEGs written by Pillow (libjpeg), and Pillow's own decoding of them as the reference: colour with 4:4:4 and
 * 4:2:0 chroma, progressive, grey. Decoders may differ by rounding in the inverse DCT and colour conversion, and
 * in how they upsample 4:2:0 chroma, hence the tolerances (measured: at most 3 levels of 255 at 4:4:4, a mean of
 * 1.4 at 4:2:0, none for grey).
 */
const WRITE_JPEGS = String.raw`
import json, sys
import numpy as np
from PIL import Image
out = sys.argv[1]
y, x = np.mgrid[0:40, 0:48]
rgb = np.stack([(x * 5) % 256, (y * 6) % 256, ((x + y) * 3) % 256], -1).astype('uint8')
Image.fromarray(rgb).save(f'{out}/c444.jpg', quality=92, subsampling=0)
Image.fromarray(rgb).save(f'{out}/c420.jpg', quality=92, subsampling=2)
Image.fromarray(rgb).save(f'{out}/progressive.jpg', quality=92, subsampling=0, progressive=True)
Image.fromarray(rgb[:, :, 1]).save(f'{out}/grey.jpeg', quality=92)
print(json.dumps({f: np.asarray(Image.open(f'{out}/{f}').convert('RGB')).reshape(-1).tolist() for f in ['c444.jpg', 'c420.jpg', 'progressive.jpg', 'grey.jpeg']}))
`;

describe('JPEG images', () => {
  it('decodes baseline, progressive, 4:2:0 and grey JPEGs as libjpeg does', () => {
    const dir = tempDir();
    const reference = JSON.parse(runPython(WRITE_JPEGS, [dir])) as Record<string, number[]>;
    const tolerance: Record<string, { max: number; mean: number }> = {
      'c444.jpg': { max: 4, mean: 1 },
      'progressive.jpg': { max: 4, mean: 1 },
      'c420.jpg': { max: 16, mean: 2 },
      'grey.jpeg': { max: 1, mean: 0.1 },
    };
    for (const [file, expected] of Object.entries(reference)) {
      const img = readImage(path.join(dir, file));
      expect([img.width, img.height, img.channels], file).toEqual([48, 40, 3]);
      let max = 0;
      let sum = 0;
      for (let i = 0; i < expected.length; i++) {
        const d = Math.abs(img.data[i] * 255 - expected[i]);
        max = Math.max(max, d);
        sum += d;
      }
      expect(max, file).toBeLessThanOrEqual(tolerance[file].max);
      expect(sum / expected.length, file).toBeLessThanOrEqual(tolerance[file].mean);
    }
  });

  it('names the file and the fault for truncated, corrupt or unknown images; reads a JPEG by its bytes whatever its name', () => {
    const dir = tempDir();
    runPython(WRITE_JPEGS, [dir]);
    const good = fs.readFileSync(path.join(dir, 'c420.jpg'));
    const cut = path.join(dir, 'cut.jpg');
    fs.writeFileSync(cut, good.subarray(0, good.length - 200));
    expect(() => readImage(cut)).toThrow(/cut\.jpg.*cannot read the JPEG image.*truncated or corrupt/);
    expect(() => decodeJpeg(good.subarray(0, 2), 'two-bytes.jpg')).toThrow(/two-bytes\.jpg.*not a JPEG file/);
    const garbage = path.join(dir, 'garbage.jpg');
    fs.writeFileSync(garbage, Buffer.concat([good.subarray(0, 3), Buffer.alloc(300, 0x41)]));
    expect(() => readImage(garbage)).toThrow(/garbage\.jpg.*cannot read the JPEG image/);
    const gif = path.join(dir, 'anim.jpg');
    fs.writeFileSync(gif, Buffer.from('GIF89a\x01\x00\x01\x00', 'latin1'));
    expect(() => readImage(gif)).toThrow(/anim\.jpg.*neither a PNG nor a JPEG file/);
    const empty = path.join(dir, 'empty.png');
    fs.writeFileSync(empty, '');
    expect(() => readImage(empty)).toThrow(/empty\.png.*the file is empty/);
    // A JPEG named .png (a common mislabelling) is read by its content.
    const misnamed = path.join(dir, 'photo.png');
    fs.writeFileSync(misnamed, good);
    expect(Array.from(readImage(misnamed).data)).toEqual(Array.from(decodeJpeg(good, 'c420.jpg').data));
  });
});

describe('PNG encoder', () => {
  it('writes grey and RGB PNGs that Pillow reads back exactly, the same bytes for the same pixels', () => {
    const dir = tempDir();
    const rgb = Uint8Array.from({ length: 9 * 7 * 3 }, (_, i) => (i * 37 + (i >> 4) * 11) % 256);
    const grey = Uint8Array.from({ length: 9 * 7 }, (_, i) => (i * i) % 256);
    fs.writeFileSync(path.join(dir, 'rgb.png'), encodePng(9, 7, 3, rgb));
    fs.writeFileSync(path.join(dir, 'grey.png'), encodePng(9, 7, 1, grey));
    const read = JSON.parse(
      runPython(
        String.raw`
import json, sys
import numpy as np
from PIL import Image
print(json.dumps({f: [Image.open(f'{sys.argv[1]}/{f}.png').mode, np.asarray(Image.open(f'{sys.argv[1]}/{f}.png')).reshape(-1).tolist()] for f in ['rgb', 'grey']}))`,
        [dir],
      ),
    ) as Record<string, [string, number[]]>;
    expect(read.rgb).toEqual(['RGB', Array.from(rgb)]);
    expect(read.grey).toEqual(['L', Array.from(grey)]);
    expect(encodePng(9, 7, 3, rgb).equals(fs.readFileSync(path.join(dir, 'rgb.png')))).toBe(true);
    expect(Array.from(decodePng(encodePng(9, 7, 1, grey), 'grey.png').data, (v) => Math.round(v * 255))).toEqual(Array.from(grey));
  });
});

describe('IDX files', () => {
  const writeIdx = String.raw`
import gzip, struct, sys
out = sys.argv[1]
images = bytes((i * 7) % 256 for i in range(3 * 4 * 4))
open(f'{out}/images.idx', 'wb').write(struct.pack('>BBBBIII', 0, 0, 8, 3, 3, 4, 4) + images)
labels = struct.pack('>BBBBI', 0, 0, 8, 1, 3) + bytes([2, 0, 1])
gzip.open(f'{out}/labels.idx.gz', 'wb').write(labels)
open(f'{out}/ints.idx', 'wb').write(struct.pack('>BBBBI', 0, 0, 0x0c, 1, 2) + struct.pack('>ii', -5, 70000))
`;

  it('reads unsigned bytes, gzipped or not, and wider types big-endian', () => {
    const dir = tempDir();
    runPython(writeIdx, [dir]);
    const images = readIdx(path.join(dir, 'images.idx'));
    expect(images.shape).toEqual([3, 4, 4]);
    expect(images.data[5]).toBe(35);
    expect(readIdx(path.join(dir, 'labels.idx.gz')).data).toEqual(Float64Array.from([2, 0, 1]));
    expect(Array.from(readIdx(path.join(dir, 'ints.idx')).data)).toEqual([-5, 70000]);
    const split = readIdxSplit(path.join(dir, 'images.idx'), path.join(dir, 'labels.idx.gz'), { size: 4, channels: 1 });
    expect(split.labels).toEqual(['0', '1', '2']);
    expect(split.examples.map((e) => e.label)).toEqual([2, 0, 1]);
    expect(split.examples[0].pixels[5]).toBeCloseTo(35 / 255, 6);
    expect(split.examples[1].source).toBe(`${path.join(dir, 'images.idx')}#1`);
  });

  it('names the file and the fault for corrupt or mismatched IDX files', () => {
    const dir = tempDir();
    runPython(writeIdx, [dir]);
    const images = path.join(dir, 'images.idx');
    const cut = path.join(dir, 'cut.idx');
    fs.writeFileSync(cut, fs.readFileSync(images).subarray(0, 30));
    expect(() => readIdx(cut)).toThrow(/cut\.idx.*truncated|truncated.*cut\.idx/);
    const badGzip = path.join(dir, 'bad.idx.gz');
    fs.writeFileSync(badGzip, fs.readFileSync(path.join(dir, 'labels.idx.gz')).subarray(0, 15));
    expect(() => readIdx(badGzip)).toThrow(/bad\.idx\.gz.*gzip|gzip.*bad\.idx\.gz/);
    const notIdx = path.join(dir, 'notes.idx');
    fs.writeFileSync(notIdx, 'some text');
    expect(() => readIdx(notIdx)).toThrow(/notes\.idx.*not an IDX file|not an IDX file.*notes\.idx/);
    const fourLabels = path.join(dir, 'four.idx');
    fs.writeFileSync(fourLabels, encodeIdxUint8([4], [0, 1, 0, 1]));
    expect(() => readIdxSplit(images, fourLabels, { size: 4, channels: 1 })).toThrow(/4 labels for 3 images/);
    expect(() => readIdxSplit(images, path.join(dir, 'labels.idx.gz'), { size: 4, channels: 1 }, ['a', 'b'])).toThrow(/label 2 has no name/);
    expect(() => readIdx(path.join(dir, 'missing.idx'))).toThrow(/missing\.idx.*not found|not found.*missing\.idx/);
  });
});

describe('image folders', () => {
  it('reads one subfolder per class, converts to the network input, and names an unreadable image', () => {
    const dir = tempDir();
    const pngDir = tempDir();
    const cases = JSON.parse(runPython(WRITE_PNGS, [pngDir])) as { file: string }[];
    const root = path.join(dir, 'train');
    for (const cls of ['cat', 'dog']) fs.mkdirSync(path.join(root, cls), { recursive: true });
    fs.copyFileSync(path.join(pngDir, 'c2d8.png'), path.join(root, 'cat', 'a.png'));
    fs.copyFileSync(path.join(pngDir, 'c6d16.png'), path.join(root, 'dog', 'b.png'));
    fs.copyFileSync(path.join(pngDir, 'c3d8.png'), path.join(root, 'dog', 'c.PNG'));
    const split = readImageFolder(root, { size: 4, channels: 3 });
    expect(split.labels).toEqual(['cat', 'dog']);
    expect(split.examples.map((e) => [path.basename(e.source), e.label])).toEqual([
      ['a.png', 0],
      ['b.png', 1],
      ['c.PNG', 1],
    ]);
    for (const e of split.examples) expect(e.pixels.length).toBe(4 * 4 * 3);
    expect(cases.length).toBe(12);
    // Grey conversion is by luminance, and transparent pixels become white.
    const grey = readImageFolder(root, { size: 4, channels: 1 });
    expect(grey.examples[0].pixels.length).toBe(16);
    fs.writeFileSync(path.join(root, 'dog', 'broken.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0]));
    expect(() => readImageFolder(root, { size: 4, channels: 3 })).toThrow(new RegExp(`${path.join(root, 'dog', 'broken.png').replace(/[/.]/g, '\\$&')}`));
    fs.rmSync(path.join(root, 'dog', 'broken.png'));
    fs.writeFileSync(path.join(root, 'cat', 'notes.txt'), 'x');
    expect(() => readImageFolder(root, { size: 4, channels: 3 })).toThrow(/notes\.txt.*not an image/);
    expect(() => readImageFolder(path.join(dir, 'nowhere'), { size: 4, channels: 3 })).toThrow(/nowhere.*not found|not found.*nowhere/);
  });
});

describe('image folders of mixed formats and sizes', () => {
  /**
   * A folder of 64 px colour images (RGBA PNG on a transparent background, RGB PNG, 4:4:4 JPEG) read for a
   * 28 x 28 grey network. The reference is computed by numpy as matrices: alpha over white, luminance
   * (0.299, 0.587, 0.114), then out = Wy . img . Wx^T with W[o, i] the share of input pixel i in output pixel
   * o's span [o * 64/28, (o + 1) * 64/28) (area averaging).
   */
  const WRITE_64PX = String.raw`
import json, sys
import numpy as np
from PIL import Image
out = sys.argv[1]
rng = np.random.default_rng(3)
y, x = np.mgrid[0:64, 0:64]
rgba = np.stack([(x * 4) % 256, (y * 4) % 256, rng.integers(0, 256, (64, 64)), ((x + y) * 2) % 256], -1).astype('uint8')
rgb = np.stack([(y * 3) % 256, (x * 2) % 256, ((x * y) // 16) % 256], -1).astype('uint8')
Image.fromarray(rgba, 'RGBA').save(f'{out}/round/a.png')
Image.fromarray(rgb).save(f'{out}/square/b.png')
Image.fromarray(rgb).save(f'{out}/square/c.jpg', quality=95, subsampling=0)

def weights(n_in, n_out):
    s = n_in / n_out
    w = np.zeros((n_out, n_in))
    for o in range(n_out):
        for i in range(n_in):
            w[o, i] = max(0.0, min((o + 1) * s, i + 1) - max(o * s, i)) / s
    return w

def grey28(img):
    img = img.astype(np.float64) / 255
    if img.shape[2] == 4:
        img = img[:, :, :3] * img[:, :, 3:] + (1 - img[:, :, 3:])
    g = img @ np.array([0.299, 0.587, 0.114])
    w = weights(64, 28)
    return (w @ g @ w.T).reshape(-1).tolist()

jpeg = np.asarray(Image.open(f'{out}/square/c.jpg').convert('RGB'))
print(json.dumps([grey28(rgba), grey28(rgb), grey28(jpeg)]))
`;

  it('turns 64 px colour PNGs and JPEGs into a 28 x 28 grey network input by area averaging', () => {
    const root = tempDir();
    for (const cls of ['round', 'square']) fs.mkdirSync(path.join(root, cls));
    const expected = JSON.parse(runPython(WRITE_64PX, [root])) as number[][];
    const split = readImageFolder(root, { size: 28, channels: 1 });
    expect(split.labels).toEqual(['round', 'square']);
    expect(split.examples.map((e) => [path.basename(e.source), e.label])).toEqual([
      ['a.png', 0],
      ['b.png', 1],
      ['c.jpg', 1],
    ]);
    split.examples.forEach((e, k) => {
      expect(e.pixels.length).toBe(28 * 28);
      // PNGs are exact (float32 rounding); the JPEG is compared with Pillow's decoding of it (IDCT rounding).
      const tolerance = k === 2 ? 3 / 255 : 1e-5;
      let worst = 0;
      for (let i = 0; i < e.pixels.length; i++) worst = Math.max(worst, Math.abs(e.pixels[i] - expected[k][i]));
      expect(worst, e.source).toBeLessThan(tolerance);
    });
    // The same images for a 32 x 32 colour network: three channels, values still in [0, 1].
    const colour = readImageFolder(root, { size: 32, channels: 3 });
    for (const e of colour.examples) {
      expect(e.pixels.length).toBe(32 * 32 * 3);
      expect(Math.min(...e.pixels)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...e.pixels)).toBeLessThanOrEqual(1 + 1e-6);
    }
  });

  it('names an empty class folder and a folder without class folders', () => {
    const root = tempDir();
    fs.mkdirSync(path.join(root, 'cat'));
    fs.mkdirSync(path.join(root, 'dog'));
    // Only a hidden file in "cat" (as file managers leave): no images.
    fs.writeFileSync(path.join(root, 'cat', '.DS_Store'), 'x');
    fs.writeFileSync(path.join(root, 'dog', 'a.png'), 'x');
    expect(() => readImageFolder(root, { size: 4, channels: 1 })).toThrow(new RegExp(`${path.join(root, 'cat').replace(/[/.]/g, '\\$&')}.*the class folder "cat" holds no images`));
    const flat = tempDir();
    fs.writeFileSync(path.join(flat, 'a.png'), '');
    expect(() => readImageFolder(flat, { size: 4, channels: 1 })).toThrow(/no class folders/);
  });
});

describe('resize, normalisation and augmentation', () => {
  it('transparent pixels are composited onto white; colour becomes grey by luminance, grey is repeated to colour', () => {
    // One RGBA pixel, pure red at half opacity: (1, 0.5, 0.5) on white.
    const rgba = { width: 1, height: 1, channels: 4 as const, data: Float32Array.from([1, 0, 0, 0.5]) };
    expect(Array.from(toInput(rgba, { size: 1, channels: 3 }))).toEqual([1, 0.5, 0.5]);
    expect(toInput(rgba, { size: 1, channels: 1 })[0]).toBeCloseTo(0.299 + 0.587 * 0.5 + 0.114 * 0.5, 6);
    const greyAlpha = { width: 1, height: 1, channels: 2 as const, data: Float32Array.from([0, 0.25]) };
    expect(Array.from(toInput(greyAlpha, { size: 1, channels: 3 }))).toEqual([0.75, 0.75, 0.75]);
  });

  it('area resize averages blocks exactly for integer factors', () => {
    const data = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
    expect(Array.from(resizeArea(data, 4, 4, 1, 2, 2))).toEqual([3.5, 5.5, 11.5, 13.5]);
    // Enlarging repeats pixels.
    expect(Array.from(resizeArea(Float32Array.from([1, 2]), 2, 1, 1, 4, 1))).toEqual([1, 1, 2, 2]);
  });

  it('normalised batches have zero mean and unit deviation per channel; augmentation is seeded, crops shift and flips mirror', () => {
    const size = 4;
    const examples = [0, 1, 2, 3].map((k) => ({ pixels: Float32Array.from({ length: 16 * 3 }, (_, i) => ((i * (k + 3)) % 7) / 7 + (i % 3)), label: k % 2, source: `x${k}` }));
    const stats = channelStats(examples, 3);
    const { pixels, labels } = imageBatch(examples, { size, channels: 3 }, stats);
    expect(Array.from(labels)).toEqual([0, 1, 0, 1]);
    for (let c = 0; c < 3; c++) {
      const v = Array.from(pixels).filter((_, i) => i % 3 === c);
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
      expect(mean).toBeCloseTo(0, 5);
      expect(sd).toBeCloseTo(1, 4);
    }
    const img = Float32Array.from({ length: 16 }, (_, i) => i + 1);
    const flipOnly = augment(img, size, 1, { cropPadding: 0, flip: true }, new Rng(1));
    const flips = [1, 2, 3, 4, 5, 6].map((s) => augment(img, size, 1, { cropPadding: 0, flip: true }, new Rng(s)));
    // Each result is the image or its mirror, and both occur.
    const mirror = Float32Array.from([4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9, 16, 15, 14, 13]);
    for (const f of flips) expect([Array.from(img), Array.from(mirror)]).toContainEqual(Array.from(f));
    expect(new Set(flips.map((f) => f[0])).size).toBe(2);
    expect(Array.from(augment(img, size, 1, { cropPadding: 0, flip: true }, new Rng(1)))).toEqual(Array.from(flipOnly));
    // A crop: the image shifted by at most the padding, zeros coming in.
    for (let s = 0; s < 10; s++) {
      const c = augment(img, size, 1, { cropPadding: 1, flip: false }, new Rng(s));
      const matches = [-1, 0, 1].flatMap((dy) => [-1, 0, 1].map((dx) => Array.from({ length: 16 }, (_, i) => {
        const y = Math.floor(i / 4) + dy;
        const x = (i % 4) + dx;
        return y < 0 || y >= 4 || x < 0 || x >= 4 ? 0 : img[y * 4 + x];
      })));
      expect(matches).toContainEqual(Array.from(c));
    }
  });
});

describe('seeded augmentation of batches', () => {
  const size = 8;
  const examples = [0, 1, 2, 3, 4, 5].map((k) => ({
    pixels: Float32Array.from({ length: size * size * 3 }, (_, i) => ((i * (k + 2) + k) % 11) / 11),
    label: k % 3,
    source: `x${k}`,
  }));
  const stats = channelStats(examples, 3);
  const shape = { size, channels: 3 as const };
  const options = { cropPadding: 2, flip: true };

  it('the same seed gives the same batch, another seed another one, and no augmentation the plain normalised batch', () => {
    const a = imageBatch(examples, shape, stats, { options, rng: new Rng(42) });
    const b = imageBatch(examples, shape, stats, { options, rng: new Rng(42) });
    const c = imageBatch(examples, shape, stats, { options, rng: new Rng(43) });
    const plain = imageBatch(examples, shape, stats);
    expect(Array.from(a.pixels)).toEqual(Array.from(b.pixels));
    expect(Array.from(a.labels)).toEqual(Array.from(plain.labels));
    expect(Array.from(a.pixels)).not.toEqual(Array.from(c.pixels));
    expect(Array.from(a.pixels)).not.toEqual(Array.from(plain.pixels));
    // Augmentation only moves pixels (and brings in the zero padding, the mean after normalisation): every value
    // of an augmented image is one of its normalised values or 0.
    const per = size * size * 3;
    for (let i = 0; i < examples.length; i++) {
      const values = new Set(Array.from(plain.pixels.subarray(i * per, (i + 1) * per)));
      values.add(0);
      for (const v of a.pixels.subarray(i * per, (i + 1) * per)) expect(values.has(v)).toBe(true);
    }
  });

  it('flips only when the task allows them: with flips off, no image is ever mirrored', () => {
    // An image whose rows rise left to right: a mirror reverses that, a shift keeps it.
    const ramp = Float32Array.from({ length: size * size }, (_, i) => (i % size) + 1);
    for (let seed = 0; seed < 40; seed++) {
      const out = augment(ramp, size, 1, { cropPadding: 2, flip: false }, new Rng(seed));
      for (let y = 0; y < size; y++) {
        const row = Array.from(out.subarray(y * size, (y + 1) * size)).filter((v) => v !== 0);
        for (let x = 1; x < row.length; x++) expect(row[x]).toBeGreaterThan(row[x - 1]);
      }
    }
    const mirrored = [...Array(40).keys()].filter((seed) => {
      const out = augment(ramp, size, 1, { cropPadding: 0, flip: true }, new Rng(seed));
      return out[0] > out[1];
    });
    expect(mirrored.length).toBeGreaterThan(5);
    expect(mirrored.length).toBeLessThan(35);
  });
});

describe("real files: Debian's Fashion-MNIST (dataset-fashion-mnist, installed by scripts/ensure-test-deps.sh)", () => {
  const DIR = '/usr/share/datasets/fashion-mnist';

  it('reads the gzipped test set: 10000 images of 28 x 28, 1000 per class, pixels as numpy reads them', () => {
    const images = path.join(DIR, 't10k-images-idx3-ubyte.gz');
    const labels = path.join(DIR, 't10k-labels-idx1-ubyte.gz');
    const split = readIdxSplit(images, labels, { size: 28, channels: 1 });
    expect(split.examples).toHaveLength(10000);
    expect(split.labels).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    const perClass = new Array(10).fill(0);
    for (const e of split.examples) perClass[e.label]++;
    expect(perClass).toEqual(new Array(10).fill(1000));
    // Independent reading: numpy over Python's gzip, skipping the 16-byte header.
    const reference = JSON.parse(
      runPython(
        String.raw`
import gzip, json, sys, numpy as np
x = np.frombuffer(gzip.open(sys.argv[1]).read()[16:], dtype=np.uint8).reshape(-1, 28, 28)
y = np.frombuffer(gzip.open(sys.argv[2]).read()[8:], dtype=np.uint8)
print(json.dumps({'sums': [int(v) for v in x[[0, 1, 4321, 9999]].reshape(4, -1).sum(1)], 'labels': [int(v) for v in y[[0, 1, 4321, 9999]]], 'pixel': int(x[4321, 14, 9])}))`,
        [images, labels],
      ),
    ) as { sums: number[]; labels: number[]; pixel: number };
    [0, 1, 4321, 9999].forEach((i, k) => {
      const e = split.examples[i];
      expect(e.label).toBe(reference.labels[k]);
      expect(Math.round(e.pixels.reduce((a, b) => a + b, 0) * 255)).toBe(reference.sums[k]);
    });
    expect(split.examples[4321].pixels[14 * 28 + 9]).toBeCloseTo(reference.pixel / 255, 6);
    // Shrunk for a 16 x 16 network: each output pixel averages the area it covers.
    const small = readIdxSplit(images, labels, { size: 16, channels: 1 }).examples[0].pixels;
    expect(small.length).toBe(256);
    const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
    expect(mean(small)).toBeCloseTo(mean(split.examples[0].pixels), 5);
  });
});
