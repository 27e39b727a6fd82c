/**
 * The "Adapter Lab" commands. Each takes what its menus pass (a tree node, an explorer Uri, a run folder path
 * from another command) or, from the palette, asks with a quick pick.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ConfigError, loadConfig } from '../engine/config/load';
import type { MethodType } from '../engine/config/types';
import { ADAPTER_DIR, deleteRun, isProcessAlive, RESULT, resultFileName, listRuns, requestPointCancel, slugify, type RunSummary } from '../engine/runs';
import type { ViewKind } from '../protocol/webview';
import { ConfigDiagnostics } from './configs/diagnostics';
import { configFileName, METHODS, newExperimentText } from './configs/newExperiment';
import { problemMessage } from './configs/validate';
import { expandSweep } from '../engine/config/sweep';
import { cancel as slurmCancel } from '../engine/slurm/scheduler';
import { ablateJob, dropJob, evalJob, exportJob, resumeJob, sweepJob, trainJob } from './runs/jobs';
import { isSlurmRunLive, slurmResumeJob, slurmSubmitJob, type SlurmMonitor } from './runs/slurm';
import type { RunQueue } from './runs/queue';
import type { RunsView } from './runs/runsView';
import { formatMetric, isTrainedAdapterFolder, isTrainedFolder, type TreeNode } from './runs/treeModel';
import { taskKind } from './runs/taskKinds';
import { engineOptionsFor, readSlurmSettings } from './settings';
import type { Panels } from './webviews/panels';

export const COMMANDS = {
  trainAdapter: 'adapterLab.trainAdapter',
  evaluateAdapter: 'adapterLab.evaluateAdapter',
  runLayerAblation: 'adapterLab.runLayerAblation',
  showLossCurves: 'adapterLab.showLossCurves',
  showAblationHeatmap: 'adapterLab.showAblationHeatmap',
  compareRuns: 'adapterLab.compareRuns',
  cancelRun: 'adapterLab.cancelRun',
  deleteRun: 'adapterLab.deleteRun',
  revealRunFolder: 'adapterLab.revealRunFolder',
  newExperiment: 'adapterLab.newExperiment',
  exportAdapter: 'adapterLab.exportAdapter',
  resumeRun: 'adapterLab.resumeRun',
  refreshRuns: 'adapterLab.refreshRuns',
  showOutput: 'adapterLab.showOutput',
  showFusionAttention: 'adapterLab.showFusionAttention',
  runAdapterDrop: 'adapterLab.runAdapterDrop',
  showAdapterDrop: 'adapterLab.showAdapterDrop',
  runSweep: 'adapterLab.runSweep',
  showClassReport: 'adapterLab.showClassReport',
  showImagePredictions: 'adapterLab.showImagePredictions',
} as const;

type Arg = vscode.Uri | TreeNode | string | undefined;

interface Deps {
  queue: RunQueue;
  runsView: RunsView;
  panels: Panels;
  diagnostics: ConfigDiagnostics;
  output: vscode.OutputChannel;
  slurm: SlurmMonitor;
}

export function registerCommands(d: Deps): vscode.Disposable[] {
  const c = new Commands(d);
  const reg = (id: string, fn: (...args: never[]) => unknown) =>
    vscode.commands.registerCommand(id, async (...args: unknown[]) => {
      try {
        await (fn as (...a: unknown[]) => unknown).apply(c, args);
      } catch (err) {
        d.output.appendLine(`${id}: ${(err as Error).stack ?? err}`);
        void vscode.window.showErrorMessage(`Adapter Lab: ${(err as Error).message}`);
      }
    });
  return [
    reg(COMMANDS.trainAdapter, c.train),
    reg(COMMANDS.evaluateAdapter, c.evaluate),
    reg(COMMANDS.runLayerAblation, c.ablate),
    reg(COMMANDS.showLossCurves, (arg: Arg, all?: TreeNode[]) => c.showView('lossCurves', arg, all)),
    reg(COMMANDS.showAblationHeatmap, c.showAblation),
    reg(COMMANDS.compareRuns, (arg: Arg, all?: TreeNode[]) => c.showView('compare', arg, all)),
    reg(COMMANDS.cancelRun, c.cancel),
    reg(COMMANDS.deleteRun, c.delete),
    reg(COMMANDS.revealRunFolder, c.reveal),
    reg(COMMANDS.newExperiment, c.newExperiment),
    reg(COMMANDS.exportAdapter, c.exportAdapter),
    reg(COMMANDS.resumeRun, c.resume),
    reg(COMMANDS.refreshRuns, () => d.runsView.refresh({ rescanConfigs: true })),
    reg(COMMANDS.showOutput, () => d.output.show()),
    reg(COMMANDS.showFusionAttention, c.showFusion),
    reg(COMMANDS.runAdapterDrop, c.drop),
    reg(COMMANDS.showAdapterDrop, c.showDrop),
    reg(COMMANDS.runSweep, c.sweep),
    reg(COMMANDS.showClassReport, c.showClassReport),
    reg(COMMANDS.showImagePredictions, c.showImagePredictions),
  ];
}

/** In an untrusted workspace, runs can be viewed, not started (SPEC 6). */
async function requireTrust(what: string): Promise<boolean> {
  if (vscode.workspace.isTrusted) return true;
  const pick = await vscode.window.showWarningMessage(
    `Adapter Lab cannot ${what} in an untrusted workspace: training runs code on this workspace's files. Runs can still be viewed.`,
    'Manage Workspace Trust',
  );
  if (pick) await vscode.commands.executeCommand('workbench.trust.manage');
  return false;
}

