/**
 * examples/trpc run as a reader runs them: the server (`tsx examples/trpc/server.ts`), then the
 * client script against it, as separate processes. The recipe itself (cut connections,
 * resets, Redis) is tested in test/integrations/trpc.test.ts.
 */

import { afterEach, expect, test, vi } from 'vitest'
import { waitFor } from '../helpers/wait.ts'
import { EXAMPLE_TEST_TIMEOUT, runExample, stopAllExamples } from './run-example.ts'

afterEach(stopAllExamples)
vi.setConfig({ testTimeout: EXAMPLE_TEST_TIMEOUT })

/** Settles with how the process ended; fails after `ms`. */
const exitOf = (example: Awaited<ReturnType<typeof runExample>>, ms = 30_000) => {
  let exit: unknown
  void example.exited.then((result) => {
    exit = result
  })
  return waitFor('the process to exit', () => exit, { timeout: ms })
}

test('trpc: the client sees its messages come back with ids; a bad token is UNAUTHORIZED; SIGTERM', async () => {
  const server = await runExample('trpc/server.ts')

  const ada = await runExample('trpc/client.ts', {
    args: ['--url', server.url, 'hello', 'world'],
    listen: false,
  })
  expect(await exitOf(ada)).toEqual({ code: 0, signal: null })
  const printed = ada.lines.filter((line) => / ada: /.test(line))
  expect(printed).toEqual([
    expect.stringMatching(/^\w+-2 ada: hello$/),
    expect.stringMatching(/^\w+-3 ada: world$/),
  ])
  expect(ada.lines.at(-1)).toBe('done')
  // The subscription's procedure ended when the client unsubscribed.
  await server.waitForLine(/^ada's subscription to lobby ended$/)

  const stranger = await runExample('trpc/client.ts', {
    args: ['--url', server.url, '--token', 'wrong', 'hi'],
    listen: false,
  })
  expect(await exitOf(stranger)).toEqual({ code: 1, signal: null })
  expect(stranger.lines).toContain('send failed: Sign in to join the chat. (UNAUTHORIZED)')

  server.child.kill('SIGTERM')
  expect(await exitOf(server)).toEqual({ code: 0, signal: null })
  expect(server.lines).toContain('shutdown complete; exiting')
})
