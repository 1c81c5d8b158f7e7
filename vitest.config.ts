import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests each start their own software TPM and daemon; two cores
    // are shared between them, so keep parallelism modest.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
