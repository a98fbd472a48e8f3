import { defineConfig } from 'vitest/config'

/**
 * The test set for mutation runs (`npm run test:mutation`, see stryker.config.mjs): the suites
 * that exercise src/encoder, src/stream and src/broadcast in this process, where Stryker can
 * switch mutants on. Left out, because they cannot kill mutants efficiently:
 * - test/stress, test/reliability/leaks and test/reliability/shutdown: 1 000-socket and
 *   1 000-cycle runs that take seconds to minutes each and only re-check what faster tests check;
 * - test/browser: headless Chromium, slow to start;
 * - test/integrations/bun*, deno, test/examples, test/bench, test/docs: they run the code in child
 *   processes (bun, deno, tsx), where Stryker's active mutant is not visible;
 * - test/types: type tests, no runtime.
 */
export default defineConfig({
  test: {
    include: [
      'test/core/**/*.test.ts',
      'test/broadcast/**/*.test.ts',
      'test/integrations/**/*.test.ts',
      'test/reliability/**/*.test.ts',
    ],
    exclude: [
      'test/integrations/bun*.test.ts',
      'test/integrations/deno.test.ts',
      'test/reliability/leaks.test.ts',
      'test/reliability/shutdown.test.ts',
    ],
    setupFiles: ['test/helpers/main-thread-signals.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
})
