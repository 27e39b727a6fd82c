import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliAsync as cli, writeToyConfig } from '../helpers/cliRun';
import { tempDir } from '../helpers/fixtures';

/** `adapter-lab merge`: LoRA and (IA)³ folded into the weights predict what the adapted model predicts. */
describe('adapter-lab merge', () => {
  for (const method of [
    { type: 'lora', r: 4, alpha: 16, attnMatrices: ['q', 'k', 'v'], intermediateLora: true, outputLora: true, trainLayerNorm: true },
    { type: 'ia3', outputLora: true },
  ]) {
    it(`${method.type}: the merged model with its head predicts the unmerged model's logits`, async () => {
      const dir = tempDir();
      const file = writeToyConfig(dir, { name: `toy-${method.type}`, method, training: { epochs: 1, batchSize: 16, learningRate: 3e-2, maxSeqLength: 16, seed: 1, maxSteps: 6 } });
      const trained = await cli(['train', file, '--json'], dir);
      expect(trained.code, trained.stderr).toBe(0);
      const runDir = trained.lines.find((l) => l.type === 'done').runDir;
      const unmerged = await cli(['predict', runDir, '--input', 'data/dev.jsonl', '--logits', '--json'], dir);
      expect(unmerged.code, unmerged.stderr).toBe(0);

      const out = path.join(dir, 'merged');
      const merged = await cli(['merge', runDir, out, '--json'], dir);
      expect(merged.code, merged.stderr).toBe(0);
      for (const f of ['config.json', 'model.safetensors', 'vocab.txt', 'head/adapter_config.json']) expect(fs.existsSync(path.join(out, f)), f).toBe(true);
      const fromMerged = await cli(['predict', path.join(out, 'head'), '--input', 'data/dev.jsonl', '--logits', '--json'], dir);
      expect(fromMerged.code, fromMerged.stderr).toBe(0);
      const a = unmerged.lines.filter((l) => l.type === 'prediction').map((l) => l.logits as number[]);
      const b = fromMerged.lines.filter((l) => l.type === 'prediction').map((l) => l.logits as number[]);
      expect(b).toHaveLength(a.length);
      let diff = 0;
      for (let i = 0; i < a.length; i++) for (let k = 0; k < a[i].length; k++) diff = Math.max(diff, Math.abs(a[i][k] - b[i][k]));
      expect(diff).toBeLessThan(1e-5);
      // The training moved the method away from the identity, so the merged weights are not the base model's.
      const base = await cli(['encode', '--model', JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')).model, '--input', 'data/dev.jsonl', '--json'], dir);
      const mergedFeatures = await cli(['encode', '--model', out, '--input', 'data/dev.jsonl', '--json'], dir);
      expect(mergedFeatures.code, mergedFeatures.stderr).toBe(0);
      expect(mergedFeatures.lines.find((l) => l.embedding).embedding).not.toEqual(base.lines.find((l) => l.embedding).embedding);
    });
  }

  it('refuses a method that adds modules of its own (exit 2)', async () => {
    const dir = tempDir();
    const file = writeToyConfig(dir, { training: { epochs: 1, batchSize: 16, learningRate: 3e-3, maxSeqLength: 16, seed: 1, maxSteps: 2 } });
    const trained = await cli(['train', file, '--json'], dir);
    const runDir = trained.lines.find((l) => l.type === 'done').runDir;
    const r = await cli(['merge', runDir, path.join(dir, 'm')], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/houlsby adapter adds modules of its own.*\(lora, ia3/);
    expect(fs.existsSync(path.join(dir, 'm'))).toBe(false);
  });
});
