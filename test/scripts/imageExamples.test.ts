// Checks the committed image example domains (examples/data/<domain>/, built by scripts/build-image-examples.mjs,
// which does not run here): each is read by the engine's readers, has the counts its README states, and no
// near-duplicate is in two splits.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ImageSplit, ImageShape, readIdxSplit, readImageFolder, resizeArea } from '../../src/engine/data/images/imageSet';

const DATA = path.resolve(__dirname, '..', '..', 'examples', 'data');
const SPLITS = ['train', 'dev', 'test'] as const;
type Split = (typeof SPLITS)[number];

interface Domain {
  format: 'idx' | 'png';
  /** The stored images' size and channels. */
  shape: ImageShape;
  classes: string[];
}

const DIGITS = [...Array(10).keys()].map(String);
const EMOJI_CLASSES = ['activities', 'animals-nature', 'flags', 'food-drink', 'objects', 'people-body', 'smileys-emotion', 'symbols', 'travel-places'];
const DOMAINS: Record<string, Domain> = {
  mnist: { format: 'idx', shape: { size: 28, channels: 1 }, classes: DIGITS },
  'sklearn-digits': { format: 'idx', shape: { size: 8, channels: 1 }, classes: DIGITS },
  'emoji-google': { format: 'png', shape: { size: 32, channels: 3 }, classes: EMOJI_CLASSES },
  'emoji-twitter': { format: 'png', shape: { size: 32, channels: 3 }, classes: EMOJI_CLASSES },
  openclipart: { format: 'png', shape: { size: 32, channels: 3 }, classes: ['animals', 'food', 'people', 'transportation'] },
};

function read(domain: string, split: Split, shape: ImageShape): ImageSplit {
  const dir = path.join(DATA, domain);
  if (DOMAINS[domain].format === 'idx') return readIdxSplit(path.join(dir, `${split}-images-idx3-ubyte.gz`), path.join(dir, `${split}-labels-idx1-ubyte.gz`), shape);
  return readImageFolder(path.join(dir, split), shape);
}

const loaded = new Map<string, ImageSplit>();
function stored(domain: string, split: Split): ImageSplit {
  const key = `${domain}/${split}`;
  if (!loaded.has(key)) loaded.set(key, read(domain, split, DOMAINS[domain].shape));
  return loaded.get(key)!;
}

/** The README's count table: class -> [train, dev, test]. */
function readmeCounts(domain: string): Map<string, number[]> {
  const text = fs.readFileSync(path.join(DATA, domain, 'README.md'), 'utf8');
  const rows = text.split('\n').filter((line) => /^\| [^|]+ \| \d+ \| \d+ \| \d+ \|$/.test(line));
  return new Map(rows.map((line) => {
    const cells = line.split('|').map((c) => c.trim()).filter(Boolean);
    return [cells[0].replace(/\*/g, ''), cells.slice(1).map(Number)];
  }));
}

/** The near-duplicate keys of the build's rule: the exact stored pixels, and the 8 x 8 grey thumbnail at 8 levels. */
function nearDuplicateKeys(pixels: Float32Array, shape: ImageShape): string[] {
  const bytes = Uint8Array.from(pixels, (v) => Math.round(v * 255));
  const n = shape.size * shape.size;
  const grey = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let c = 0; c < shape.channels; c++) sum += bytes[i * shape.channels + c];
    grey[i] = sum / shape.channels / 255;
  }
  const levels = Uint8Array.from(resizeArea(grey, shape.size, shape.size, 1, 8, 8), (v) => Math.min(7, Math.floor(v * 8)));
  const sha1 = (b: Uint8Array) => crypto.createHash('sha1').update(b).digest('hex');
  return [`exact:${sha1(bytes)}`, `thumb:${sha1(levels)}`];
}

describe.each(Object.keys(DOMAINS))('image example %s', (domain) => {
  const spec = DOMAINS[domain];

  it('is read by the engine readers with the classes, shapes and counts its README states', () => {
    const counts = readmeCounts(domain);
    expect([...counts.keys()].filter((k) => k !== 'all').sort()).toEqual(spec.classes);
    SPLITS.forEach((split, s) => {
      const data = stored(domain, split);
      expect(data.labels).toEqual(spec.classes);
      expect(data.examples.length, split).toBe(counts.get('all')![s]);
      const perClass = spec.classes.map((_, label) => data.examples.filter((e) => e.label === label).length);
      expect(perClass, split).toEqual(spec.classes.map((cls) => counts.get(cls)![s]));
      // Every class in every split, and dev and test each at least a tenth of train.
      for (const n of perClass) expect(n).toBeGreaterThan(0);
      expect(data.examples.filter((e) => e.pixels.length !== spec.shape.size * spec.shape.size * spec.shape.channels)).toEqual([]);
    });
    expect(stored(domain, 'dev').examples.length).toBeGreaterThan(stored(domain, 'train').examples.length / 10);
    expect(stored(domain, 'test').examples.length).toBeGreaterThan(stored(domain, 'train').examples.length / 10);
  });

  it('feeds a 28 x 28 grey network and a 32 x 32 colour one (resized and converted at load time)', () => {
    for (const shape of [{ size: 28, channels: 1 as const }, { size: 32, channels: 3 as const }]) {
      const data = read(domain, 'dev', shape);
      expect(data.examples.length).toBe(stored(domain, 'dev').examples.length);
      let [lowest, highest] = [Infinity, -Infinity];
      for (const e of data.examples) {
        expect(e.pixels.length).toBe(shape.size * shape.size * shape.channels);
        for (const v of e.pixels) [lowest, highest] = [Math.min(lowest, v), Math.max(highest, v)];
      }
      expect(lowest).toBeGreaterThanOrEqual(0);
      expect(highest).toBeLessThanOrEqual(1 + 1e-6);
      // Not blank: images differ from one another.
      const means = data.examples.slice(0, 20).map((e) => e.pixels.reduce((a, b) => a + b, 0) / e.pixels.length);
      expect(new Set(means.map((m) => m.toFixed(4))).size).toBeGreaterThan(10);
    }
  });

  it('has no near-duplicate (same pixels or same 8 x 8 thumbnail) in two splits', () => {
    const splitOfKey = new Map<string, Split>();
    const crossing: string[] = [];
    for (const split of SPLITS) {
      for (const e of stored(domain, split).examples) {
        for (const key of nearDuplicateKeys(e.pixels, spec.shape)) {
          const other = splitOfKey.get(key);
          if (other && other !== split) crossing.push(`${e.source} (${split}) repeats an image of ${other}`);
          splitOfKey.set(key, split);
        }
      }
    }
    expect(crossing).toEqual([]);
  });
});

