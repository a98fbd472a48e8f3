/**
 * The load generator: a process of its own (the server under test has the other core). It opens
 * raw sockets, reads the responses with a lean decoder and checks every event it receives
 * against what the server was asked to send: the count, the order, every payload byte.
 * Commands arrive over IPC from the orchestrator (bench/run.ts).
 */

import { connect, type Socket } from 'node:net'
import { topicName } from '../lib/contestant.ts'
import { answer } from '../lib/ipc.ts'
import { FILLER, INDEX_DIGITS, nowMicros, TIME_DIGITS } from '../lib/payload.ts'
import { summarize } from '../lib/stats.ts'
import { DataLines, ResponseDecoder } from './decoder.ts'

const HOST = '127.0.0.1'
const FILLER_BYTES = Buffer.from(FILLER, 'latin1')

function request(path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\nAccept: text/event-stream\r\n\r\n`
}

function readNumber(buf: Buffer, start: number, width: number): number {
  let value = 0
  for (let k = start; k < start + width; k++) {
    const digit = buf[k]! - 48
    if (digit < 0 || digit > 9) return -1
    value = value * 10 + digit
  }
  return value
}

/** Result of one `/stream` run as the client saw it. */
export interface StreamResult {
  events: number
  bytes: number
  /** From sending the request to the last byte, ms. */
  ms: number
  /** CPU time the client itself spent, ms: near `ms`, the client would be the bottleneck. */
  clientCpuMs: number
  /** The first problem found; `undefined` when every event was exactly as sent. */
  error: string | undefined
}

/** Reads `GET /stream?n&size`, checking every event. */
function stream(args: { port: number; n: number; size: number; timeout: number }) {
  const { port, n, size, timeout } = args
  return new Promise<StreamResult>((resolve) => {
    const started = performance.now()
    const cpu = process.cpuUsage()
    let events = 0
    let error: string | undefined
    const fail = (message: string) => {
      error ??= message
    }
    const lines = new DataLines((buf, start, end) => {
      if (end - start !== size)
        return fail(`event ${events}: ${end - start} bytes, expected ${size}`)
      if (readNumber(buf, start, INDEX_DIGITS) !== events) {
        return fail(`event ${events}: index ${buf.toString('latin1', start, start + INDEX_DIGITS)}`)
      }
      if (buf.compare(FILLER_BYTES, 0, size - INDEX_DIGITS, start + INDEX_DIGITS, end) !== 0) {
        return fail(`event ${events}: payload bytes differ`)
      }
      events++
    })
    const socket = connect({ port, host: HOST })
    const finish = () => {
      clearTimeout(timer)
      socket.destroy()
      if (events !== n) fail(`received ${events} events, expected ${n}`)
      const used = process.cpuUsage(cpu)
      const clientCpuMs = (used.user + used.system) / 1000
      resolve({ events, bytes: lines.bytes, ms: performance.now() - started, clientCpuMs, error })
    }
    const timer = setTimeout(() => {
      fail(`timed out after ${timeout} ms`)
      finish()
    }, timeout)
    const decoder = new ResponseDecoder({
      head: (status) => {
        if (status !== 200) fail(`status ${status}`)
      },
      body: (buf, start, end) => lines.feed(buf, start, end),
      end: finish,
    })
    socket.on('data', (buf: Buffer) => {
      try {
        decoder.feed(buf)
      } catch (e) {
        fail(String(e))
        finish()
      }
    })
    socket.on('end', () => decoder.close())
    socket.on('close', () => {
      if (!decoder.done) {
        fail('connection closed before the end of the response')
        finish()
      }
    })
    socket.on('error', (e) => fail(String(e)))
    socket.write(request(`/stream?n=${n}&size=${size}`))
  })
}

/** Sockets held open by `idle` and `subscribe`. */
const held: Socket[] = []

/**
 * Connections per source address: below the 28 232 ephemeral ports Linux gives one
 * (source, destination) pair by default, so that 50 000 connections to one port can be opened
 * from 127.0.0.1, 127.0.0.2, 127.0.0.3 (all loopback).
 */
const PER_SOURCE = 20_000

/**
 * Opens connections to `path(index)` (at most `concurrency` waiting for their head at once) and
 * calls `setup` for each; resolves when all `count` have their head.
 */
function openMany(
  port: number,
  path: (index: number) => string,
  count: number,
  timeout: number,
  setup: (socket: Socket, index: number) => ResponseDecoder,
): Promise<{ open: number; ms: number }> {
  const concurrency = 200
  const started = performance.now()
  return new Promise((resolve, reject) => {
    let launched = 0
    let ready = 0
    let failed = false
    const timer = setTimeout(() => {
      failed = true
      reject(
        new Error(`bench: only ${ready} of ${count} connections to ${path(0)} in ${timeout} ms`),
      )
    }, timeout)
    const launch = () => {
      const index = launched++
      const source = Math.floor(held.length / PER_SOURCE)
      const socket = connect({
        port,
        host: HOST,
        ...(source > 0 ? { localAddress: `127.0.0.${1 + source}` } : {}),
      })
      held.push(socket)
      const decoder = setup(socket, index)
      let headSeen = false
      socket.on('data', (buf: Buffer) => {
        // One clock reading per read from the socket: every event in it arrived together.
        receivedAt = nowMicros()
        decoder.feed(buf)
        if (!headSeen && decoder.headSeen) {
          headSeen = true
          if (decoder.status !== 200) badStatus++
          ready++
          if (ready === count) {
            clearTimeout(timer)
            resolve({ open: ready, ms: performance.now() - started })
          } else if (launched < count && !failed) launch()
        }
      })
      socket.on('error', (error) => {
        if (failed) return
        failed = true
        clearTimeout(timer)
        reject(new Error(`bench: connection ${index} to ${path(index)} failed: ${error.message}`))
      })
      socket.write(request(path(index)))
    }
    if (count === 0) {
      clearTimeout(timer)
      resolve({ open: 0, ms: 0 })
      return
    }
    for (let i = 0; i < Math.min(concurrency, count); i++) launch()
  })
}

/** A decoder that reads the head and ignores the body. */
const headOnly = () => new ResponseDecoder({ head() {}, body() {}, end() {} })

/** Non-200 answers seen by `openMany` since the last reset. */
let badStatus = 0
/** When the socket read being decoded arrived (µs): set once per read, before decoding. */
let receivedAt = 0

/** Broadcast round state: what every subscriber must receive next. */
const round = {
  events: 0,
  size: 0,
  subscribers: 0,
  complete: 0,
  latencies: new Float64Array(0),
  filled: 0,
  firstPublish: Number.POSITIVE_INFINITY,
  lastReceipt: 0,
  error: undefined as string | undefined,
  done: undefined as (() => void) | undefined,
}

function subscriberDecoder(): ResponseDecoder {
  let received = 0
  const fail = (message: string) => {
    round.error ??= message
  }
  const lines = new DataLines((buf, start, end) => {
    const { size, events } = round
    if (end - start !== size) return fail(`broadcast: ${end - start} bytes, expected ${size}`)
    if (readNumber(buf, start, INDEX_DIGITS) !== received) {
      return fail(
        `broadcast: event ${buf.toString('latin1', start, start + INDEX_DIGITS)}, expected ${received}`,
      )
    }
    const head = INDEX_DIGITS + TIME_DIGITS
    if (buf.compare(FILLER_BYTES, 0, size - head, start + head, end) !== 0) {
      return fail('broadcast: payload bytes differ')
    }
    const sent = readNumber(buf, start + INDEX_DIGITS, TIME_DIGITS)
    if (received === 0 && sent < round.firstPublish) round.firstPublish = sent
    round.latencies[round.filled++] = receivedAt - sent
    if (receivedAt > round.lastReceipt) round.lastReceipt = receivedAt
    received++
    if (received === events) {
      round.complete++
      if (round.complete === round.subscribers) round.done?.()
    }
  })
  return new ResponseDecoder({
    head() {},
    body: (buf, start, end) => lines.feed(buf, start, end),
    end: () => fail('broadcast: a subscriber stream ended'),
  })
}

answer({
  stream,

  /**
   * Opens idle connections to `path` (default `/idle`; `/sub` for subscribers nobody publishes
   * to) until `total` are open (adds to those already held).
   */
  idle: async (args: { port: number; total: number; timeout: number; path?: string }) => {
    const { port, total, timeout, path = '/idle' } = args
    badStatus = 0
    const result = await openMany(port, () => path, total - held.length, timeout, headOnly)
    if (badStatus > 0) throw new Error(`bench: ${badStatus} idle connections got a non-200 status`)
    return { open: held.length, ms: result.ms }
  },

  /**
   * Opens `count` subscribers, spread over `topics` topics (subscriber k on `t(k mod topics)`),
   * and arms a broadcast round of `events` × `size` on every topic.
   */
  subscribe: async (args: {
    port: number
    count: number
    events: number
    size: number
    topics?: number
    timeout: number
  }) => {
    badStatus = 0
    Object.assign(round, {
      events: args.events,
      size: args.size,
      subscribers: args.count,
      complete: 0,
      latencies: new Float64Array(args.events * args.count),
      filled: 0,
      firstPublish: Number.POSITIVE_INFINITY,
      lastReceipt: 0,
      error: undefined,
      done: undefined,
    })
    const topics = args.topics ?? 1
    const path = (k: number) => (topics === 1 ? '/sub' : `/sub?topic=${topicName(k % topics)}`)
    const result = await openMany(args.port, path, args.count, args.timeout, subscriberDecoder)
    if (badStatus > 0) throw new Error(`bench: ${badStatus} subscribers got a non-200 status`)
    return result
  },

  /** Waits until every subscriber received the whole round (or `timeout`). */
  awaitRound: async ({ timeout }: { timeout: number }) => {
    if (round.complete < round.subscribers) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeout)
        round.done = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
    const expected = round.events * round.subscribers
    let error = round.error
    if (round.filled !== expected) error ??= `received ${round.filled} of ${expected} deliveries`
    const latencies = round.latencies.subarray(0, round.filled)
    latencies.sort()
    return {
      deliveries: round.filled,
      expected,
      error,
      p50: summarize.percentile(latencies, 0.5),
      p99: summarize.percentile(latencies, 0.99),
      allDeliveredMs: (round.lastReceipt - round.firstPublish) / 1000,
    }
  },

  /** Closes every held connection. */
  closeAll: async () => {
    const sockets = held.splice(0)
    for (const socket of sockets) socket.destroy()
    // Let the closes reach the server before it is measured or stopped.
    await new Promise((resolve) => setTimeout(resolve, 50))
    return sockets.length
  },
})
