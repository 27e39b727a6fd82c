/**
 * The Runs tree as plain data: task > config > (sweep >) run, built from the run folders on disk (listRuns) and the
 * workspace's config files, with what the queue is doing laid over it. No vscode import: the tree provider
 * only turns these nodes into TreeItems.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseJsonc } from 'jsonc-parser';
import { ADAPTER_DIR, RESULT, RUN_FILE, TRAINED_MARKER_FILES, resultFileName, type RunStatus, type RunSummary } from '../../engine/runs';
import { describeTask, type SlurmTaskStatus } from '../../engine/slurm/taskState';
import type { TaskInputs } from '../../protocol/webview';
import { hasCheckpoint } from './finalize';
import { taskKind } from './taskKinds';

export interface WorkspaceConfig {
  /** Absolute path of the `*.adapter.json` file. */
  file: string;
  name: string;
  task: string;
  /** The config's task.type, when it names one. */
  taskType?: string;
}

/** A queued or running job, as the tree shows it. */
export interface JobOverlay {
  jobId: number;
  state: 'queued' | 'running';
  label: string;
  /** For a train job not yet started: the config it will train. */
  configFile?: string;
  runDirs: string[];
  /** 0..1 when known. */
  fraction?: number;
  /**
   * A sweep job runs many points in one CLI process: its points' run.json say which are queued, running or
   * done, so the job's state and progress are not laid over them.
   */
  sweep?: boolean;
}

export interface RunsListing {
  runs: RunSummary[];
  problems: { dir: string; reason: string }[];
}

export interface StatusIcon {
  /** A codicon id (`sync~spin` spins). */
  codicon: string;
  /** A theme colour id, or undefined for the default. */
  color?: string;
}

export type TreeNode = TaskNode | ConfigNode | SweepNode | RunNode | PendingNode | ProblemsNode | ProblemNode;

/** What every node of the tree has: a stable id and the label shown. */
interface NodeBase {
  id: string;
  label: string;
}

/** A node with a description beside its label and a context value for its menus. */
interface ItemNode extends NodeBase {
  description: string;
  contextValue: string;
}

/** A node that shows a status icon and a hover tooltip. */
interface StatusNode extends ItemNode {
  tooltip: string;
  icon: StatusIcon;
}

export interface TaskNode extends NodeBase {
  kind: 'task';
  description: string;
  /** What the task's examples are (its icon): text or images. */
  inputs: TaskInputs;
  children: ConfigNode[];
}

export interface ConfigNode extends ItemNode {
  kind: 'config';
  task: string;
  /** The config file, when known and present on disk. */
  configFile: string | null;
  children: (SweepNode | RunNode | PendingNode)[];
}

/**
 * The runs of one launch of a sweep (run.json `sweep.id`), e.g. "sweep spam-houlsby-64 (4 runs)". Its context
 * value is `adapterLab.sweep`, plus `active` while a job works on it.
 */
export interface SweepNode extends StatusNode {
  kind: 'sweep';
  group: string;
  sweepId: string;
  children: RunNode[];
}

export interface RunNode extends StatusNode {
  kind: 'run';
  run: RunSummary;
}

export interface PendingNode extends ItemNode {
  kind: 'pending';
  icon: StatusIcon;
  jobId: number;
}

export interface ProblemsNode extends NodeBase {
  kind: 'problems';
  children: ProblemNode[];
}

export interface ProblemNode extends ItemNode {
  kind: 'problem';
  tooltip: string;
  dir: string;
}

export const STATUS_ICONS: Record<RunStatus, StatusIcon> = {
  done: { codicon: 'pass', color: 'testing.iconPassed' },
  failed: { codicon: 'error', color: 'testing.iconFailed' },
  running: { codicon: 'sync~spin', color: 'charts.blue' },
  queued: { codicon: 'clock' },
  cancelled: { codicon: 'circle-slash', color: 'disabledForeground' },
  interrupted: { codicon: 'debug-pause', color: 'editorWarning.foreground' },
};

