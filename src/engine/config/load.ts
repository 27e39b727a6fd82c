/**
 * Loading, validating and resolving `*.adapter.json` experiment configs (SPEC section 4).
 *
 * - The JSON Schema in `schema/adapter-config.schema.json` is the single source of validation (the same file
 *   VS Code uses for completion and squiggles); ajv runs it, and every problem becomes one line of one
 *   {@link ConfigError}: `<file>:<line>: <field path>: <what is wrong>`.
 * - Checks the schema cannot express (metric vs task type, split fractions) use the same format.
 * - {@link resolveConfig} fills every default and makes every path absolute.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { createScanner, parseTree, getNodeValue, printParseErrorCode, SyntaxKind, type Node as JsonNode, type ParseError } from 'jsonc-parser';
import schemaJson from '../../../schema/adapter-config.schema.json';
import { UserInputError } from '../errors';
import { catalogEntry, catalogLearningRate, METHOD_CATALOG, METHOD_NAMES, methodsForTaskType } from '../methods/catalog';
import type {
  DataSource,
  ExperimentConfig,
  MethodConfig,
  MethodType,
  MetricName,
  NonLinearity,
  ResolvedConfig,
  TaskConfig,
  TrainingConfig,
} from './types';

/** One problem in a config. `line` is 1-based; `field` a dotted path such as `training.learningRate`. */
export interface ConfigProblem {
  file?: string;
  line?: number;
  column?: number;
  field?: string;
  message: string;
}

/**
 * A config with one or more problems. The message lists each on its own line as
 * `<file>:<line>: <field>: <problem>`; `problems` holds them separately (for editor diagnostics);
 * `location` is the first one's.
 */
export class ConfigError extends UserInputError {
  constructor(readonly problems: ConfigProblem[]) {
    super(
      problems.map(formatProblem).join('\n'),
      problems[0] ? { file: problems[0].file, line: problems[0].line, field: problems[0].field } : undefined,
      { locatedInDetail: true },
    );
    this.name = 'ConfigError';
  }
}

export function formatProblem(p: ConfigProblem): string {
  let where = p.file ?? '';
  if (where && p.line !== undefined) where += `:${p.line}` + (p.column !== undefined ? `:${p.column}` : '');
  const parts = [where, p.field, p.message].filter((s) => s !== undefined && s !== '');
  return parts.join(': ');
}

/** The schema, as bundled into the build. */
export const configSchema: Record<string, unknown> = schemaJson as unknown as Record<string, unknown>;

/** Methods whose parameters are bottleneck adapters with a size m. */
export const BOTTLENECK_METHODS: readonly MethodType[] = METHOD_NAMES.filter((n) => METHOD_CATALOG[n].kind === 'bottleneck');
const CLASSIFICATION_METRICS: readonly MetricName[] = ['accuracy', 'macroF1', 'matthews'];
const REGRESSION_METRICS: readonly MetricName[] = ['pearson', 'spearman'];

/** Default peak learning rate per method (the catalog's, for the family of the task type when given). */
export function defaultLearningRate(method: MethodType, taskType?: string): number {
  return catalogLearningRate(method, taskType);
}

// ---------------------------------------------------------------------------------------------
// Schema validation

let validator: ValidateFunction | undefined;

function getValidator(): ValidateFunction {
  if (!validator) {
    const ajv = new Ajv({ allErrors: true, verbose: true, allowUnionTypes: true, strict: true, strictRequired: false });
    // Keywords VS Code understands that ajv does not.
    ajv.addVocabulary(['enumDescriptions', 'markdownDescription', 'markdownEnumDescriptions', 'defaultSnippets']);
    validator = ajv.compile(configSchema);
  }
  return validator;
}

/** Finds the 1-based line of a field in the source text, when there is one. */
type Locator = (segments: (string | number)[]) => number | undefined;

type Segment = string | number;

