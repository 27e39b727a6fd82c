/**
 * The Runs view: a TreeDataProvider over the plain tree of treeModel.ts, rebuilt from disk on start, when a
 * file under a runs folder or a config changes (file watchers, debounced) and when the queue moves.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { listRuns, type RunSummary } from '../../engine/runs';
import { allRunsDirs } from '../settings';
import type { SlurmTaskStatus } from '../../engine/slurm/taskState';
import type { RunQueue } from './queue';
import { INPUT_ICONS } from './taskKinds';
import { buildRunsTree, peekConfig, runsFoldersSignature, type JobOverlay, type RunsListing, type TreeNode, type WorkspaceConfig } from './treeModel';

export const RUNS_VIEW_ID = 'adapterLab.runs';
export const CONFIG_GLOB = '**/*.adapter.json';

export class RunsView implements vscode.TreeDataProvider<TreeNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<TreeNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  /** Fires after every rebuild, with the listing it was built from (webviews refresh on it). */
  private readonly rebuilt = new vscode.EventEmitter<RunsListing>();
  readonly onDidRebuild = this.rebuilt.event;

  private roots: TreeNode[] = [];
  private listing: RunsListing = { runs: [], problems: [] };
  private configs: WorkspaceConfig[] = [];
  private readonly disposables: vscode.Disposable[] = [];
  private runWatchers: vscode.Disposable[] = [];
  private timer: NodeJS.Timeout | undefined;
  private configsStale = true;
  private rebuilding: Promise<void> | undefined;
  private rebuildAgain: Promise<void> | undefined;
  /** What the tree showed after the last rebuild that changed it (its nodes as JSON). */
  private shown = '';
  /** Slurm's state of the Slurm runs (the extension's SlurmMonitor sets it). */
  slurmStatuses: () => ReadonlyMap<string, SlurmTaskStatus> = () => new Map();

  constructor(private readonly queue: RunQueue) {
    const configWatcher = vscode.workspace.createFileSystemWatcher(CONFIG_GLOB);
    const onConfig = () => {
      this.configsStale = true;
      this.schedule();
    };
    configWatcher.onDidCreate(onConfig);
    configWatcher.onDidDelete(onConfig);
    configWatcher.onDidChange(onConfig);
    this.disposables.push(
      configWatcher,
      vscode.workspace.onDidChangeWorkspaceFolders(() => {
        this.watchRunsFolders();
        onConfig();
      }),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('adapterLab.runsFolder')) {
          this.watchRunsFolders();
          this.schedule();
        }
      }),
      queue.listen({ onJob: (_job, event) => this.schedule(event === 'progress' ? 500 : 50) }),
    );
    this.watchRunsFolders();
    // File watchers miss events (code-server's missed every file of a runs folder made after it started, even
    // once watched directly): a cheap look at the runs folders every 2 s (their entries and each run.json's
    // time) catches what they miss, such as runs trained from a terminal.
    let seen = runsFoldersSignature(allRunsDirs());
    const poll = setInterval(() => {
      const now = runsFoldersSignature(allRunsDirs());
      if (now !== seen) this.schedule();
      seen = now;
    }, 2000);
    this.disposables.push({ dispose: () => clearInterval(poll) });
  }

  /** Everything listed at the last rebuild. */
  get runs(): RunSummary[] {
    return this.listing.runs;
  }

  get workspaceConfigs(): WorkspaceConfig[] {
    return this.configs;
  }

  getTreeItem(node: TreeNode): vscode.TreeItem {
    switch (node.kind) {
      case 'task': {
        const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.Expanded);
        item.description = node.description;
        // The icon tells image tasks from text tasks; everything else shows alike.
        item.iconPath = new vscode.ThemeIcon(INPUT_ICONS[node.inputs]);
        item.tooltip = `${node.label}: ${node.inputs === 'images' ? 'an image' : 'a text'} task`;
        item.contextValue = 'adapterLab.task';
        item.accessibilityInformation = { label: `task ${node.label}, ${node.description}` };
        return withId(item, node);
      }
      case 'config': {
        // Always expandable: a config without runs gets its first run while the view is open, and an item
        // first shown as a leaf would stay collapsed once it has children.
        const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.Expanded);
        item.description = node.description;
        item.iconPath = new vscode.ThemeIcon('beaker');
        item.contextValue = node.contextValue;
        item.tooltip = node.configFile ?? `${node.label} (its config file is gone)`;
        if (node.configFile) {
          item.resourceUri = vscode.Uri.file(node.configFile);
          item.command = { command: 'vscode.open', title: 'Open Config', arguments: [vscode.Uri.file(node.configFile)] };
        }
        item.accessibilityInformation = { label: `config ${node.label}, ${node.description}` };
        return withId(item, node);
      }
      case 'sweep': {
        const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.Expanded);
        item.description = node.description;
        item.tooltip = node.tooltip;
        item.iconPath = new vscode.ThemeIcon(node.icon.codicon === 'pass' ? 'symbol-array' : node.icon.codicon, node.icon.color ? new vscode.ThemeColor(node.icon.color) : undefined);
        item.contextValue = node.contextValue;
        item.accessibilityInformation = { label: `${node.label}, ${node.description}` };
        return withId(item, node);
      }
      case 'run': {
        const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.None);
        item.description = node.description;
        item.tooltip = node.tooltip;
        item.iconPath = new vscode.ThemeIcon(node.icon.codicon, node.icon.color ? new vscode.ThemeColor(node.icon.color) : undefined);
        item.contextValue = node.contextValue;
        item.command = { command: 'adapterLab.showLossCurves', title: 'Show Loss Curves', arguments: [node] };
        item.accessibilityInformation = { label: `run ${node.label}, ${node.run.status}, ${node.description}` };
        return withId(item, node);
      }
      case 'pending': {
        const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.None);
        item.description = node.description;
        item.iconPath = new vscode.ThemeIcon(node.icon.codicon);
        item.contextValue = node.contextValue;
        return withId(item, node);
      }
      case 'problems': {
        const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.Collapsed);
        item.iconPath = new vscode.ThemeIcon('warning', new vscode.ThemeColor('editorWarning.foreground'));
        item.contextValue = 'adapterLab.problems';
        return withId(item, node);
      }
      case 'problem': {
        const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.None);
        item.description = node.description;
        item.tooltip = node.tooltip;
        item.iconPath = new vscode.ThemeIcon('warning');
        item.contextValue = node.contextValue;
        return withId(item, node);
      }
    }
  }

  getChildren(node?: TreeNode): TreeNode[] {
    if (!node) return this.roots;
    return 'children' in node ? node.children : [];
  }

  getParent(node: TreeNode): TreeNode | undefined {
    const find = (list: TreeNode[], parent?: TreeNode): TreeNode | undefined => {
      for (const n of list) {
        if (n.id === node.id) return parent;
        if ('children' in n) {
          const found = find(n.children, n);
          if (found) return found;
        }
      }
      return undefined;
    };
    return find(this.roots);
  }

  /** Rebuilds soon (several triggers in a burst make one rebuild). */
  schedule(delayMs = 200): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.refresh();
    }, delayMs);
  }

  /**
   * Rebuilds the tree from disk now. Never throws: whatever is on disk, the view shows what it can. One rebuild at a
   * time: a call during a rebuild waits for it and then rebuilds once more (so it sees what made it call).
   */
  refresh(opts: { rescanConfigs?: boolean } = {}): Promise<void> {
    if (opts.rescanConfigs) this.configsStale = true;
    if (this.rebuilding) {
      this.rebuildAgain ??= this.rebuilding.then(() => {
        this.rebuildAgain = undefined;
        return this.refresh();
      });
      return this.rebuildAgain;
    }
    this.rebuilding = this.rebuild().finally(() => (this.rebuilding = undefined));
    return this.rebuilding;
  }

  private async rebuild(): Promise<void> {
    if (this.configsStale) {
      this.configsStale = false;
      this.configs = await findConfigs();
    }
    const listing: RunsListing = { runs: [], problems: [] };
    for (const dir of allRunsDirs()) {
      const l = listRuns(dir);
      listing.runs.push(...l.runs);
      listing.problems.push(...l.problems);
    }
    this.listing = listing;
    this.roots = buildRunsTree(listing, this.configs, jobOverlays(this.queue), this.slurmStatuses());
    // The tree is told of a change only when what it shows changed. A refresh while the workbench is still asking
    // for an expanded node's children can leave that node collapsed (seen in code-server: three of four tasks
    // collapsed after the rebuilds at startup), so the rebuilds that change nothing must not reach it.
    const shown = JSON.stringify(this.roots);
    if (shown !== this.shown) {
      this.shown = shown;
      this.changed.fire(undefined);
    }
    this.rebuilt.fire(listing);
  }

  /**
   * Watches each runs folder (which may lie outside the workspace) for run folders and their files. A folder that
   * does not exist yet cannot be watched (the watcher is refused, and runs made later by the CLI would never show):
   * its nearest existing ancestor is watched for it instead, and the folder itself once it appears.
   */
  private watchRunsFolders(): void {
    for (const d of this.runWatchers) d.dispose();
    this.runWatchers = allRunsDirs().map((dir) => {
      const base = nearestExistingFolder(dir);
      const below = path.relative(base, dir).split(path.sep).join('/');
      const w = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(base), below ? `${below}/**` : '**'));
      const on = () => {
        if (below && fs.existsSync(dir)) setImmediate(() => this.watchRunsFolders());
        this.schedule();
      };
      w.onDidCreate(on);
      w.onDidChange(on);
      w.onDidDelete(on);
      return w;
    });
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const d of [...this.disposables, ...this.runWatchers]) d.dispose();
    this.changed.dispose();
    this.rebuilt.dispose();
  }
}

