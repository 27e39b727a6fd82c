/// <reference lib="dom" />
/**
 * End to end, Slurm (issue 20): the same harness as sweep.e2e.ts, with a real one-node Slurm started first
 * (test/slurm/cluster.ts; code-server and so the extension host inherit its SLURM_CONF) and the workspace's
 * settings sending Run Sweep to Slurm (adapterLab.slurm.enabled, one task at a time, Slurm asked every 2 s). "Adapter
 * Lab: Run Sweep" from the palette submits a 2-point sweep as a job array; the Runs tree shows the points'
 * Slurm job ids going from pending (the second waits for the first: JobArrayTaskLimit) to done.
 * Screenshots: test-results/e2e/slurm-*.png.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseJsonc } from 'jsonc-parser';
import { describe, test } from 'vitest';
import { workbenchSuite } from './suite';
import { startTestCluster, type TestCluster } from '../slurm/cluster';
import { fail, until } from './workbench';
import { runFolders, TRAIN_CONFIG } from './workspace';

const SLURM_CONFIG = 'spam-slurm.adapter.json';

let cluster: TestCluster | undefined;
let sweepName = '';

describe.sequential('Adapter Lab on Slurm in a real VS Code workbench', () => {
  const suite = workbenchSuite('slurm', {
    prepare: (ws) => {
      cluster = startTestCluster();
      const base = parseJsonc(fs.readFileSync(path.join(ws.dir, TRAIN_CONFIG), 'utf8')) as Record<string, unknown>;
      sweepName = `${base.name as string}-slurm`;
      fs.writeFileSync(path.join(ws.dir, SLURM_CONFIG), JSON.stringify({ ...base, name: sweepName, sweep: { 'training.seed': [1, 2] } }, null, 2) + '\n');
      fs.mkdirSync(path.join(ws.dir, '.vscode'), { recursive: true });
      fs.writeFileSync(
        path.join(ws.dir, '.vscode', 'settings.json'),
        JSON.stringify({ 'adapterLab.slurm.enabled': true, 'adapterLab.slurm.maxConcurrent': 1, 'adapterLab.slurm.pollSeconds': 2, 'adapterLab.slurm.node': process.execPath }, null, 2),
      );
    },
    config: SLURM_CONFIG,
    cleanup: () => cluster?.stop(),
  });

  test('Run Sweep with adapterLab.slurm.enabled: the points show their Slurm job ids, pending, then done', async () => {
    const { ws, server, log, wb: w } = suite;
    try {
      await w.command('Adapter Lab: Run Sweep');
      await w.pick('Adapter Lab: choose an experiment config', SLURM_CONFIG);
      let sawPending = false;
      let shotPending = false;
      await until(
        `2 rows "run seed=N, done, slurm <job>_<task> done ...", after a point seen pending`,
        async () => {
          const rows = await w.rows();
          if (rows.some((r) => /^run seed=[12], queued, slurm \d+_[01] pending \(/.test(r))) {
            sawPending = true;
            if (!shotPending) {
              shotPending = true;
              await w.screenshot('slurm-01-pending');
            }
          }
          const done = rows.filter((r) => /^run seed=[12], done, slurm \d+_[01] done/.test(r));
          return { ok: sawPending && done.length === 2, seen: rows.join(' | ') };
        },
        10 * 60_000,
        300,
      );
      const points = runFolders(ws).filter((f) => f.record.name.startsWith(`${sweepName}__`));
      const records = points.map((p) => p.record as { status: string; slurm?: { jobId: string } });
      if (points.length !== 2 || records.some((r) => r.status !== 'done' || !r.slurm)) fail('2 sweep run folders, done, with their Slurm job', records.map((r) => `${r.status} ${JSON.stringify(r.slurm)}`).join(', '));
      if (!server.extensionOutput().includes('== Slurm job')) fail("the tasks' slurm.log lines in the Adapter Lab output channel", 'none');
      await w.screenshot('slurm-02-done');
    } catch (err) {
      await w.screenshot('slurm-FAILED').catch(() => undefined);
      throw err;
    }
  });
});