function pointerToSegments(pointer: string, data: unknown): Segment[] {
  if (pointer === '') return [];
  const raw = pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const out: Segment[] = [];
  let cur: unknown = data;
  for (const s of raw) {
    if (Array.isArray(cur) && /^\d+$/.test(s)) {
      const i = Number(s);
      out.push(i);
      cur = cur[i];
    } else {
      out.push(s);
      cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[s] : undefined;
    }
  }
  return out;
}

/** `training.learningRate`, `method.leaveOut[2]`, `sweep["training.learningRate"][1]`. */
export function fieldPath(segments: Segment[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(s)) out += out ? `.${s}` : s;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

function show(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

/** `"fast"`, `3`, `null`, `an array [1,2]`, `an object {...}`. */
function gotWhat(v: unknown): string {
  if (Array.isArray(v)) return `an array ${show(v)}`;
  if (v !== null && typeof v === 'object') return `an object ${show(v)}`;
  return show(v);
}

function levenshtein(a: string, b: string): number {
  const d: number[] = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length]!;
}

/** The closest candidate to a misspelt name, if any is close enough. */
export function didYouMean(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const lower = name.toLowerCase();
  for (const c of candidates) {
    if (c.toLowerCase() === lower) return c;
    const d = levenshtein(lower, c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

function hint(name: string, candidates: Iterable<string>): string {
  const m = didYouMean(name, candidates);
  return m ? ` (did you mean "${m}"?)` : '';
}

function ajvProblems(errors: ErrorObject[], data: unknown, file: string | undefined, locate: Locator | undefined): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (e.keyword === 'if') continue; // the failing "then" reports the detail
    const parent = pointerToSegments(e.instancePath, data);
    let segs: Segment[] = parent;
    let lineSegs: Segment[] = parent;
    let message: string;
    const params = e.params as Record<string, unknown>;
    switch (e.keyword) {
      case 'type': {
        const t = Array.isArray(params.type) ? (params.type as string[]) : String(params.type).split(',');
        message = parent.length === 0 ? `the config must be a JSON object, got ${gotWhat(e.data)}` : `must be ${t.join(' or ')}, got ${gotWhat(e.data)}`;
        break;
      }
      case 'enum': {
        const allowed = (params.allowedValues as unknown[]) ?? [];
        const got = e.data;
        message = `must be one of ${allowed.map((a) => show(a)).join(', ')}, got ${show(got)}`;
        if (typeof got === 'string') message += hint(got, allowed.filter((a): a is string => typeof a === 'string'));
        break;
      }
      case 'const':
        message = `must be ${show(params.allowedValue)}, got ${show(e.data)}`;
        break;
      case 'required': {
        const missing = String(params.missingProperty);
        segs = [...parent, missing];
        lineSegs = parent; // the line of the object that lacks it
        const inThen = e.schemaPath.includes('/then/');
        const methodType = (data as { method?: { type?: unknown } } | null)?.method?.type;
        message = inThen ? `is required for method "${String(methodType)}"` : 'is required';
        break;
      }
      case 'additionalProperties': {
        const extra = String(params.additionalProperty);
        segs = [...parent, extra];
        lineSegs = segs;
        const known = Object.keys(((e.parentSchema as { properties?: object } | undefined)?.properties ?? {}) as object);
        const what = parent.length === 1 && parent[0] === 'sweep' ? 'unknown sweep axis: no such field' : 'unknown field';
        message = what + hint(extra, known);
        break;
      }
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        message = `must be ${String(params.comparison)} ${String(params.limit)}, got ${show(e.data)}`;
        break;
      case 'minItems':
        message = Number(params.limit) === 1 ? 'must not be empty' : `must have at least ${String(params.limit)} items`;
        break;
      case 'maxItems':
        message = `must have at most ${String(params.limit)} items`;
        break;
      case 'minLength':
        message = Number(params.limit) === 1 ? 'must not be empty' : `must be at least ${String(params.limit)} characters long`;
        break;
      case 'uniqueItems':
        message = `must not contain duplicates (items ${String(params.j)} and ${String(params.i)} are equal)`;
        break;
      case 'not': {
        const req = (e.schema as { required?: string[] } | undefined)?.required;
        if (req && req.length >= 2) {
          segs = [...parent, req[req.length - 1]!];
          lineSegs = segs;
          message = `give either ${req.map((r) => `"${r}"`).join(' or ')}, not both`;
        } else {
          message = e.message ?? 'is not valid';
        }
        break;
      }
      case 'false schema': {
        // A field the schema rules out in this branch (a text field in an image task, or the reverse).
        const taskType = (data as { task?: { type?: unknown } } | null)?.task?.type;
        message = `does not apply to ${String(taskType)} tasks`;
        break;
      }
      default:
        message = e.message ?? `is not valid (${e.keyword})`;
    }
    const p: ConfigProblem = { file, field: fieldPath(segs) || undefined, message };
    const line = locate?.(lineSegs);
    if (line !== undefined) p.line = line;
    const key = formatProblem(p);
    if (!seen.has(key)) {
      seen.add(key);
      problems.push(p);
    }
  }
  return problems;
}

/** Validates a raw config against the schema; returns the problems (empty when valid). */
export function validateAgainstSchema(raw: unknown, file?: string, locate?: Locator): ConfigProblem[] {
  const validate = getValidator();
  if (validate(raw)) return [];
  return sortProblems(ajvProblems(validate.errors ?? [], raw, file, locate));
}

function sortProblems(ps: ConfigProblem[]): ConfigProblem[] {
  return ps
    .map((p, i) => ({ p, i }))
    .sort((a, b) => (a.p.line ?? Infinity) - (b.p.line ?? Infinity) || a.i - b.i)
    .map((x) => x.p);
}

// ---------------------------------------------------------------------------------------------
// Parsing with locations

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) starts.push(i + 1);
    else if (c === 13 && text.charCodeAt(i + 1) !== 10) starts.push(i + 1);
  }
  return starts;
}