function withId(item: vscode.TreeItem, node: TreeNode): vscode.TreeItem {
  item.id = node.id;
  return item;
}

export function jobOverlays(queue: RunQueue): JobOverlay[] {
  return queue.active.map((j) => ({
    jobId: j.id,
    state: j.state as 'queued' | 'running',
    label: j.spec.label,
    configFile: j.spec.configFile,
    runDirs: j.runDirs,
    fraction: j.progress && j.progress.totalSteps > 0 ? j.progress.step / j.progress.totalSteps : undefined,
    sweep: j.spec.kind === 'sweep',
  }));
}

async function findConfigs(): Promise<WorkspaceConfig[]> {
  const uris = await vscode.workspace.findFiles(CONFIG_GLOB, '**/node_modules/**', 2000);
  const out: WorkspaceConfig[] = [];
  for (const uri of uris) {
    try {
      out.push(peekConfig(uri.fsPath, await fs.promises.readFile(uri.fsPath, 'utf8')));
    } catch {
      // deleted between the search and the read
    }
  }
  return out;
}

/** The folder itself when it exists, else its closest ancestor that does. */
export function nearestExistingFolder(dir: string): string {
  let at = path.resolve(dir);
  while (!fs.existsSync(at) && path.dirname(at) !== at) at = path.dirname(at);
  return at;
}
