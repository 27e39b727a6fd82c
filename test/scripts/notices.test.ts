import * as fs from 'node:fs';
import * as path from 'node:path';
import * as esbuild from 'esbuild';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/fixtures';
// @ts-expect-error: a plain ES module of the build scripts, without types
import { packageDirOf, writeNotices } from '../../scripts/notices.mjs';

const root = path.resolve(__dirname, '../..');

describe('third-party notices of the bundles', () => {
  it('finds the package folder of a bundled file, scoped, nested or not', () => {
    expect(packageDirOf('node_modules/jsonc-parser/lib/esm/main.js')).toBe('node_modules/jsonc-parser');
    expect(packageDirOf('node_modules/@tensorflow/tfjs-core/dist/index.js')).toBe('node_modules/@tensorflow/tfjs-core');
    expect(packageDirOf('node_modules/a/node_modules/@s/b/x.js')).toBe('node_modules/a/node_modules/@s/b');
    expect(packageDirOf('src/engine/errors.ts')).toBeNull();
  });

  it('names every package a real bundle carries, with the licence text it ships', async () => {
    const dir = tempDir();
    const entry = path.join(dir, 'entry.ts');
    fs.writeFileSync(entry, `import { parse } from 'jsonc-parser';\nimport jpeg from 'jpeg-js';\nimport { locate } from '${path.join(root, 'src/engine/errors')}';\nconsole.log(parse('{}'), jpeg, locate);\n`);
    const built = await esbuild.build({ entryPoints: [entry], bundle: true, platform: 'node', write: false, metafile: true, absWorkingDir: root, nodePaths: [path.join(root, 'node_modules')], mainFields: ['module', 'main'], logLevel: 'silent' });
    const out = path.join(dir, 'NOTICES.md');
    const names: string[] = writeNotices([{ bundle: 'test', metafile: built.metafile }], root, out);
    expect(names).toEqual(['jpeg-js', 'jsonc-parser']);
    const text = fs.readFileSync(out, 'utf8');
    expect(text).toContain('## jsonc-parser 3.');
    expect(text).toContain(fs.readFileSync(path.join(root, 'node_modules/jsonc-parser/LICENSE.md'), 'utf8').trim());
    expect(text).toContain(fs.readFileSync(path.join(root, 'node_modules/jpeg-js/LICENSE'), 'utf8').trim());
  });

  it('the build wrote the notices of every package in the bundles, tfjs and Chart.js among them', () => {
    const text = fs.readFileSync(path.join(root, 'dist', 'THIRD_PARTY_NOTICES.md'), 'utf8');
    for (const name of ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm', 'chart.js', 'jpeg-js', 'ajv', 'jsonc-parser', 'csv-parse']) expect(text).toMatch(new RegExp(`^## ${name.replace(/[./]/g, '\\$&')} \\d`, 'm'));
  });
});