function positionAt(starts: number[], offset: number): { line: number; column: number } {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return { line: lo + 1, column: offset - starts[lo]! + 1 };
}

function childNode(node: JsonNode | undefined, seg: Segment): JsonNode | undefined {
  if (!node) return undefined;
  if (node.type === 'object' && typeof seg === 'string') {
    // the last one wins, as in JSON.parse
    let found: JsonNode | undefined;
    for (const prop of node.children ?? []) {
      if (prop.children?.[0]?.value === seg) found = prop;
    }
    return found;
  }
  if (node.type === 'array' && typeof seg === 'number') return node.children?.[seg];
  return undefined;
}

/** A locator over a parsed tree: the line of the property (its key) or array item at the path. */
function treeLocator(root: JsonNode, starts: number[]): Locator {
  return (segments) => {
    let node: JsonNode | undefined = root;
    let offset = root.offset;
    for (const seg of segments) {
      const child = childNode(node, seg);
      if (!child) break; // the deepest node that exists
      offset = child.offset; // a property node starts at its key
      node = child.type === 'property' ? child.children?.[1] : child;
    }
    return positionAt(starts, offset).line;
  };
}

function humanize(code: string): string {
  return code
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .replace(/^invalid symbol$/, 'unexpected character');
}

function findDuplicateKeys(node: JsonNode, segs: Segment[], out: { segs: Segment[]; offset: number }[]): void {
  if (node.type === 'object') {
    const seen = new Set<string>();
    for (const prop of node.children ?? []) {
      const key = prop.children?.[0]?.value as string;
      if (seen.has(key)) out.push({ segs: [...segs, key], offset: prop.offset });
      seen.add(key);
      const value = prop.children?.[1];
      if (value) findDuplicateKeys(value, [...segs, key], out);
    }
  } else if (node.type === 'array') {
    (node.children ?? []).forEach((c, i) => findDuplicateKeys(c, [...segs, i], out));
  }
}

interface Parsed {
  value: unknown;
  locate: Locator;
}

/** Deeper than any config needs (a sweep axis is 3 levels); the parser and validator recurse per level. */
export const MAX_CONFIG_DEPTH = 32;

