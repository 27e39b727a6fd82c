/**
 * The webview panels: Loss Curves (one panel, live while its runs train), Ablation Heatmap, Fusion Attention,
 * AdapterDrop and Per-class Metrics (one per run; they reload when the Runs tree is rebuilt, and Per-class Metrics
 * when its run's eval files change) and Compare Runs (one panel). Each panel waits for its page's `ready` before it sends `init`; its subject lives
 * in the page's state, so a WebviewPanelSerializer can rebuild it after a reload.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { isWebviewMessage, VIEW_TYPES, type ClassReportTab, type HostToWebview, type ViewData, type ViewKind, type ViewState, type ViewSubject, type WebviewToHost } from '../../protocol/webview';
import type { RunsView } from '../runs/runsView';
import { renderWebviewHtml } from './html';
import { evalFilesSignature, exportBytes, loadAblation, loadClassReport, loadCompare, loadDrop, loadFusionAttention, MetricsFollower } from './viewData';

const TITLES: Record<ViewKind, string> = {
  lossCurves: 'Loss Curves',
  ablation: 'Ablation Heatmap',
  compare: 'Compare Runs',
  fusion: 'Fusion Attention',
  drop: 'AdapterDrop Trade-off',
  classReport: 'Per-class Metrics',
};
/** Views of one run: one panel per run. */
const PER_RUN: readonly ViewKind[] = ['ablation', 'fusion', 'drop', 'classReport'];
const LIVE_POLL_MS = 1000;
const EVAL_POLL_MS = 1000;

class ViewPanel implements vscode.Disposable {
  private ready = false;
  /** What the page was last sent, so that a rebuild of the tree that changed nothing here sends nothing. */
  private lastSent = '';
  private readonly disposables: vscode.Disposable[] = [];
  private follower = new MetricsFollower();
  private live: NodeJS.Timeout | undefined;
  private onDisposed: (() => void) | undefined;
  /** Per-class Metrics asked for an evaluation and its job may still run (the page disabled its button). */
  private evaluating = false;
  /** The tab the next init opens (Per-class Metrics: Show Image Predictions opens the image grid), sent once. */
  pendingTab: ClassReportTab | undefined;

  constructor(
    readonly kind: ViewKind,
    readonly panel: vscode.WebviewPanel,
    public subject: ViewSubject,
    private readonly host: Panels,
  ) {
    const root = host.context.extensionUri;
    panel.webview.options = {
      enableScripts: true,
      localResourceRoots: [vscode.Uri.joinPath(root, 'dist', 'webview'), vscode.Uri.joinPath(root, 'media')],
    };
    panel.iconPath = vscode.Uri.joinPath(root, 'media', 'icon.svg');
    panel.webview.html = renderWebviewHtml({
      view: kind,
      title: panel.title,
      cspSource: panel.webview.cspSource,
      scriptUri: panel.webview.asWebviewUri(vscode.Uri.joinPath(root, 'dist', 'webview', `${kind}.js`)).toString(),
      styleUri: panel.webview.asWebviewUri(vscode.Uri.joinPath(root, 'media', 'webview.css')).toString(),
    });
    this.disposables.push(
      panel.webview.onDidReceiveMessage((m: unknown) => {
        if (isWebviewMessage(m)) void this.receive(m);
      }),
      panel.onDidDispose(() => this.dispose()),
      // A hidden webview's page is unloaded; it says `ready` again when shown.
      panel.onDidChangeViewState((e) => {
        if (!e.webviewPanel.visible) {
          this.ready = false;
          this.lastSent = '';
        }
      }),
      host.runsView.onDidRebuild(() => {
        if (this.kind !== 'lossCurves') this.sendInit(true);
      }),
    );
    if (kind === 'classReport') this.followEvalFiles();
  }

  whenDisposed(fn: () => void): void {
    this.onDisposed = fn;
  }

  show(subject: ViewSubject, tab?: ClassReportTab): void {
    this.subject = subject;
    this.pendingTab = tab;
    this.panel.reveal(undefined, false);
    this.sendInit();
  }

