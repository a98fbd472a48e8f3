import { defineConfig } from 'vitest/config'

/**
 * The stress tier (`npm run test:stress`): minutes-long reliability runs kept out of `npm test`.
 * One file at a time, so memory figures are not disturbed by another worker.
 */
export default defineConfig({
  test: {
    name: 'stress',
    include: ['test/stress/**/*.stress.ts'],
    // 5 000 open streams in one process: fails at once, saying what to do, if the descriptor
    // limit is too low for them.
    globalSetup: ['test/reliability/descriptors.setup.ts'],
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 60_000,
    reporters: process.env.CI ? ['default', 'junit'] : ['default'],
    outputFile: { junit: 'artifacts/junit.xml' },
  },
})
