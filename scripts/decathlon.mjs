// `npm run decathlon`: Rebuffi et al. 2017's Visual Decathlon at small scale. One network pretrained on one domain
// (builtin:resnet-fashion, Fashion-MNIST) serves five more example domains (examples/data: mnist, sklearn-digits,
// emoji-google, emoji-twitter, openclipart) through each method of the ResNet family. Every cell is a real
// `adapter-lab train` (dev split: model selection) then `adapter-lab eval --split test` (the figure). Finished runs
// are remembered in docs/results/decathlon.json with a fingerprint of the config, the network's bytes and the
// domain's data, so an interrupted `npm run decathlon` continues where it stopped and a re-pretrained network or a
// rebuilt domain makes its runs stale. Writes docs/results/decathlon.md and the README's decathlon section.
//
//   npm run decathlon                                          # all domains and methods, 3 seeds
//   npm run decathlon -- --domains sklearn-digits --seeds 1    # a subset
//   npm run decathlon -- --methods residual-series,full        # some rows only
//   npm run decathlon -- --jobs 2                              # two runs at a time
//   npm run decathlon -- --report                              # rewrite the tables from the runs done so far
//   npm run decathlon -- --out DIR                             # decathlon.json and the table in DIR (README left alone)
//   npm run decathlon -- --epochs 1 --max-steps 5              # another budget for every run (tests)
//
// The base domain (the sixth column) is Fashion-MNIST through the pretrained network with a classifier of its
// own. The committed network keeps no classifier (its pretraining's is not saved: models/resnet-fashion/README.md),
// so the base domain's classifier is the `head` method on Fashion-MNIST's training images over the frozen network,
// tested on its 10,000 test images. Being a `head` run it changes nothing in the network; each other domain's run
// loads the network's file read-only and saves only its own tensors, so the base domain's figure is the same
// whatever the others train. The report checks that rather than assuming it (see baseUnchanged below).
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { METHODS } from './decathlon-methods.mjs';
import { arg, filesUnder, hashFiles, meanSd, resultsStore, root, runCli, runTable, writeReadmeSection } from './table-runs.mjs';

const examples = path.join(root, 'examples', 'data');
const NETWORK = 'builtin:resnet-fashion';
const networkDir = path.join(root, 'models', 'resnet-fashion');
const networkFiles = ['config.json', 'model.safetensors'].map((f) => path.join(networkDir, f));
const FASHION = process.env.ADAPTER_LAB_FASHION_MNIST ?? '/usr/share/datasets/fashion-mnist';

const idx = (dir, split) => ({ images: path.join(dir, `${split}-images-idx3-ubyte.gz`), labels: path.join(dir, `${split}-labels-idx1-ubyte.gz`) });
const idxDomain = (name) => ({ train: idx(name, 'train'), dev: idx(name, 'dev'), test: idx(name, 'test') });
const folderDomain = (name) => ({ train: `${name}/train`, dev: `${name}/dev`, test: `${name}/test` });
/** The example domains (paths relative to examples/data), in the table's order. */
const DOMAINS = {
  mnist: idxDomain('mnist'),
  'sklearn-digits': idxDomain('sklearn-digits'),
  'emoji-google': folderDomain('emoji-google'),
  'emoji-twitter': folderDomain('emoji-twitter'),
  openclipart: folderDomain('openclipart'),
};
const BASE_DOMAIN = 'fashion-mnist';
const FASHION_LABELS = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

/**
 * The budget: 3 epochs of batch 32 on every domain and method (the dev split picks the best epoch), a dev
 * evaluation after each. One epoch of mnist (2,000 images) takes about 13 s with residual-series on one core; the
 * five domains hold 6,300 training images, so a seed of one method is about 2 minutes and the 90 runs (with the
 * test evaluations and each child's start) about an hour. The base domain's head: one epoch over Fashion-MNIST's
 * training images less the 5% split off as its dev set, one seed (it is one classifier on one frozen network,
 * every row's base-domain figure).
 */
