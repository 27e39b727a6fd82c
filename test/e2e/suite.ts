/**
 * What the per-feature e2e suites (class report, image task, sweep, Slurm) share around their tests: a workspace
 * copy of examples/ in a new temp folder, code-server with the packaged .vsix, Chromium on the workbench, the
 * Runs view focused and wide, and once every test has run the extension's output kept under test-results/e2e/
 * and everything stopped and removed. workbench.e2e.ts keeps its own, which also clears its screenshots first.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { ARTIFACTS, checkInstalled, startCodeServer, type CodeServer } from './codeServer';
import { until, Workbench } from './workbench';
import { makeWorkspace, vsixHasBuiltinModel, type E2eWorkspace } from './workspace';

export interface WorkbenchSuite {
  /** `[e2e <name>] line` on stdout and in test-results/e2e/e2e-<name>.log. */
  log(line: string): void;
  /** The workspace, server and workbench (set once beforeAll has run). */
  readonly ws: E2eWorkspace;
  readonly server: CodeServer;
  readonly wb: Workbench;
}

export interface SuiteOptions {
  /** Writes what the suite adds to the workspace (configs, settings) before code-server starts. */
  prepare?(ws: E2eWorkspace): void;
  /** The config whose row "config <file>, no runs yet" shows the Runs view has read the workspace. */
  config: string;
  /** Stops what prepare started, after code-server has stopped. */
  cleanup?(): void;
}

/** Registers the suite's beforeAll and afterAll (call it inside its describe) and returns its parts. */
export function workbenchSuite(name: string, o: SuiteOptions): WorkbenchSuite {
  let tmpRoot = '';
  let ws: E2eWorkspace | undefined;
  let server: CodeServer | undefined;
  let wb: Workbench | undefined;
  const log = (line: string) => {
    console.log(`[e2e ${name}] ${line}`);
    fs.appendFileSync(path.join(ARTIFACTS, `e2e-${name}.log`), line + '\n');
  };

  beforeAll(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const { vsix } = checkInstalled();
    tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), `adapter-lab-e2e-${name}-`));
    ws = makeWorkspace(tmpRoot, vsixHasBuiltinModel(vsix));
    o.prepare?.(ws);
    server = await startCodeServer(ws.dir, tmpRoot, log);
    wb = await Workbench.open(server.url, log);
    await wb.focusRunsView();
    await until(`the Runs view listing "config ${o.config}, no runs yet"`, async () => {
      const rows = await wb!.rows();
      return { ok: rows.includes(`config ${o.config}, no runs yet`), seen: rows.join(' | ') };
    }, 180_000);
    await wb.widenSideBar(560);
  }, 10 * 60_000);

  afterAll(async () => {
    if (server) fs.writeFileSync(path.join(ARTIFACTS, `adapter-lab-output-${name}.log`), server.extensionOutput());
    await wb?.close();
    await server?.stop();
    o.cleanup?.();
    if (tmpRoot) fs.rmSync(tmpRoot, { recursive: true, force: true });
  }, 5 * 60_000);

  const need = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`e2e ${name}: no ${what} (its beforeAll failed)`);
    return v;
  };
  return {
    log,
    get ws() {
      return need(ws, 'workspace');
    },
    get server() {
      return need(server, 'code-server');
    },
    get wb() {
      return need(wb, 'workbench');
    },
  };
}