  private async receive(m: WebviewToHost): Promise<void> {
    switch (m.type) {
      case 'ready':
        this.ready = true;
        this.sendInit();
        break;
      case 'export':
        await this.saveExport(m);
        break;
      case 'openRun':
        if (m.show === 'folder') await vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(m.runDir));
        else await vscode.commands.executeCommand(m.show === 'ablation' ? 'adapterLab.showAblationHeatmap' : 'adapterLab.showLossCurves', m.runDir);
        break;
      case 'evaluate':
        // The evaluation writes eval-<split>.json, which the view follows (followEvalFiles).
        await vscode.commands.executeCommand('adapterLab.evaluateAdapter', m.runDir, m.split);
        this.evaluating = true;
        break;
    }
  }

  private post(msg: HostToWebview): void {
    if (this.ready) void this.panel.webview.postMessage(msg);
  }

  private sendInit(onlyIfChanged = false): void {
    if (!this.ready) return;
    const payload = this.load();
    const text = JSON.stringify(payload);
    if (onlyIfChanged && text === this.lastSent) return;
    this.lastSent = text;
    this.post({ type: 'init', payload, subject: this.subject });
    this.pendingTab = undefined;
    if (this.kind === 'lossCurves') this.followLive();
  }

  private load(): ViewData {
    switch (this.kind) {
      case 'lossCurves': {
        this.follower = new MetricsFollower();
        const runs = this.subject.runDirs.map((d) => this.follower.load(d)).filter((c) => c !== null);
        return { view: 'lossCurves', data: { runs } };
      }
      case 'ablation': {
        const dir = this.subject.runDirs[0];
        const { data, missing } = dir ? loadAblation(dir) : { data: null, missing: 'no run given' };
        if (data) this.panel.title = `Ablation: ${data.run.name}`;
        return { view: 'ablation', data, missing };
      }
      case 'compare':
        return { view: 'compare', data: loadCompare(this.host.runsView.runs, this.subject.runDirs) };
      case 'fusion': {
        const dir = this.subject.runDirs[0];
        const { data, missing } = dir ? loadFusionAttention(dir) : { data: null, missing: 'no run given' };
        if (data) this.panel.title = `Fusion: ${data.run.name}`;
        return { view: 'fusion', data, missing };
      }
      case 'drop': {
        const dir = this.subject.runDirs[0];
        const { data, missing } = dir ? loadDrop(dir) : { data: null, missing: 'no run given' };
        if (data) this.panel.title = `AdapterDrop: ${data.run.name}`;
        return { view: 'drop', data, missing };
      }
      case 'classReport': {
        const dir = this.subject.runDirs[0];
        const { data, missing } = dir ? loadClassReport(dir) : { data: null, missing: 'no run given' };
        if (data) this.panel.title = `Per-class: ${data.run.name}`;
        return { view: 'classReport', data, missing, ...(this.pendingTab ? { tab: this.pendingTab } : {}) };
      }
    }
  }

  /** Polls the metrics of the runs that may still grow, and sends what is new. */
  private followLive(): void {
    if (this.live) clearInterval(this.live);
    const active = new Set(this.follower.followed);
    this.live = setInterval(() => {
      for (const dir of [...active]) {
        const msg = this.follower.poll(dir);
        if (!msg) continue;
        const still = msg.status === 'running' || msg.status === 'queued' || this.host.isActive(dir);
        if (msg.train.length || msg.dev.length || !still) this.post(msg);
        if (!still) active.delete(dir);
      }
      if (!active.size && this.live) {
        clearInterval(this.live);
        this.live = undefined;
      }
    }, LIVE_POLL_MS);
  }

  /**
   * The per-class view follows its run's eval files itself, by their size and time: file watchers miss files
   * in folders created after they started (seen in code-server: a runs folder made by the first training), the
   * tree watches only the configured runs folders, and a run may be evaluated from a terminal.
   */
  private followEvalFiles(): void {
    let last = '';
    const timer = setInterval(() => {
      const dir = this.subject.runDirs[0];
      if (!dir || !this.ready) return;
      if (this.evaluating && !this.host.isActive(dir)) {
        // The evaluation ended (or never started: refused, untrusted). Whatever it wrote, the page is sent anew,
        // which also gives back the button it disabled: after a failure nothing else would (the queue says why).
        this.evaluating = false;
        last = evalFilesSignature(dir);
        this.sendInit();
        return;
      }
      const signature = evalFilesSignature(dir);
      if (signature === last) return;
      last = signature;
      this.sendInit(true); // sends only what differs from what the page has
    }, EVAL_POLL_MS);
    this.disposables.push({ dispose: () => clearInterval(timer) });
  }

  /** Restarts live following (a run shown here was just started or resumed). */
  refollow(): void {
    if (this.kind === 'lossCurves' && this.ready && !this.live) this.sendInit();
  }

  private async saveExport(m: Extract<WebviewToHost, { type: 'export' }>): Promise<void> {
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    const target = await vscode.window.showSaveDialog({
      defaultUri: folder ? vscode.Uri.joinPath(folder, m.fileName) : undefined,
      filters: m.format === 'png' ? { 'PNG image': ['png'] } : { 'CSV table': ['csv'] },
      saveLabel: 'Export',
      title: `Export ${m.format.toUpperCase()}`,
    });
    if (!target) return;
    try {
      await fs.promises.writeFile(target.fsPath, exportBytes(m));
      this.post({ type: 'exported', file: target.fsPath });
      const pick = await vscode.window.showInformationMessage(`Exported ${path.basename(target.fsPath)}`, 'Open');
      if (pick === 'Open') await vscode.commands.executeCommand('vscode.open', target);
    } catch (err) {
      this.post({ type: 'notice', level: 'error', message: `export failed: ${(err as Error).message}` });
      void vscode.window.showErrorMessage(`Export failed: ${(err as Error).message}`);
    }
  }

  dispose(): void {
    if (this.live) clearInterval(this.live);
    for (const d of this.disposables) d.dispose();
    this.onDisposed?.();
  }
}

