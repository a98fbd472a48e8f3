/**
 * One contract written with each schema library the tests cover: zod 4, valibot and arktype.
 * The three are equivalent (same events, same rules, same default), so every binding test runs
 * unchanged against each. `asyncContracts` adds an async refinement where the library has one.
 */

import { type } from 'arktype'
import * as v from 'valibot'
import { z } from 'zod'
import { type Contract, defineContract, type StandardSchemaV1 } from '../../src/index.ts'

/** The shape all three libraries declare: what the tests type against. */
export type JobEvents = {
  /** `note` has a default: the wire carries the schema's output, with it filled in. */
  progress: StandardSchemaV1<
    { percent: number; note?: string | undefined },
    { percent: number; note: string }
  >
  /** A plain string: sent as JSON, quoted. */
  message: StandardSchemaV1<string>
  done: StandardSchemaV1<{ url: string }>
}
export type JobContract = Contract<JobEvents, true>

const zodEvents = {
  progress: z.object({ percent: z.number().min(0).max(100), note: z.string().default('') }),
  message: z.string(),
  done: z.object({ url: z.string() }),
} satisfies JobEvents

const valibotEvents = {
  progress: v.object({
    percent: v.pipe(v.number(), v.minValue(0), v.maxValue(100)),
    note: v.optional(v.string(), ''),
  }),
  message: v.string(),
  done: v.object({ url: v.string() }),
} satisfies JobEvents

const arktypeEvents = {
  progress: type({ percent: '0 <= number <= 100', note: 'string = ""' }),
  message: type('string'),
  done: type({ url: 'string' }),
} satisfies JobEvents

/** The job contract, per library. */
export const libraries: ReadonlyArray<{ name: string; contract: JobContract }> = [
  { name: 'zod', contract: defineContract<JobEvents>(zodEvents) },
  { name: 'valibot', contract: defineContract<JobEvents>(valibotEvents) },
  { name: 'arktype', contract: defineContract<JobEvents>(arktypeEvents) },
]

/** The job contract whose `progress` schema is async (it answers with a promise). */
export const asyncContracts: ReadonlyArray<{ name: string; contract: JobContract }> = [
  {
    name: 'zod',
    contract: defineContract<JobEvents>({
      ...zodEvents,
      progress: zodEvents.progress.refine(async (value) => value.percent !== 13, 'unlucky'),
    }),
  },
  {
    name: 'valibot',
    contract: defineContract<JobEvents>({
      ...valibotEvents,
      progress: v.pipeAsync(
        valibotEvents.progress,
        v.checkAsync(async (value) => value.percent !== 13, 'unlucky'),
      ),
    }),
  },
]

/** The data each library's schema rejects for `progress`, and the path it names. */
export const badProgress = { percent: 'half' }
