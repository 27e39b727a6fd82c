// `npm run results`: Houlsby et al.'s Table 1 at small scale. For every example task, the dev metric of each
// method (mean and spread over seeds) with the share of parameters it trains, and the same Houlsby adapter on a
// randomly initialised encoder of the built-in model's shape (what pretraining buys; each seed draws its own random
// encoder). Every run is a real `adapter-lab train`; finished runs are remembered in docs/results/results.json, so
// an interrupted `npm run results` continues where it stopped. Writes docs/results/README.md and the README's results section.
//
//   npm run results                                   # all tasks, 3 seeds
//   npm run results -- --tasks liu-opinion --seeds 1  # a subset
//   npm run results -- --max-steps 30 --max-seq-length 32 --jobs 2   # another budget for every task, two runs at a time
//   npm run results -- --methods houlsby-64,houlsby-64-random   # some rows only
//   npm run results -- --report                       # rewrite the tables from the runs done so far
//   npm run results -- --out DIR                      # results.json and tables in DIR (the README is left alone)
//
// A run is remembered with a fingerprint of everything its figure depends on: the resolved config (method,
// learning rate, seed, budget) and the bytes of the encoder and of the task's data. When the built-in encoder is
// re-pretrained or a task rebuilt, the runs that used them are stale and `npm run results` redoes them.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { METHODS } from './results-methods.mjs';
import { arg, hashFiles, meanSd, resultsStore, root, runCli as run, runTable, writeReadmeSection } from './table-runs.mjs';

const examples = path.join(root, 'examples');
const customOut = arg('out');
const outDir = customOut ? path.resolve(customOut) : path.join(root, 'docs', 'results');
const resultsFile = path.join(outDir, 'results.json');
const workDir = customOut ? path.join(outDir, 'work') : path.join(root, '.adapter-lab', 'results');
const ALL_TASKS = ['liu-opinion', 'afinn-valence', 'sotu-party', 'spam'];
const TASKS = arg('tasks', ALL_TASKS.join(',')).split(',');
const SEEDS = Array.from({ length: Number(arg('seeds', '3')) }, (_, i) => 42 + i);
const JOBS = Number(arg('jobs', '1'));
const budgetGiven = {
  maxSteps: arg('max-steps') ? Number(arg('max-steps')) : null,
  maxSeqLength: arg('max-seq-length') ? Number(arg('max-seq-length')) : null,
  epochs: arg('epochs') ? Number(arg('epochs')) : null,
};
// The table's budgets: the word tasks' example configs as they are (3 epochs of single words); the text tasks
// (paragraphs and mails, two epochs of 128 tokens in their example configs, 4-6 minutes a run) cut to 60 steps of
// 64 tokens, so that their 66 runs fit in well under an hour on two cores (about 75 s a run). Budget options replace these for every task.
const TABLE_BUDGETS = {
  'sotu-party': { maxSteps: 60, maxSeqLength: 64, epochs: null },
  spam: { maxSteps: 60, maxSeqLength: 64, epochs: null },
};
const givenAny = Object.values(budgetGiven).some((v) => v !== null);
const budgetOf = (task) => (givenAny ? budgetGiven : TABLE_BUDGETS[task] ?? { maxSteps: null, maxSeqLength: null, epochs: null });

const methodKeys = arg('methods')?.split(',');
for (const k of methodKeys ?? []) {
  if (!METHODS.some((m) => m.key === k)) {
    console.error(`--methods: unknown method "${k}" (known: ${METHODS.map((m) => m.key).join(', ')})`);
    process.exit(2);
  }
}
for (const t of TASKS) {
  if (!ALL_TASKS.includes(t)) {
    console.error(`--tasks: unknown task "${t}" (known: ${ALL_TASKS.join(', ')})`);
    process.exit(2);
  }
}

// Runs this process finishes are merged into the file as it is on disk, so that two `npm run results` at once (say
// one per task) keep each other's runs.
const store = resultsStore(resultsFile);
const results = store.results;

