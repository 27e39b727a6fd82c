/**
 * Activation: wires the run queue (engine child processes), the Runs view, the webview panels, config
 * diagnostics and the commands. The extension never trains: every engine job is a child process of the
 * bundled CLI (dist/cli.js), run with the extension host's own Node (ELECTRON_RUN_AS_NODE in VS Code).
 */
import * as vscode from 'vscode';
import { effectiveStatus } from '../engine/runs';
import { registerCommands } from './commands';
import { ConfigDiagnostics } from './configs/diagnostics';
import { hasCheckpoint } from './runs/finalize';
import { RunQueue } from './runs/queue';
import { RunFeedback } from './runs/runFeedback';
import { RUNS_VIEW_ID, RunsView } from './runs/runsView';
import { SlurmMonitor } from './runs/slurm';
import { readSettings, readSlurmSettings } from './settings';
import { Panels } from './webviews/panels';

let queue: RunQueue | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<{ queue: RunQueue }> {
  const output = vscode.window.createOutputChannel('Adapter Lab');
  const cli = vscode.Uri.joinPath(context.extensionUri, 'dist', 'cli.js').fsPath;
  queue = new RunQueue({
    launcher: { command: process.execPath, args: [cli], env: { ELECTRON_RUN_AS_NODE: '1' } },
    maxConcurrent: readSettings().maxConcurrentRuns,
  });
  const q = queue;
  const runsView = new RunsView(q);
  const treeView = vscode.window.createTreeView(RUNS_VIEW_ID, { treeDataProvider: runsView, canSelectMany: true, showCollapseAll: true });
  const panels = new Panels(context, runsView, (dir) => q.jobForRun(dir) !== undefined);
  const diagnostics = new ConfigDiagnostics();
  const feedback = new RunFeedback(q, output);
  // Slurm runs: their tasks' state in the tree, their logs in the output channel (src/extension/runs/slurm.ts).
  const slurm = new SlurmMonitor({
    runs: () => runsView.runs,
    onChange: () => runsView.schedule(50),
    onLog: (run, line) => output.appendLine(`[${run.name}] ${line}`),
    onError: (message) => output.appendLine(`Adapter Lab: ${message}`),
    pollMs: readSlurmSettings().pollSeconds * 1000,
  });
  runsView.slurmStatuses = () => slurm.statuses;

  context.subscriptions.push(
    output,
    runsView,
    treeView,
    panels,
    diagnostics,
    feedback,
    slurm,
    ...registerCommands({ queue: q, runsView, panels, diagnostics, output, slurm }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('adapterLab.maxConcurrentRuns')) q.setMaxConcurrent(readSettings().maxConcurrentRuns);
      if (e.affectsConfiguration('adapterLab.slurm.pollSeconds')) slurm.setPollMs(readSlurmSettings().pollSeconds * 1000);
    }),
    q.listen({
      onMessage: (job, msg) => {
        if (msg.type === 'start' && msg.runDir) panels.runStarted(msg.runDir);
        if (msg.type === 'start' && job.spec.kind === 'train') runsView.schedule(50);
      },
      onJob: (job, event) => {
        // A submission ended: its runs are on disk; ask Slurm about them now rather than at the next tick.
        if (job.spec.kind === 'slurm' && event === 'ended') void runsView.refresh().then(() => slurm.poll());
      },
    }),
  );

  output.appendLine(`Adapter Lab: engine ${cli}, node ${process.version} (${process.execPath})`);
  await runsView.refresh({ rescanConfigs: true });
  slurm.start();
  void slurm.poll();
  void offerResume(runsView);
  return { queue: q };
}

/**
 * Runs left "running" by a window that closed are interrupted: say so once, and offer to resume those with a
 * checkpoint (the tree shows all of them as interrupted).
 */
async function offerResume(runsView: RunsView): Promise<void> {
  // A Slurm run's process lives on a compute node, not here: Slurm's state, not its pid, says whether it lives.
  const interrupted = runsView.runs.filter((r) => !r.slurm && r.statusOnDisk === 'running' && effectiveStatus(r) === 'interrupted' && hasCheckpoint(r.dir));
  if (!interrupted.length || !vscode.workspace.isTrusted) return;
  const names = interrupted.map((r) => r.name).join(', ');
  const pick = await vscode.window.showWarningMessage(
    `Adapter Lab: ${interrupted.length === 1 ? `the run ${names} was` : `${interrupted.length} runs (${names}) were`} interrupted when a window closed.`,
    interrupted.length === 1 ? 'Resume' : 'Resume All',
  );
  if (pick) for (const r of interrupted) await vscode.commands.executeCommand('adapterLab.resumeRun', r.dir);
}

/** Stops running jobs so that they save their checkpoints (they end as cancelled and can be resumed). */
export async function deactivate(): Promise<void> {
  const q = queue;
  queue = undefined;
  if (!q) return;
  await Promise.race([q.dispose(), new Promise((resolve) => setTimeout(resolve, 4000))]);
}
