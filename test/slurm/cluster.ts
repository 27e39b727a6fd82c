/**
 * A real one-node Slurm cluster for the Slurm tests: scripts/slurm/test-cluster.sh starts munged, slurmctld and
 * slurmd with every file in a new temp folder (installing Debian's slurm-wlm and munge first when missing), and
 * stops them. The clients (sbatch, squeue, scontrol, scancel), and every process the tests start, find it by
 * SLURM_CONF in the environment.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const SCRIPT = path.resolve(__dirname, '../../scripts/slurm/test-cluster.sh');

export interface TestCluster {
  dir: string;
  conf: string;
  stop(): void;
}

export function startTestCluster(): TestCluster {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adapter-lab-slurm-'));
  const out = execFileSync('bash', [SCRIPT, 'start', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 300_000 });
  const conf = /SLURM_CONF=(\S+)/.exec(out)?.[1];
  if (!conf) throw new Error(`the test cluster did not start: ${out}`);
  process.env.SLURM_CONF = conf;
  return {
    dir,
    conf,
    stop() {
      spawnSync('bash', [SCRIPT, 'stop', dir], { stdio: 'inherit', timeout: 120_000 });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `scontrol show job -o <id>` as key -> value (the first record). */
export function scontrolJob(id: string): Record<string, string> {
  const r = spawnSync('scontrol', ['show', 'job', '-o', id], { encoding: 'utf8' });
  const out: Record<string, string> = {};
  for (const m of (r.stdout.split('\n')[0] ?? '').matchAll(/(?:^|\s)(\w+)=(\S*)/g)) out[m[1]] = m[2];
  return out;
}

export function scontrol(...args: string[]): void {
  const r = spawnSync('scontrol', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`scontrol ${args.join(' ')}: ${r.stderr}`);
}
