import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Tests spawn servers and fsync real files; the defaults are too tight on a 2-core CI box.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