const builtinDir = (ref) => path.join(root, 'models', ref.slice('builtin:'.length));
// The random encoder is random-init of the built-in model, one per seed (the run's seed draws the encoder's weights
// too, so the row's spread covers what a different random encoder does, not only a different training order). Its
// weights are fixed by that seed and the shape, its tokenizer is the built-in's: so its identity is the built-in's
// shape and tokenizer (a re-pretrained built-in with the same vocabulary keeps the same random encoders and their
// runs).
const randomLike = (builtinRef) =>
  hashFiles(['config.json', 'tokenizer.json', 'vocab.txt'].map((f) => path.join(builtinDir(builtinRef), f)));

/** Makes (or keeps) the random encoder of a seed; made again when the built-in's shape or tokenizer changed. */
async function randomEncoder(builtinRef, seed) {
  const dir = path.join(workDir, `random-tiny-bert-s${seed}`);
  const like = randomLike(builtinRef);
  const stamp = path.join(dir, 'made-like.txt');
  if (!fs.existsSync(path.join(dir, 'model.safetensors')) || !fs.existsSync(stamp) || fs.readFileSync(stamp, 'utf8') !== like) {
    fs.rmSync(dir, { recursive: true, force: true });
    await run(['random-init', '--model', builtinRef, '--out', dir, '--seed', String(seed)]);
    fs.writeFileSync(stamp, like);
  }
  return dir;
}

/**
 * One table cell's run: its config (the task's example config with the method, learning rate, seed and budget
 * put in) and the fingerprint of everything its figure depends on. No side effects: the report uses it to tell
 * current runs from stale ones.
 */
function plan(task, m, seed, runBudget) {
  const base = JSON.parse(fs.readFileSync(path.join(examples, `${task}-houlsby.adapter.json`), 'utf8'));
  delete base.$schema;
  const cfg = {
    ...base,
    name: `${task}-${m.key}-s${seed}`,
    method: m.method,
    training: {
      ...base.training,
      learningRate: m.lr,
      seed,
      ...(runBudget.maxSteps ? { maxSteps: runBudget.maxSteps } : {}),
      ...(runBudget.epochs ? { epochs: runBudget.epochs } : {}),
      ...(runBudget.maxSeqLength ? { maxSeqLength: Math.min(runBudget.maxSeqLength, base.training.maxSeqLength) } : {}),
    },
  };
  const encoder = m.randomEncoder
    ? `random-init seed ${seed} like ${randomLike(base.model)}`
    : hashFiles(['config.json', 'model.safetensors', 'tokenizer.json', 'vocab.txt'].map((f) => path.join(builtinDir(base.model), f)));
  const fingerprint = createHash('sha256')
    .update(JSON.stringify(cfg)) // data paths as the example config has them: a clone elsewhere keeps its runs
    .update(encoder)
    .update(hashFiles(['train', 'dev'].filter((s) => cfg.task[s]).map((s) => path.join(examples, cfg.task[s]))))
    // A row whose computation changed with the same config (a method's placement fixed) names a revision.
    .update(m.revision ? `revision ${m.revision}` : '')
    .digest('hex')
    .slice(0, 16);
  for (const split of ['train', 'dev', 'test']) if (cfg.task[split]) cfg.task[split] = path.join(examples, cfg.task[split]);
  return { cfg, fingerprint };
}

/** Whether a remembered run still stands for what `npm run results` would train now. */
function isCurrent(run) {
  const m = METHODS.find((x) => x.key === run.method);
  if (!m || !ALL_TASKS.includes(run.task) || !run.fingerprint) return false;
  return plan(run.task, m, run.seed, JSON.parse(run.budget)).fingerprint === run.fingerprint;
}