const TABLE_BUDGET = { epochs: 3, maxSteps: null };
const BASE_BUDGET = { epochs: 1, maxSteps: null };

const customOut = arg('out');
const outDir = customOut ? path.resolve(customOut) : path.join(root, 'docs', 'results');
const workDir = customOut ? path.join(outDir, 'work') : path.join(root, '.adapter-lab', 'decathlon');
const store = resultsStore(path.join(outDir, 'decathlon.json'));
const SEEDS = Array.from({ length: Number(arg('seeds', '3')) }, (_, i) => 42 + i);
const JOBS = Number(arg('jobs', '1'));
const budgetGiven = { epochs: arg('epochs') ? Number(arg('epochs')) : null, maxSteps: arg('max-steps') ? Number(arg('max-steps')) : null };
const givenAny = Object.values(budgetGiven).some((v) => v !== null);
const budgetOf = (domain) => (givenAny ? budgetGiven : domain === BASE_DOMAIN ? BASE_BUDGET : TABLE_BUDGET);

function listArg(name, known) {
  const given = arg(name)?.split(',');
  for (const k of given ?? []) {
    if (!known.includes(k)) {
      console.error(`--${name}: unknown ${name.slice(0, -1)} "${k}" (known: ${known.join(', ')})`);
      process.exit(2);
    }
  }
  return given ?? known;
}
const domainsRun = listArg('domains', Object.keys(DOMAINS));
const methodsRun = listArg('methods', METHODS.map((m) => m.key));

/** The bytes a domain's figure depends on: its splits' files (an image folder by every file's name and bytes). */
function dataHash(task) {
  const files = [];
  for (const split of ['train', 'dev', 'test']) {
    const s = task[split];
    if (!s) continue;
    if (typeof s === 'string') files.push(...filesUnder(s).map((f) => path.join(s, f)));
    else files.push(s.images, s.labels);
  }
  // Folder files are hashed under their path inside the folder (hashFiles names each by its base name only).
  const h = createHash('sha256');
  for (const f of files) h.update(path.relative(root, f) + '\0' + hashFiles([f]));
  return h.digest('hex');
}

/** The task block of a domain, with absolute paths. */
function taskOf(domain) {
  if (domain === BASE_DOMAIN) {
    return {
      name: BASE_DOMAIN,
      type: 'image-classification',
      train: { images: path.join(FASHION, 'train-images-idx3-ubyte.gz'), labels: path.join(FASHION, 'train-labels-idx1-ubyte.gz') },
      test: { images: path.join(FASHION, 't10k-images-idx3-ubyte.gz'), labels: path.join(FASHION, 't10k-labels-idx1-ubyte.gz') },
      split: { dev: 0.05, seed: 0 },
      labels: FASHION_LABELS,
    };
  }
  const abs = (s) => (typeof s === 'string' ? path.join(examples, s) : { images: path.join(examples, s.images), labels: path.join(examples, s.labels) });
  const d = DOMAINS[domain];
  return { name: domain, type: 'image-classification', train: abs(d.train), dev: abs(d.dev), test: abs(d.test) };
}

/**
 * One cell's run: its config and the fingerprint of everything its figure depends on (the config as written with
 * paths relative to the project, so that a clone elsewhere keeps its runs; the network's and the data's bytes).
 */
function plan(domain, m, seed, budget) {
  const task = taskOf(domain);
  const cfg = {
    name: `${domain}-${m.key}-s${seed}`,
    task,
    model: NETWORK,
    method: { type: m.key },
    training: {
      epochs: budget.epochs ?? 1,
      batchSize: 32,
      evalBatchSize: 256,
      learningRate: m.lr,
      seed,
      ...(budget.maxSteps ? { maxSteps: budget.maxSteps } : {}),
    },
  };
  const portable = JSON.stringify(cfg, (k, v) => (typeof v === 'string' && path.isAbsolute(v) && v.startsWith(root) ? path.relative(root, v) : v));
  const fingerprint = createHash('sha256').update(portable).update(hashFiles(networkFiles)).update(dataHash(task)).digest('hex').slice(0, 16);
  return { cfg, fingerprint };
}

