/**
 * The workspace the end-to-end suite opens: a COPY of examples/ (never the examples themselves), with the
 * configs rewritten for speed so that CI stays well inside its time limit:
 *   - training budget cut to a few dozen steps (training.maxSteps, one epoch), batch 8, 32 tokens per example,
 *     except the config the suite cancels, which gets a long budget so that it is surely still training;
 *   - dev/test sets cut to their first rows (evaluation and the layer ablation run over dev);
 *   - the model: builtin:tiny-bert (the examples' own) when the packaged extension carries it, else a tiny random
 *     BERT checkpoint written by test/helpers/tinyModel.ts (what the suite used before the built-in model existed);
 *     ADAPTER_LAB_E2E_MODEL=<folder> uses that checkpoint instead.
 * Every *.adapter.json of the copy (subfolders too) gets the same model and budget, except image tasks, which keep
 * their network and get an image budget (no text fields). Everything else (task, method, data format, the schema
 * reference) is the examples' own. Of the image domains in examples/data, only those in E2E_IMAGE_DOMAINS are
 * copied (the emoji and Openclipart folders are megabytes the suite never reads).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseJsonc } from 'jsonc-parser';
import { writeTinyBert } from '../helpers/tinyModel';
import { ROOT } from './codeServer';

/** The config trained, evaluated and ablated in steps 1 to 4. */
export const TRAIN_CONFIG = 'spam-houlsby.adapter.json';
/** The config trained and cancelled in step 5. */
export const CANCEL_CONFIG = 'liu-opinion-houlsby.adapter.json';
/** The invalid config of step 7 (written during that step). */
export const BROKEN_CONFIG = 'broken-batch-size.adapter.json';

export interface E2eWorkspace {
  dir: string;
  /** 'builtin:tiny-bert' or the random checkpoint's folder. */
  model: string;
  modelNote: string;
  runsDir: string;
  configNames: Record<string, string>;
}

const EVAL_ROWS = 120;

/** The image domains of examples/data the suite trains on (imageTask.e2e.ts): small IDX files. */
export const E2E_IMAGE_DOMAINS = ['sklearn-digits'];

/** An image domain's folder: IDX files, or one folder per split of class folders (no text task files). */
function isImageDomain(dir: string): boolean {
  const names = fs.readdirSync(dir);
  return names.some((n) => /-idx\d-ubyte/.test(n)) || (names.includes('train') && fs.statSync(path.join(dir, 'train')).isDirectory());
}

export function vsixHasBuiltinModel(vsix: string): boolean {
  try {
    return execFileSync('unzip', ['-Z1', vsix], { encoding: 'utf8' }).split('\n').includes('extension/models/tiny-bert/model.safetensors');
  } catch {
    return false;
  }
}

/** Whether the extension folder of this checkout has the built-in model (the integration suite runs from it). */
export function checkoutHasBuiltinModel(): boolean {
  return fs.existsSync(path.join(ROOT, 'models', 'tiny-bert', 'model.safetensors'));
}

/** `builtinModel`: whether the extension under test carries builtin:tiny-bert. */
export function makeWorkspace(tmpRoot: string, builtinModel: boolean): E2eWorkspace {
  // <tmp>/examples next to <tmp>/schema, so the configs' "$schema": "../schema/..." resolves as in the repository.
  const dir = path.join(tmpRoot, 'examples');
  const examples = path.join(ROOT, 'examples');
  // Not the runs a developer may have made in examples/ (the suite starts from no runs).
  fs.cpSync(examples, dir, {
    recursive: true,
    filter: (src) => {
      const parts = path.relative(examples, src).split(path.sep);
      if (parts[0] === '.adapter-lab') return false;
      if (parts[0] === 'data' && parts.length === 2 && fs.statSync(src).isDirectory() && isImageDomain(src)) return E2E_IMAGE_DOMAINS.includes(parts[1]);
      return true;
    },
  });
  fs.mkdirSync(path.join(tmpRoot, 'schema'));
  fs.cpSync(path.join(ROOT, 'schema'), path.join(tmpRoot, 'schema'), { recursive: true });

  let model = 'builtin:tiny-bert';
  let modelNote = 'builtin:tiny-bert (the extension\'s own)';
  let fullSize = true;
  if (process.env.ADAPTER_LAB_E2E_MODEL) {
    // Another checkpoint (a Hugging Face layout folder), with the built-in model's budget.
    model = path.resolve(process.env.ADAPTER_LAB_E2E_MODEL);
    modelNote = `${model} (ADAPTER_LAB_E2E_MODEL)`;
  } else if (!builtinModel) {
    fullSize = false;
    model = writeTinyBert(path.join(tmpRoot, 'tiny-random-bert'), { layers: 4, hidden: 32, heads: 2, intermediate: 64, maxPositions: 64 });
    modelNote = `a tiny random BERT (${model}): the extension has no built-in model (models/tiny-bert/model.safetensors) yet`;
  }

  const configNames: Record<string, string> = {};
  const configs = (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.adapter.json') && !f.startsWith(`data${path.sep}`));
  for (const file of configs) {
    const p = path.join(dir, file);
    const cfg = parseJsonc(fs.readFileSync(p, 'utf8')) as { name: string; model: string; task?: { type?: string }; training: Record<string, unknown> };
    if (cfg.task?.type === 'image-classification') {
      // Its own network (builtin:resnet-fashion or a folder); a budget of seconds.
      Object.assign(cfg.training, { epochs: 1, maxSteps: 24, batchSize: 32, evalBatchSize: 64, evalEverySteps: 0 });
      fs.writeFileSync(p, JSON.stringify(cfg, null, 2) + '\n');
      configNames[file] = cfg.name;
      continue;
    }
    cfg.model = model;
    const cancel = file === CANCEL_CONFIG;
    Object.assign(cfg.training, {
      epochs: cancel ? 50 : 1,
      // Long enough that the tree shows the run training (its progress refreshes twice a second).
      maxSteps: cancel ? 100_000 : fullSize ? 24 : 60,
      batchSize: 8,
      evalBatchSize: 32,
      maxSeqLength: 32,
      evalEverySteps: 0,
    });
    fs.writeFileSync(p, JSON.stringify(cfg, null, 2) + '\n');
    configNames[file] = cfg.name;
  }
  for (const task of fs.readdirSync(path.join(dir, 'data'))) {
    for (const split of ['dev.jsonl', 'test.jsonl']) {
      const p = path.join(dir, 'data', task, split);
      if (!fs.existsSync(p)) continue;
      const lines = fs.readFileSync(p, 'utf8').split('\n').filter(Boolean);
      fs.writeFileSync(p, lines.slice(0, EVAL_ROWS).join('\n') + '\n');
    }
  }
  return { dir, model, modelNote, runsDir: path.join(dir, '.adapter-lab', 'runs'), configNames };
}

/** The run folders (with run.json) in the workspace's runs folder, oldest first. */
export function runFolders(ws: E2eWorkspace): { dir: string; record: { name: string; status: string } }[] {
  if (!fs.existsSync(ws.runsDir)) return [];
  return fs
    .readdirSync(ws.runsDir)
    .sort()
    .map((n) => path.join(ws.runsDir, n))
    .filter((d) => fs.existsSync(path.join(d, 'run.json')))
    .map((d) => {
      try {
        return { dir: d, record: JSON.parse(fs.readFileSync(path.join(d, 'run.json'), 'utf8')) };
      } catch {
        return { dir: d, record: { name: '?', status: '(unreadable run.json)' } };
      }
    });
}
