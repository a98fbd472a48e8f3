// @ts-check
/**
 * Mutation testing (`npm run test:mutation`), kept out of `npm test`: it measures the suite, not
 * the code. One folder at a time, e.g.
 *   npm run test:mutation -- --mutate 'src/encoder/**\/*.ts'
 * On a shared two-core machine a survivor costs a run of every test that covers it (about a
 * minute with the whole set), so #21's measurement limited each folder to the tests about it,
 * with --testFiles, and kept results with --incremental so a re-run only retries what changed:
 *   -- --mutate 'src/encoder/**\/*.ts' --testFiles test/core/encode.test.ts,... --concurrency 2 \
 *      --incremental --incrementalFile reports/mutation/encoder.incremental.json
 * Reports go to reports/mutation/ (gitignored). The tests it runs, and those it leaves out and
 * why, are in vitest.mutation.config.ts.
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.ts' },
  plugins: ['@stryker-mutator/vitest-runner'],
  mutate: ['src/encoder/**/*.ts', 'src/stream/**/*.ts', 'src/broadcast/**/*.ts'],
  coverageAnalysis: 'perTest',
  // Static mutants (module-level constants) would rerun the whole set for each: too slow here.
  ignoreStatic: true,
  // Two cores shared with other work: one test runner.
  concurrency: 1,
  // Tests talk over real sockets: generous slack before a mutant counts as a hang.
  timeoutMS: 10_000,
  timeoutFactor: 2,
  dryRunTimeoutMinutes: 15,
  reporters: ['clear-text', 'progress-append-only', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  ignorePatterns: ['bench/results', 'artifacts', 'coverage', 'dist', 'reports'],
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
}
