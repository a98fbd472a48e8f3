/**
 * Bun (from the npm registry) serving EventSourceResponse with Bun.serve; the test talks to it
 * from Node over 127.0.0.1 with the same scenarios as every Node framework.
 */

import { afterAll, beforeAll, describe, expect } from 'vitest'
import { findBinary, type RuntimeServer, startRuntime } from './fixtures/runtime.ts'
import { FAIL_MESSAGE } from './fixtures/scenario.ts'
import { sseScenarios } from './fixtures/suite.ts'

let bun: RuntimeServer | undefined

beforeAll(async () => {
  bun = await startRuntime(
    findBinary('bun'),
    ['run', 'test/integrations/fixtures/bun-server.ts'],
    ({ status, headers, body }) => {
      // Bun.serve without an `error` handler: 500 and Bun's error page, naming the error
      // (outside production; with NODE_ENV=production it is a bare 500).
      expect(status).toBe(500)
      expect(headers.get('content-type')).toMatch(/^text\/html/)
      expect(body).toContain(FAIL_MESSAGE)
    },
  )
  console.info(`[runtime] bun ${bun.version}`)
}, 60_000)

afterAll(() => bun?.stop())

describe('Bun.serve with EventSourceResponse', () => {
  sseScenarios('bun', () => bun!.target)
})
