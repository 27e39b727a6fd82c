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

const PREFIX = 'adapter-lab-slurm-';
/**
 * Cluster folders live in the system's temp folder, not in the test file's own temp root (test/setup/tempRoot.ts):
 * a killed test run leaves its daemons running, and the next run must find their folder to stop them.
 */
const tmpParent = () => process.env.ADAPTER_LAB_TEST_TMP_PARENT ?? os.tmpdir();
/** The test process that owns a cluster folder: its daemons are stale once that process is gone. */
const OWNER_FILE = 'owner.pid';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Stops the daemons of test clusters whose test process died without stopping them (a killed test run skips
 * afterAll): a second slurmd on this node would take the new cluster's jobs' steps for its own. A folder with
 * daemons and no owner file is stale too (a cluster is owned before it starts).
 */
function stopStaleClusters(): void {
  for (const name of fs.readdirSync(tmpParent())) {
    if (!name.startsWith(PREFIX) || !/^adapter-lab-slurm-[A-Za-z0-9]{6}$/.test(name)) continue;
    const dir = path.join(tmpParent(), name);
    if (!fs.existsSync(path.join(dir, 'slurmctld.pid')) && !fs.existsSync(path.join(dir, 'slurmd.pid'))) continue;
    const owner = Number(fs.existsSync(path.join(dir, OWNER_FILE)) ? fs.readFileSync(path.join(dir, OWNER_FILE), 'utf8') : NaN);
    if (Number.isInteger(owner) && owner > 0 && alive(owner)) continue;
    console.warn(`slurm tests: stopping the daemons of a test cluster its test run left behind (${dir})`);
    spawnSync('bash', [SCRIPT, 'stop', dir], { stdio: 'inherit', timeout: 120_000 });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function startTestCluster(): TestCluster {
  stopStaleClusters();
  const dir = fs.mkdtempSync(path.join(tmpParent(), PREFIX));
  fs.writeFileSync(path.join(dir, OWNER_FILE), String(process.pid));
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
