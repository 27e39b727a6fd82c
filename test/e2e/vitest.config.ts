import * as path from 'node:path';
import { defineConfig } from 'vitest/config';

/**
 * The end-to-end suite: a real VS Code workbench (code-server) with the packaged extension, driven in Debian's
 * Chromium. `npm run test:e2e` runs scripts/e2e/setup.sh first (code-server, the browser, the .vsix), then this.
 * One file, its steps in order, in one process: they share the workbench and build on each other's runs.
 */
export default defineConfig({
  test: {
    root: path.resolve(__dirname, '../..'),
    include: ['test/e2e/**/*.e2e.ts'],
    pool: 'forks',
    fileParallelism: false,
    // Each step bounds its own waits (and says what it waited for); these only catch a hang beyond them.
    testTimeout: 15 * 60_000,
    hookTimeout: 5 * 60_000,
    // A failed step fails the run; later steps still run (and say which earlier result they miss).
    bail: 0,
    reporters: ['default'],
  },
});