const methodOf = (key) => (key === 'base-head' ? BASE_METHOD : METHODS.find((m) => m.key === key));
const BASE_METHOD = { key: 'head', lr: 1e-2 };
const keyOf = (domain, method, seed) => `${domain}/${method}/${seed}`;

function isCurrent(run) {
  const m = methodOf(run.method);
  if (!m || (run.domain !== BASE_DOMAIN && !DOMAINS[run.domain])) return false;
  return plan(run.domain, m, run.seed, JSON.parse(run.budget)).fingerprint === run.fingerprint;
}

const readJson = (f) => JSON.parse(fs.readFileSync(f, 'utf8'));

async function trainOne(domain, methodKey, seed) {
  const key = keyOf(domain, methodKey, seed);
  const m = methodOf(methodKey);
  const budget = budgetOf(domain);
  const { cfg: planned, fingerprint } = plan(domain, m, seed, budget);
  const done = store.results.runs[key];
  if (done && done.fingerprint === fingerprint) return false;
  if (done) console.log(`${key}: stale (network, data, config or budget changed since it ran), training again`);
  const cfg = { ...planned, runsDir: path.join(workDir, 'runs') };
  fs.mkdirSync(path.join(workDir, 'configs'), { recursive: true });
  const file = path.join(workDir, 'configs', `${cfg.name}.adapter.json`);
  fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
  const started = Date.now();
  const trained = (await runCli(['train', file])).find((l) => l.type === 'result');
  await runCli(['eval', trained.runDir, '--split', 'test']);
  const test = readJson(path.join(trained.runDir, 'eval-test.json'));
  store.add(key, {
    domain,
    method: methodKey,
    seed,
    dev: trained.best.value,
    test: test.metrics.accuracy,
    testExamples: test.examples,
    trainable: trained.params.trainable,
    base: trained.params.base,
    seconds: (Date.now() - started) / 1000,
    runDir: path.relative(root, trained.runDir),
    budget: JSON.stringify(budget),
    fingerprint,
  });
  console.log(`${key}: test accuracy ${test.metrics.accuracy.toFixed(4)}, dev ${trained.best.value.toFixed(4)} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  return true;
}

/** Names of the tensors in a safetensors file (its JSON header). */
function tensorNames(file) {
  const bytes = fs.readFileSync(file);
  const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8'));
  return Object.keys(header).filter((k) => k !== '__metadata__');
}

/**
 * What shows that the base domain's figure stands for every row: the network's bytes are those every current run
 * was fingerprinted with (so no run changed them), and no frozen-base run saved a tensor of the network's (so
 * loading any domain leaves the base path's weights as they are); full and scratch runs save their own copy.
 */
function baseUnchanged(runs) {
  const networkNames = new Set(tensorNames(path.join(networkDir, 'model.safetensors')));
  const check = { networkSha256: hashFiles([path.join(networkDir, 'model.safetensors')]), frozenRuns: 0, frozenRunsWithBaseTensors: 0, ownCopyRuns: 0, ownCopyRunsComplete: 0 };
  for (const r of runs) {
    if (r.domain === BASE_DOMAIN) continue;
    const file = path.join(root, r.runDir, 'adapter', 'domain.safetensors');
    if (!fs.existsSync(file)) continue;
    const saved = tensorNames(file);
    const ofNetwork = saved.filter((n) => networkNames.has(n)).length;
    if (methodOf(r.method).frozenBase) {
      check.frozenRuns++;
      if (ofNetwork > 0) check.frozenRunsWithBaseTensors++;
    } else {
      check.ownCopyRuns++;
      if (ofNetwork === networkNames.size) check.ownCopyRunsComplete++;
    }
  }
  return check;
}

/** The rows' learning rates in words, with the reason where a row departs from the catalog. */
function learningRates() {
  return METHODS.map((m) => `${m.key} ${m.lr}${m.lrWhy ? ` (${m.lrWhy})` : ''}`).join(', ');
}

const pct = (x) => (100 * x).toFixed(2);
const cell = (s) => (s.n > 1 ? `${pct(s.mean)} ± ${pct(s.sd)}` : `${pct(s.mean)} (n=1)`);

/**
 * The table's figures from the current runs: per method and domain the test accuracy's mean and spread over
 * seeds; the parameters of all domains as a multiple of one network; the decathlon score.
 *
 * Decathlon score (Rebuffi et al. 2017): S = sum_d alpha_d * max(0, Emax_d - E_d)^2 with E_d the method's test
 * error on domain d (mean over seeds), Emax_d = 2 x full fine-tuning's test error there and alpha_d = 1000 / Emax_d^2:
 * full fine-tuning scores 250 per domain, a perfect method 1000, anything at twice full fine-tuning's error 0. The
 * base domain counts as one of the domains (as ImageNet does in the paper), with the same error for every row.
 * A domain where full fine-tuning has no runs yet, or no errors (Emax_d = 0), is left out of every row's score.
 */
function decathlonFigures(runs) {
  const base = runs.filter((r) => r.domain === BASE_DOMAIN);
  const baseAcc = base.length ? meanSd(base.map((r) => r.test)) : null;
  const baseHead = base.length ? base[0].trainable : null;
  const baseParams = runs[0]?.base ?? null;
  const domains = Object.keys(DOMAINS).filter((d) => runs.some((r) => r.domain === d));
  const accOf = (method, domain) => {
    const xs = runs.filter((r) => r.method === method && r.domain === domain).map((r) => r.test);
    return xs.length ? meanSd(xs) : null;
  };
  const emax = {};
  for (const d of domains) {
    const full = accOf('full', d);
    if (full && full.mean < 1) emax[d] = 2 * (1 - full.mean);
  }
  if (baseAcc && baseAcc.mean < 1) emax[BASE_DOMAIN] = 2 * (1 - baseAcc.mean);
  const rows = [];
  for (const m of METHODS) {
    if (!runs.some((r) => r.method === m.key)) continue;
    const cells = Object.fromEntries(domains.map((d) => [d, accOf(m.key, d)]));
    // Parameters: the network and the base domain's head once, then what each domain adds (its trainable
    // parameters as recorded: full and scratch a whole network each).
    const trained = domains.map((d) => runs.find((r) => r.method === m.key && r.domain === d)?.trainable).filter((x) => x !== undefined);
    const params = baseParams && baseHead !== null ? baseParams + baseHead + trained.reduce((a, b) => a + b, 0) : null;
    let score = 0;
    const scored = [];
    for (const [d, e] of Object.entries(emax)) {
      const acc = d === BASE_DOMAIN ? baseAcc : cells[d];
      if (!acc) continue;
      score += (1000 / e ** 2) * Math.max(0, e - (1 - acc.mean)) ** 2;
      scored.push(d);
    }
    rows.push({ method: m.key, label: m.label, cells, params, paramsMultiple: params && baseParams ? params / baseParams : null, domainsWithParams: trained.length, score, scored });
  }
  return { domains, base: baseAcc, baseParams, baseHead, rows };
}

function table(runs) {
  const f = decathlonFigures(runs);
  const cols = [BASE_DOMAIN, ...f.domains];
  const lines = [
    `| method | parameters (× one network) | ${BASE_DOMAIN} (base) | ${f.domains.join(' | ')} | score |`,
    `|---|---|${cols.map(() => '---|').join('')}---|`,
  ];
  for (const r of f.rows) {
    const partial = r.domainsWithParams < f.domains.length ? ` (${r.domainsWithParams} of ${f.domains.length} domains)` : '';
    const params = r.paramsMultiple === null ? '' : `${r.paramsMultiple.toFixed(2)}${partial}`;
    const base = f.base ? pct(f.base.mean) : '';
    lines.push(`| ${r.label} | ${params} | ${base} | ${f.domains.map((d) => (r.cells[d] ? cell(r.cells[d]) : '')).join(' | ')} | ${Math.round(r.score)} |`);
  }
  return { text: lines.join('\n'), figures: f };
}

function writeReports() {
  const all = Object.values(store.results.runs);
  const runs = all.filter(isCurrent);
  if (runs.length < all.length) console.log(`${all.length - runs.length} of ${all.length} remembered runs are stale and left out of the tables; \`npm run decathlon\` trains them again`);
  const { text, figures } = table(runs);
  const check = baseUnchanged(runs);
  const seeds = [...new Set(runs.filter((r) => r.domain !== BASE_DOMAIN).map((r) => r.seed))].sort();
  const budgets = [...new Set(runs.filter((r) => r.domain !== BASE_DOMAIN).map((r) => r.budget))].map((b) => Object.entries(JSON.parse(b)).filter(([, v]) => v !== null).map(([k, v]) => `${k} ${v}`).join(', '));
  const baseRun = runs.find((r) => r.domain === BASE_DOMAIN);
  const baseLine = baseRun
    ? `The base domain (${BASE_DOMAIN}, the network's pretraining domain): a classifier on the frozen network (\`head\`, ` +
      `seed ${baseRun.seed}, ${JSON.parse(baseRun.budget).epochs ?? 1} epoch) tested on its ${baseRun.testExamples.toLocaleString('en-US')} test images, ` +
      `${pct(baseRun.test)}%; the same figure in every row. ` +
      `Unchanged by the other domains: the network's weights (model.safetensors, sha256 ${check.networkSha256.slice(0, 12)}…) are the bytes every run ` +
      `was fingerprinted with; ${check.frozenRuns} runs of the frozen-base methods saved ${check.frozenRunsWithBaseTensors ? `network tensors in ${check.frozenRunsWithBaseTensors} of them (the base domain is NOT shared)` : 'none of the network\'s tensors (only their own modules and head)'}; ` +
      `${check.ownCopyRuns} runs of full fine-tuning and from-scratch saved a whole network of their own (${check.ownCopyRunsComplete} complete).`
    : 'The base domain has no run yet.';
  const body =
    `Test accuracy (%) on each domain, mean ± standard deviation over seeds ${seeds.join(', ')} (the dev split picks the best epoch), ` +
    `network ${NETWORK}; budget: ${budgets.join('; ') || 'none yet'}, batch 32; learning rates (AdamW): ${learningRates()}. ${baseLine} ` +
    `Parameters: those of all ${figures.domains.length + 1} domains together as a multiple of the network's ${figures.baseParams?.toLocaleString('en-US') ?? '?'} ` +
    `(the network and the base domain's head once, plus each domain's trained parameters as its run recorded). ` +
    `Score: Rebuffi et al.'s decathlon score over the ${figures.domains.length + 1} domains (full fine-tuning scores 250 on each). ` +
    `Regenerate with \`npm run decathlon\`.\n\n` +
    text +
    '\n';
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'decathlon.md'), `# Results: the Visual Decathlon at small scale\n\n${body}`);
  if (!customOut) writeReadmeSection('decathlon', body);
  console.log('\n' + body);
}

const queue = [];
// --report: only rewrite the tables from what decathlon.json holds (e.g. while a long run is still going).
// The base domain first; then seed by seed across the domains, so that a run cut short leaves every domain with
// the same seeds done.
if (!process.argv.includes('--report')) {
  queue.push([BASE_DOMAIN, 'base-head', 42]);
  for (const seed of SEEDS) for (const d of domainsRun) for (const m of methodsRun) queue.push([d, m, seed]);
}
const failed = await runTable(queue, JOBS, trainOne);
if (!process.argv.includes('--report')) store.save();
writeReports();
process.exit(failed ? 1 : 0);
