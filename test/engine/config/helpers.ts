import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** SPEC section 4's example, verbatim. */
export const SPEC_EXAMPLE = `{
  "name": "spam-houlsby-64",
  "task": { "name": "spam", "type": "classification",
            "train": "data/spam/train.jsonl", "dev": "data/spam/dev.jsonl", "test": "data/spam/test.jsonl",
            "textField": "text", "textPairField": null, "labelField": "label" },
  "model": "builtin:tiny-bert",
  "method": { "type": "houlsby", "bottleneck": 64, "nonLinearity": "gelu", "initStd": 0.01,
              "trainLayerNorm": true, "leaveOut": [] },
  "training": { "epochs": 3, "batchSize": 32, "learningRate": 3e-4, "warmupRatio": 0.1,
                "maxSeqLength": 128, "seed": 42, "metric": "accuracy" },
  "sweep": { "training.learningRate": [3e-5, 3e-4, 3e-3], "method.bottleneck": [8, 64, 256] }
}
`;

export function tempWorkspace(): string {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'adapter-lab-cfg-')));
  fs.mkdirSync(path.join(dir, '.git'));
  return dir;
}

export function writeConfig(dir: string, rel: string, text: string): string {
  const file = path.join(dir, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

/** 1-based line of the first occurrence of `needle`. */
export function lineOf(text: string, needle: string): number {
  const i = text.indexOf(needle);
  if (i < 0) throw new Error(`${needle} not in text`);
  return text.slice(0, i).split('\n').length;
}
