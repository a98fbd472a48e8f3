/**
 * Fuzzing, stress tier: the hostile-input properties of test/reliability/hostile.test.ts with a
 * random seed and 25 times the runs. A failure prints its seed; replay it in the fast tier with
 * `OVEN_FUZZ_SEED=<seed> npx vitest run test/reliability/hostile.test.ts`.
 */

process.env.OVEN_FUZZ_SEED ??= 'random'
process.env.OVEN_FUZZ_SCALE ??= '25'
await import('../reliability/hostile.test.ts')