/** Reads a config's name and task leniently (a broken config still gets a row). */
export function peekConfig(file: string, text: string): WorkspaceConfig {
  const fallback = path.basename(file).replace(/\.adapter\.json$/, '');
  let value: unknown;
  try {
    value = parseJsonc(text, [], { allowTrailingComma: true });
  } catch {
    value = undefined;
  }
  const v = (value ?? {}) as { name?: unknown; task?: { name?: unknown; type?: unknown } };
  return {
    file,
    name: typeof v.name === 'string' && v.name ? v.name : fallback,
    task: typeof v.task?.name === 'string' && v.task.name ? v.task.name : '(no task)',
    ...(typeof v.task?.type === 'string' ? { taskType: v.task.type } : {}),
  };
}

export function formatMetric(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  return Math.abs(value) >= 100 ? value.toFixed(1) : value.toFixed(4);
}

export function formatPercent(p: number): string {
  if (p >= 10) return `${p.toFixed(1)}%`;
  if (p >= 0.1) return `${p.toFixed(2)}%`;
  return `${p.toPrecision(2)}%`;
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

function formatTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/**
 * Whether a folder holds a trained adapter of either kind: a single adapter (adapter_config.json) or an
 * AdapterFusion (adapter_fusion_config.json). The same test as the engine's isAdapterFolder()
 * (src/engine/model/fusionIo.ts, which test/extension/treeModel.test.ts checks it against); repeated here because
 * that module imports TensorFlow.js, which the extension host never loads.
 */
export function isTrainedAdapterFolder(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'adapter_config.json')) || fs.existsSync(path.join(dir, 'adapter_fusion_config.json'));
}

/** Whether a folder holds a trained model of any family (what evaluation and the ablation read). */
export function isTrainedFolder(dir: string): boolean {
  return TRAINED_MARKER_FILES.some((f) => fs.existsSync(path.join(dir, f)));
}

/** The flags a run's context menu depends on, e.g. `adapterLab.run status:done adapter ablation`. */
export function runContextValue(run: RunSummary, active: boolean): string {
  const flags = ['adapterLab.run', `status:${run.status}`];
  const kind = taskKind(run.config.task?.type);
  if (kind.classification) flags.push('classification');
  if (kind.inputs === 'images') flags.push('images');
  if (active) flags.push('active');
  if (isTrainedFolder(path.join(run.dir, ADAPTER_DIR))) flags.push('trained');
  if (isTrainedAdapterFolder(path.join(run.dir, ADAPTER_DIR))) flags.push('adapter');
  if (fs.existsSync(path.join(run.dir, resultFileName(RESULT.ablation)))) flags.push('ablation');
  if (fs.existsSync(path.join(run.dir, resultFileName(RESULT.fusionAttention)))) flags.push('fusion');
  if (fs.existsSync(path.join(run.dir, resultFileName(RESULT.drop)))) flags.push('drop');
  if (run.sweep) flags.push('sweep');
  if (run.slurm) flags.push('slurm');
  if ((run.status === 'interrupted' || run.status === 'cancelled' || run.status === 'failed') && hasCheckpoint(run.dir)) flags.push('resumable');
  return flags.join(' ');
}

/** A sweep point's label inside its sweep node: its assignment (`lr=0.001,seed=1`), without the group's name. */
function sweepPointLabel(run: RunSummary): string {
  const prefix = `${run.sweep!.group}__`;
  return run.name.startsWith(prefix) && run.name.length > prefix.length ? run.name.slice(prefix.length) : run.name;
}

/**
 * A Slurm run as the tree shows it: while its task is pending or running, Slurm's word is its status (run.json
 * still says queued, or cancelled between a time-limit checkpoint and the requeued start).
 */
export function withSlurmStatus(run: RunSummary, slurm: SlurmTaskStatus | undefined): RunSummary {
  if (!run.slurm) return run;
  // Not asked yet: run.json's word, not this machine's verdict on a pid that lives on a compute node.
  if (!slurm) return run.status === 'interrupted' && run.statusOnDisk === 'running' ? { ...run, status: 'running' } : run;
  if (slurm.phase === 'pending' && run.status !== 'queued') return { ...run, status: 'queued' };
  if (slurm.phase === 'running' && run.status !== 'running') return { ...run, status: 'running' };
  return run;
}

