/**
 * Bun and Deno (both installed from npm) carry Oven's channels: `process.getBuiltinModule`
 * gives their `node:diagnostics_channel`, and a stream's messages reach a subscriber there.
 */

import { execFileSync } from 'node:child_process'
import { expect, test } from 'vitest'
import { findBinary } from '../integrations/fixtures/runtime.ts'

const FIXTURE = 'test/observe/fixtures/runtime-channels.ts'

const runtimes: Array<['bun' | 'deno', string[]]> = [
  ['bun', ['run', FIXTURE]],
  ['deno', ['run', '--no-prompt', FIXTURE]],
]

test.each(runtimes)('%s: a stream publishes open, writes and close', (name, args) => {
  const out = execFileSync(findBinary(name), args, { encoding: 'utf8', timeout: 30_000 })
  const report = JSON.parse(out.trim().split('\n').at(-1)!)
  expect(report).toEqual({
    diagnosticsAvailable: true,
    received: report.bytes,
    open: 1,
    bytes: ': ok\r\n\r\ndata: a\r\n\r\ndata: é\r\n\r\n'.length + 1,
    close: [{ reason: 'done', opened: true, timed: true }],
  })
})
