// Bundles the CLI, the VS Code extension and its webviews with esbuild.
//
// TensorFlow.js core and its wasm/cpu backends are bundled in (one copy of tfjs-core, gradients included),
// and the wasm binaries are copied beside the bundle, where the wasm backend looks for them. Native packages
// stay external: tokenizers (a .node binary) and the optional @tensorflow/tfjs-node.
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { writeNotices } from './notices.mjs';

const require = createRequire(import.meta.url);
const external = ['@tensorflow/tfjs-node', 'tokenizers', 'vscode'];

/** The Node bundles (CLI and extension host) share every option but their entry point. */
const nodeBundle = {
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  external,
  // Prefer ES module entries: jsonc-parser's UMD entry requires files esbuild cannot see, and tfjs-core's
  // ES build is the one that carries register_all_gradients.
  mainFields: ['module', 'main'],
  logLevel: 'warning',
  metafile: true,
};
/** Each build's inputs, for the third-party notices written at the end. */
const metafiles = [];

// worker: a thread of data-parallel training and evaluation (src/engine/parallel), beside the CLI.
metafiles.push({ bundle: 'cli and worker', metafile: (await esbuild.build({ ...nodeBundle, entryPoints: { cli: 'src/cli/index.ts', worker: 'src/engine/parallel/worker.ts' } })).metafile });

const wasmDist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
for (const f of fs.readdirSync(path.join(wasmDist, 'dist')).filter((f) => f.endsWith('.wasm'))) {
  fs.copyFileSync(path.join(wasmDist, 'dist', f), path.join('dist', f));
}

// The VS Code extension (extension host, Node): the engine's run store and config loader come along, never
// TensorFlow.js (training happens in the CLI's child processes). `vscode` is provided by the host.
metafiles.push({ bundle: 'extension', metafile: (await esbuild.build({ ...nodeBundle, entryPoints: { extension: 'src/extension/extension.ts' } })).metafile });

// The webviews (browser): one self-contained script per view, Chart.js and chartjs-chart-matrix inside.
const webviews = await esbuild.build({
  entryPoints: {
    lossCurves: 'webview-ui/lossCurves/main.ts',
    ablation: 'webview-ui/ablation/main.ts',
    compare: 'webview-ui/compare/main.ts',
    fusion: 'webview-ui/fusion/main.ts',
    drop: 'webview-ui/drop/main.ts',
    classReport: 'webview-ui/classReport/main.ts',
  },
  outdir: 'dist/webview',
  bundle: true,
  platform: 'browser',
  target: 'chrome114',
  format: 'iife',
  minify: true,
  sourcemap: true,
  logLevel: 'warning',
  metafile: true,
});
metafiles.push({ bundle: 'webviews', metafile: webviews.metafile });
// The wasm binaries copied above are tfjs-backend-wasm's: its input files are in the cli bundle's metafile.
writeNotices(metafiles, process.cwd(), path.join('dist', 'THIRD_PARTY_NOTICES.md'));