function runNode(run: RunSummary, configName: string, overlay: JobOverlay | undefined, slurm?: SlurmTaskStatus): RunNode {
  const label = run.sweep ? sweepPointLabel(run) : run.name !== configName ? run.name : formatTime(run.createdAt);
  const pointOfSweepJob = overlay?.sweep === true;
  const parts: string[] = [];
  if (run.slurm) {
    // Slurm's job id and state ("slurm 12_3 pending (Priority)"); before the first look, the id and run.json's status.
    // Once the task has ended, the run's own end is the word (a task can complete without finishing its run).
    const ended = slurm && slurm.phase !== 'pending' && slurm.phase !== 'running';
    parts.push(slurm && !(ended && run.status !== slurm.phase) ? describeTask(slurm) : `slurm ${run.slurm.jobId}_${run.slurm.arrayTaskId} ${run.status}${slurm?.exitCode ? ` (exit code ${slurm.exitCode})` : ''}`);
  } else if (pointOfSweepJob) {
    if (run.status !== 'done') parts.push(run.status);
  } else if (overlay?.state === 'running' && overlay.fraction !== undefined) parts.push(`${Math.round(overlay.fraction * 100)}%`);
  else if (overlay?.state === 'queued') parts.push('queued');
  else if (run.status !== 'done') parts.push(run.status);
  if (run.best) parts.push(`${run.best.metric} ${formatMetric(run.best.value)}`);
  if (run.params) parts.push(`${formatPercent(run.params.trainablePercent)} trainable`);
  const kind = taskKind(run.config.task?.type);
  const what = `${kind.inputs === 'images' ? 'image' : 'text'} ${kind.classification ? 'classification' : (run.config.task?.type ?? 'task')}`;
  const lines = [
    `${run.name} (${run.method} on ${run.task}, ${what})`,
    `status: ${run.status}${run.statusOnDisk !== run.status ? ` (run.json says ${run.statusOnDisk}; its process is gone)` : ''}`,
    `created: ${formatTime(run.createdAt)}`,
  ];
  if (run.best) lines.push(`best dev ${run.best.metric}: ${formatMetric(run.best.value)} (epoch ${run.best.epoch + 1}, step ${run.best.step})`);
  if (run.params) lines.push(`trainable parameters: ${run.params.trainable.toLocaleString('en-US')} of ${run.params.base.toLocaleString('en-US')} (${formatPercent(run.params.trainablePercent)})`);
  if (run.durationMs !== undefined) lines.push(`time: ${formatDuration(run.durationMs)}`);
  if (run.backend) lines.push(`backend: ${run.backend}`);
  if (run.error) lines.push(`error: ${run.error.message}${run.error.exitCode !== undefined ? ` (exit code ${run.error.exitCode})` : ''}`);
  if (run.error?.stderrTail) lines.push(run.error.stderrTail);
  for (const w of run.warnings ?? []) lines.push(`warning: ${w}`);
  if (run.skippedRows) {
    // The first few rows task.skipBadRows skipped; run.json lists them all (up to 1000).
    const shown = (run.skipped ?? []).slice(0, 5);
    lines.push(`skipped ${run.skippedRows} rows (task.skipBadRows):`, ...shown.map((r) => `  ${r.file}:${r.line}: ${r.reason}`));
    if (run.skippedRows > shown.length) lines.push(`  ... and ${run.skippedRows - shown.length} more (listed in run.json)`);
  }
  if (run.slurm) lines.push(`${slurm ? describeTask(slurm) : `slurm ${run.slurm.jobId}_${run.slurm.arrayTaskId}`}${slurm?.restarts ? `, requeued ${slurm.restarts}x` : ''}; script ${run.slurm.script}`);
  lines.push(run.dir);
  if (run.sweep) lines.splice(1, 0, `sweep ${run.sweep.group}: ${Object.entries(run.sweep.assignment).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(', ')}${run.sweep.index !== undefined && run.sweep.size ? ` (point ${run.sweep.index + 1} of ${run.sweep.size})` : ''}`);
  const status: RunStatus = overlay?.state === 'running' && !pointOfSweepJob ? 'running' : run.status;
  return {
    kind: 'run',
    id: `run:${run.dir}`,
    label,
    description: parts.join(' · '),
    tooltip: lines.join('\n'),
    icon: STATUS_ICONS[status],
    contextValue: runContextValue(run, overlay !== undefined),
    run,
  };
}

/**
 * Builds the tree. Runs group under their config file (runs of a deleted config keep their group), configs
 * under their task; configs without runs are listed too, so that a workspace's experiments are all there.
 */
