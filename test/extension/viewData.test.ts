import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { listRuns } from '../../src/engine/runs';
import { contentSecurityPolicy, renderWebviewHtml } from '../../src/extension/webviews/html';
import { curvePoints, exportBytes, loadAblation, loadCompare, loadLossCurves, MetricsFollower } from '../../src/extension/webviews/viewData';
import { isWebviewMessage } from '../../src/protocol/webview';
import { tempDir } from '../helpers/fixtures';

const FIXTURES = path.resolve(__dirname, '../fixtures/runs');

/** A copy of the fixture runs (real CLI runs) that a test may change. */
function fixtureRuns(): { runsDir: string; dirs: string[]; houlsby: string } {
  const runsDir = path.join(tempDir(), 'runs');
  fs.cpSync(FIXTURES, runsDir, { recursive: true });
  const dirs = fs.readdirSync(runsDir).map((d) => path.join(runsDir, d));
  return { runsDir, dirs, houlsby: dirs.find((d) => d.includes('houlsby'))! };
}

describe('loss curve data', () => {
  it('reads train loss per step and the dev metric per evaluation from metrics.jsonl', () => {
    const { houlsby } = fixtureRuns();
    const data = loadLossCurves([houlsby]);
    const c = data.runs[0];
    expect(c.run.name).toBe('toy-houlsby');
    expect(c.run.status).toBe('done');
    expect(c.metric).toBe('accuracy');
    const lines = fs.readFileSync(path.join(houlsby, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(c.train).toHaveLength(lines.filter((l) => l.type === 'train').length);
    expect(c.dev).toHaveLength(lines.filter((l) => l.type === 'eval').length);
    expect(c.train[0]).toEqual({ step: 1, epoch: 0, value: lines[0].loss });
    expect(c.train.map((p) => p.step)).toEqual([...c.train.map((p) => p.step)].sort((a, b) => a - b));
  });

  it('drops a diverged step (loss logged as "NaN") and other splits\' evaluations', () => {
    const pts = curvePoints(
      [
        { type: 'train', step: 1, epoch: 0, loss: 0.7 },
        { type: 'eval', split: 'dev', step: 1, epoch: 0, accuracy: 0.5 },
        { type: 'eval', split: 'test', step: 1, epoch: 0, accuracy: 0.9 },
        { type: 'train', step: 2, epoch: 0, loss: 'NaN' },
        { type: 'epoch', step: 2, epoch: 0 },
      ],
      'accuracy',
    );
    expect(pts.train).toEqual([{ step: 1, epoch: 0, value: 0.7 }]);
    expect(pts.dev).toEqual([{ step: 1, epoch: 0, value: 0.5 }]);
  });

  it('follows a growing metrics file: only new complete lines, a torn last line once it is whole', () => {
    const { houlsby } = fixtureRuns();
    const file = path.join(houlsby, 'metrics.jsonl');
    const f = new MetricsFollower();
    const first = f.load(houlsby)!;
    expect(f.poll(houlsby)).toMatchObject({ type: 'append', train: [], dev: [], status: 'done' });
    const line = JSON.stringify({ type: 'train', epoch: 9, step: 1000, loss: 0.123 });
    fs.appendFileSync(file, line.slice(0, 20)); // a line being written
    expect(f.poll(houlsby)!.train).toEqual([]);
    fs.appendFileSync(file, line.slice(20) + '\n' + JSON.stringify({ type: 'eval', split: 'dev', epoch: 9, step: 1000, accuracy: 0.99 }) + '\n');
    const next = f.poll(houlsby)!;
    expect(next.train).toEqual([{ step: 1000, epoch: 9, value: 0.123 }]);
    expect(next.dev).toEqual([{ step: 1000, epoch: 9, value: 0.99 }]);
    expect(first.train.length).toBeGreaterThan(10);
  });

  it('skips run folders it cannot read', () => {
    const { houlsby } = fixtureRuns();
    const broken = path.join(tempDir(), '20260101-000000-broken-0000');
    fs.mkdirSync(broken);
    expect(loadLossCurves([broken, houlsby]).runs.map((r) => r.run.name)).toEqual(['toy-houlsby']);
  });
});

describe('ablation data', () => {
  it('reads the upper-triangular matrix, baseline and metric of ablation.json', () => {
    const { houlsby } = fixtureRuns();
    const { data } = loadAblation(houlsby);
    expect(data!.numLayers).toBe(4);
    expect(data!.matrix).toHaveLength(4);
    expect(data!.matrix[3][0]).toBeNull();
    expect(typeof data!.matrix[0][3]).toBe('number');
    expect(data!.metric).toBe('accuracy');
    expect(typeof data!.baseline).toBe('number');
  });

  it('says why there is nothing to show for a run without an ablation or with a broken one', () => {
    const { dirs, houlsby } = fixtureRuns();
    const other = dirs.find((d) => d.includes('bitfit'))!;
    expect(loadAblation(other)).toEqual({ data: null, missing: expect.stringContaining('no layer ablation yet') });
    fs.writeFileSync(path.join(houlsby, 'ablation.json'), '{"baseline": 1, "matrix": [[1, 2]]}');
    expect(loadAblation(houlsby).missing).toMatch(/L x L/);
  });
});

describe('compare data', () => {
  it('one row per run with method, trainable %, best dev metric and time; a subset when asked', () => {
    const { runsDir, houlsby } = fixtureRuns();
    const runs = listRuns(runsDir).runs;
    const all = loadCompare(runs);
    expect(all.rows).toHaveLength(5);
    expect(new Set(all.rows.map((r) => r.run.method))).toEqual(new Set(['houlsby', 'pfeiffer', 'bitfit', 'full', 'head']));
    const full = all.rows.find((r) => r.run.method === 'full')!;
    expect(full.trainablePercent).toBeGreaterThan(100); // the head's parameters come on top of the base model's
    for (const r of all.rows) {
      expect(r.best).toBeTypeOf('number');
      expect(r.metric).toBe('accuracy');
      expect(r.durationMs).toBeGreaterThan(0);
      expect(r.trainableParams).toBeGreaterThan(0);
    }
    expect(loadCompare(runs, [houlsby]).rows.map((r) => r.run.name)).toEqual(['toy-houlsby']);
  });
});

describe('exports and messages', () => {
  it('turns a PNG data URL into its bytes and CSV text into UTF-8', () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
    expect(exportBytes({ type: 'export', format: 'png', fileName: 'a.png', data: `data:image/png;base64,${png.toString('base64')}` })).toEqual(png);
    expect(exportBytes({ type: 'export', format: 'csv', fileName: 'a.csv', data: 'a,b\n1,é\n' }).toString('utf8')).toBe('a,b\n1,é\n');
    expect(() => exportBytes({ type: 'export', format: 'png', fileName: 'a.png', data: 'javascript:alert(1)' })).toThrow(/data: URL/);
  });

  it('accepts only well-formed webview messages', () => {
    expect(isWebviewMessage({ type: 'ready', view: 'compare' })).toBe(true);
    expect(isWebviewMessage({ type: 'export', format: 'csv', fileName: 'x.csv', data: '' })).toBe(true);
    expect(isWebviewMessage({ type: 'export', format: 'exe', fileName: 'x', data: '' })).toBe(false);
    expect(isWebviewMessage({ type: 'openRun', runDir: '/r', show: 'terminal' })).toBe(false);
    expect(isWebviewMessage({ type: 'evaluate', runDir: '/r', split: 'test' })).toBe(true);
    expect(isWebviewMessage({ type: 'evaluate', runDir: '/r', split: 'train' })).toBe(false);
    expect(isWebviewMessage({ type: 'evaluate', split: 'dev' })).toBe(false);
    expect(isWebviewMessage(null)).toBe(false);
    expect(isWebviewMessage('ready')).toBe(false);
  });
});

describe('webview HTML', () => {
  it('has a strict CSP: nothing by default, scripts only by nonce, styles and images only from the extension', () => {
    const html = renderWebviewHtml({ view: 'compare', title: 'Compare <Runs>', cspSource: 'https://x.vscode-cdn.net', scriptUri: 'https://x/compare.js', styleUri: 'https://x/webview.css', nonce: 'abc123' });
    expect(contentSecurityPolicy('https://x.vscode-cdn.net', 'abc123')).toBe(
      "default-src 'none'; img-src https://x.vscode-cdn.net data:; style-src https://x.vscode-cdn.net; font-src https://x.vscode-cdn.net; script-src 'nonce-abc123'",
    );
    expect(html).toContain(`content="default-src &#39;none&#39;;`);
    expect(html).toContain('<script nonce="abc123" src="https://x/compare.js"></script>');
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect(html).toContain('<title>Compare &#60;Runs&#62;</title>');
    expect(html).toContain('data-testid="compare-view"');
  });
});
