/**
 * Integration tests in a real VS Code extension host (run by test/integration/run.ts, which opens a copy of
 * examples/ with the configs cut to a small budget). They drive the extension through its commands, with the
 * arguments its menus pass, and check the outcome through the VS Code API, the run queue the extension exports
 * and the run folders on disk. The end-to-end suite (test/e2e/) covers the same ground through the UI.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'mocha';
import * as vscode from 'vscode';
import type { Job, RunQueue } from '../../../src/extension/runs/queue';

const EXTENSION_ID = 'adapter-lab.adapter-lab';
const TRAIN_CONFIG = process.env.ADAPTER_LAB_IT_TRAIN_CONFIG ?? 'spam-houlsby.adapter.json';
const CANCEL_CONFIG = process.env.ADAPTER_LAB_IT_CANCEL_CONFIG ?? 'liu-opinion-houlsby.adapter.json';
const BROKEN_CONFIG = process.env.ADAPTER_LAB_IT_BROKEN_CONFIG ?? 'broken-batch-size.adapter.json';

const COMMANDS = [
  'trainAdapter',
  'evaluateAdapter',
  'runLayerAblation',
  'showLossCurves',
  'showAblationHeatmap',
  'compareRuns',
  'cancelRun',
  'deleteRun',
  'revealRunFolder',
  'newExperiment',
  'exportAdapter',
  'resumeRun',
  'refreshRuns',
  'showOutput',
  'showClassReport',
  'showImagePredictions',
].map((c) => `adapterLab.${c}`);

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

function webviewTabs(viewType: string): vscode.Tab[] {
  return vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter((t) => t.input instanceof vscode.TabInputWebview && t.input.viewType.endsWith(viewType));
}

describe('Adapter Lab in the VS Code extension host', function () {
  let queue: RunQueue;
  let folder: string;
  let trainedRun: string;

  before(async function () {
    folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? '';
    assert.ok(folder && fs.existsSync(path.join(folder, TRAIN_CONFIG)), `the workspace (a copy of examples/) is open: ${folder}`);
    const ext = vscode.extensions.getExtension<{ queue: RunQueue }>(EXTENSION_ID);
    assert.ok(ext, `${EXTENSION_ID} is installed`);
    queue = (await ext.activate()).queue;
  });

  it('registers every command', async () => {
    const all = new Set(await vscode.commands.getCommands(true));
    assert.deepEqual(COMMANDS.filter((c) => !all.has(c)), []);
  });

  it('trains a config given as an explorer Uri: the job ends done and the run has its best dev metric', async () => {
    const before = queue.jobs.length;
    await vscode.commands.executeCommand('adapterLab.trainAdapter', vscode.Uri.file(path.join(folder, TRAIN_CONFIG)));
    const job = await waitFor('the train job', () => queue.jobs[before] as Job | undefined, 30_000);
    assert.equal(job.spec.kind, 'train');
    const ended = await queue.whenEnded(job);
    assert.equal(ended.state, 'done', `job ended ${ended.state}: ${ended.error?.message ?? ''}`);
    trainedRun = ended.runDirs[ended.runDirs.length - 1];
    const run = readJson<{ status: string; best?: { metric: string; value: number } }>(path.join(trainedRun, 'run.json'));
    assert.equal(run.status, 'done');
    assert.equal(run.best?.metric, 'accuracy');
    assert.ok(fs.existsSync(path.join(trainedRun, 'adapter', 'adapter_config.json')), 'the adapter is saved');
  });

  it('shows the loss curves of the run in a webview', async () => {
    await vscode.commands.executeCommand('adapterLab.showLossCurves', trainedRun);
    await waitFor('a Loss Curves webview tab', () => webviewTabs('adapterLab.lossCurves').length > 0, 30_000);
    assert.equal(webviewTabs('adapterLab.lossCurves')[0].label, 'Loss Curves');
  });

  it('runs a layer ablation and shows its heatmap', async () => {
    const before = queue.jobs.length;
    await vscode.commands.executeCommand('adapterLab.runLayerAblation', trainedRun);
    const job = await waitFor('the ablation job', () => queue.jobs[before] as Job | undefined, 30_000);
    const ended = await queue.whenEnded(job);
    assert.equal(ended.state, 'done', `job ended ${ended.state}: ${ended.error?.message ?? ''}`);
    const ablation = readJson<{ matrix: (number | null)[][] }>(path.join(trainedRun, 'ablation.json'));
    assert.ok(ablation.matrix.length > 0 && ablation.matrix[0].every((v) => typeof v === 'number'), 'the first row of the matrix is filled');
    await vscode.commands.executeCommand('adapterLab.showAblationHeatmap', trainedRun);
    await waitFor('an Ablation webview tab', () => webviewTabs('adapterLab.ablation').some((t) => t.label.startsWith('Ablation: ')), 30_000);
  });

  it('cancels a training run: it ends cancelled with a checkpoint', async () => {
    const before = queue.jobs.length;
    await vscode.commands.executeCommand('adapterLab.trainAdapter', vscode.Uri.file(path.join(folder, CANCEL_CONFIG)));
    const job = await waitFor('the second train job', () => queue.jobs[before] as Job | undefined, 30_000);
    await waitFor('the job training (a progress message)', () => job.state === 'running' && job.progress !== undefined && job.runDirs.length > 0, 5 * 60_000);
    const runDir = job.runDirs[job.runDirs.length - 1];
    await vscode.commands.executeCommand('adapterLab.cancelRun', runDir);
    const ended = await queue.whenEnded(job);
    assert.equal(ended.state, 'cancelled');
    assert.equal(readJson<{ status: string }>(path.join(runDir, 'run.json')).status, 'cancelled');
    assert.ok(fs.existsSync(path.join(runDir, 'checkpoint', 'state.json')), 'the cancelled run keeps a checkpoint');
  });

  it('reports an invalid config as a diagnostic, and does not train it', async () => {
    const cfg = readJson<{ name: string; training: Record<string, unknown> }>(path.join(folder, TRAIN_CONFIG));
    cfg.name = 'broken-batch-size';
    cfg.training.batchSize = 'thirty-two';
    const file = path.join(folder, BROKEN_CONFIG);
    fs.writeFileSync(file, JSON.stringify(cfg, null, 2) + '\n');
    const uri = vscode.Uri.file(file);
    await vscode.window.showTextDocument(uri);
    const diagnostic = await waitFor(
      'an Adapter Lab diagnostic on training.batchSize',
      () => vscode.languages.getDiagnostics(uri).find((d) => d.source === 'Adapter Lab' && String(d.code) === 'training.batchSize'),
      30_000,
    );
    assert.match(diagnostic.message, /training\.batchSize: must be integer/);
    assert.equal(diagnostic.severity, vscode.DiagnosticSeverity.Error);
    const batchLine = fs.readFileSync(file, 'utf8').split('\n').findIndex((l) => l.includes('"batchSize"'));
    assert.equal(diagnostic.range.start.line, batchLine);

    const before = queue.jobs.length;
    // Train shows an error message (with an "Open Config" button) and returns without queueing a job.
    void vscode.commands.executeCommand('adapterLab.trainAdapter', uri);
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(queue.jobs.length, before, 'no job was queued for the invalid config');
  });
});
