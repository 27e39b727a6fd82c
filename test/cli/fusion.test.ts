import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir, tinyModelDir, writeToyTask } from '../helpers/fixtures';
import { cliAsync } from '../helpers/cliRun';

/** AdapterFusion, the AdapterDrop trade-off and multi-task predict through the built bin, on real files. */
const MODEL = { layers: 3, hidden: 32, heads: 2, intermediate: 64 };

const cli = (args: string[], cwd: string) => cliAsync(args, cwd, { timeoutMs: 240_000 });

function writeConfig(dir: string, file: string, name: string, task: string, method: Record<string, unknown>, model = tinyModelDir(MODEL)): string {
  const cfg = {
    name,
    task: { name: task, type: 'classification', train: 'data/train.jsonl', dev: 'data/dev.jsonl', textField: 'text', labelField: 'label' },
    model,
    method,
    training: { epochs: 1, batchSize: 16, learningRate: 3e-3, maxSeqLength: 16, seed: name.length },
  };
  fs.writeFileSync(path.join(dir, file), JSON.stringify(cfg, null, 2));
  return file;
}

async function train(dir: string, config: string): Promise<string> {
  const r = await cli(['train', config, '--max-steps', '3', '--json'], dir);
  expect(r.code, r.stderr).toBe(0);
  return r.lines[r.lines.length - 1].runDir as string;
}

describe('adapter-lab with AdapterFusion, drop and multi-task predict', () => {
  it('fuses two runs, evaluates, drops, predicts several tasks at once and exports the fusion', async () => {
    const dir = tempDir();
    writeToyTask(dir);
    const stage1 = { type: 'pfeiffer', bottleneck: 8, initStd: 0.3, trainLayerNorm: false, leaveOut: [0] };
    const a = await train(dir, writeConfig(dir, 'a.adapter.json', 'alpha-pfeiffer', 'alpha', stage1));
    const b = await train(dir, writeConfig(dir, 'b.adapter.json', 'beta-pfeiffer-8', 'beta', stage1));
    // Runs named relative to the config, as users write them.
    const fusionConfig = writeConfig(dir, 'f.adapter.json', 'toy-fusion', 'toy', { type: 'fusion', adapters: [path.relative(dir, a), path.relative(dir, b)] });
    const f = await train(dir, fusionConfig);
    for (const file of ['adapter_fusion_config.json', 'model_adapter_fusion.safetensors', 'head_config.json', 'model_head.safetensors', 'alpha/adapter_config.json', 'beta/adapter.safetensors']) {
      expect(fs.existsSync(path.join(f, 'adapter', file)), file).toBe(true);
    }
    const attention = JSON.parse(fs.readFileSync(path.join(f, 'fusion-attention.json'), 'utf8'));
    expect(attention).toMatchObject({ layers: [1, 2], adapters: ['alpha', 'beta'], classes: ['neg', 'pos'] });

    // eval of the saved fusion reproduces the trainer's dev metrics.
    const evaluated = await cli(['eval', f, '--json'], dir);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    const metrics = evaluated.lines.find((l) => l.type === 'result').metrics;
    expect(metrics).toEqual(JSON.parse(fs.readFileSync(path.join(f, 'eval-dev.json'), 'utf8')).metrics);

    // drop: n = 0 is the plain evaluation; one point per n = 0..L.
    const dropped = await cli(['drop', f, '--repeats', '1', '--json'], dir);
    expect(dropped.code, dropped.stderr).toBe(0);
    const drop = JSON.parse(fs.readFileSync(path.join(f, 'drop.json'), 'utf8'));
    expect(drop.metric).toBe('accuracy');
    expect(drop.baseline).toBe(metrics.accuracy);
    expect(drop.points.map((p: { n: number }) => p.n)).toEqual([0, 1, 2, 3]);
    expect(drop.points[0].value).toBe(metrics.accuracy);
    expect(drop.points.every((p: { tokensPerSecond: number }) => p.tokensPerSecond > 0)).toBe(true);

    // predict --runs: each task's lines equal its own predict's.
    const many = await cli(['predict', '--runs', [a, b, f].join(','), '--input', 'data/dev.jsonl', '--logits', '--json'], dir);
    expect(many.code, many.stderr).toBe(0);
    const predictions = many.lines.filter((l) => l.type === 'prediction');
    expect(predictions).toHaveLength(3 * 48);
    expect(many.lines.find((l) => l.type === 'result').sharedLayers).toEqual([1, 1, 1]);
    for (const [run, task] of [[a, 'alpha'], [b, 'beta'], [f, 'toy']]) {
      const alone = (await cli(['predict', run, '--input', 'data/dev.jsonl', '--logits', '--json'], dir)).lines.filter((l) => l.type === 'prediction');
      const mine = predictions.filter((p) => p.task === task);
      expect(mine.map((p) => [p.index, p.prediction, p.logits])).toEqual(alone.map((p) => [p.index, p.prediction, p.logits]));
      expect(mine[0].run).toBe(run);
    }

    // predict --runs on 1, 2 and 3 workers (batches of 8: six batches to spread): the same lines, bit for bit.
    const onWorkers = [];
    for (const workers of ['1', '2', '3']) {
      const r = await cli(['predict', '--runs', [a, b, f].join(','), '--input', 'data/dev.jsonl', '--logits', '--json', '--batch-size', '8', '--workers', workers], dir);
      expect(r.code, r.stderr).toBe(0);
      onWorkers.push(r.lines.filter((l) => l.type === 'prediction'));
    }
    expect(onWorkers[0]).toHaveLength(3 * 48);
    expect(onWorkers[1]).toEqual(onWorkers[0]);
    expect(onWorkers[2]).toEqual(onWorkers[0]);

    // The exported fusion is a folder that loads alone.
    const exported = path.join(dir, 'exported');
    expect((await cli(['export', f, exported], dir)).code).toBe(0);
    fs.rmSync(a, { recursive: true });
    const again = await cli(['predict', exported, '--input', 'data/dev.jsonl', '--logits', '--json'], dir);
    expect(again.code, again.stderr).toBe(0);
    expect(again.lines.filter((l) => l.type === 'prediction').map((l) => l.logits)).toEqual(predictions.filter((p) => p.task === 'toy').map((p) => p.logits));
  }, 300_000);

  it('a fusion of adapters trained on another base model exits 2, naming the adapter', async () => {
    const dir = tempDir();
    writeToyTask(dir);
    const a = await train(dir, writeConfig(dir, 'a.adapter.json', 'alpha-pfeiffer', 'alpha', { type: 'pfeiffer', bottleneck: 4 }, tinyModelDir({ ...MODEL, seed: 5 })));
    const config = writeConfig(dir, 'f.adapter.json', 'toy-fusion', 'toy', { type: 'fusion', adapters: [path.relative(dir, a)] });
    const r = await cli(['train', config], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/method\.adapters: the adapter "alpha" \(.*\) was trained on another base model.*fingerprint/);
  }, 300_000);
});
