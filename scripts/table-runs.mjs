// What the results scripts share (scripts/results.mjs: Houlsby et al.'s table; scripts/decathlon.mjs: the Visual
// Decathlon): the CLI in a child process, fingerprints of files' bytes, mean and spread, a results file that two
// processes can both add to, and the README's generated sections.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const bin = path.join(root, 'bin', 'adapter-lab.js');

/**
 * Runs `train(...item)` for every item, `jobs` at a time, in the items' order; a failure is printed and counted
 * and the others go on. Resolves to the number that failed.
 */
export async function runTable(items, jobs, train) {
  const queue = [...items];
  let failed = 0;
  const worker = async () => {
    while (queue.length) {
      try {
        await train(...queue.shift());
      } catch (err) {
        failed++;
        console.error(err.message);
      }
    }
  };
  await Promise.all(Array.from({ length: jobs }, worker));
  return failed;
}

/** The value of `--name` on the command line, or `fallback`. */
export function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

/** `adapter-lab ARGS --json` in a child process; resolves to its JSON lines, rejects with its error on a non-zero exit. */
export function runCli(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => {
      const lines = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
      if (code !== 0) return reject(new Error(`adapter-lab ${args.join(' ')} exited ${code}: ${lines.find((l) => l.type === 'error')?.message ?? stderr.slice(-500)}`));
      resolve(lines);
    });
  });
}

/**
 * sha256 over files' bytes (each prefixed by its name, so that moving bytes between files changes it). Each list is
 * hashed once per process: a report checks every remembered run against the same model and data files.
 */
const fileHashes = new Map();
export function hashFiles(files) {
  const key = files.join('\0');
  if (!fileHashes.has(key)) {
    const h = createHash('sha256');
    for (const f of files) {
      h.update(path.basename(f) + '\0');
      h.update(fs.existsSync(f) ? fs.readFileSync(f) : 'missing');
    }
    fileHashes.set(key, h.digest('hex'));
  }
  return fileHashes.get(key);
}

/** Every file under `dir`, sorted, as paths relative to it (hashing a folder of images by name and bytes). */
export function filesUnder(dir) {
  if (!fs.existsSync(dir)) return [];
  const out = [];
  const walk = (rel) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else out.push(r);
    }
  };
  walk('');
  return out;
}

/** Mean and sample standard deviation (0 for one value). */
export function meanSd(xs) {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, sd, n: xs.length };
}

/**
 * A results file of remembered runs ({ runs: { key: run } }) that several processes can add to: each saves the runs
 * it finished merged into the file as it is on disk, so that two at once keep each other's runs.
 */
export function resultsStore(file, extra = {}) {
  const read = () => (fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : { runs: {}, ...extra });
  const results = read();
  const mine = {};
  return {
    results,
    add(key, run) {
      mine[key] = run;
      this.save();
    },
    save() {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const onDisk = read();
      Object.assign(results, onDisk, { runs: { ...onDisk.runs, ...mine } });
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(results, null, 2) + '\n');
      fs.renameSync(tmp, file);
    },
  };
}

/** Replaces what lies between `<!-- name:start -->` and `<!-- name:end -->` in README.md; false when they are missing. */
export function writeReadmeSection(name, body) {
  const readme = path.join(root, 'README.md');
  const text = fs.readFileSync(readme, 'utf8');
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  if (!text.includes(start) || !text.includes(end)) return false;
  fs.writeFileSync(readme, text.slice(0, text.indexOf(start) + start.length) + '\n' + body + text.slice(text.indexOf(end)));
  return true;
}
