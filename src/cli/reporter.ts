import { EngineMessage, ProgressMessage } from '../protocol/messages';
import type { ClassReport } from '../engine/analysis/evaluate';

/**
 * Where the CLI's output goes. With --json every message is one JSON line on stdout (the protocol the
 * extension reads); otherwise people get readable lines, with a live progress line on a terminal.
 */
export class Reporter {
  private lastProgressPrint = 0;
  private progressOnLine = false;

  constructor(readonly json: boolean) {}

  emit(msg: EngineMessage): void {
    if (this.json) {
      process.stdout.write(JSON.stringify(msg) + '\n');
      return;
    }
    switch (msg.type) {
      case 'progress':
        this.progress(msg);
        break;
      case 'log':
        this.line(msg.level === 'info' ? msg.message : `${msg.level}: ${msg.message}`, msg.level === 'info' ? 'stdout' : 'stderr');
        break;
      case 'eval': {
        const metrics = Object.entries(msg.metrics)
          .map(([k, v]) => `${k} ${formatNumber(v)}`)
          .join(', ');
        const where = msg.epoch !== undefined ? `epoch ${msg.epoch + 1}, step ${msg.step}: ` : '';
        this.line(`${where}${msg.split} ${metrics}${msg.isBest ? '  (best so far)' : ''}`);
        break;
      }
      case 'error':
        this.line(`error: ${msg.message}`, 'stderr');
        break;
      case 'prediction':
        this.line(JSON.stringify(msg));
        break;
      case 'sweepPoint':
        this.line(`[${msg.index + 1}/${msg.total}] ${msg.status}${msg.best ? ` (best dev ${msg.best.metric} ${formatNumber(msg.best.value)})` : ''}: ${msg.name}`);
        break;
      default:
        break;
    }
  }

  /** Plain text for people; in JSON mode it becomes a log message. */
  info(message: string): void {
    this.emit({ type: 'log', level: 'info', message });
  }

  private line(text: string, stream: 'stdout' | 'stderr' = 'stdout'): void {
    if (this.progressOnLine) {
      process.stderr.write('\n');
      this.progressOnLine = false;
    }
    (stream === 'stdout' ? process.stdout : process.stderr).write(text + '\n');
  }

  private progress(p: ProgressMessage): void {
    const pct = (100 * p.step) / Math.max(1, p.totalSteps);
    const text =
      `epoch ${p.epoch + 1}/${p.epochs}  step ${p.step}/${p.totalSteps} (${pct.toFixed(0)}%)` +
      (p.loss !== undefined ? `  loss ${p.loss.toFixed(4)}` : '') +
      (p.tokensPerSecond !== undefined ? `  ${Math.round(p.tokensPerSecond)} tok/s` : '') +
      (p.imagesPerSecond !== undefined ? `  ${Math.round(p.imagesPerSecond)} images/s` : '') +
      `  ${formatDuration(p.elapsedMs)}`;
    if (process.stderr.isTTY) {
      process.stderr.write(`\r\x1b[K${text}`);
      this.progressOnLine = true;
    } else if (Date.now() - this.lastProgressPrint > 10_000 || p.step === p.totalSteps || p.step === 1) {
      this.lastProgressPrint = Date.now();
      process.stderr.write(text + '\n');
    }
  }
}

export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return Math.abs(v) >= 1000 ? v.toFixed(0) : v.toFixed(4);
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/** Rows of cells (the first a header) as aligned text: columns of numbers right-aligned, others left-aligned. */
export function formatTable(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const numeric = rows[0].map((_, c) => c > 0 && rows.slice(1).every((r) => /^(-|[-+]?[\d,.]+%?)$/.test(r[c] ?? '')));
  return rows.map((r) => r.map((cell, c) => (numeric[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd()).join('\n');
}

/** Per-class precision, recall, F1 and support, then the confusion matrix (rows: true class; columns: predicted). */
export function formatClassReport(r: ClassReport): string {
  const scores = formatTable([
    ['class', 'precision', 'recall', 'f1', 'support'],
    ...r.perClass.map((c) => [c.label, c.precision.toFixed(4), c.recall.toFixed(4), c.f1.toFixed(4), String(c.support)]),
  ]);
  const matrix = formatTable([['true \\ predicted', ...r.labels], ...r.confusion.map((row, t) => [r.labels[t], ...row.map(String)])]);
  return `${scores}\n\nconfusion matrix (rows: true class, columns: predicted class):\n${matrix}`;
}

/** What `eval` reports and saves of an evaluation. */
export interface EvalPayload {
  split: 'dev' | 'test';
  examples: number;
  metrics: Record<string, number>;
  classes?: ClassReport;
}

/**
 * The end of `eval`: the metrics and (classification) the class report are printed whether or not `save` can
 * write them (a read-only or full disk must not lose them); exit 1, saying why, when it could not.
 */
export function finishEval(out: Reporter, result: EvalPayload, runDir: string | undefined, save: ((payload: EvalPayload) => void) | null): number {
  const payload: EvalPayload = { split: result.split, examples: result.examples, metrics: result.metrics, ...(result.classes ? { classes: result.classes } : {}) };
  let notSaved: string | null = null;
  try {
    save?.(payload);
  } catch (err) {
    notSaved = (err as Error).message;
  }
  out.emit({ type: 'eval', split: payload.split, metrics: payload.metrics, runDir });
  out.emit({ type: 'result', command: 'eval', ...payload, runDir, ...(notSaved ? { saved: false } : {}) });
  if (!out.json && payload.classes) out.info(formatClassReport(payload.classes));
  if (notSaved) {
    out.emit({ type: 'error', message: `the metrics above were not saved: ${notSaved}`, exitCode: 1 });
    out.emit({ type: 'done', command: 'eval', status: 'failed', exitCode: 1 });
    return 1;
  }
  out.emit({ type: 'done', command: 'eval', status: 'done', exitCode: 0 });
  return 0;
}
