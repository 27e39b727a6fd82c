import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { listRuns } from '../../src/engine/runs';
import { tempDir, writeToyTask } from '../helpers/fixtures';
import { cliAsync } from '../helpers/cliRun';

/** Bad Slurm settings are named before anything is created or submitted (exit code 2); no cluster needed. */

function writeConfig(dir: string, extra: Record<string, unknown>): string {
  writeToyTask(dir);
  const cfg = {
    name: 'toy',
    task: { name: 'toy', type: 'classification', train: 'data/train.jsonl', dev: 'data/dev.jsonl', textField: 'text', labelField: 'label' },
    model: 'builtin:tiny-bert',
    method: { type: 'houlsby', bottleneck: 8 },
    ...extra,
  };
  fs.writeFileSync(path.join(dir, 'toy.adapter.json'), JSON.stringify(cfg, null, 2));
  return 'toy.adapter.json';
}

describe('adapter-lab train|sweep --slurm: bad input', () => {
  it('a time Slurm would not read is named by its flag', async () => {
    const dir = tempDir();
    const r = await cliAsync(['train', writeConfig(dir, {}), '--slurm', '--time', 'two hours'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--time: "two hours" is not a Slurm time');
    expect(listRuns(path.join(dir, '.adapter-lab', 'runs')).runs).toHaveLength(0);
  });

  it("the config's slurm section is checked by the schema, with file, line and field", async () => {
    const dir = tempDir();
    const r = await cliAsync(['sweep', writeConfig(dir, { slurm: { cpusPerTask: 0 } }), '--slurm'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/toy\.adapter\.json:\d+: .*slurm\.cpusPerTask/);
  });
});
