import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { listRuns } from '../../src/engine/runs';
import { tempDir, tinyModelDir, writeToyTask } from '../helpers/fixtures';
import { cliAsync as cli } from '../helpers/cliRun';

/** The adapter-lab command as a user runs it: the built bin in a real child process, on real files. */
const BIN = path.resolve(__dirname, '../../bin/adapter-lab.js');

function writeConfig(dir: string, overrides: Record<string, unknown> = {}, file = 'toy.adapter.json'): string {
  writeToyTask(dir);
  const cfg = {
    name: 'toy-houlsby',
    task: { name: 'toy', type: 'classification', train: 'data/train.jsonl', dev: 'data/dev.jsonl', textField: 'text', labelField: 'label' },
    model: tinyModelDir({ layers: 2, hidden: 32, heads: 2, intermediate: 64 }),
    method: { type: 'houlsby', bottleneck: 4 },
    training: { epochs: 2, batchSize: 16, learningRate: 3e-3, maxSeqLength: 16, seed: 1 },
    ...overrides,
  };
  fs.writeFileSync(path.join(dir, file), JSON.stringify(cfg, null, 2));
  return file;
}

describe('adapter-lab CLI', () => {
  it('train, info, eval, ablate, predict, export and predict from the export', async () => {
    const dir = tempDir();
    const config = writeConfig(dir);

    const train = await cli(['train', config, '--json'], dir);
    expect(train.code, train.stderr).toBe(0);
    const last = train.lines[train.lines.length - 1];
    expect(last.type).toBe('done');
    const runDir = last.runDir as string;
    expect(fs.existsSync(path.join(runDir, 'run.json'))).toBe(true);
    expect(train.lines.some((l) => l.type === 'progress')).toBe(true);
    for (const f of ['adapter_config.json', 'adapter.safetensors', 'head_config.json', 'model_head.safetensors']) {
      expect(fs.existsSync(path.join(runDir, 'adapter', f)), f).toBe(true);
    }
    const record = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
    expect(record.status).toBe('done');
    expect(record.backend).toBe('wasm');
    expect(record.params.trainable).toBeGreaterThan(0);

    const info = await cli(['info', config, '--json'], dir);
    expect(info.code, info.stderr).toBe(0);
    const result = info.lines.find((l) => l.type === 'result');
    expect(result.trainableParams).toBe(record.params.trainable);
    expect(result.baseParams).toBe(record.params.base);

    const evalDev = await cli(['eval', runDir, '--split', 'dev', '--json'], dir);
    expect(evalDev.code, evalDev.stderr).toBe(0);
    const evalResult = evalDev.lines.find((l) => l.type === 'result');
    expect(evalResult.metrics.accuracy).toBe(record.best.value);
    // A config argument evaluates its latest finished run.
    expect((await cli(['eval', config, '--json'], dir)).lines.find((l) => l.type === 'result').metrics).toEqual(evalResult.metrics);

    const ablate = await cli(['ablate', runDir, '--json'], dir);
    expect(ablate.code, ablate.stderr).toBe(0);
    const ablation = JSON.parse(fs.readFileSync(path.join(runDir, 'ablation.json'), 'utf8'));
    expect(ablation.baseline).toBe(evalResult.metrics.accuracy);
    expect(ablation.matrix).toHaveLength(2);
    expect(ablation.matrix[1][0]).toBeNull();
    expect(typeof ablation.matrix[0][1]).toBe('number');

    const predict = await cli(['predict', runDir, '--input', 'data/dev.jsonl', '--logits'], dir);
    expect(predict.code, predict.stderr).toBe(0);
    const predictions = predict.lines;
    expect(predictions).toHaveLength(48);
    expect(['neg', 'pos']).toContain(predictions[0].prediction);
    expect(predictions[0].logits).toHaveLength(2);
    expect(predictions[5].source).toEqual({ file: 'data/dev.jsonl', line: 6 });

    const exported = path.join(dir, 'exported');
    expect((await cli(['export', runDir, exported], dir)).code).toBe(0);
    const again = await cli(['predict', exported, '--input', 'data/dev.jsonl', '--logits'], dir);
    expect(again.code, again.stderr).toBe(0);
    expect(again.lines.map((l) => l.logits)).toEqual(predictions.map((l) => l.logits));
  });

  it('encode prints the first token\'s final hidden state per row', async () => {
    const dir = tempDir();
    writeToyTask(dir);
    const r = await cli(['encode', '--model', tinyModelDir({ layers: 2, hidden: 32, heads: 2, intermediate: 64 }), '--input', 'data/dev.jsonl'], dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.lines).toHaveLength(48);
    expect(r.lines[0].embedding).toHaveLength(32);
    expect(r.lines[0].embedding).not.toEqual(r.lines[1].embedding);
  });

  it('a config with a wrong type exits 2 and names the file, line and field', async () => {
    const dir = tempDir();
    const config = writeConfig(dir, { training: { epochs: 'three', batchSize: 16 } });
    const r = await cli(['train', config], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/toy\.adapter\.json:\d+: training\.epochs: must be integer/);
    expect(listRuns(path.join(dir, '.adapter-lab', 'runs')).runs).toHaveLength(0);
  });

  it('a bad data row exits 2 with file and line; the failed run does not disturb the others', async () => {
    const dir = tempDir();
    const config = writeConfig(dir);
    expect((await cli(['train', config, '--max-steps', '2'], dir)).code).toBe(0);
    fs.appendFileSync(path.join(dir, 'data', 'train.jsonl'), '{"text": "", "label": "pos"}\n');
    const r = await cli(['train', config, '--json'], dir);
    expect(r.code).toBe(2);
    const error = r.lines.find((l) => l.type === 'error');
    expect(error.message).toMatch(/data\/train\.jsonl:193: .*empty/);
    const runs = listRuns(path.join(dir, '.adapter-lab', 'runs'));
    expect(runs.problems).toHaveLength(0);
    expect(runs.runs.map((x) => x.status).sort()).toEqual(['done', 'failed']);
  });

  it('SIGTERM cancels a run with a checkpoint, and --resume finishes it', async () => {
    const dir = tempDir();
    const config = writeConfig(dir, { training: { epochs: 12, batchSize: 8, learningRate: 1e-3, maxSeqLength: 16, seed: 1 } });
    const child = spawn(process.execPath, [BIN, 'train', config, '--json'], { cwd: dir });
    let out = '';
    let runDir = '';
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const progress = out.split('\n').filter((l) => l.includes('"type":"progress"'));
        if (!runDir && progress.length >= 5) {
          runDir = JSON.parse(progress[0]).runDir;
          child.kill('SIGTERM');
        }
      });
      child.on('exit', () => resolve());
    });
    expect(child.exitCode).toBe(1);
    expect(out).toMatch(/"status":"cancelled"/);
    const record = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
    expect(record.status).toBe('cancelled');
    expect(fs.existsSync(path.join(runDir, 'checkpoint', 'state.json'))).toBe(true);

    const resumed = await cli(['train', '--resume', runDir, '--json', '--max-steps', '1'], dir);
    // --max-steps does not apply to a resumed run: it continues with its own recorded config.
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')).status).toBe('done');
  }, 300_000);
});