class Commands {
  constructor(private readonly d: Deps) {}

  // ---- resolving arguments -------------------------------------------------------------------

  private async configFile(arg: Arg): Promise<string | undefined> {
    if (arg instanceof vscode.Uri) return arg.fsPath;
    if (typeof arg === 'string') return arg;
    if (arg && arg.kind === 'config') return arg.configFile ?? undefined;
    const active = vscode.window.activeTextEditor?.document.fileName;
    await this.d.runsView.refresh({ rescanConfigs: true });
    const configs = [...this.d.runsView.workspaceConfigs].sort((a, b) => (a.file === active ? -1 : b.file === active ? 1 : a.file.localeCompare(b.file)));
    if (!configs.length) {
      const pick = await vscode.window.showInformationMessage('There is no *.adapter.json config in this workspace.', 'New Experiment');
      if (pick) await vscode.commands.executeCommand(COMMANDS.newExperiment);
      return undefined;
    }
    const picked = await vscode.window.showQuickPick(
      configs.map((cfg) => ({ label: path.basename(cfg.file), description: `${cfg.name} · task ${cfg.task}`, detail: vscode.workspace.asRelativePath(cfg.file), file: cfg.file })),
      { title: 'Adapter Lab: choose an experiment config', placeHolder: 'a *.adapter.json file', matchOnDescription: true },
    );
    return picked?.file;
  }

  private findRun(dir: string): RunSummary | undefined {
    const abs = path.resolve(dir);
    return this.d.runsView.runs.find((r) => r.dir === abs) ?? listRuns(path.dirname(abs)).runs.find((r) => r.dir === abs);
  }

  /** The run an argument names; a config names its latest run that `accept`s; otherwise a quick pick. */
  private async run(arg: Arg, title: string, accept: (r: RunSummary) => boolean = () => true): Promise<RunSummary | undefined> {
    if (arg && typeof arg === 'object' && !(arg instanceof vscode.Uri) && arg.kind === 'run') return arg.run;
    if (typeof arg === 'string') return this.findRun(arg);
    let runs = this.d.runsView.runs.filter(accept);
    const configFile = arg instanceof vscode.Uri ? arg.fsPath : arg?.kind === 'config' ? arg.configFile : undefined;
    if (configFile) {
      await this.d.runsView.refresh();
      runs = this.d.runsView.runs.filter((r) => accept(r) && r.config.configFile === configFile);
      if (runs.length) return runs[0];
      const pick = await vscode.window.showWarningMessage(`${path.basename(configFile)} has no finished run yet: train it first.`, 'Train Adapter');
      if (pick) await vscode.commands.executeCommand(COMMANDS.trainAdapter, vscode.Uri.file(configFile));
      return undefined;
    }
    if (!runs.length) {
      void vscode.window.showInformationMessage(`Adapter Lab: no run to ${title.toLowerCase()}.`);
      return undefined;
    }
    const picked = await vscode.window.showQuickPick(runs.map(runPickItem), { title: `Adapter Lab: ${title}`, matchOnDescription: true });
    return picked?.run;
  }