/**
 * Refuses nesting past {@link MAX_CONFIG_DEPTH} before anything recursive reads the text (a few thousand
 * levels overflow the stack), naming the line and the field where it goes too deep. A scanner, not a parser:
 * it holds one entry per open bracket.
 */
function checkNesting(text: string, file: string, starts: number[]): void {
  const scanner = createScanner(text, true);
  const open: { array: boolean; index: number }[] = [];
  const fieldOf: Segment[] = [];
  let lastString = '';
  let key: string | undefined;
  for (let t = scanner.scan(); t !== SyntaxKind.EOF; t = scanner.scan()) {
    switch (t) {
      case SyntaxKind.OpenBraceToken:
      case SyntaxKind.OpenBracketToken: {
        const parent = open[open.length - 1];
        if (parent) fieldOf.push(parent.array ? parent.index : (key ?? ''));
        if (open.length >= MAX_CONFIG_DEPTH) {
          const pos = positionAt(starts, scanner.getTokenOffset());
          throw new ConfigError([
            { file, line: pos.line, column: pos.column, field: fieldPath(fieldOf), message: `nested more than ${MAX_CONFIG_DEPTH} levels deep; no config field goes this deep` },
          ]);
        }
        open.push({ array: t === SyntaxKind.OpenBracketToken, index: 0 });
        break;
      }
      case SyntaxKind.CloseBraceToken:
      case SyntaxKind.CloseBracketToken:
        if (open.pop() && open.length > 0) fieldOf.pop();
        break;
      case SyntaxKind.StringLiteral:
        lastString = scanner.getTokenValue();
        break;
      case SyntaxKind.ColonToken:
        key = lastString;
        break;
      case SyntaxKind.CommaToken: {
        const top = open[open.length - 1];
        if (top?.array) top.index++;
        break;
      }
      default:
        break;
    }
  }
}

/** Parses JSON with comments; syntax errors and duplicate keys become a ConfigError with line and column. */
export function parseConfigText(text: string, file: string): Parsed {
  checkNesting(text, file, lineStarts(text));
  const errors: ParseError[] = [];
  const root = parseTree(text, errors, { allowTrailingComma: true, disallowComments: false, allowEmptyContent: false });
  const starts = lineStarts(text);
  if (errors.length > 0 || !root) {
    const problems: ConfigProblem[] = errors.slice(0, 10).map((e) => {
      const pos = positionAt(starts, e.offset);
      return { file, line: pos.line, column: pos.column, message: `syntax error: ${humanize(printParseErrorCode(e.error))}` };
    });
    if (problems.length === 0) problems.push({ file, line: 1, column: 1, message: 'syntax error: the file is empty' });
    throw new ConfigError(problems);
  }
  const dups: { segs: Segment[]; offset: number }[] = [];
  findDuplicateKeys(root, [], dups);
  if (dups.length > 0) {
    throw new ConfigError(
      dups.map((d) => {
        const pos = positionAt(starts, d.offset);
        return { file, line: pos.line, column: pos.column, field: fieldPath(d.segs), message: 'duplicate key (given more than once)' };
      }),
    );
  }
  return { value: getNodeValue(root), locate: treeLocator(root, starts) };
}

// ---------------------------------------------------------------------------------------------
// Loading and resolving

interface Origin {
  raw: unknown;
  configFile: string | null;
  baseDir: string;
  displayFile: string | undefined;
  locate: Locator | undefined;
}

/** Where each resolved config came from, so that a sweep can re-resolve from the raw values. */
const origins = new WeakMap<ResolvedConfig, Origin>();

/** @internal used by sweep.ts */
export function originOf(cfg: ResolvedConfig): Origin | undefined {
  return origins.get(cfg);
}

