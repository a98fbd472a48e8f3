/**
 * Deadlines after a blocked event loop. A process whose event loop is held (a long GC, a
 * synchronous burst of work on a loaded machine) meets, when it runs again, both an overdue
 * timer and the I/O that arrived meanwhile. Node runs timers first: a deadline judged at once
 * would fail an operation whose answer is already waiting in the socket. These tests hold the
 * loop, on purpose, across the moment an answer arrives and past the deadline, and check the
 * answer wins:
 *
 * - a Redis publish answered during the block resolves (it was published), rather than
 *   rejecting "may not have been published" and reading as refused to a publisher whose
 *   subscribers did receive it (seen in the soak test under load: an event delivered after its
 *   publish was reported refused);
 * - a stream whose client resumed reading during the block is kept, not dropped by
 *   `sendTimeout`.
 */

import { spawn } from 'node:child_process'
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest'
import type { CloseReason } from '../../src/index.ts'
import { Broadcaster, ServerSentEvent } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { RedisBroker } from '../../src/redis.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'
import { closeAllServers, nodeServer } from '../helpers/servers.ts'
import { waitFor } from '../helpers/wait.ts'

let redis: RedisServer
const hubs: Broadcaster[] = []

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis?.close()
})

afterEach(async () => {
  await Promise.all(hubs.splice(0).map((hub) => hub.close()))
  await closeAllServers()
})

/** Holds this process's event loop for `ms`: nothing else runs meanwhile. */
function holdLoop(ms: number): void {
  const until = performance.now() + ms
  while (performance.now() < until) {
    // busy: timers fall due and socket data arrives, unseen
  }
}

test('a publish Redis answered while the loop was held past commandTimeout resolves', async () => {
  const commandTimeout = 500
  const errors: unknown[] = []
  const broker = new RedisBroker({ url: redis.url, prefix: 'held', commandTimeout })
  const hub = new Broadcaster({ broker, onError: (error) => errors.push(error) })
  hubs.push(hub)
  await hub.publish('news', 'connected') // connected, scripts loaded
  // Redis takes the command but cannot answer until thawed: the publish is written and its
  // deadline armed; then Redis answers while this process is held past that deadline.
  redis.freeze()
  let thawed = false
  try {
    const started = performance.now()
    const outcome = hub.publish('news', 'held').then(
      (id) => ({ id }),
      (error: unknown) => ({ error }),
    )
    // node-redis writes on setImmediate: two turns and the command is on the socket.
    await new Promise((resolve) => setImmediate(resolve))
    await new Promise((resolve) => setImmediate(resolve))
    redis.thaw()
    thawed = true
    holdLoop(commandTimeout + 1000 - (performance.now() - started))
    // The answer arrived during the hold, and the deadline is overdue: the answer wins.
    expect(await outcome).toEqual({ id: expect.any(String) })
  } finally {
    if (!thawed) redis.thaw()
  }
  // Published once, as the resolved publish says.
  const read = await broker.read(['news'], 0, 10)
  expect(read.messages).toHaveLength(2)
  expect(errors).toEqual([])
})

/**
 * A client in another process (so it reads while this one is held): it takes the head, stops
 * reading until told "go" on stdin, then reads to the end and prints how many events it got.
 */
const PAUSED_CLIENT = `
const http = require('node:http')
http.get(process.argv[1], (res) => {
  res.pause()
  let text = ''
  res.setEncoding('utf8')
  res.on('data', (chunk) => { text += chunk })
  res.on('end', () => console.log('END ' + (text.match(/^data: /gm) ?? []).length))
  res.on('error', (error) => console.log('ERROR ' + error.message))
  process.stdin.once('data', () => res.resume())
  console.log('HEAD')
}).on('error', (error) => console.log('ERROR ' + error.message))
`

test('a client that drained while the loop was held past sendTimeout is kept', async () => {
  const sendTimeout = 1000
  const events = 400
  const payload = 'x'.repeat(64 * 1024)
  let response: import('node:http').ServerResponse | undefined
  const closes: CloseReason[] = []
  const server = await nodeServer((req, res) => {
    response = res
    void sendEventStream(
      req,
      res,
      async function* () {
        for (let i = 0; i < events; i++) yield new ServerSentEvent({ data: payload })
      },
      { sendTimeout, onClose: (reason) => closes.push(reason) },
    )
  })
  const child = spawn(process.execPath, ['-e', PAUSED_CLIENT, server.url], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  try {
    await waitFor('the client to take the head', () => output.includes('HEAD'), {
      timeout: 30_000,
    })
    // The client does not read: the kernel buffers fill and the stream waits for a drain,
    // with its send timeout armed.
    await waitFor('the stream to wait for a drain', () => response?.writableNeedDrain === true)
    const blocked = performance.now()
    // The client reads everything while this process is held past the send timeout.
    child.stdin.write('go\n')
    holdLoop(sendTimeout + 1000 - (performance.now() - blocked))
    await waitFor('the client to finish', () => /END|ERROR/.test(output), { timeout: 30_000 })
    expect(output).toContain(`END ${events}`)
    await waitFor('onClose', () => closes.length > 0)
    expect(closes).toEqual(['done'])
  } finally {
    child.kill('SIGKILL')
  }
})
