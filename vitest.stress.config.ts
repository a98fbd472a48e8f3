import { defineConfig } from 'vitest/config'

/**
 * The stress tier (`npm run test:stress`): minutes-long reliability runs kept out of `npm test`.
 * One file at a time, so memory figures are not disturbed by another worker.
 */
export default defineConfig({
  test: {
    include: ['test/stress/**/*.stress.ts'],
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 60_000,
    reporters: process.env.CI ? ['default', 'junit'] : ['default'],
    outputFile: { junit: 'artifacts/junit.xml' },
  },
})