  // ---- starting work -------------------------------------------------------------------------

  async train(arg?: Arg): Promise<void> {
    if (!(await requireTrust('train'))) return;
    const file = await this.configFile(arg);
    if (!file) return;
    const uri = vscode.Uri.file(file);
    const open = vscode.workspace.textDocuments.find((doc) => doc.uri.fsPath === uri.fsPath);
    if (open?.isDirty) await open.save();
    let name: string;
    try {
      name = loadConfig(file).name;
    } catch (err) {
      if (err instanceof ConfigError) {
        const text = fs.readFileSync(file, 'utf8');
        this.d.diagnostics.set(uri, text, err.problems);
        const first = err.problems[0];
        const more = err.problems.length > 1 ? ` (and ${err.problems.length - 1} more)` : '';
        const pick = await vscode.window.showErrorMessage(
          `${path.basename(file)}${first.line ? `:${first.line}` : ''}: ${problemMessage(first)}${more}. Fix the config to train it.`,
          'Open Config',
        );
        if (pick) {
          const line = Math.max(0, (first.line ?? 1) - 1);
          await vscode.window.showTextDocument(uri, { selection: new vscode.Range(line, 0, line, 0) });
        }
        return;
      }
      throw err;
    }
    const slurm = readSlurmSettings(uri);
    this.d.queue.enqueue(slurm.enabled ? slurmSubmitJob('train', file, name, 1, engineOptionsFor(uri), slurm) : trainJob(file, name, engineOptionsFor(uri)));
    this.d.runsView.schedule(50);
  }

  async resume(arg?: Arg): Promise<void> {
    if (!(await requireTrust('resume a run'))) return;
    const run = await this.run(arg, 'Resume Run', (r) => ['interrupted', 'cancelled', 'failed'].includes(r.status));
    if (!run) return;
    if (this.d.queue.jobForRun(run.dir)) {
      void vscode.window.showInformationMessage(`${run.name} is already queued or running.`);
      return;
    }
    if (run.status === 'done' || run.status === 'running') {
      void vscode.window.showInformationMessage(`${run.name} is ${run.status}; nothing to resume.`);
      return;
    }
    const uri = vscode.Uri.file(run.dir);
    const slurm = readSlurmSettings(uri);
    this.d.queue.enqueue(slurm.enabled ? slurmResumeJob(run.dir, run.name, engineOptionsFor(uri), slurm) : resumeJob(run.dir, run.name, engineOptionsFor(uri)));
    this.d.panels.runStarted(run.dir);
    this.d.runsView.schedule(50);
  }

  /** `split`: given by the per-class view's "Evaluate on <split>" (no question asked then). */
  async evaluate(arg?: Arg, split?: 'dev' | 'test'): Promise<void> {
    if (!(await requireTrust('evaluate'))) return;
    const run = await this.run(arg, 'Evaluate Adapter', isFinishedModel);
    if (!run) return;
    if (!isFinishedModel(run)) {
      void vscode.window.showWarningMessage(`${run.name} has no trained adapter yet (status: ${run.status}).`);
      return;
    }
    if (split !== 'dev' && split !== 'test') split = undefined;
    if (!split && (run.config.task.test || run.config.task.split)) {
      const picked = await vscode.window.showQuickPick(
        [
          { label: 'dev', description: 'the development set' },
          { label: 'test', description: 'the held-out test set' },
        ],
        { title: `Evaluate ${run.name} on` },
      );
      if (!picked) return;
      split = picked.label as 'dev' | 'test';
    }
    this.d.queue.enqueue(evalJob(run.dir, run.name, split ?? 'dev', engineOptionsFor(vscode.Uri.file(run.dir))));
  }