export function buildRunsTree(listing: RunsListing, configs: WorkspaceConfig[], jobs: JobOverlay[] = [], slurm: ReadonlyMap<string, SlurmTaskStatus> = new Map()): TreeNode[] {
  const overlayByRun = new Map<string, JobOverlay>();
  for (const j of jobs) for (const d of j.runDirs) overlayByRun.set(d, j);

  type Group = { task: string; name: string; configFile: string | null; taskType?: string; runs: RunSummary[]; pending: JobOverlay[] };
  const groups = new Map<string, Group>();
  const key = (configFile: string | null, name: string) => configFile ?? `name:${name}`;
  for (const c of configs) groups.set(key(c.file, c.name), { task: c.task, name: c.name, configFile: c.file, taskType: c.taskType, runs: [], pending: [] });
  for (const r of listing.runs.map((x) => withSlurmStatus(x, slurm.get(x.dir)))) {
    const configFile = r.config.configFile ?? null;
    const k = key(configFile, r.config.name);
    let g = groups.get(k);
    if (!g) {
      g = { task: r.task, name: r.config.name, configFile: configFile && fs.existsSync(configFile) ? configFile : null, runs: [], pending: [] };
      groups.set(k, g);
    }
    g.runs.push(r);
  }
  for (const j of jobs) {
    if (j.sweep && j.state === 'running' && j.runDirs.length) continue; // a started sweep shows on its points
    if ((j.runDirs.length && !j.sweep) || !j.configFile) continue; // started jobs show on their runs
    const g = groups.get(j.configFile);
    if (g) g.pending.push(j);
  }

  const tasks = new Map<string, ConfigNode[]>();
  // A task's inputs (its icon), from its runs' and configs' task types: images if any says so, else text.
  const imageTasks = new Set<string>();
  for (const [k, g] of groups) {
    for (const type of [g.taskType, ...g.runs.map((r) => r.config.task?.type)]) if (taskKind(type).inputs === 'images') imageTasks.add(g.task);
    const runs = [...g.runs].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
    const children: (SweepNode | RunNode | PendingNode)[] = [
      ...g.pending.map(
        (j): PendingNode => ({
          kind: 'pending',
          id: `job:${j.jobId}`,
          label: j.label,
          description: 'queued',
          icon: STATUS_ICONS.queued,
          contextValue: 'adapterLab.job status:queued',
          jobId: j.jobId,
        }),
      ),
      ...groupSweeps(runs.map((r) => runNode(r, g.name, overlayByRun.get(r.dir), slurm.get(r.dir))), overlayByRun),
    ];
    const done = runs.filter((r) => r.status === 'done').length;
    const node: ConfigNode = {
      kind: 'config',
      id: `config:${k}`,
      label: g.configFile ? path.basename(g.configFile) : g.name,
      description: runs.length ? `${runs.length} run${runs.length === 1 ? '' : 's'}${done !== runs.length ? `, ${done} done` : ''}` : 'no runs yet',
      task: g.task,
      configFile: g.configFile,
      contextValue: g.configFile ? 'adapterLab.config' : 'adapterLab.config missing',
      children,
    };
    const list = tasks.get(g.task) ?? [];
    list.push(node);
    tasks.set(g.task, list);
  }

  const nodes: TreeNode[] = [];
  if (listing.problems.length) {
    nodes.push({
      kind: 'problems',
      id: 'problems',
      label: `${listing.problems.length} unreadable run folder${listing.problems.length === 1 ? '' : 's'}`,
      children: listing.problems.map((p) => ({
        kind: 'problem',
        id: `problem:${p.dir}`,
        label: path.basename(p.dir),
        description: p.reason.replace(p.dir + path.sep, '').replace(p.dir, '').replace(/^[:\s]+/, ''),
        tooltip: p.reason,
        dir: p.dir,
        contextValue: 'adapterLab.problem',
      })),
    });
  }
  for (const task of [...tasks.keys()].sort((a, b) => a.localeCompare(b))) {
    const children = tasks.get(task)!.sort((a, b) => a.label.localeCompare(b.label));
    const runCount = children.reduce((n, c) => n + c.children.reduce((m, x) => m + (x.kind === 'run' ? 1 : x.kind === 'sweep' ? x.children.length : 0), 0), 0);
    nodes.push({
      kind: 'task',
      id: `task:${task}`,
      label: task,
      inputs: imageTasks.has(task) ? 'images' : 'text',
      description: `${children.length} config${children.length === 1 ? '' : 's'}, ${runCount} run${runCount === 1 ? '' : 's'}`,
      children,
    });
  }
  return nodes;
}

