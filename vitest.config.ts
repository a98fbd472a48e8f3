import { defineConfig } from 'vitest/config'

/**
 * The suites that hold thousands of sockets open in one process (shutdown of 1 000 streams,
 * the restart after closing 3 000, the leak cycles, 100 stuck clients with 4 MiB of kernel
 * buffers each), and the Next.js suite, whose `next build` takes both cores. They run in a group of their own, after everything else and one file at a
 * time, so they never share the two cores with the timing-sensitive suites (keep-alive,
 * lifecycle, the Redis kill races), nor each other.
 */
const HEAVY = [
  'test/core/shutdown.test.ts',
  'test/reliability/shutdown.test.ts',
  'test/reliability/restart.test.ts',
  'test/reliability/leaks.test.ts',
  'test/reliability/slow-clients.test.ts',
  // `next build` keeps both cores busy for half a minute or more.
  'test/integrations/nextjs.test.ts',
]

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Tests open real sockets and time real events: two workers on a two-core machine.
    maxWorkers: 2,
    reporters: process.env.CI ? ['default', 'junit'] : ['default'],
    outputFile: { junit: 'artifacts/junit.xml' },
    projects: [
      {
        extends: true,
        test: {
          name: 'fast',
          include: ['test/**/*.test.ts'],
          exclude: HEAVY,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'heavy',
          include: HEAVY,
          fileParallelism: false,
          // Fails at once, with what to do, if the descriptor limit is too low for them.
          globalSetup: ['test/reliability/descriptors.setup.ts'],
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
})