export class Panels implements vscode.Disposable {
  private readonly open = new Map<string, ViewPanel>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    readonly context: vscode.ExtensionContext,
    readonly runsView: RunsView,
    readonly isActive: (runDir: string) => boolean,
  ) {
    for (const kind of Object.keys(VIEW_TYPES) as ViewKind[]) {
      this.disposables.push(
        vscode.window.registerWebviewPanelSerializer(VIEW_TYPES[kind], {
          deserializeWebviewPanel: async (panel, state: unknown) => {
            const s = state as ViewState | undefined;
            const runDirs = (s?.subject?.runDirs ?? []).filter((d) => typeof d === 'string' && fs.existsSync(d));
            this.adopt(kind, panel, { runDirs });
          },
        }),
      );
    }
  }

  private key(kind: ViewKind, subject: ViewSubject): string {
    return PER_RUN.includes(kind) ? `${kind}:${subject.runDirs[0] ?? ''}` : kind;
  }

  private adopt(kind: ViewKind, panel: vscode.WebviewPanel, subject: ViewSubject): ViewPanel {
    const key = this.key(kind, subject);
    const view = new ViewPanel(kind, panel, subject, this);
    this.open.set(key, view);
    view.whenDisposed(() => {
      if (this.open.get(key) === view) this.open.delete(key);
    });
    return view;
  }

  /** Opens (or reveals) the view of `subject`; `tab`: the Per-class Metrics tab to show. */
  show(kind: ViewKind, subject: ViewSubject, tab?: ClassReportTab): void {
    const existing = this.open.get(this.key(kind, subject));
    if (existing) {
      existing.show(subject, tab);
      return;
    }
    const panel = vscode.window.createWebviewPanel(VIEW_TYPES[kind], TITLES[kind], vscode.ViewColumn.Active, {
      enableScripts: true,
      retainContextWhenHidden: false,
    });
    this.adopt(kind, panel, subject).pendingTab = tab;
  }

  /** A run started: loss-curve panels showing it follow it again. */
  runStarted(runDir: string): void {
    for (const v of this.open.values()) if (v.subject.runDirs.includes(runDir)) v.refollow();
  }

  dispose(): void {
    for (const v of [...this.open.values()]) v.panel.dispose();
    for (const d of this.disposables) d.dispose();
  }
}
