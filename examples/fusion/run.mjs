// AdapterFusion on the example tasks (README.md beside this file). Stage 1 trains a pfeiffer adapter on each of
// spam, sotu-party and afinn-valence and exports it to adapters/<task>; stage 2 trains the fusion of the three on
// liu-opinion (liu-opinion-fusion.adapter.json) and, to compare, liu-opinion's own single-task adapter. Prints
// both dev accuracies and where the fusion looks.
//   node examples/fusion/run.mjs                        # on the built-in model, builtin:tiny-bert
//   node examples/fusion/run.mjs --retrain              # stage 1 again, even where adapters/<task> exists
//   node examples/fusion/run.mjs --model DIR --max-steps N --runs-dir DIR   # any other model, a quick look
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = process.env.ADAPTER_LAB_BIN ?? path.join(here, '..', '..', 'bin', 'adapter-lab.js');
const FUSED = ['spam', 'sotu-party', 'afinn-valence'];
const TARGET = 'liu-opinion';

const argv = process.argv.slice(2);
const option = (name) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
// Passed on to every training; folders resolved here, since the trainings run in this folder.
const passOn = [];
const model = option('--model');
if (model !== undefined) passOn.push('--model', model.startsWith('builtin:') ? model : path.resolve(model));
if (option('--runs-dir') !== undefined) passOn.push('--runs-dir', path.resolve(option('--runs-dir')));
if (option('--max-steps') !== undefined) passOn.push('--max-steps', option('--max-steps'));
const retrain = argv.includes('--retrain');

/** Runs the CLI with --json; resolves to its protocol messages, rejects with its error when it fails. */
function cli(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args, '--json'], { cwd: here, stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (chunk) => (text += chunk));
    child.on('close', (code) => {
      const messages = text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
      if (code === 0) resolve(messages);
      else reject(new Error(`adapter-lab ${args.join(' ')} failed (exit code ${code}): ${messages.find((m) => m.type === 'error')?.message ?? 'see above'}`));
    });
  });
}

async function train(config) {
  process.stdout.write(`training ${config} ... `);
  const messages = await cli(['train', config, ...passOn]);
  const runDir = messages.filter((m) => m.type === 'done').pop().runDir;
  const evaluation = JSON.parse(fs.readFileSync(path.join(runDir, 'eval-dev.json'), 'utf8'));
  const record = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
  const metric = record.config.training.metric;
  console.log(`dev ${metric} ${evaluation.metrics[metric].toFixed(4)}`);
  return { runDir, metric, value: evaluation.metrics[metric], trainablePercent: record.params.trainablePercent };
}

async function main() {
  // Stage 1: one adapter per task, exported where the fusion config names them (adapters/<task>).
  for (const task of FUSED) {
    const dest = path.join(here, 'adapters', task);
    if (fs.existsSync(dest) && !retrain) {
      console.log(`${task}: using the adapter in ${path.relative(process.cwd(), dest)} (--retrain to train it again)`);
      continue;
    }
    const { runDir } = await train(`${task}-pfeiffer.adapter.json`);
    fs.rmSync(dest, { recursive: true, force: true });
    await cli(['export', runDir, dest]);
  }
  // Stage 2: the fusion on the target task, and the target's own adapter to compare with.
  const single = await train(`${TARGET}-pfeiffer.adapter.json`);
  const fusion = await train(`${TARGET}-fusion.adapter.json`);

  const pct = (x) => `${x.toFixed(2)}% of the base parameters trained`;
  console.log(`\n${TARGET}, dev ${single.metric}:`);
  console.log(`  single-task pfeiffer adapter            ${single.value.toFixed(4)}  (${pct(single.trainablePercent)})`);
  console.log(`  AdapterFusion of ${FUSED.join(', ')}  ${fusion.value.toFixed(4)}  (${pct(fusion.trainablePercent)}; the fused adapters stay frozen)`);
  const attention = JSON.parse(fs.readFileSync(path.join(fusion.runDir, 'fusion-attention.json'), 'utf8'));
  console.log(`\nmean fusion attention over the dev tokens (rows: layers, columns: fused adapters):`);
  console.log(`         ${attention.adapters.map((a) => a.padStart(14)).join('')}`);
  attention.layers.forEach((layer, r) => console.log(`layer ${String(layer).padEnd(3)}${attention.overall[r].map((v) => (v === null ? '-' : v.toFixed(3)).padStart(14)).join('')}`));
  console.log(`\nruns: ${single.runDir}\n      ${fusion.runDir}`);
}

main().catch((err) => {
  console.error(`\n${err.message}`);
  process.exit(1);
});
