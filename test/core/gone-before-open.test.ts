/**
 * A client that leaves before the app hands its response to Oven (an auth check awaited first,
 * a slow middleware) leaves nothing behind: its stream never joins the shutdown registry, its
 * content is never run, and `closeAll` settles. It used to stay registered for ever, so a later
 * `closeAll()` never settled and the server could not shut down.
 */

import { once } from 'node:events'
import { connect } from 'node:net'
import { afterEach, expect, test } from 'vitest'
import { type CloseReason, openEventSourceResponse, StreamRegistry } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { closeAllServers, nodeServer } from '../helpers/servers.ts'
import { waitFor } from '../helpers/wait.ts'

afterEach(closeAllServers)

/** Settles as `closeAll` does, or fails after 5 s saying what it was waiting for. */
async function closeAllSettles(registry: StreamRegistry): Promise<number> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`closeAll did not settle in 5 s (${registry.size} streams open)`)),
      5000,
    )
  })
  try {
    return await Promise.race([registry.closeAll(), hang])
  } finally {
    clearTimeout(timer)
  }
}

test('node: a client gone before sendEventStream leaves no stream behind', async () => {
  const registry = new StreamRegistry()
  const closes: CloseReason[] = []
  let ran = false
  let result: Promise<CloseReason> | undefined
  let requestSeen = false
  const server = await nodeServer((req, res) => {
    requestSeen = true
    // The app awaits something; the client leaves meanwhile.
    res.once('close', () => {
      result = sendEventStream(
        req,
        res,
        () => {
          ran = true
          return ['never sent']
        },
        { registry, onClose: (reason) => closes.push(reason) },
      )
    })
  })
  const socket = connect(Number(new URL(server.url).port), '127.0.0.1')
  await once(socket, 'connect')
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  await waitFor('the server to have the request', () => requestSeen)
  socket.destroy()
  await waitFor('sendEventStream to be called', () => result)
  expect(await result).toBe('disconnect')
  expect(closes).toEqual(['disconnect'])
  expect(ran).toBe(false)
  expect(registry.size).toBe(0)
  expect(await closeAllSettles(registry)).toBe(0)
})

test('web: a request aborted before openEventSourceResponse leaves no stream behind', async () => {
  const registry = new StreamRegistry()
  const closes: CloseReason[] = []
  let ran = false
  const controller = new AbortController()
  controller.abort()
  const request = new Request('http://127.0.0.1/events', { signal: controller.signal })
  const response = await openEventSourceResponse(
    () => {
      ran = true
      return ['never sent']
    },
    { request, registry, onClose: (reason) => closes.push(reason) },
  )
  expect(await response.closed).toBe('disconnect')
  expect(closes).toEqual(['disconnect'])
  expect(ran).toBe(false)
  expect(registry.size).toBe(0)
  expect(await closeAllSettles(registry)).toBe(0)
})
