/// <reference lib="dom" />
/// <reference types="vscode-webview" />
/**
 * The page's side of the message contract (src/protocol/webview.ts): typed post and receive, the ready
 * handshake, and the persisted state (getState/setState) that survives hide/show and a reload.
 */
import type { HostToWebview, ViewKind, ViewState, ViewSubject, WebviewToHost } from '../../src/protocol/webview';

const api = acquireVsCodeApi<ViewState>();

export function post(msg: WebviewToHost): void {
  api.postMessage(msg);
}

export function savedState<Ui>(view: ViewKind): ViewState<Ui> | undefined {
  const s = api.getState();
  return s && s.view === view ? (s as ViewState<Ui>) : undefined;
}

export function saveState<Ui>(view: ViewKind, subject: ViewSubject, ui: Ui): void {
  api.setState({ view, subject, ui: ui as Record<string, unknown> });
}

/** Listens for the extension's messages, then says `ready` (the extension sends nothing before that). */
export function connect(view: ViewKind, onMessage: (msg: HostToWebview) => void): void {
  window.addEventListener('message', (e: MessageEvent) => {
    const msg = e.data as HostToWebview;
    if (msg && typeof msg === 'object' && typeof msg.type === 'string') onMessage(msg);
  });
  post({ type: 'ready', view });
}
