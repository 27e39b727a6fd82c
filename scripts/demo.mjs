// `npm run demo`: the quick start's main job. Trains a Houlsby adapter (bottleneck 64) on an example task with
// the built-in encoder, then the same task's head-only baseline, and prints what a user wants to know: the dev
// metric of each, the trainable share of parameters, and where the runs are.
//   npm run demo                       # liu-opinion (the quickest example task)
//   npm run demo -- --task sotu-party  # any task of examples/
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'adapter-lab.js');
const examples = path.join(root, 'examples');
const taskArg = process.argv.indexOf('--task');
const task = taskArg > 0 ? process.argv[taskArg + 1] : 'liu-opinion';
const houlsbyConfig = path.join(examples, `${task}-houlsby.adapter.json`);
if (!fs.existsSync(houlsbyConfig)) {
  console.error(`no example config ${houlsbyConfig}; tasks: ${fs.readdirSync(examples).filter((f) => f.endsWith('-houlsby.adapter.json')).map((f) => f.replace('-houlsby.adapter.json', '')).join(', ')}`);
  process.exit(2);
}

/** The head-only baseline: the same task and training settings, only the head trained. */
function headConfig() {
  const cfg = JSON.parse(fs.readFileSync(houlsbyConfig, 'utf8'));
  const dir = path.join(examples, '.adapter-lab', 'demo');
  fs.mkdirSync(dir, { recursive: true });
  for (const split of ['train', 'dev', 'test']) if (cfg.task[split]) cfg.task[split] = path.join(examples, cfg.task[split]);
  cfg.name = `${task}-head`;
  cfg.method = { type: 'head' };
  cfg.training.learningRate = 1e-3;
  cfg.runsDir = path.join(examples, '.adapter-lab', 'runs');
  delete cfg.$schema;
  const file = path.join(dir, `${task}-head.adapter.json`);
  fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
  return file;
}

/** Runs `adapter-lab train --json`, showing progress, and returns the final record. */
function train(config, label) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, 'train', config, '--json'], { cwd: examples, stdio: ['ignore', 'pipe', 'inherit'] });
    let buffer = '';
    let runDir = null;
    let lastError = null;
    child.stdout.on('data', (chunk) => {
      buffer += chunk;
      const lines = buffer.split('\n');
      buffer = lines.pop();
      for (const line of lines) {
        let msg;
        try {
          msg = JSON.parse(line);
        } catch {
          continue;
        }
        if (msg.runDir) runDir = msg.runDir;
        if (msg.type === 'progress' && process.stdout.isTTY) {
          process.stdout.write(`\r\x1b[K${label}: epoch ${msg.epoch + 1}/${msg.epochs}, step ${msg.step}/${msg.totalSteps}, loss ${msg.loss.toFixed(4)}, ${msg.imagesPerSecond !== undefined ? `${Math.round(msg.imagesPerSecond)} images/s` : `${Math.round(msg.tokensPerSecond)} tokens/s`}`);
        } else if (msg.type === 'eval') {
          if (process.stdout.isTTY) process.stdout.write('\n');
          const m = Object.entries(msg.metrics).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ');
          console.log(`${label}: epoch ${msg.epoch + 1} dev ${m}${msg.isBest ? ' (best)' : ''}`);
        } else if (msg.type === 'log') {
          console.log(`${label}: ${msg.message}`);
        } else if (msg.type === 'error') {
          lastError = msg.message;
        }
      }
    });
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`${label} failed (exit ${code}): ${lastError ?? 'see above'}`));
      resolve(JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')));
    });
  });
}

const started = Date.now();
try {
  const adapter = await train(houlsbyConfig, 'houlsby-64');
  const head = await train(headConfig(), 'head-only');
  const row = (name, r) =>
    `${name.padEnd(24)} ${`${r.best.metric} ${r.best.value.toFixed(4)}`.padEnd(20)} ${r.params.trainable.toLocaleString('en-US').padStart(10)} ${`${r.params.trainablePercent.toFixed(2)}%`.padStart(9)}   ${r.dir ?? ''}`;
  console.log(`\n${task}: best dev metric, trained parameters, share of the ${adapter.params.base.toLocaleString('en-US')} base parameters (backend ${adapter.backend})`);
  console.log(`${'method'.padEnd(24)} ${'dev'.padEnd(20)} ${'trainable'.padStart(10)} ${'share'.padStart(9)}`);
  console.log(row('houlsby (bottleneck 64)', { ...adapter, dir: '' }));
  console.log(row('head only (baseline)', { ...head, dir: '' }));
  console.log(`\nruns: ${path.join(examples, '.adapter-lab', 'runs')}`);
  console.log(`  houlsby:   ${path.join(examples, '.adapter-lab', 'runs', adapter.id)}`);
  console.log(`  head only: ${path.join(examples, '.adapter-lab', 'runs', head.id)}`);
  console.log(`done in ${Math.round((Date.now() - started) / 1000)} s`);
} catch (err) {
  console.error(err.message);
  process.exit(1);
}