describe('emoji domains', () => {
  const files = (domain: string) => SPLITS.map((split) => stored(domain, split).examples.map((e) => path.relative(path.join(DATA, domain), e.source)).sort());
  const SKIN_TONES = ['1f3fb', '1f3fc', '1f3fd', '1f3fe', '1f3ff'];
  /** What an emoji shows once who (man, woman, person, boy, girl, gender signs) and how (skin tone, joiner, style) are removed. */
  const WHO_OR_HOW = new Set(['200d', 'fe0f', ...SKIN_TONES, '2640', '2642', '1f468', '1f469', '1f9d1', '1f466', '1f467']);
  const codePoints = (source: string) => path.basename(source, '.png').split('-');

  it('hold the same emoji in the same splits and classes in both styles', () => {
    expect(files('emoji-twitter')).toEqual(files('emoji-google'));
  });

  it('keep skin-tone variants in train beside their emoji, and gendered variants of one emoji in one split', () => {
    const splitOf = new Map<string, Split>();
    for (const split of SPLITS) for (const e of stored('emoji-google', split).examples) splitOf.set(path.basename(e.source, '.png'), split);
    const variants = [...splitOf.keys()].filter((name) => name.split('-').some((cp) => SKIN_TONES.includes(cp)));
    expect(variants.length).toBeGreaterThan(50);
    // A variant's emoji is its code points less the tone ("1f385-1f3fb" of "1f385"), where it has one such
    // (couples of two tones are variants of another code point, "1f46b" for "1f469-1f3fb-200d-1f91d-200d-1f468-1f3fc").
    const withoutTone = (name: string) => name.split('-').filter((cp) => cp !== 'fe0f' && !SKIN_TONES.includes(cp)).join('-');
    const emojiOf = new Map([...splitOf.keys()].filter((name) => !variants.includes(name)).map((name) => [withoutTone(name), name]));
    let found = 0;
    for (const v of variants) {
      expect(splitOf.get(v), v).toBe('train');
      const base = emojiOf.get(withoutTone(v));
      if (!base) continue;
      found++;
      expect(splitOf.get(base), `${base}, the emoji of ${v}`).toBe('train');
    }
    expect(found).toBeGreaterThan(variants.length / 2);
    // "MAN RUNNING", "WOMAN RUNNING" and "RUNNER" show the same thing: one split for all of them.
    const splitOfWhat = new Map<string, Split>();
    let linked = 0;
    for (const [name, split] of splitOf) {
      const what = codePoints(name).filter((cp) => !WHO_OR_HOW.has(cp)).join('-');
      if (!what) continue;
      if (splitOfWhat.has(what)) {
        linked++;
        expect(split, `${name} and another emoji showing ${what}`).toBe(splitOfWhat.get(what));
      }
      splitOfWhat.set(what, split);
    }
    expect(linked).toBeGreaterThan(100);
  });
});

describe('sklearn-digits', () => {
  it('stores the 4-bit counts 0..16 as round(v * 255 / 16), all 1,797 images', () => {
    const allowed = new Set([...Array(17).keys()].map((v) => Math.round((v * 255) / 16)));
    let total = 0;
    const other = new Set<number>();
    for (const split of SPLITS) {
      for (const e of stored('sklearn-digits', split).examples) {
        total++;
        for (const v of e.pixels) if (!allowed.has(Math.round(v * 255))) other.add(Math.round(v * 255));
      }
    }
    expect([...other]).toEqual([]);
    expect(total).toBe(1797);
  });
});

describe('image example data', () => {
  it('is lean: under 10 MB for all domains together', () => {
    const size = (p: string): number => (fs.statSync(p).isDirectory() ? fs.readdirSync(p).reduce((a, f) => a + size(path.join(p, f)), 0) : fs.statSync(p).size);
    const bytes = Object.keys(DOMAINS).reduce((a, d) => a + size(path.join(DATA, d)), 0);
    expect(bytes).toBeLessThan(10 * 1024 * 1024);
  });

  it('names every domain in LICENSES.md', () => {
    const text = fs.readFileSync(path.join(DATA, 'LICENSES.md'), 'utf8');
    for (const d of Object.keys(DOMAINS)) expect(text).toContain(`| ${d} |`);
    for (const licence of ['Apache License 2.0', 'CC BY 4.0', 'public domain']) expect(text).toContain(licence);
  });
});
