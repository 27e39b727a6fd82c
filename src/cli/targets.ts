import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '../engine/config/load';
import { ResolvedConfig } from '../engine/config/types';
import { listRuns, openRun, RUN_FILE, RunHandle } from '../engine/runs';
import { UserInputError } from '../engine/errors';
import { isAdapterFolder } from '../engine/model/fusionIo';

/**
 * What a command's <config|run> argument names: a config file (its latest finished run), a run folder, or an
 * adapter folder (a run's adapter/ or an exported copy).
 */
export type Target =
  | { kind: 'run'; run: RunHandle; config: ResolvedConfig; adapterDir: string }
  | { kind: 'adapter'; adapterDir: string };

export function isRunDir(p: string): boolean {
  return fs.existsSync(path.join(p, RUN_FILE));
}

export function resolveTarget(arg: string, runsDirOverride?: string): Target {
  const abs = path.resolve(arg);
  if (!fs.existsSync(abs)) throw new UserInputError(`${arg}: no such file or folder`);
  if (fs.statSync(abs).isDirectory()) {
    if (isRunDir(abs)) {
      const run = openRun(abs);
      return { kind: 'run', run, config: run.record.config, adapterDir: run.adapterDir };
    }
    if (isAdapterFolder(abs)) return { kind: 'adapter', adapterDir: abs };
    throw new UserInputError(`${arg}: neither a run folder (run.json) nor an adapter folder (adapter_config.json, or adapter_fusion_config.json for a fusion)`);
  }
  const config = loadConfig(abs);
  const runsDir = runsDirOverride ? path.resolve(runsDirOverride) : config.runsDir;
  const done = listRuns(runsDir).runs.filter((r) => r.status === 'done' && r.config.configFile === config.configFile);
  if (!done.length) throw new UserInputError(`${arg}: no finished run of this config in ${runsDir}; train it first (adapter-lab train ${arg})`);
  const run = openRun(done[0].dir);
  return { kind: 'run', run, config: run.record.config, adapterDir: run.adapterDir };
}