/**
 * Puts the runs of each sweep launch (run.json `sweep.id`, else its group) under one sweep node, at the place of
 * its newest point; other runs stay as they are. Points in grid order.
 */
export function groupSweeps(nodes: RunNode[], overlayByRun: Map<string, JobOverlay> = new Map()): (SweepNode | RunNode)[] {
  const out: (SweepNode | RunNode)[] = [];
  const sweeps = new Map<string, SweepNode>();
  for (const n of nodes) {
    const sw = n.run.sweep;
    if (!sw) {
      out.push(n);
      continue;
    }
    const sweepId = sw.id ?? `group:${sw.group}`;
    let node = sweeps.get(sweepId);
    if (!node) {
      node = { kind: 'sweep', id: `sweep:${n.run.config.configFile ?? sw.group}:${sweepId}`, label: '', description: '', tooltip: '', icon: STATUS_ICONS.done, contextValue: 'adapterLab.sweep', group: sw.group, sweepId, children: [] };
      sweeps.set(sweepId, node);
      out.push(node);
    }
    node.children.push(n);
  }
  for (const node of sweeps.values()) {
    const runs = node.children.map((c) => c.run);
    node.children.sort((a, b) => (a.run.sweep?.index ?? 0) - (b.run.sweep?.index ?? 0) || a.label.localeCompare(b.label));
    const size = Math.max(runs.length, ...runs.map((r) => r.sweep?.size ?? 0));
    node.label = `sweep ${node.group} (${size} run${size === 1 ? '' : 's'})`;
    const count = (s: RunStatus) => runs.filter((r) => r.status === s).length;
    const parts: string[] = [];
    if (count('done') !== runs.length) parts.push(`${count('done')} done`);
    for (const s of ['running', 'queued', 'failed', 'cancelled', 'interrupted'] as RunStatus[]) if (count(s)) parts.push(`${count(s)} ${s}`);
    const scored = runs.filter((r) => r.best);
    if (scored.length) {
      const metric = scored[0].best!.metric;
      const lowerBetter = metric === 'loss' || metric === 'mse';
      const best = scored.filter((r) => r.best!.metric === metric).reduce((a, b) => ((lowerBetter ? b.best!.value < a.best!.value : b.best!.value > a.best!.value) ? b : a));
      parts.push(`best ${metric} ${formatMetric(best.best!.value)} (${sweepPointLabel(best)})`);
    }
    node.description = parts.join(' · ');
    const axes = [...new Set(runs.flatMap((r) => Object.keys(r.sweep?.assignment ?? {})))];
    node.tooltip = [`sweep of ${node.group}: ${runs.length} of ${size} points`, `axes: ${axes.join(', ')}`, `launch ${node.sweepId}`].join('\n');
    node.icon = count('failed') ? STATUS_ICONS.failed : count('running') ? STATUS_ICONS.running : count('queued') ? STATUS_ICONS.queued : count('done') === runs.length ? STATUS_ICONS.done : STATUS_ICONS.cancelled;
    // Active: a queue job works on it, or Slurm tasks of it are pending or running (Cancel then cancels the array).
    if (runs.some((r) => overlayByRun.has(r.dir) || (r.slurm && (r.status === 'queued' || r.status === 'running')))) node.contextValue += ' active';
  }
  return out;
}

/** What changes when a run folder appears, goes or writes its run.json: entries, their times and run.json's, per runs folder. */
export function runsFoldersSignature(dirs: string[]): string {
  const parts: string[] = [];
  for (const dir of dirs) {
    let entries: string[];
    try {
      entries = fs.readdirSync(dir).sort();
    } catch {
      parts.push(`${dir}:none`);
      continue;
    }
    for (const e of entries) {
      // The entry's own time too: a sweep's folder gains its points' folders.
      const time = (f: string) => {
        try {
          return fs.statSync(f).mtimeMs;
        } catch {
          return 0;
        }
      };
      parts.push(`${e}@${time(path.join(dir, e))}/${time(path.join(dir, e, RUN_FILE))}`);
    }
  }
  return parts.join('|');
}
