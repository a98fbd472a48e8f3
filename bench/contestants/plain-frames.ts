/**
 * The limit for large events: the plain `node:http` loop of `plain.ts`, but writing frames
 * encoded before the stream starts (`data: …\n\n` as bytes, slices of one buffer), so the loop
 * does no string work at all. It serves `/stream` only (the `stream` scenario, issue #14's
 * "4 KiB against pre-encoded frames"). A stream longer than the frames kept encodes four times
 * its length: the warm-up of bench/run.ts asks for a quarter of the measured count, so the
 * measured runs reuse what the warm-up encoded and their CPU time holds no encoding.
 */

import { createServer, type ServerResponse } from 'node:http'
import { listening, route, runContestant, SSE_HEAD } from '../lib/contestant.ts'
import { payloads } from '../lib/payload.ts'

/** Encoded frames by payload size: one buffer, and where each frame ends in it. */
const cache = new Map<number, { bytes: Buffer; ends: Uint32Array }>()

function frames(n: number, size: number): { bytes: Buffer; ends: Uint32Array } {
  const cached = cache.get(size)
  if (cached && cached.ends.length >= n) return cached
  return encode(4 * n, size)
}

/** Encodes the frames of events 0 … n − 1 of `size` bytes, and keeps them. */
function encode(n: number, size: number): { bytes: Buffer; ends: Uint32Array } {
  const payload = payloads(size)
  const frame = size + 'data: \n\n'.length
  const bytes = Buffer.allocUnsafe(n * frame)
  const ends = new Uint32Array(n)
  for (let i = 0, at = 0; i < n; i++) {
    at += bytes.write(`data: ${payload(i)}\n\n`, at, 'latin1')
    ends[i] = at
  }
  const encoded = { bytes, ends }
  cache.set(size, encoded)
  return encoded
}

function stream(res: ServerResponse, n: number, size: number): void {
  const { bytes, ends } = frames(n, size)
  let i = 0
  const write = (): void => {
    while (i < n) {
      if (res.destroyed) return
      const ok = res.write(bytes.subarray(i === 0 ? 0 : ends[i - 1], ends[i]))
      i++
      if (!ok) {
        res.once('drain', write)
        return
      }
    }
    res.end()
  }
  res.writeHead(200, SSE_HEAD)
  write()
}

runContestant({
  listen: () =>
    listening(
      createServer((req, res) => {
        const r = route(req.url)
        if (r.kind === 'stream') return stream(res, r.n, r.size)
        res.writeHead(404).end()
      }),
    ),
  publish: () => {
    throw new Error('bench: plain-frames serves /stream only')
  },
  subscribers: () => 0,
})
