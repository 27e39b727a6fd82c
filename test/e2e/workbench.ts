/// <reference lib="dom" />
/**
 * Driving VS Code's workbench (code-server) in Chromium as a person would: the command palette, quick picks, the
 * Runs tree with its inline buttons and context menus, the explorer's context menu, notifications, editors and
 * webviews (whose documents are nested iframes). Every wait is bounded and, when it runs out, says what it expected
 * and what it saw instead (see `until`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser, type Frame, type Locator, type Page } from 'playwright-core';
import type { ViewKind } from '../../src/protocol/webview';
import { ARTIFACTS } from './codeServer';
export { canvasInk } from '../helpers/canvas';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/** A step's expectation that did not come true: what was expected and what was seen. */
export class Expectation extends Error {
  constructor(
    readonly expected: string,
    readonly seen: string,
  ) {
    super(`expected ${expected}; saw ${seen}`);
  }
}

export function fail(expected: string, seen: string): never {
  throw new Expectation(expected, seen);
}

export interface Probe<T> {
  ok: boolean;
  /** What is there now, in words (reported when the wait runs out). */
  seen: string;
  value?: T;
}

/** Polls `probe` until it reports ok (returns its value) or `timeoutMs` passes (throws what was last seen). */
export async function until<T>(expected: string, probe: () => Promise<Probe<T>> | Probe<T>, timeoutMs: number, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: Probe<T> = { ok: false, seen: '(nothing yet)' };
  for (;;) {
    try {
      last = await probe();
    } catch (err) {
      last = { ok: false, seen: `an error while looking: ${(err as Error).message.split('\n')[0]}` };
    }
    if (last.ok) return last.value as T;
    if (Date.now() > deadline) fail(`${expected} (within ${Math.round(timeoutMs / 1000)} s)`, last.seen);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
export const exactly = (s: string) => new RegExp(`^\\s*${escapeRe(s)}\\s*$`);

/** One thing the workbench showed, first seen at `t` (ms since the epoch). */
export interface Seen {
  t: number;
  kind: 'row' | 'note';
  text: string;
}

/**
 * Records, in the page, every Runs-tree row label and notification message the moment it is shown: a run can go
 * from queued to running in a second or two, faster than polling from here could be sure to see.
 */
function installRecorder(): void {
  const w = window as unknown as { __e2eSeen?: { t: number; kind: string; text: string }[] };
  if (w.__e2eSeen) return;
  const seen: { t: number; kind: string; text: string }[] = [];
  const known = new Set<string>();
  w.__e2eSeen = seen;
  const add = (kind: string, text: string | null) => {
    if (!text) return;
    const key = `${kind}\u0000${text}`;
    if (known.has(key)) return;
    known.add(key);
    seen.push({ t: Date.now(), kind, text });
  };
  const scan = () => {
    document.querySelectorAll('.part.sidebar .monaco-list-row').forEach((el) => add('row', el.getAttribute('aria-label') || el.textContent));
    document.querySelectorAll('.notification-list-item-message').forEach((el) => add('note', el.textContent));
  };
  new MutationObserver(scan).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
}

export class Workbench {
  /** The workbench page's console errors (saved beside the screenshots). */
  readonly consoleErrors: string[] = [];

  private constructor(
    readonly browser: Browser,
    readonly page: Page,
    readonly url: string,
    readonly log: (line: string) => void,
  ) {
    page.on('console', (m) => {
      if (m.type() === 'error') this.consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => this.consoleErrors.push(String(e)));
  }

  static async open(url: string, log: (line: string) => void): Promise<Workbench> {
    if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run bash scripts/e2e/setup.sh`);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    const page = await browser.newPage({ viewport: { width: 1600, height: 1200 }, deviceScaleFactor: 1 });
    page.setDefaultTimeout(30_000);
    await page.addInitScript(installRecorder);
    const wb = new Workbench(browser, page, url, log);
    await page.goto(url);
    await wb.waitForWorkbench();
    return wb;
  }

  async close(): Promise<void> {
    await this.browser.close().catch(() => undefined);
  }

  async waitForWorkbench(): Promise<void> {
    await until(
      'the VS Code workbench (.monaco-workbench with its activity bar and status bar)',
      async () => {
        const ok = await this.page.evaluate(() => !!document.querySelector('.monaco-workbench .part.activitybar') && !!document.querySelector('.monaco-workbench .part.statusbar'));
        return { ok, seen: `page title "${await this.page.title()}" without the workbench parts` };
      },
      180_000,
      500,
    );
  }

  /** Everything the recorder saw since `since` (ms since the epoch). */
  async seen(since = 0): Promise<Seen[]> {
    const all = await this.page.evaluate(() => (window as unknown as { __e2eSeen?: Seen[] }).__e2eSeen ?? []);
    return all.filter((s) => s.t >= since);
  }

  async notificationsSince(since: number): Promise<string[]> {
    return (await this.seen(since)).filter((s) => s.kind === 'note').map((s) => s.text);
  }

  /** Waits for a notification (toast) whose message matches, shown since `since`. */
  async notification(expected: string, match: (text: string) => boolean, since: number, timeoutMs: number): Promise<string> {
    return until(
      expected,
      async () => {
        const notes = await this.notificationsSince(since);
        const hit = notes.find(match);
        return { ok: hit !== undefined, value: hit, seen: notes.length ? `notifications: ${notes.map((n) => JSON.stringify(n)).join('; ')}` : 'no notification' };
      },
      timeoutMs,
    );
  }

  // ---- screenshots ----------------------------------------------------------------------------------

  async screenshot(name: string): Promise<string> {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const file = path.join(ARTIFACTS, `${name}.png`);
    await this.page.screenshot({ path: file, timeout: 30_000 });
    return file;
  }

  // ---- palette and quick picks --------------------------------------------------------------------------

  private quickInput(): Locator {
    return this.page.locator('.quick-input-widget');
  }

  /** Closes whatever quick input, menu or hover is open. */
  async escape(): Promise<void> {
    for (let i = 0; i < 3; i++) {
      const open = await this.quickInput().isVisible().catch(() => false);
      const menu = await this.page.locator('.context-view .monaco-menu').isVisible().catch(() => false);
      if (!open && !menu) return;
      await this.page.keyboard.press('Escape');
      await this.page.waitForTimeout(150);
    }
  }

  /** Runs a command from the command palette (F1), by its exact title, e.g. "Adapter Lab: Train Adapter". */
  async command(title: string, timeoutMs = 60_000): Promise<void> {
    // The palette lists the commands known when it opens: early on, an extension's may not be there yet, so a
    // palette without the command is closed and opened again. The palette can also close by itself between F1
    // and typing (focus moving to a view or notification the workbench just opened): that attempt is retried
    // the same way rather than failing on a fill with no input to fill.
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.escape();
        await this.page.keyboard.press('F1');
        const input = this.quickInput().locator('.quick-input-box input');
        await until('the command palette to open after F1', async () => ({ ok: await input.isVisible(), seen: 'no quick input' }), 15_000);
        await input.fill(`>${title}`, { timeout: 5_000 });
        await this.clickPickRow(title, `the command "${title}" in the command palette`, Math.min(5_000, Math.max(1_000, deadline - Date.now())));
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        this.log(`the palette did not run "${title}" (attempt ${attempt}: ${String(err).split('\n')[0]}); opening it again`);
      }
    }
  }

  /**
   * Train Adapter from the palette on the config `config` (a workspace path, as the quick pick lists it), then
   * waits for its run to be done in the Runs tree: the run row's label ("run <created>, done, accuracy 0.xxxx").
   */
  async trainFromPalette(config: string, timeoutMs: number): Promise<string> {
    await this.command('Adapter Lab: Train Adapter');
    await this.pick('Adapter Lab: choose an experiment config', config);
    return until(
      `a run of ${config}, done ("run <created>, done, accuracy ...")`,
      async () => {
        const rows = await this.rows();
        const row = rows.find((r) => /^run .*, done, accuracy \d\.\d{4}\b/.test(r));
        return { ok: !!row, value: row, seen: rows.join(' | ') };
      },
      timeoutMs,
      300,
    ) as Promise<string>;
  }

  /** In the open quick pick (optionally: the one titled `title`), chooses the item labelled exactly `label`. */
  async pick(title: string | undefined, label: string, timeoutMs = 30_000): Promise<void> {
    if (title) {
      await until(
        `a quick pick titled "${title}"`,
        async () => {
          const visible = await this.quickInput().isVisible();
          const t = visible ? ((await this.quickInput().locator('.quick-input-title').textContent()) ?? '').trim() : '';
          return { ok: visible && t === title, seen: visible ? `a quick pick titled "${t}"` : 'no quick pick open' };
        },
        timeoutMs,
      );
    }
    // Filter by the label: a long list shows only its first items (the rest are not rendered).
    await this.typeInQuickInput(label);
    await this.clickPickRow(label, `the item "${label}" in the quick pick${title ? ` "${title}"` : ''}`, timeoutMs);
  }

  private async clickPickRow(label: string, what: string, timeoutMs = 30_000): Promise<void> {
    const rows = this.quickInput().locator('.quick-input-list .monaco-list-row');
    const row = rows.filter({ has: this.page.locator('.label-name', { hasText: exactly(label) }) }).first();
    await until(
      what,
      async () => {
        const ok = await row.isVisible();
        return { ok, seen: ok ? '' : `items: ${(await rows.locator('.label-name').allTextContents()).map((s) => JSON.stringify(s.trim())).join(', ') || 'none'}` };
      },
      timeoutMs,
    );
    await row.click();
  }

  /** Types into the open quick input (an input box, or a quick pick's filter). */
  async typeInQuickInput(text: string): Promise<void> {
    const input = this.quickInput().locator('.quick-input-box input');
    await input.fill(text);
  }

  // ---- the Runs tree -----------------------------------------------------------------------------------

  async focusRunsView(): Promise<void> {
    await this.command('Adapter Lab: Focus on Runs View');
    await until(
      'the Runs view in the side bar',
      async () => {
        const title = ((await this.page.locator('.part.sidebar .composite.title h2').first().textContent().catch(() => '')) ?? '').trim();
        return { ok: /adapter lab/i.test(title), seen: `the side bar shows "${title}"` };
      },
      20_000,
    );
  }

  /** The aria-labels of the rows the side bar's tree shows now. */
  async rows(): Promise<string[]> {
    return this.page.$$eval('.part.sidebar .monaco-list-row', (els) => els.map((e) => e.getAttribute('aria-label') ?? (e.textContent ?? '').trim()));
  }

  /** The side bar's tree row whose aria-label starts with `prefix` (a running run's label changes as it goes). */
  rowLocator(prefix: string): Locator {
    return this.page.locator(`.part.sidebar .monaco-list-row[aria-label^="${prefix.replace(/["\\]/g, '\\$&')}"]`).first();
  }

  /**
   * Clicks a row's inline action (the buttons a tree row shows on hover), by the action's title. A row that is
   * re-rendered between the mouse's down and up (a training run's row is, twice a second, with its progress) loses
   * the click: with `took`, the click is checked and, if it had no effect, made again (at most 3 times).
   */
  async rowAction(prefix: string, action: string, took?: { what: string; check: () => Promise<boolean>; withinMs: number }): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      await this.clickRowAction(prefix, action);
      if (!took) return;
      const deadline = Date.now() + took.withinMs;
      while (Date.now() < deadline) {
        if (await took.check()) return;
        await new Promise((r) => setTimeout(r, 250));
      }
      if (attempt === 3) fail(`${took.what} after clicking "${action}" on the row "${prefix}..." (3 times)`, `rows: ${(await this.rows()).map((r) => JSON.stringify(r)).join(', ')}`);
      this.log(`clicking "${action}" on "${prefix}..." had no effect within ${took.withinMs / 1000} s (attempt ${attempt}); clicking again`);
    }
  }

  private async clickRowAction(prefix: string, action: string): Promise<void> {
    const row = this.rowLocator(prefix);
    const button = row.locator(`.actions .action-label[aria-label^="${action}"]`);
    await until(`the inline button "${action}" on the row "${prefix}..."`, async () => {
      if (!(await row.count())) return { ok: false, seen: `no such row; rows: ${(await this.rows()).map((r) => JSON.stringify(r)).join(', ')}` };
      await row.hover({ timeout: 2_000 });
      const ok = await button.isVisible();
      return { ok, seen: ok ? '' : `buttons: ${(await row.locator('.actions .action-label').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')))).join(', ') || 'none'}` };
    }, 10_000);
    await button.click({ timeout: 5_000 });
  }

  /** Drags the side bar's sash so that the side bar is about `width` pixels wide (best effort). */
  async widenSideBar(width: number): Promise<void> {
    const box = await this.page.locator('.part.sidebar').boundingBox();
    if (!box) return;
    const edge = box.x + box.width;
    const sash = await this.page.$$eval(
      '.monaco-sash.vertical',
      (els, x) =>
        els
          .map((e) => e.getBoundingClientRect())
          .filter((r) => r.height > 100 && Math.abs(r.left + r.width / 2 - x) < 8)
          .map((r) => ({ x: r.left + r.width / 2, y: r.top + r.height / 2 }))[0],
      edge,
    );
    if (!sash) return;
    await this.page.mouse.move(sash.x, sash.y);
    await this.page.mouse.down();
    await this.page.mouse.move(box.x + width, sash.y, { steps: 8 });
    await this.page.mouse.up();
  }

  // ---- the explorer -------------------------------------------------------------------------------------

  async showExplorer(): Promise<void> {
    await this.command('View: Show Explorer');
    await this.page.locator('.explorer-folders-view').waitFor({ state: 'visible', timeout: 20_000 });
  }

  /** Right-clicks a file in the explorer and chooses `item` from its context menu. */
  async explorerContextMenu(fileName: string, item: string): Promise<void> {
    const row = this.page.locator('.explorer-folders-view .monaco-list-row').filter({ has: this.page.locator('.label-name', { hasText: exactly(fileName) }) }).first();
    await until(`${fileName} in the explorer`, async () => {
      const ok = await row.isVisible();
      return { ok, seen: ok ? '' : `explorer rows: ${(await this.page.locator('.explorer-folders-view .monaco-list-row').allTextContents()).join(', ')}` };
    }, 20_000);
    await row.click({ button: 'right' });
    await this.chooseFromContextMenu(item, fileName);
  }

  /** Right-clicks the Runs tree row whose aria-label starts with `prefix` and chooses `item` from its context menu. */
  async rowContextMenu(prefix: string, item: string): Promise<void> {
    const row = this.rowLocator(prefix);
    await until(`the row "${prefix}..." in the Runs tree`, async () => {
      const ok = await row.isVisible();
      return { ok, seen: ok ? '' : `rows: ${(await this.rows()).map((r) => JSON.stringify(r)).join(', ')}` };
    }, 20_000);
    await row.click({ button: 'right' });
    await this.chooseFromContextMenu(item, `the row "${prefix}..."`);
  }

  /** Chooses `item` from the context menu just opened on `what`. */
  private async chooseFromContextMenu(item: string, what: string): Promise<void> {
    const menuItem = this.page.locator('.context-view .monaco-menu .action-item').filter({ has: this.page.locator('.action-label', { hasText: exactly(item) }) }).first();
    await until(`"${item}" in the context menu of ${what}`, async () => {
      const ok = await menuItem.isVisible();
      return { ok, seen: ok ? '' : `menu items: ${(await this.page.locator('.context-view .monaco-menu .action-label').allTextContents()).filter(Boolean).join(', ') || 'no menu'}` };
    }, 10_000);
    // A click right after the menu opens is sometimes ignored (the menu guards against the right-click's own
    // mouse-up): hover first, so the item has focus, click, and if the menu is still open press Enter on it.
    await menuItem.hover();
    await this.page.waitForTimeout(300);
    await menuItem.click();
    const menu = this.page.locator('.context-view .monaco-menu');
    const closed = await menu.waitFor({ state: 'hidden', timeout: 2_000 }).then(() => true, () => false);
    if (!closed) {
      this.log(`the context menu stayed open after clicking "${item}"; pressing Enter on it`);
      await menuItem.hover();
      await this.page.keyboard.press('Enter');
      await until(`the context menu to close after choosing "${item}"`, async () => ({ ok: !(await menu.isVisible()), seen: 'the menu still open' }), 5_000);
    }
  }

  // ---- editors ------------------------------------------------------------------------------------------

  async activeTabTitle(): Promise<string> {
    return ((await this.page.locator('.part.editor .tab.active .label-name').first().textContent().catch(() => '')) ?? '').trim();
  }

  async tabTitles(): Promise<string[]> {
    return (await this.page.locator('.part.editor .tab .label-name').allTextContents()).map((s) => s.trim());
  }

  // ---- webviews -----------------------------------------------------------------------------------------

  /** The frame holding a webview's document (`main[data-testid="<view>-view"]`), once it has rendered. */
  async webview(view: ViewKind, timeoutMs = 60_000): Promise<Frame> {
    return until(
      `the ${view} webview's document (main[data-testid="${view}-view"], rendered: aria-busy="false")`,
      async () => {
        const found: string[] = [];
        for (const frame of this.page.frames()) {
          if (frame.isDetached()) continue;
          const state = await frame.$eval(`main[data-testid="${view}-view"]`, (m) => m.getAttribute('aria-busy')).catch(() => null);
          if (state === 'false') return { ok: true, value: frame, seen: '' };
          const other = await frame.$eval('main[data-testid]', (m) => `${m.getAttribute('data-testid')} (aria-busy ${m.getAttribute('aria-busy')})`).catch(() => null);
          if (other) found.push(other);
        }
        return { ok: false, seen: found.length ? `webview documents: ${found.join(', ')}` : `no webview document among ${this.page.frames().length} frames` };
      },
      timeoutMs,
    );
  }
}

