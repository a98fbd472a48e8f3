/**
 * Deno (from the npm registry) serving EventSourceResponse with Deno.serve; the test talks to
 * it from Node over 127.0.0.1 with the same scenarios as every Node framework.
 */

import { afterAll, beforeAll, describe, expect } from 'vitest'
import { findBinary, type RuntimeServer, startRuntime } from './fixtures/runtime.ts'
import { sseScenarios } from './fixtures/suite.ts'

let deno: RuntimeServer | undefined

beforeAll(async () => {
  deno = await startRuntime(
    findBinary('deno'),
    // Only the network, only loopback: the fixture needs nothing else.
    ['run', '--allow-net=127.0.0.1', '--no-prompt', 'test/integrations/fixtures/deno-server.ts'],
    ({ status, headers, body }) => {
      // Deno.serve's default onError: 500, "Internal Server Error" (no content type).
      expect(status).toBe(500)
      expect(headers.get('content-type')).toBeNull()
      expect(body).toBe('Internal Server Error')
    },
  )
  console.info(`[runtime] ${deno.version}`)
}, 60_000)

afterAll(() => deno?.stop())

describe('Deno.serve with EventSourceResponse', () => {
  sseScenarios('deno', () => deno!.target)
})
