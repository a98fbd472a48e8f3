/**
 * Bun.serve closes a connection that has not been written to for `idleTimeout` seconds
 * (default 10), checking on a 4-second tick: a silent connection is cut 8–12 s after its last
 * write. A subscriber to a quiet topic must neither wait for its head nor be cut: with Bun's
 * defaults and Oven's, the head and the opening frame arrive at once and pings (every 4 s on
 * Bun) keep the stream open, while the same stream without pings is cut.
 *
 * The proof needs Bun's real default: a shorter `idleTimeout` does not stand in for it (at 4 s
 * or less Bun cuts a stream even while it writes every second; at 5–8 s it cuts 4–8 s after
 * the last write, which no 4 s ping can promise to beat). So the test waits for the control
 * stream's cut — an event, ~12 s in — and then checks the stream with the defaults.
 */

import { connect } from 'node:net'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { waitFor, within } from '../helpers/wait.ts'
import { expect500, findBinary, type RuntimeServer, startRuntime } from './fixtures/runtime.ts'

let bun: RuntimeServer | undefined

beforeAll(async () => {
  bun = await startRuntime(
    findBinary('bun'),
    ['run', 'test/integrations/fixtures/bun-idle-server.ts'],
    expect500,
  )
}, 60_000)

afterAll(() => bun?.stop())

/** A raw HTTP/1.1 stream: each chunk received with its time, and when the server closed it. */
function watch(path: string) {
  const { port } = new URL(bun!.target.base)
  const started = performance.now()
  const chunks: Array<{ at: number; text: string }> = []
  let closedAt: number | undefined
  const socket = connect(Number(port), '127.0.0.1')
  socket.on('data', (chunk) =>
    chunks.push({ at: performance.now() - started, text: String(chunk) }),
  )
  socket.on('error', () => {})
  const closed = new Promise<number>((resolve) => {
    socket.once('close', () => {
      closedAt = performance.now() - started
      resolve(closedAt)
    })
  })
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`)
  return {
    chunks,
    closed,
    isOpen: () => closedAt === undefined,
    text: () => chunks.map((chunk) => chunk.text).join(''),
    destroy: () => socket.destroy(),
  }
}

test("a quiet stream opens at once and outlives Bun's idle timeout with the defaults", async () => {
  const kept = watch('/quiet')
  const control = watch('/quiet?ping=false')
  try {
    // The head and the opening frame, at once, for both.
    for (const stream of [kept, control]) {
      // Measured 5–30 ms; the deadline only tells "at once" from "at the first ping" (4 s).
      await waitFor('the head and opening frame', () => stream.text(), {
        until: (text) => text.includes(': ok\r\n\r\n'),
        timeout: 2000,
      })
      expect(stream.text()).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
    }
    console.info(`[figures] bun: quiet stream opened in ${kept.chunks[0]!.at.toFixed(1)} ms`)
    // Bun cuts the silent one; 20 s bounds the wait (8–12 s expected).
    const cutAt = await within(control.closed, 20_000, "Bun's idle timeout cutting a silent stream")
    expect(cutAt).toBeGreaterThan(8000)
    // The one with Oven's defaults never stayed silent long enough to be cut…
    const writes = kept.chunks.map((chunk) => chunk.at)
    const gaps = writes.slice(1).map((at, i) => at - writes[i]!)
    const longest = Math.max(...gaps, cutAt - writes[writes.length - 1]!)
    const pings = () => kept.text().match(/: ping - /g)?.length ?? 0
    const pingsAtCut = pings()
    console.info(
      `[figures] bun: silent stream cut at ${(cutAt / 1000).toFixed(1)} s; the default one ` +
        `got ${pingsAtCut} pings meanwhile, longest silence ${(longest / 1000).toFixed(1)} s`,
    )
    expect(pingsAtCut).toBeGreaterThanOrEqual(2)
    expect(longest).toBeLessThan(8000)
    // …and is still open after the cut: it gets its next ping (4 s apart, 8 s allowed).
    await waitFor('a ping after the silent stream was cut', pings, {
      until: (n) => n > pingsAtCut,
      timeout: 8000,
    })
    expect(kept.isOpen()).toBe(true)
  } finally {
    kept.destroy()
    control.destroy()
  }
}, 40_000)
