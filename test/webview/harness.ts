/// <reference lib="dom" />
/**
 * Renders the real webviews (dist/webview/*.js, media/webview.css, the HTML and CSP of
 * src/extension/webviews/html.ts) in headless Debian Chromium, with a small host in place of VS Code's: it
 * answers `ready` with `init`, writes the files that exports ask for (with the extension's own exportBytes)
 * and keeps getState/setState in the tab's sessionStorage, so a reload restores state as VS Code does.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { renderWebviewHtml } from '../../src/extension/webviews/html';
import { exportBytes } from '../../src/extension/webviews/viewData';
import type { HostToWebview, ViewData, ViewKind, ViewSubject, WebviewToHost } from '../../src/protocol/webview';
import { tempDir } from '../helpers/fixtures';
export { canvasInk } from '../helpers/canvas';

const ROOT = path.resolve(__dirname, '../..');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.css': 'text/css', '.map': 'application/json', '.svg': 'image/svg+xml' };

export interface Server {
  origin: string;
  close(): Promise<void>;
}

/** Serves the view pages and the built webview files on 127.0.0.1. */
export async function startServer(): Promise<Server> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const view = /^\/view\/(lossCurves|ablation|compare|fusion|drop|classReport)\.html$/.exec(url.pathname)?.[1] as ViewKind | undefined;
    if (view) {
      const origin = `http://${req.headers.host}`;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(renderWebviewHtml({ view, title: view, cspSource: origin, scriptUri: `${origin}/dist/webview/${view}.js`, styleUri: `${origin}/media/webview.css` }));
      return;
    }
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204).end(); // the browser asks for it; VS Code's webviews have none either
      return;
    }
    const file = path.join(ROOT, path.normalize(url.pathname));
    if (!(file.startsWith(path.join(ROOT, 'dist', 'webview')) || file.startsWith(path.join(ROOT, 'media'))) || !fs.existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
    res.end(fs.readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { origin: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** Starts Chromium; throws (the test fails) when it cannot. */
/** What a webview test file shares: a browser, the page server, a writable copy of fixture runs, an export folder. */
export interface WebviewSuite {
  browser: Browser;
  server: Server;
  runsDir: string;
  exportDir: string;
  /** Screenshots the page into the export folder; with UPDATE_SCREENSHOTS=1 also into media/screenshots/. */
  screenshot(page: Page, name: string): Promise<void>;
}

/**
 * Registers the test file's beforeAll/afterAll: copies the fixture runs `fixtures` into a temporary folder, starts
 * the page server and Chromium (no browser, no pass: launch throws and every test of the file fails), and closes
 * them after. The fields are set once beforeAll has run.
 */
export function webviewSuite(fixtures: string): WebviewSuite {
  const suite = {
    async screenshot(page: Page, name: string): Promise<void> {
      const file = path.join(suite.exportDir, `${name}.png`);
      await page.screenshot({ path: file, fullPage: false });
      if (process.env.UPDATE_SCREENSHOTS) {
        const screenshots = path.join(ROOT, 'media', 'screenshots');
        fs.mkdirSync(screenshots, { recursive: true });
        fs.copyFileSync(file, path.join(screenshots, `${name}.png`));
      }
    },
  } as WebviewSuite;
  beforeAll(async () => {
    suite.runsDir = path.join(tempDir(), 'runs');
    fs.cpSync(fixtures, suite.runsDir, { recursive: true });
    suite.exportDir = tempDir('adapter-lab-exports-');
    suite.server = await startServer();
    suite.browser = await launch();
  });
  afterAll(async () => {
    await suite.browser?.close();
    await suite.server?.close();
  });
  return suite;
}

export async function launch(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/ensure-test-deps.sh (npm test runs it first)`);
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

export interface ViewHost {
  page: Page;
  /** Every message the page posted, in order. */
  received: WebviewToHost[];
  /** Files written for the page's export requests. */
  exported: string[];
  /** Console errors and page errors (a CSP violation shows up here). */
  errors: string[];
  send(msg: HostToWebview): Promise<void>;
}

export async function openView(
  browser: Browser,
  server: Server,
  view: ViewKind,
  payload: () => ViewData,
  subject: ViewSubject,
  exportDir: string,
  viewport = { width: 1100, height: 760 },
): Promise<ViewHost> {
  const page = await browser.newPage({ viewport, deviceScaleFactor: 1 });
  const host: ViewHost = {
    page,
    received: [],
    exported: [],
    errors: [],
    send: (msg) => page.evaluate((m) => window.postMessage(m, '*'), msg as unknown),
  };
  page.on('console', (m) => {
    if (m.type() === 'error') host.errors.push(m.text());
  });
  page.on('pageerror', (e) => host.errors.push(String(e)));
  await page.exposeBinding('__adapterLabHostReceive', async (_source, msg: WebviewToHost) => {
    host.received.push(msg);
    if (msg.type === 'ready') await host.send({ type: 'init', payload: payload(), subject });
    if (msg.type === 'export') {
      const file = path.join(exportDir, msg.fileName);
      fs.writeFileSync(file, exportBytes(msg));
      host.exported.push(file);
      await host.send({ type: 'exported', file });
    }
  });
  await page.addInitScript(() => {
    const KEY = 'vscode-webview-state';
    (window as unknown as { acquireVsCodeApi: () => unknown }).acquireVsCodeApi = () => ({
      postMessage: (m: unknown) => (window as unknown as { __adapterLabHostReceive: (m: unknown) => void }).__adapterLabHostReceive(m),
      getState: () => JSON.parse(sessionStorage.getItem(KEY) ?? 'null'),
      setState: (s: unknown) => {
        sessionStorage.setItem(KEY, JSON.stringify(s));
        return s;
      },
    });
  });
  await page.goto(`${server.origin}/view/${view}.html`);
  await page.waitForSelector(`main[aria-busy="false"]`);
  return host;
}


/** Width and height from a PNG's IHDR, after checking its signature. */
export function pngSize(file: string): { width: number; height: number } {
  const b = fs.readFileSync(file);
  if (b.subarray(0, 8).toString('hex') !== '89504e470d0a1a0a') throw new Error(`${file} is not a PNG`);
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

export async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