  async ablate(arg?: Arg): Promise<void> {
    if (!(await requireTrust('run an ablation'))) return;
    const run = await this.run(arg, 'Run Layer Ablation', isFinishedModel);
    if (!run) return;
    if (!isFinishedModel(run)) {
      void vscode.window.showWarningMessage(`${run.name} has no trained adapter yet (status: ${run.status}).`);
      return;
    }
    this.d.queue.enqueue(ablateJob(run.dir, run.name, engineOptionsFor(vscode.Uri.file(run.dir))));
  }

  async drop(arg?: Arg): Promise<void> {
    if (!(await requireTrust('measure AdapterDrop'))) return;
    const run = await this.run(arg, 'Run AdapterDrop', isFinished);
    if (!run) return;
    if (!isFinished(run)) {
      void vscode.window.showWarningMessage(`${run.name} has no trained adapter yet (status: ${run.status}).`);
      return;
    }
    this.d.queue.enqueue(dropJob(run.dir, run.name, engineOptionsFor(vscode.Uri.file(run.dir))));
  }

  /** Runs a config's sweep (its `sweep` axes) as one queue job: `adapter-lab sweep <config> --jobs N`. */
  async sweep(arg?: Arg): Promise<void> {
    if (!(await requireTrust('run a sweep'))) return;
    const file = await this.configFile(arg);
    if (!file) return;
    const uri = vscode.Uri.file(file);
    const open = vscode.workspace.textDocuments.find((doc) => doc.uri.fsPath === uri.fsPath);
    if (open?.isDirty) await open.save();
    let points: number;
    let name: string;
    try {
      const cfg = loadConfig(file);
      name = cfg.name;
      points = cfg.sweep && Object.keys(cfg.sweep).length ? expandSweep(cfg).length : 0;
    } catch (err) {
      if (err instanceof ConfigError) {
        this.d.diagnostics.set(uri, fs.readFileSync(file, 'utf8'), err.problems);
        const first = err.problems[0];
        void vscode.window.showErrorMessage(`${path.basename(file)}${first.line ? `:${first.line}` : ''}: ${problemMessage(first)}. Fix the config to run its sweep.`);
        return;
      }
      throw err;
    }
    if (!points) {
      const pick = await vscode.window.showWarningMessage(
        `${path.basename(file)} has no sweep axes: add "sweep": {"training.learningRate": [1e-4, 1e-3]} (any field, dotted) to run a grid.`,
        'Train Once',
      );
      if (pick) await this.train(file);
      return;
    }
    const slurm = readSlurmSettings(uri);
    this.d.queue.enqueue(slurm.enabled ? slurmSubmitJob('sweep', file, name, points, engineOptionsFor(uri), slurm) : sweepJob(file, name, points, this.d.queue.concurrency, engineOptionsFor(uri)));
    this.d.runsView.schedule(50);
  }

  async exportAdapter(arg?: Arg): Promise<void> {
    if (!(await requireTrust('export'))) return;
    const run = await this.run(arg, 'Export Adapter', isFinished);
    if (!run) return;
    const folder = await vscode.window.showOpenDialog({
      canSelectFolders: true,
      canSelectFiles: false,
      canSelectMany: false,
      openLabel: 'Export Here',
      title: `Export the adapter of ${run.name} (AdapterHub layout)`,
      defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
    });
    if (!folder?.[0]) return;
    let dest = path.join(folder[0].fsPath, `${slugify(run.name)}-adapter`);
    for (let i = 2; fs.existsSync(dest); i++) dest = path.join(folder[0].fsPath, `${slugify(run.name)}-adapter-${i}`);
    this.d.queue.enqueue(exportJob(run.dir, run.name, dest, engineOptionsFor(vscode.Uri.file(run.dir))));
  }

  // ---- managing runs -------------------------------------------------------------------------

