/**
 * Diagnostics for open `*.adapter.json` files: the engine's own config checks (ConfigError.problems, the ones
 * `adapter-lab train` reports), as squiggles on the line and field they name, while the file is edited.
 */
import * as vscode from 'vscode';
import type { ConfigProblem } from '../../engine/config/load';
import { problemMessage, problemRange, validateConfigText } from './validate';

export function isConfigDocument(doc: vscode.TextDocument): boolean {
  return doc.uri.scheme === 'file' && doc.fileName.endsWith('.adapter.json');
}

export class ConfigDiagnostics implements vscode.Disposable {
  readonly collection = vscode.languages.createDiagnosticCollection('adapterLab');
  private readonly disposables: vscode.Disposable[] = [];
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor() {
    this.disposables.push(
      vscode.workspace.onDidOpenTextDocument((d) => this.check(d)),
      vscode.workspace.onDidChangeTextDocument((e) => this.schedule(e.document)),
      vscode.workspace.onDidSaveTextDocument((d) => this.check(d)),
      vscode.workspace.onDidCloseTextDocument((d) => this.collection.delete(d.uri)),
    );
    for (const d of vscode.workspace.textDocuments) this.check(d);
  }

  private schedule(doc: vscode.TextDocument): void {
    if (!isConfigDocument(doc)) return;
    const key = doc.uri.toString();
    clearTimeout(this.timers.get(key));
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        this.check(doc);
      }, 300),
    );
  }

  check(doc: vscode.TextDocument): void {
    if (!isConfigDocument(doc)) return;
    const text = doc.getText();
    this.set(doc.uri, text, validateConfigText(text, doc.fileName));
  }

  /** Shows `problems` on `uri` (also used when Train finds a config invalid). */
  set(uri: vscode.Uri, text: string, problems: ConfigProblem[]): void {
    this.collection.set(
      uri,
      problems.map((p) => {
        const r = problemRange(text, p);
        const d = new vscode.Diagnostic(new vscode.Range(r.line, r.start, r.line, r.end), problemMessage(p), vscode.DiagnosticSeverity.Error);
        d.source = 'Adapter Lab';
        if (p.field) d.code = p.field;
        return d;
      }),
    );
  }

  dispose(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    for (const d of this.disposables) d.dispose();
    this.collection.dispose();
  }
}
