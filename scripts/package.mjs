// Packages the extension as a .vsix for one platform (default: this machine's), with @vscode/vsce.
//
//   npm run package [-- --target linux-x64] [-- --out file.vsix]
//
// What goes in (see .vscodeignore): the bundles in dist/ (extension, CLI, webviews, the wasm binaries),
// media/, the config schema, the built-in model in models/, README.md, and the one runtime dependency the
// bundles leave out: `tokenizers`, a native module. Its npm package holds binaries for every platform
// (64 MB), so the .vsix is made per platform (vsce --target) and carries only that platform's binary.
// Everything else the extension and the CLI need is bundled by esbuild.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

// vsce target -> the tokenizers binary it needs.
const TOKENIZERS_BINARY = {
  'linux-x64': 'linux-x64-gnu',
  'linux-arm64': 'linux-arm64-gnu',
  'linux-armhf': 'linux-arm-gnueabihf',
  'alpine-x64': 'linux-x64-musl',
  'alpine-arm64': 'linux-arm64-musl',
  'darwin-x64': 'darwin-x64',
  'darwin-arm64': 'darwin-arm64',
  'win32-x64': 'win32-x64-msvc',
  'win32-arm64': 'win32-arm64-msvc',
};

function currentTarget() {
  const arch = { x64: 'x64', arm64: 'arm64', arm: 'armhf' }[process.arch];
  let platform = process.platform;
  if (platform === 'linux' && fs.existsSync('/etc/alpine-release')) platform = 'alpine';
  return `${platform}-${arch}`;
}

function option(name) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const target = option('target') ?? currentTarget();
const binary = TOKENIZERS_BINARY[target];
if (!binary) {
  console.error(`package: no tokenizers binary for target "${target}" (targets: ${Object.keys(TOKENIZERS_BINARY).join(', ')})`);
  process.exit(2);
}
const out = path.resolve(option('out') ?? path.join(root, `${pkg.name}-${pkg.version}-${target}.vsix`));

console.log(`package: building bundles`);
execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'inherit' });

// .vscodeignore, plus this target's tokenizers binary.
const ignoreFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'adapter-lab-vsix-')), '.vscodeignore');
fs.writeFileSync(ignoreFile, fs.readFileSync(path.join(root, '.vscodeignore'), 'utf8') + `\n!node_modules/tokenizers/tokenizers.${binary}.node\n`);

const vsce = path.join(root, 'node_modules', '@vscode', 'vsce', 'vsce');
console.log(`package: vsce package --target ${target}`);
execFileSync(
  process.execPath,
  [vsce, 'package', '--target', target, '--ignoreFile', ignoreFile, '--out', out, '--no-rewrite-relative-links', '--allow-missing-repository', '--skip-license'],
  { cwd: root, stdio: 'inherit' },
);

// Check what went in: everything the extension needs at run time, nothing it does not.
const listing = execFileSync('unzip', ['-Z1', out], { encoding: 'utf8' }).split('\n').filter(Boolean);
const required = [
  'extension/package.json',
  'extension/dist/extension.js',
  'extension/dist/cli.js',
  'extension/dist/THIRD_PARTY_NOTICES.md',
  'extension/LICENSE.txt',
  'extension/dist/tfjs-backend-wasm-simd.wasm',
  'extension/dist/webview/lossCurves.js',
  'extension/dist/webview/ablation.js',
  'extension/dist/webview/compare.js',
  'extension/media/webview.css',
  'extension/media/icon.svg',
  'extension/schema/adapter-config.schema.json',
  'extension/node_modules/tokenizers/index.js',
  'extension/node_modules/tokenizers/package.json',
  `extension/node_modules/tokenizers/tokenizers.${binary}.node`,
];
const missing = required.filter((f) => !listing.includes(f));
const unwanted = listing.filter((f) => /^extension\/(src|test|webview-ui|scripts|examples|bench|corpus)\//.test(f) || f.endsWith('.map') || f.endsWith('.ts') || f.includes('/checkpoint/') || (/^extension\/node_modules\//.test(f) && !/^extension\/node_modules\/tokenizers\//.test(f)) || (/tokenizers\..*\.node$/.test(f) && !f.endsWith(`${binary}.node`)));
if (missing.length || unwanted.length) {
  if (missing.length) console.error(`package: missing from the .vsix:\n  ${missing.join('\n  ')}`);
  if (unwanted.length) console.error(`package: should not be in the .vsix:\n  ${unwanted.slice(0, 30).join('\n  ')}`);
  process.exit(1);
}
if (!listing.some((f) => f.startsWith('extension/models/'))) console.warn('package: note: no built-in model (models/) in the .vsix yet; configs using builtin: models will not run');
console.log(`package: ${path.relative(process.cwd(), out)} (${(fs.statSync(out).size / 1e6).toFixed(1)} MB, ${listing.length} files)`);
