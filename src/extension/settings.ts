/** The extension's settings (package.json `contributes.configuration`) and where runs live. */
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { workersPerJob, type Backend, type EngineOptions } from './runs/jobs';
import type { SlurmSettings } from './runs/slurm';

export const SECTION = 'adapterLab';
export const DEFAULT_RUNS_FOLDER = '.adapter-lab/runs';

export interface Settings {
  runsFolder: string;
  backend: Backend;
  maxConcurrentRuns: number;
  /** adapterLab.workers: worker threads per job; 0 = automatic (jobs.ts's workersPerJob). */
  workers: number;
}

export function readSettings(scope?: vscode.ConfigurationScope): Settings {
  const c = vscode.workspace.getConfiguration(SECTION, scope);
  const backend = c.get<string>('backend', 'auto');
  return {
    runsFolder: c.get<string>('runsFolder', DEFAULT_RUNS_FOLDER) || DEFAULT_RUNS_FOLDER,
    backend: (['auto', 'node', 'wasm', 'cpu'].includes(backend) ? backend : 'auto') as Backend,
    maxConcurrentRuns: Math.max(1, Math.floor(c.get<number>('maxConcurrentRuns', 1) || 1)),
    workers: Math.max(0, Math.floor(c.get<number>('workers', 0) || 0)),
  };
}

/** The runs folder of a workspace folder: the setting, relative to the folder unless absolute. */
export function runsDirOf(folder: vscode.WorkspaceFolder): string {
  const setting = readSettings(folder.uri).runsFolder;
  return path.resolve(folder.uri.fsPath, setting);
}

/** Every runs folder the Runs view lists (one per workspace folder, duplicates removed). */
export function allRunsDirs(): string[] {
  return [...new Set((vscode.workspace.workspaceFolders ?? []).map(runsDirOf))];
}

/** Where runs of a file (a config) go: its workspace folder's runs folder. */
export function runsDirFor(file: vscode.Uri): string {
  const folder = vscode.workspace.getWorkspaceFolder(file) ?? vscode.workspace.workspaceFolders?.[0];
  return folder ? runsDirOf(folder) : path.join(path.dirname(file.fsPath), DEFAULT_RUNS_FOLDER);
}

export function engineOptionsFor(file: vscode.Uri): EngineOptions {
  const s = readSettings(file);
  return { backend: s.backend, runsDir: runsDirFor(file), workers: workersPerJob(s.workers, s.maxConcurrentRuns, os.availableParallelism()) };
}

/** adapterLab.slurm.*: whether Train and Run Sweep go to Slurm, and what they ask it for. */
export function readSlurmSettings(scope?: vscode.ConfigurationScope): SlurmSettings {
  const c = vscode.workspace.getConfiguration(`${SECTION}.slurm`, scope);
  const str = (k: string) => (c.get<string>(k, '') ?? '').trim();
  const int = (k: string) => {
    const v = c.get<number | null>(k, null);
    return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : null;
  };
  return {
    enabled: c.get<boolean>('enabled', false) === true,
    partition: str('partition'),
    time: str('time'),
    cpusPerTask: int('cpusPerTask'),
    mem: str('mem'),
    gres: str('gres'),
    maxConcurrent: int('maxConcurrent'),
    signalLeadSeconds: int('signalLeadSeconds'),
    extraArgs: (c.get<string[]>('extraArgs', []) ?? []).filter((a) => typeof a === 'string'),
    node: str('node'),
    cliPath: str('cliPath'),
    pollSeconds: Math.max(1, int('pollSeconds') ?? 10),
  };
}
