/**
 * What people see of the queue: a status-bar item while anything runs, a cancellable progress notification
 * per job, every engine line in the "Adapter Lab" output channel, and a message when a job ends.
 */
import * as vscode from 'vscode';
import type { EngineMessage } from '../../protocol/messages';
import { formatMetric, formatPercent } from './treeModel';
import { isTerminal, type Job, type RunQueue } from './queue';

export class RunFeedback implements vscode.Disposable {
  readonly statusBar: vscode.StatusBarItem;
  private readonly subscription: { dispose(): void };
  private readonly progress = new Map<number, { report(v: { increment?: number; message?: string }): void; reported: number }>();

  constructor(
    private readonly queue: RunQueue,
    private readonly output: vscode.OutputChannel,
  ) {
    this.statusBar = vscode.window.createStatusBarItem('adapterLab.status', vscode.StatusBarAlignment.Left, 10);
    this.statusBar.name = 'Adapter Lab Runs';
    this.statusBar.command = 'adapterLab.runs.focus';
    this.subscription = queue.listen({
      onJob: (job, event) => {
        if (event === 'queued') this.log(job, `queued: ${job.spec.label}`);
        if (event === 'started') {
          this.log(job, `started (pid ${job.pid}): adapter-lab ${job.spec.args.join(' ')}`);
          this.showProgress(job);
        }
        if (event === 'progress') this.reportProgress(job);
        if (event === 'ended') this.ended(job);
        this.updateStatusBar();
      },
      onMessage: (job, msg) => this.logMessage(job, msg),
      onText: (job, line, stream) => this.log(job, stream === 'stderr' ? `stderr: ${line}` : line),
    });
  }

  private log(job: Job, line: string): void {
    this.output.appendLine(`[${new Date().toLocaleTimeString()}] [${job.id} ${job.spec.label}] ${line}`);
  }

  private logMessage(job: Job, msg: EngineMessage): void {
    switch (msg.type) {
      case 'log':
        this.log(job, msg.level === 'info' ? msg.message : `${msg.level}: ${msg.message}`);
        break;
      case 'start':
        if (msg.runDir) this.log(job, `run folder: ${msg.runDir}`);
        break;
      case 'eval':
        this.log(job, `${msg.epoch !== undefined ? `epoch ${msg.epoch + 1}, step ${msg.step}: ` : ''}${msg.split} ${Object.entries(msg.metrics).map(([k, v]) => `${k} ${formatMetric(v)}`).join(', ')}${msg.isBest ? ' (best so far)' : ''}`);
        break;
      case 'progress':
        if (msg.step === 1 || msg.step === msg.totalSteps || msg.step % 50 === 0) {
          this.log(job, `step ${msg.step}/${msg.totalSteps}${msg.loss !== undefined ? ` loss ${msg.loss.toFixed(4)}` : ''}${msg.tokensPerSecond ? ` ${Math.round(msg.tokensPerSecond)} tok/s` : ''}${msg.imagesPerSecond ? ` ${Math.round(msg.imagesPerSecond)} images/s` : ''}`);
        }
        break;
      case 'error':
        this.log(job, `error: ${msg.message}`);
        break;
      case 'done':
        this.log(job, `done: ${msg.status} (exit code ${msg.exitCode})`);
        break;
      default:
        break;
    }
  }

