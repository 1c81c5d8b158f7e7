import { defineConfig } from 'vitest/config';

// Opt-in soak and load runs (`npm run soak`): long, so never part of `npm test`.
export default defineConfig({
  test: {
    include: ['test/soak/**/*.soak.ts'],
    testTimeout: 30 * 60_000,
    hookTimeout: 60_000,
    maxWorkers: 1,
    reporters: ['default'],
  },
});