/** Reads, parses, validates and resolves a `*.adapter.json` file. Throws ConfigError / UserInputError. */
export function loadConfig(file: string): ResolvedConfig {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = fs.readFileSync(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder, not a config file' : (err as Error).message;
    throw new UserInputError(`cannot read the config: ${why}`, { file });
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const parsed = parseConfigText(text, file);
  return resolveInternal(parsed.value, abs, path.dirname(abs), file, parsed.locate);
}

/**
 * Validates a raw config object (as parsed from JSON) and resolves it: defaults filled, paths absolute
 * (relative to `baseDir`). `configFile` is recorded in the result and names the file in errors.
 */
export function resolveConfig(raw: unknown, configFile: string | null, baseDir: string): ResolvedConfig {
  return resolveInternal(raw, configFile ? path.resolve(configFile) : null, path.resolve(baseDir), configFile ?? undefined, undefined);
}

/** @internal */
export function resolveInternal(
  raw: unknown,
  configFile: string | null,
  baseDir: string,
  displayFile: string | undefined,
  locate: Locator | undefined,
): ResolvedConfig {
  raw = structuredClone(raw); // the result never shares objects with the caller's
  const problems = validateAgainstSchema(raw, displayFile, locate);
  if (problems.length > 0) throw new ConfigError(problems);
  const cfg = raw as ExperimentConfig;
  const resolved = fillDefaults(cfg, configFile, baseDir);
  const semantic = semanticProblems(resolved, displayFile, locate);
  if (semantic.length > 0) throw new ConfigError(semantic);
  origins.set(resolved, { raw, configFile, baseDir, displayFile, locate });
  return resolved;
}

/**
 * The workspace a config belongs to: the nearest folder at or above `dir` that holds `.adapter-lab`,
 * `.git` or `package.json`; `dir` itself when there is none.
 */
export function findWorkspaceRoot(dir: string): string {
  let cur = path.resolve(dir);
  for (;;) {
    for (const marker of ['.adapter-lab', '.git', 'package.json']) {
      if (fs.existsSync(path.join(cur, marker))) return cur;
    }
    const up = path.dirname(cur);
    if (up === cur) return path.resolve(dir);
    cur = up;
  }
}

function fillDefaults(cfg: ExperimentConfig, configFile: string | null, baseDir: string): ResolvedConfig {
  const abs = (p: string) => path.resolve(baseDir, p);
  const t: TaskConfig = cfg.task;
  const absSource = (v: DataSource): DataSource => (typeof v === 'string' ? abs(v) : { images: abs(v.images), labels: abs(v.labels) });
  const sources = { train: absSource(t.train), dev: t.dev != null ? absSource(t.dev) : null, test: t.test != null ? absSource(t.test) : null };
  // A text task (it names its fields) gets the text readers' defaults; an image task has none of those fields.
  const textDefaults = t.textField !== undefined ? { format: 'auto' as const, header: true, textPairField: null, skipBadRows: false } : {};
  const task = {
    name: t.name,
    type: t.type,
    ...sources,
    split: t.split ?? null,
    ...textDefaults,
    textField: t.textField,
    textPairField: t.textPairField ?? null,
    labelField: t.labelField,
    labels: t.labels ?? null,
  } as ResolvedConfig['task'];
  if (t.textField === undefined) for (const key of ['textField', 'textPairField', 'labelField'] as const) delete (task as Partial<ResolvedConfig['task']>)[key];
  Object.assign(task, definedOnly(t), sources);

  const m: MethodConfig = cfg.method;
  const method: ResolvedConfig['method'] = {
    ...m,
    nonLinearity: m.nonLinearity ?? ((catalogEntry(m.type).defaults.nonLinearity as NonLinearity | undefined) ?? 'gelu'),
    initStd: m.initStd ?? 0.01,
    trainLayerNorm: m.trainLayerNorm ?? catalogEntry(m.type).defaults.trainLayerNorm === true,
    leaveOut: m.leaveOut ?? [],
    dropLowest: m.dropLowest ?? 0,
  };
  // The method's own defaults (the catalog's), for options the config leaves out; a reduction factor stands for
  // the bottleneck size.
  const own = method as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(catalogEntry(m.type).defaults)) {
    const sizeGiven = key === 'bottleneck' ? m.reductionFactor !== undefined : key === 'reductionFactor' && (m.bottleneck !== undefined || m.bottleneckPerLayer !== undefined);
    if (key === 'trainLayerNorm' || own[key] !== undefined || sizeGiven) continue;
    own[key] = structuredClone(value);
  }
  if (m.adapters) method.adapters = m.adapters.map(abs);

  const tr: Partial<TrainingConfig> = cfg.training ?? {};
  const training: TrainingConfig = {
    epochs: tr.epochs ?? 3,
    batchSize: tr.batchSize ?? 32,
    learningRate: tr.learningRate ?? defaultLearningRate(m.type, task.type),
    warmupRatio: tr.warmupRatio ?? 0.1,
    weightDecay: tr.weightDecay ?? 0.01,
    maxGradNorm: tr.maxGradNorm ?? 1.0,
    dropout: tr.dropout ?? null,
    maxSeqLength: tr.maxSeqLength ?? 128,
    seed: tr.seed ?? 42,
    metric: tr.metric ?? (task.type === 'regression' ? 'pearson' : 'accuracy'),
    evalEverySteps: tr.evalEverySteps ?? 0,
    cacheFrozenLayers: tr.cacheFrozenLayers ?? true,
    evalBatchSize: tr.evalBatchSize ?? 128,
    maxSteps: tr.maxSteps ?? null,
    ...definedOnly(tr), // keeps the order above; adds headLearningRate and any newer field
  };

  const resolved: ResolvedConfig = {
    name: cfg.name,
    configFile,
    task,
    model: cfg.model.startsWith('builtin:') ? cfg.model : abs(cfg.model),
    method,
    training,
    runsDir: cfg.runsDir != null ? abs(cfg.runsDir) : path.join(findWorkspaceRoot(baseDir), '.adapter-lab', 'runs'),
  };
  if (cfg.sweep != null) resolved.sweep = structuredClone(cfg.sweep);
  if (cfg.slurm != null) resolved.slurm = structuredClone(cfg.slurm);
  return resolved;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function semanticProblems(cfg: ResolvedConfig, file: string | undefined, locate: Locator | undefined): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const at = (segs: Segment[], message: string): void => {
    const p: ConfigProblem = { file, field: fieldPath(segs), message };
    const line = locate?.(segs);
    if (line !== undefined) p.line = line;
    problems.push(p);
  };
  const metric = cfg.training.metric;
  if (cfg.task.type === 'regression' && CLASSIFICATION_METRICS.includes(metric)) {
    at(['training', 'metric'], `"${metric}" is a classification metric; a regression task can use pearson, spearman or loss`);
  }
  if (cfg.task.type === 'classification' && REGRESSION_METRICS.includes(metric)) {
    at(['training', 'metric'], `"${metric}" is a regression metric; a classification task can use accuracy, macroF1, matthews or loss`);
  }
  // The task's name is the adapter's and the head's name in parameter names (…adapters.<name>.adapter_up…),
  // which PyTorch's module names (nn.ModuleDict keys) must spell without a "." (and AdapterHub joins fused
  // adapters' names with ",").
  if (/[.,]/.test(cfg.task.name) || cfg.task.name.trim() === '') {
    at(['task', 'name'], `"${cfg.task.name}" cannot name an adapter: PyTorch module names cannot contain "." (and AdapterHub joins fused adapters' names with ","); use e.g. "${cfg.task.name.replace(/[.,]/g, '_') || 'task'}"`);
  }
  // Each task type belongs to one model family, which has its own methods (the catalog's `families`).
  const applicable = methodsForTaskType(cfg.task.type);
  if (!applicable.includes(cfg.method.type)) {
    at(['method', 'type'], `method "${cfg.method.type}" does not apply to ${cfg.task.type} tasks; they can use ${applicable.join(', ')}`);
  }
  const split = cfg.task.split;
  if (split && split.dev + (split.test ?? 0) >= 1) {
    at(['task', 'split'], `dev + test fractions must leave some training data (sum is ${split.dev + (split.test ?? 0)})`);
  }
  if (cfg.task.type === 'regression' && cfg.task.labels) {
    at(['task', 'labels'], 'a regression task has no class labels (remove "labels" or use type "classification")');
  }
  return problems;
}

