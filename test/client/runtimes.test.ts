/**
 * The client in Bun and Deno (both from the npm registry, running the TypeScript source) and in
 * Node, against Oven's `sendEventStream` on Node: a POST whose token must be refreshed after
 * each 401, two connections cut in the middle of an event, `oven-end` at the end. Every runtime
 * must deliver the 30 events once each, in order, and no half event.
 */

import { execFile } from 'node:child_process'
import { afterEach, describe, expect, test } from 'vitest'
import { closeAllServers, nodeServer } from '../helpers/servers.ts'
import { findBinary } from '../integrations/fixtures/runtime.ts'
import {
  dataOf,
  type ScenarioLog,
  type ScenarioResult,
  scenarioRoutes,
  TOTAL,
} from './fixtures/scenario-server.ts'

afterEach(closeAllServers)

const SCRIPT = 'test/client/fixtures/runtime-client.ts'

function run(binary: string, args: string[]): Promise<{ stdout: string; version: string }> {
  return new Promise((resolve, reject) => {
    execFile(binary, ['--version'], (error, version) => {
      if (error) return reject(error)
      execFile(
        binary,
        args,
        { timeout: 30_000, env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' } },
        (failure, stdout, stderr) => {
          if (failure) reject(new Error(`${binary} failed: ${failure.message}\n${stderr}`))
          else resolve({ stdout, version: version.split('\n')[0] ?? '' })
        },
      )
    })
  })
}

/** What every runtime must report, and what the server must have seen. */
function check(result: ScenarioResult, log: ScenarioLog): void {
  const tokens = Array.from({ length: TOTAL }, (_, k) => ({
    event: 'token',
    data: dataOf(k + 1),
    id: String(k + 1),
  }))
  expect(result.events).toEqual([
    ...tokens,
    { event: 'oven-end', data: '{"reason":"done"}', id: null },
  ])
  expect(result.close).toEqual({ reason: 'end-event', lastEventId: String(TOTAL) })
  // First no token, then each cut spends the token: 401, fresh token, resume.
  expect(result.failures).toEqual(['status 401', 'network', 'status 401', 'network', 'status 401'])
  // Each request resumed from the last event delivered before it, and the server got exactly
  // that. (Not necessarily from each cut: a runtime may drop what it had not yet handed over
  // when the connection broke — Bun does, now and then — and then the position is earlier;
  // the events above show nothing was lost or repeated either way.)
  for (const { lastEventId, delivered } of result.requests) {
    expect(lastEventId).toBe(delivered === 0 ? '' : result.events[delivered - 1]!.id)
  }
  expect(log.requests.map((r) => r.lastEventId ?? '')).toEqual(
    result.requests.map((r) => r.lastEventId),
  )
  const accepted = log.requests.filter((r) => r.accepted)
  expect(accepted.map((r) => r.auth)).toEqual(['Bearer t1', 'Bearer t2', 'Bearer t3'])
  expect(new Set(log.requests.map((r) => `${r.method} ${r.body}`))).toEqual(
    new Set(['POST {"prompt":"count"}']),
  )
}

const runtimes: [string, () => string[]][] = [
  ['node', () => [process.execPath, '--import', 'tsx', SCRIPT]],
  ['bun', () => [findBinary('bun'), 'run', SCRIPT]],
  [
    'deno',
    () => [
      findBinary('deno'),
      'run',
      '--allow-net=127.0.0.1',
      '--allow-read',
      '--allow-env',
      '--no-prompt',
      SCRIPT,
    ],
  ],
]

describe.each(runtimes)('the client in %s', (name, command) => {
  test('POST, token refresh on 401, two cuts mid-event, oven-end: every event once, in order', async () => {
    const log: ScenarioLog = { requests: [] }
    const server = await nodeServer(scenarioRoutes(log))
    const [binary, ...args] = command()
    const { stdout, version } = await run(binary!, [...args, server.url])
    console.info(`[runtime] ${name} ${version}`)
    const line = stdout.trim().split('\n').at(-1) ?? ''
    check(JSON.parse(line) as ScenarioResult, log)
  }, 60_000)
})