  async cancel(arg?: Arg): Promise<void> {
    if (arg && typeof arg === 'object' && !(arg instanceof vscode.Uri) && arg.kind === 'sweep') {
      // A sweep on Slurm: scancel of its whole job array (each running task saves a checkpoint first).
      const slurmJobs = new Set(arg.children.filter((c) => isSlurmRunLive(c.run, this.d.slurm.statuses.get(c.run.dir))).map((c) => c.run.slurm!.jobId));
      if (slurmJobs.size) {
        for (const jobId of slurmJobs) await slurmCancel(jobId);
        void this.d.slurm.poll();
        return;
      }
      const job = arg.children.map((c) => this.d.queue.jobForRun(c.run.dir)).find((j) => j !== undefined);
      if (job) this.d.queue.cancel(job);
      else void vscode.window.showInformationMessage(`${arg.label} is not running.`);
      return;
    }
    if (arg && typeof arg === 'object' && !(arg instanceof vscode.Uri) && arg.kind === 'pending') {
      const job = this.d.queue.active.find((j) => j.id === arg.jobId);
      if (job) this.d.queue.cancel(job);
      return;
    }
    const run = await this.run(arg, 'Cancel Run', (r) => r.status === 'running' || r.status === 'queued' || this.d.queue.jobForRun(r.dir) !== undefined);
    if (!run) return;
    if (run.slurm && isSlurmRunLive(run, this.d.slurm.statuses.get(run.dir))) {
      // One Slurm run: scancel of its array task alone.
      await slurmCancel(run.slurm.jobId, run.slurm.arrayTaskId);
      void this.d.slurm.poll();
      return;
    }
    const job = this.d.queue.jobForRun(run.dir);
    if (job?.spec.kind === 'sweep') {
      // One point of a sweep: the sweep process skips or stops just that point, the others go on.
      if (run.status !== 'queued' && run.status !== 'running') {
        void vscode.window.showInformationMessage(`${run.name} is not running (${run.status}).`);
        return;
      }
      requestPointCancel(run.dir);
      void vscode.window.showInformationMessage(`Cancelling ${run.name}; the rest of the sweep goes on (Cancel on the sweep stops all of it).`);
      return;
    }
    if (job) {
      this.d.queue.cancel(job);
      return;
    }
    // Started by another window: ask its process to stop (it checkpoints and ends as cancelled).
    if (run.status === 'running' && typeof run.pid === 'number' && isProcessAlive(run.pid)) {
      const ok = await vscode.window.showWarningMessage(`${run.name} was started by another window (pid ${run.pid}). Stop it?`, { modal: true }, 'Stop');
      if (ok) process.kill(run.pid, 'SIGTERM');
      return;
    }
    void vscode.window.showInformationMessage(`${run.name} is not running (${run.status}).`);
  }

  async delete(arg?: Arg, all?: TreeNode[]): Promise<void> {
    const nodes = (all?.length ? all : arg && typeof arg === 'object' && !(arg instanceof vscode.Uri) ? [arg] : []).filter((n) => n.kind === 'run' || n.kind === 'problem');
    let targets: { dir: string; name: string }[] = nodes.map((n) => (n.kind === 'run' ? { dir: n.run.dir, name: n.run.name } : { dir: (n as Extract<TreeNode, { kind: 'problem' }>).dir, name: n.label }));
    if (!targets.length) {
      const run = await this.run(arg, 'Delete Run');
      if (!run) return;
      targets = [{ dir: run.dir, name: run.name }];
    }
    const busy = targets.filter((t) => this.d.queue.jobForRun(t.dir) || this.findRun(t.dir)?.status === 'running');
    if (busy.length) {
      void vscode.window.showWarningMessage(`${busy.map((t) => t.name).join(', ')} ${busy.length === 1 ? 'is' : 'are'} running or queued: cancel first.`);
      return;
    }
    const what = targets.length === 1 ? `the run "${targets[0].name}"` : `${targets.length} runs`;
    const ok = await vscode.window.showWarningMessage(`Delete ${what} and ${targets.length === 1 ? 'its folder' : 'their folders'}? This cannot be undone.`, { modal: true }, 'Delete');
    if (ok !== 'Delete') return;
    for (const t of targets) deleteRun(t.dir);
    await this.d.runsView.refresh();
  }

