import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/engine/config/load';
import { tempDir, tinyModelDir } from '../helpers/fixtures';
import { runAsync } from '../helpers/python';

/**
 * examples/fusion: its configs are valid, and its script runs both stages end to end. The example is written for
 * builtin:tiny-bert; here it runs on a tiny random checkpoint (--model) for a few steps, on a copy of the example
 * folder, with the real example data.
 */
const ROOT = path.resolve(__dirname, '../..');
const EXAMPLE = path.join(ROOT, 'examples', 'fusion');

describe('examples/fusion', () => {
  it('its configs load: three stage-1 adapters, the target task\'s own adapter, the fusion of the three', () => {
    const configs = fs.readdirSync(EXAMPLE).filter((f) => f.endsWith('.adapter.json')).sort();
    expect(configs).toEqual(['afinn-valence-pfeiffer.adapter.json', 'liu-opinion-fusion.adapter.json', 'liu-opinion-pfeiffer.adapter.json', 'sotu-party-pfeiffer.adapter.json', 'spam-pfeiffer.adapter.json']);
    for (const f of configs) {
      const cfg = loadConfig(path.join(EXAMPLE, f));
      expect(cfg.model).toBe('builtin:tiny-bert');
      expect(fs.existsSync(cfg.task.train as string), cfg.task.train as string).toBe(true);
      // Adapters to be fused are trained without their LayerNorms, which a fusion does not use.
      if (cfg.method.type === 'pfeiffer') expect(cfg.method.trainLayerNorm).toBe(false);
    }
    const fusion = loadConfig(path.join(EXAMPLE, 'liu-opinion-fusion.adapter.json'));
    expect(fusion.method.adapters).toEqual(['spam', 'sotu-party', 'afinn-valence'].map((t) => path.join(EXAMPLE, 'adapters', t)));
  });

  it('run.mjs trains the three adapters, exports them, then the fusion and the single-task adapter', async () => {
    const work = tempDir();
    const example = path.join(work, 'examples', 'fusion');
    fs.mkdirSync(example, { recursive: true });
    for (const f of fs.readdirSync(EXAMPLE).filter((x) => x.endsWith('.adapter.json') || x.endsWith('.mjs'))) fs.copyFileSync(path.join(EXAMPLE, f), path.join(example, f));
    for (const task of ['spam', 'sotu-party', 'afinn-valence', 'liu-opinion']) {
      fs.cpSync(path.join(ROOT, 'examples', 'data', task), path.join(work, 'examples', 'data', task), { recursive: true });
    }
    const model = tinyModelDir({ layers: 2, hidden: 32, heads: 2, intermediate: 64, maxPositions: 128 });
    const r = await runAsync(process.execPath, [path.join(example, 'run.mjs'), '--model', model, '--max-steps', '2'], {
      cwd: work,
      timeoutMs: 600_000,
      env: { ...process.env, ADAPTER_LAB_BIN: path.join(ROOT, 'bin', 'adapter-lab.js') },
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    for (const task of ['spam', 'sotu-party', 'afinn-valence']) expect(fs.existsSync(path.join(example, 'adapters', task, 'adapter_config.json')), task).toBe(true);
    expect(r.stdout).toMatch(/single-task pfeiffer adapter\s+\d\.\d{4}/);
    expect(r.stdout).toMatch(/AdapterFusion of spam, sotu-party, afinn-valence\s+\d\.\d{4}/);
    const runs = path.join(work, 'examples', '.adapter-lab', 'runs');
    const fusionRun = fs.readdirSync(runs).find((d) => d.includes('liu-opinion-fusion'))!;
    const attention = JSON.parse(fs.readFileSync(path.join(runs, fusionRun, 'fusion-attention.json'), 'utf8'));
    expect(attention.adapters).toEqual(['spam', 'sotu-party', 'afinn-valence']);
    expect(attention.classes).toEqual(['negative', 'positive']);

    // A second run reuses the exported adapters.
    const again = await runAsync(process.execPath, [path.join(example, 'run.mjs'), '--model', model, '--max-steps', '1'], {
      cwd: work,
      timeoutMs: 600_000,
      env: { ...process.env, ADAPTER_LAB_BIN: path.join(ROOT, 'bin', 'adapter-lab.js') },
    });
    expect(again.status, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toMatch(/spam: using the adapter in/);
  }, 600_000);
});