  private showProgress(job: Job): void {
    void vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Adapter Lab: ${job.spec.label}`, cancellable: true },
      (progress, token) => {
        this.progress.set(job.id, { report: (v) => progress.report(v), reported: 0 });
        token.onCancellationRequested(() => {
          this.log(job, 'cancel requested');
          this.queue.cancel(job);
        });
        return this.queue.whenEnded(job).then(() => {
          this.progress.delete(job.id);
        });
      },
    );
  }

  private reportProgress(job: Job): void {
    const p = this.progress.get(job.id);
    const pr = job.progress;
    if (!p || !pr || pr.totalSteps <= 0) return;
    const pct = (100 * pr.step) / pr.totalSteps;
    const parts = [`step ${pr.step}/${pr.totalSteps}`];
    if (pr.loss !== undefined) parts.push(`loss ${pr.loss.toFixed(4)}`);
    if (job.lastEval) parts.push(Object.entries(job.lastEval.metrics).slice(0, 1).map(([k, v]) => `dev ${k} ${formatMetric(v)}`)[0]);
    p.report({ increment: Math.max(0, pct - p.reported), message: parts.join(' · ') });
    p.reported = Math.max(p.reported, pct);
  }

  private updateStatusBar(): void {
    const active = this.queue.active;
    if (!active.length) {
      this.statusBar.hide();
      return;
    }
    const running = active.filter((j) => j.state === 'running');
    const queued = active.length - running.length;
    const first = running[0];
    const pct = first?.progress && first.progress.totalSteps ? ` ${Math.round((100 * first.progress.step) / first.progress.totalSteps)}%` : '';
    this.statusBar.text = `$(sync~spin) ${first ? first.spec.label + pct : 'Adapter Lab'}${running.length > 1 ? ` +${running.length - 1}` : ''}${queued ? ` (${queued} queued)` : ''}`;
    this.statusBar.tooltip = active.map((j) => `${j.state}: ${j.spec.label}`).join('\n');
    this.statusBar.accessibilityInformation = { label: `Adapter Lab: ${running.length} running, ${queued} queued` };
    this.statusBar.show();
  }

  private ended(job: Job): void {
    if (!isTerminal(job.state)) return;
    this.log(job, `ended: ${job.state}${job.error ? ` (${job.error.message})` : ''}`);
    if (job.error?.stderrTail.length && job.state === 'failed') this.log(job, `last stderr lines:\n${job.error.stderrTail.join('\n')}`);
    void this.announce(job);
  }

  private async announce(job: Job): Promise<void> {
    const runDir = job.runDirs[job.runDirs.length - 1];
    if (job.state === 'failed') {
      const actions = ['Show Output'];
      if (job.error?.file && job.error.line) actions.push('Open Config');
      const pick = await vscode.window.showErrorMessage(`${job.spec.label} failed: ${job.error?.message ?? 'unknown error'}`, ...actions);
      if (pick === 'Show Output') this.output.show(true);
      if (pick === 'Open Config' && job.error?.file) {
        const line = Math.max(0, (job.error.line ?? 1) - 1);
        await vscode.window.showTextDocument(vscode.Uri.file(job.error.file), { selection: new vscode.Range(line, 0, line, 0) });
      }
      return;
    }
    if (job.state === 'cancelled') {
      if ((job.spec.kind === 'train' || job.spec.kind === 'resume') && runDir) {
        const pick = await vscode.window.showInformationMessage(`${job.spec.label} was cancelled; its checkpoint is saved.`, 'Resume');
        if (pick === 'Resume') await vscode.commands.executeCommand('adapterLab.resumeRun', runDir);
      }
      return;
    }
    const r = job.result ?? {};
    if (job.spec.kind === 'train' || job.spec.kind === 'resume') {
      const best = r.best as { metric: string; value: number } | undefined;
      const params = r.params as { trainablePercent: number } | undefined;
      const what = [best ? `best dev ${best.metric} ${formatMetric(best.value)}` : '', params ? `${formatPercent(params.trainablePercent)} of the parameters trained` : ''].filter(Boolean).join(', ');
      const pick = await vscode.window.showInformationMessage(`${job.spec.label} finished${what ? `: ${what}` : ''}.`, 'Show Loss Curves', 'Compare Runs');
      if (pick === 'Show Loss Curves' && runDir) await vscode.commands.executeCommand('adapterLab.showLossCurves', runDir);
      if (pick === 'Compare Runs') await vscode.commands.executeCommand('adapterLab.compareRuns');
    } else if (job.spec.kind === 'eval') {
      const metrics = (r.metrics ?? {}) as Record<string, number>;
      // A classification's evaluation carries its class report: offer the view of it.
      const actions = r.classes ? ['Show Per-class Metrics'] : [];
      const pick = await vscode.window.showInformationMessage(`${job.spec.label}: ${Object.entries(metrics).map(([k, v]) => `${k} ${formatMetric(v)}`).join(', ')}`, ...actions);
      if (pick && runDir) await vscode.commands.executeCommand('adapterLab.showClassReport', runDir);
    } else if (job.spec.kind === 'ablate') {
      const pick = await vscode.window.showInformationMessage(`${job.spec.label} finished.`, 'Show Ablation Heatmap');
      if (pick && runDir) await vscode.commands.executeCommand('adapterLab.showAblationHeatmap', runDir);
    } else if (job.spec.kind === 'slurm') {
      const jobId = (r.slurm as { jobId?: string } | undefined)?.jobId;
      void vscode.window.showInformationMessage(`${job.spec.label}: Slurm job ${jobId ?? '?'}. The Runs view follows its tasks; their logs go to the Adapter Lab output.`);
    } else if (job.spec.kind === 'export') {
      const to = typeof r.to === 'string' ? r.to : undefined;
      const pick = await vscode.window.showInformationMessage(`${job.spec.label}: written to ${to ?? 'the chosen folder'}.`, ...(to ? ['Reveal'] : []));
      if (pick === 'Reveal' && to) await vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(to));
    }
  }

  dispose(): void {
    this.subscription.dispose();
    this.statusBar.dispose();
  }
}
