import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // TensorFlow.js keeps global backend state; separate processes keep test files independent.
    pool: 'forks',
    globalSetup: ['test/globalSetup.ts'],
    setupFiles: ['test/setup/tempRoot.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