  async reveal(arg?: Arg): Promise<void> {
    let dir: string | undefined;
    if (arg && typeof arg === 'object' && !(arg instanceof vscode.Uri) && arg.kind === 'problem') dir = arg.dir;
    else dir = (await this.run(arg, 'Reveal Run Folder'))?.dir;
    if (!dir) return;
    const uri = vscode.Uri.file(dir);
    if (vscode.workspace.getWorkspaceFolder(uri)) await vscode.commands.executeCommand('revealInExplorer', uri);
    else await vscode.commands.executeCommand('revealFileInOS', uri);
  }

  // ---- views ---------------------------------------------------------------------------------

  /** Loss curves / compare of the selected runs, a config's runs, or (palette) runs picked from a list. */
  async showView(kind: Extract<ViewKind, 'lossCurves' | 'compare'>, arg: Arg, all?: TreeNode[]): Promise<void> {
    await this.d.runsView.refresh();
    const nodes = all?.length ? all : arg && typeof arg === 'object' && !(arg instanceof vscode.Uri) ? [arg] : [];
    const dirs = new Set<string>();
    const runsOf = (configFile: string | null, task?: string) =>
      this.d.runsView.runs.filter((r) => (configFile ? r.config.configFile === configFile : r.task === task)).map((r) => r.dir);
    for (const n of nodes) {
      if (n.kind === 'run') dirs.add(n.run.dir);
      else if (n.kind === 'sweep') n.children.forEach((c) => dirs.add(c.run.dir));
      else if (n.kind === 'config') runsOf(n.configFile).forEach((d) => dirs.add(d));
      else if (n.kind === 'task') runsOf(null, n.label).forEach((d) => dirs.add(d));
    }
    if (typeof arg === 'string') dirs.add(path.resolve(arg));
    if (arg instanceof vscode.Uri) runsOf(arg.fsPath).forEach((d) => dirs.add(d));
    if (!dirs.size && kind === 'lossCurves') {
      const runs = this.d.runsView.runs;
      if (!runs.length) {
        void vscode.window.showInformationMessage('Adapter Lab: no runs yet. Train an adapter first.');
        return;
      }
      const picked = await vscode.window.showQuickPick(
        runs.map((r) => ({ ...runPickItem(r), picked: r.status === 'running' || this.d.queue.jobForRun(r.dir) !== undefined })),
        { title: 'Adapter Lab: runs to plot', canPickMany: true, matchOnDescription: true },
      );
      if (!picked?.length) return;
      picked.forEach((p) => dirs.add(p.run.dir));
    }
    // Compare with no selection compares every run.
    this.d.panels.show(kind, { runDirs: [...dirs] });
  }

  async showAblation(arg?: Arg): Promise<void> {
    const run = await this.run(arg, 'Show Ablation Heatmap', (r) => fs.existsSync(path.join(r.dir, resultFileName(RESULT.ablation))));
    if (!run) return;
    this.d.panels.show('ablation', { runDirs: [run.dir] });
  }

  async showFusion(arg?: Arg): Promise<void> {
    const run = await this.run(arg, 'Show Fusion Attention', (r) => fs.existsSync(path.join(r.dir, resultFileName(RESULT.fusionAttention))));
    if (!run) return;
    this.d.panels.show('fusion', { runDirs: [run.dir] });
  }

  async showDrop(arg?: Arg): Promise<void> {
    const run = await this.run(arg, 'Show AdapterDrop Trade-off', (r) => fs.existsSync(path.join(r.dir, resultFileName(RESULT.drop))));
    if (!run) return;
    this.d.panels.show('drop', { runDirs: [run.dir] });
  }

  /** Per-class metrics and the confusion matrix of a classification run (text or images); the palette lists those. */
  async showClassReport(arg?: Arg): Promise<void> {
    const run = await this.run(arg, 'Show Per-class Metrics', (r) => taskKind(r.config.task?.type).classification);
    if (!run) return;
    // An image run's view may be on its Images tab (Show Image Predictions): back to the scores.
    this.d.panels.show('classReport', { runDirs: [run.dir] }, 'scores');
  }