async function trainOne(task, m, seed) {
  const key = `${task}/${m.key}/${seed}`;
  const budget = budgetOf(task);
  const { cfg: planned, fingerprint } = plan(task, m, seed, budget);
  const done = results.runs[key];
  if (done && done.fingerprint === fingerprint) return;
  if (done) console.log(`${key}: stale (encoder, data, config or budget changed since it ran), training again`);
  const cfg = {
    ...planned,
    model: m.randomEncoder ? await randomEncoder(planned.model, seed) : planned.model,
    runsDir: path.join(workDir, 'runs'),
  };
  fs.mkdirSync(path.join(workDir, 'configs'), { recursive: true });
  const file = path.join(workDir, 'configs', `${cfg.name}.adapter.json`);
  fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
  const started = Date.now();
  const lines = await run(['train', file]);
  const result = lines.find((l) => l.type === 'result');
  store.add(key, {
    task,
    method: m.key,
    seed,
    metric: result.best.metric,
    value: result.best.value,
    trainable: result.params.trainable,
    base: result.params.base,
    trainablePercent: result.params.trainablePercent,
    seconds: (Date.now() - started) / 1000,
    runDir: path.relative(root, result.runDir),
    budget: JSON.stringify(budget),
    fingerprint,
  });
  console.log(`${key}: ${result.best.metric} ${result.best.value.toFixed(4)} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
}

function table(runs) {
  // Every task with results, whichever invocation ran it.
  const tasks = ALL_TASKS.filter((t) => runs.some((r) => r.task === t));
  const header = `| method | trained params (% of base) | ${tasks.map((t) => {
    const metric = runs.find((r) => r.task === t)?.metric;
    return `${t} (${metric})`;
  }).join(' | ')} |`;
  const lines = [header, `|---|---|${tasks.map(() => '---|').join('')}`];
  for (const m of METHODS) {
    const rows = runs.filter((r) => r.method === m.key);
    if (!rows.length) continue;
    const share = rows.map((r) => r.trainablePercent);
    const cells = tasks.map((t) => {
      const vs = rows.filter((r) => r.task === t).map((r) => r.value);
      if (!vs.length) return '';
      const s = meanSd(vs);
      // One seed has no spread to show.
      return s.n > 1 ? `${s.mean.toFixed(3)} ± ${s.sd.toFixed(3)} (n=${s.n})` : `${s.mean.toFixed(3)} (n=1)`;
    });
    const lo = Math.min(...share).toFixed(2);
    const hi = Math.max(...share).toFixed(2);
    lines.push(`| ${m.label} | ${lo === hi ? lo : `${lo}–${hi}`}% | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

function writeReports() {
  // Stale runs (an encoder, task or config that has changed since) stay in results.json but not in the tables.
  const all = Object.values(results.runs);
  const runs = all.filter(isCurrent);
  if (runs.length < all.length) console.log(`${all.length - runs.length} of ${all.length} remembered runs are stale and left out of the tables; \`npm run results\` trains them again`);
  // Each task's budget as recorded with its runs (tasks may have been run with different budgets).
  const describe = (key) => Object.entries(JSON.parse(key)).filter(([, v]) => v !== null).map(([k, v]) => `${k} ${v}`).join(', ') || 'the example configs as they are';
  const budgets = new Map();
  for (const r of runs) budgets.set(r.task, describe(r.budget));
  const b = [...budgets].map(([t, d]) => `${t}: ${d}`).join('; ');
  const body =
    `Dev metric of the best epoch, mean ± standard deviation over seeds (n = number of seeds), with the built-in\n` +
    `encoder builtin:tiny-bert unless the row says otherwise. Budgets: ${b}. Regenerate with \`npm run results\`.\n\n` +
    table(runs) + '\n';
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'README.md'), `# Results: Houlsby et al.'s Table 1 at small scale\n\n${body}`);
  if (customOut) return console.log('\n' + body);
  writeReadmeSection('results', body);
  console.log('\n' + body);
}

const queue = [];
// --report: only rewrite the tables from what results.json holds (e.g. while a long run is still going).
// Seed by seed across the tasks, so that a run cut short leaves every task with the same seeds done.
if (!process.argv.includes('--report')) for (const seed of SEEDS) for (const task of TASKS) for (const m of METHODS) if (!methodKeys || methodKeys.includes(m.key)) queue.push([task, m, seed]);
const failed = await runTable(queue, JOBS, trainOne);
if (!process.argv.includes('--report')) store.save(); // the file's runs, including other processes'
writeReports();
process.exit(failed ? 1 : 0);