/**
 * Checks a resolved config against the model it will run on (layer indexes, per-layer lists, sizes).
 * Throws a ConfigError naming the field (and the config file's line, when the file is still there and
 * holds the same value).
 */
export function checkAgainstModel(
  cfg: ResolvedConfig,
  numLayers: number,
  hiddenSize: number,
  /** The model's max_position_embeddings and parameter count, when the caller has the model. */
  model: { maxPositions?: number; baseParams?: number } = {},
): void {
  const problems: ConfigProblem[] = [];
  const locate = lineInConfigFile(cfg);
  const at = (segs: Segment[], value: unknown, message: string): void => {
    const p: ConfigProblem = { file: cfg.configFile ?? undefined, field: fieldPath(segs), message };
    const line = locate(segs, value);
    if (line !== undefined) p.line = line;
    problems.push(p);
  };
  const m = cfg.method;
  const layers = `the model has ${numLayers} layers (0..${numLayers - 1})`;
  m.leaveOut.forEach((l, i) => {
    if (l >= numLayers) at(['method', 'leaveOut', i], l, `layer ${l} does not exist; ${layers}`);
  });
  if (m.bottleneckPerLayer && m.bottleneckPerLayer.length !== numLayers) {
    at(['method', 'bottleneckPerLayer'], m.bottleneckPerLayer, `must have one entry per layer (${numLayers}), got ${m.bottleneckPerLayer.length}`);
  }
  if (m.type === 'top-k' && m.k !== undefined && m.k > numLayers) {
    at(['method', 'k'], m.k, `must be at most the number of layers, ${numLayers}`);
  }
  if (m.dropLowest > numLayers) {
    at(['method', 'dropLowest'], m.dropLowest, `must be at most the number of layers, ${numLayers}`);
  }
  if (m.reductionFactor !== undefined && pythonFloorDiv(hiddenSize, m.reductionFactor) < 1) {
    at(['method', 'reductionFactor'], m.reductionFactor, `gives a bottleneck of 0 for hidden size ${hiddenSize}`);
  }
  const perLayerModules = catalogEntry(m.type).perLayerModules;
  if (perLayerModules && numLayers > 0 && new Set(m.leaveOut.filter((l) => l < numLayers)).size === numLayers) {
    at(
      ['method', 'leaveOut'],
      m.leaveOut,
      `leaves out every layer (${layers}): ${m.type} would add nothing and train only LayerNorms and the head; ` +
        'keep some layers, or use method "layernorm" or "head" if that is the aim',
    );
  }
  if (BOTTLENECK_METHODS.includes(m.type) && model.baseParams !== undefined) {
    // One adapter larger than the whole base model is no bottleneck, and past memory long before: refuse it
    // here rather than fail allocating it.
    const layerOf = Array.from({ length: numLayers }, (_, i) => i);
    const biggest = Math.max(...layerOf.map((i) => bottleneckSize(m, i, hiddenSize)));
    const adapterParams = 2 * biggest * hiddenSize + hiddenSize + biggest;
    if (adapterParams > model.baseParams) {
      const field = m.bottleneckPerLayer ? 'bottleneckPerLayer' : m.bottleneck !== undefined ? 'bottleneck' : 'reductionFactor';
      at(
        ['method', field],
        m[field],
        `gives an adapter with m = ${biggest}, 2md + d + m = ${adapterParams.toLocaleString('en-US')} parameters (d = ${hiddenSize}), ` +
          `more than the whole base model (${model.baseParams.toLocaleString('en-US')}); a bottleneck is meant to be well below d`,
      );
    }
  }
  // Only a length the config file writes: the default (128) on a model with fewer positions is left as it was.
  const writtenLength = locate(['training', 'maxSeqLength'], cfg.training.maxSeqLength) !== undefined;
  if (model.maxPositions !== undefined && cfg.training.maxSeqLength > model.maxPositions && writtenLength) {
    at(
      ['training', 'maxSeqLength'],
      cfg.training.maxSeqLength,
      `must be at most the model's max_position_embeddings, ${model.maxPositions} (it has no position embedding past that)`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
}

/** Past this share of the base model's parameters, a method other than full or top-k fine-tuning is flagged. */
export const MOST_OF_THE_MODEL_PERCENT = 50;

/**
 * Warnings about a method's size once the model is built: a parameter-efficient method that trains most of
 * the model (a bottleneck near or above d) is more likely a mistyped size than the experiment meant.
 */
export function methodSizeWarnings(cfg: ResolvedConfig, counts: { trainable: number; base: number; trainablePercent: number }, hiddenSize: number): string[] {
  const m = cfg.method;
  if (m.type === 'full' || m.type === 'top-k' || counts.trainablePercent <= MOST_OF_THE_MODEL_PERCENT) return [];
  const size = BOTTLENECK_METHODS.includes(m.type)
    ? `: check method.${m.bottleneckPerLayer ? 'bottleneckPerLayer' : m.bottleneck !== undefined ? `bottleneck (${m.bottleneck})` : `reductionFactor (${m.reductionFactor})`}, ` +
      `meant to be well below the hidden size d = ${hiddenSize}`
    : '';
  return [
    `method ${m.type} trains ${counts.trainablePercent.toFixed(1)}% of the base model's parameters ` +
      `(${counts.trainable.toLocaleString('en-US')} of ${counts.base.toLocaleString('en-US')}), more than ${MOST_OF_THE_MODEL_PERCENT}%${size}`,
  ];
}

/**
 * The bottleneck size m of the adapter(s) at `layer` (houlsby, pfeiffer). A reduction factor rf gives
 * AdapterHub's size, int(d // rf) with Python's float floor division (at least 1): training, config checks and
 * the exported adapter_config.json all follow this one rule.
 */
export function bottleneckSize(method: ResolvedConfig['method'], layer: number, hiddenSize: number): number {
  const per = method.bottleneckPerLayer?.[layer];
  if (per !== undefined) return per;
  if (method.bottleneck !== undefined) return method.bottleneck;
  if (method.reductionFactor !== undefined) return sizeFromReductionFactor(hiddenSize, method.reductionFactor);
  return 64;
}

/** AdapterHub's adapter size for a reduction factor: max(1, int(d // rf)). */
export function sizeFromReductionFactor(hiddenSize: number, reductionFactor: number): number {
  return Math.max(1, pythonFloorDiv(hiddenSize, reductionFactor));
}

/**
 * Python's a // b for floats (CPython's float_floor_div): fmod-based, so it can differ from floor(a / b) when
 * a / b rounds up to an integer (1 // 0.1 is 9.0 in Python, floor(1 / 0.1) is 10).
 */
export function pythonFloorDiv(a: number, b: number): number {
  let mod = a % b; // C's fmod, exact
  let div = (a - mod) / b;
  if (mod && b < 0 !== mod < 0) {
    mod += b;
    div -= 1;
  }
  if (!div) return 0;
  let floordiv = Math.floor(div);
  if (div - floordiv > 0.5) floordiv += 1;
  return floordiv;
}

function lineInConfigFile(cfg: ResolvedConfig): (segs: Segment[], value: unknown) => number | undefined {
  let parsed: Parsed | null | undefined;
  return (segs, value) => {
    if (parsed === undefined) {
      parsed = null;
      try {
        if (cfg.configFile) {
          let text = fs.readFileSync(cfg.configFile, 'utf8');
          if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
          parsed = parseConfigText(text, cfg.configFile);
        }
      } catch {
        parsed = null;
      }
    }
    if (!parsed) return undefined;
    let v: unknown = parsed.value;
    for (const s of segs) v = v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[s] : undefined;
    return JSON.stringify(v) === JSON.stringify(value) ? parsed.locate(segs) : undefined;
  };
}