  /** The grid of an image run's evaluated images with their true and predicted classes: Per-class Metrics' Images tab. */
  async showImagePredictions(arg?: Arg): Promise<void> {
    const run = await this.run(arg, 'Show Image Predictions', (r) => {
      const kind = taskKind(r.config.task?.type);
      return kind.classification && kind.inputs === 'images';
    });
    if (!run) return;
    this.d.panels.show('classReport', { runDirs: [run.dir] }, 'images');
  }

  // ---- configs -------------------------------------------------------------------------------

  async newExperiment(arg?: Arg): Promise<void> {
    const method = await vscode.window.showQuickPick(
      METHODS.map((m) => ({ label: m.type, description: m.description })),
      { title: 'New Experiment: method' },
    );
    if (!method) return;
    await this.d.runsView.refresh({ rescanConfigs: true });
    let base: string | undefined = arg instanceof vscode.Uri && arg.fsPath.endsWith('.adapter.json') ? arg.fsPath : arg && typeof arg === 'object' && !(arg instanceof vscode.Uri) && arg.kind === 'config' ? (arg.configFile ?? undefined) : undefined;
    if (!base && this.d.runsView.workspaceConfigs.length) {
      const picked = await vscode.window.showQuickPick(
        [
          ...this.d.runsView.workspaceConfigs.map((cfg) => ({ label: `task ${cfg.task}`, description: `from ${path.basename(cfg.file)}`, file: cfg.file as string | undefined })),
          { label: 'A new task', description: 'a template to fill in', file: undefined },
        ],
        { title: 'New Experiment: take the task, model and training settings from' },
      );
      if (!picked) return;
      base = picked.file;
    }
    const baseText = base ? fs.readFileSync(base, 'utf8') : undefined;
    const task = base ? this.d.runsView.workspaceConfigs.find((cfg) => cfg.file === base)?.task : undefined;
    const name = await vscode.window.showInputBox({
      title: 'New Experiment: name',
      value: `${task ?? 'my-task'}-${method.label}`,
      validateInput: (v) => (v.trim() ? undefined : 'a name is needed'),
    });
    if (!name) return;
    const folderUri = arg instanceof vscode.Uri && !arg.fsPath.endsWith('.adapter.json') ? arg : undefined;
    const targetDir = folderUri?.fsPath ?? (base ? path.dirname(base) : vscode.workspace.workspaceFolders?.[0]?.uri.fsPath);
    if (!targetDir) {
      void vscode.window.showWarningMessage('Open a folder first: the experiment config is written into the workspace.');
      return;
    }
    const taken = new Set(fs.existsSync(targetDir) ? fs.readdirSync(targetDir) : []);
    const file = path.join(targetDir, configFileName(name.trim(), taken));
    fs.writeFileSync(file, newExperimentText({ name: name.trim(), method: method.label as MethodType, baseText, baseDir: base ? path.dirname(base) : undefined, targetDir }));
    await vscode.window.showTextDocument(vscode.Uri.file(file));
    await this.d.runsView.refresh({ rescanConfigs: true });
  }
}

/** Done, with an adapter in AdapterHub's layout (export, AdapterDrop). */
function isFinished(r: RunSummary): boolean {
  return r.status === 'done' && isTrainedAdapterFolder(path.join(r.dir, ADAPTER_DIR));
}

/** Done, with a trained model of any family (evaluation, the ablation). */
function isFinishedModel(r: RunSummary): boolean {
  return r.status === 'done' && isTrainedFolder(path.join(r.dir, ADAPTER_DIR));
}

function runPickItem(r: RunSummary): vscode.QuickPickItem & { run: RunSummary } {
  const best = r.best ? `${r.best.metric} ${formatMetric(r.best.value)}` : '';
  return {
    label: r.name,
    description: [r.status, r.method, r.task, best].filter(Boolean).join(' · '),
    detail: `${new Date(r.createdAt).toLocaleString()} · ${vscode.workspace.asRelativePath(r.dir)}`,
    run: r,
  };
}
