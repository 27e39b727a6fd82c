/**
 * The HTML shell of every webview: a strict Content-Security-Policy (nothing but the extension's own script,
 * run by nonce, and its own stylesheet), the view's script and the shared stylesheet. No vscode import: the
 * webview tests serve this very page to Chromium.
 */
import * as crypto from 'node:crypto';
import type { ViewKind } from '../../protocol/webview';

export interface WebviewHtmlOptions {
  view: ViewKind;
  title: string;
  /** webview.cspSource: the origin the webview may load the extension's files from. */
  cspSource: string;
  /** URI of dist/webview/<view>.js, as the webview sees it. */
  scriptUri: string;
  /** URI of media/webview.css, as the webview sees it. */
  styleUri: string;
  nonce?: string;
}

export function makeNonce(): string {
  return crypto.randomBytes(18).toString('base64').replace(/[^A-Za-z0-9]/g, '');
}

export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `img-src ${cspSource} data:`,
    `style-src ${cspSource}`,
    `font-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function renderWebviewHtml(o: WebviewHtmlOptions): string {
  const nonce = o.nonce ?? makeNonce();
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${esc(contentSecurityPolicy(o.cspSource, nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${esc(o.styleUri)}">
<title>${esc(o.title)}</title>
</head>
<body data-view="${o.view}">
<main id="app" data-testid="${o.view}-view" aria-busy="true"><p class="placeholder">Loading…</p></main>
<script nonce="${nonce}" src="${esc(o.scriptUri)}"></script>
</body>
</html>
`;
}
