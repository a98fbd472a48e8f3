import { connect, createServer, type Http2Server } from 'node:http2'
import type { AddressInfo } from 'node:net'
import { afterEach, expect, test } from 'vitest'
import { sendEventStream } from '../../src/node.ts'
import { OPENING_FRAME } from '../helpers/streams.ts'

let server: Http2Server | undefined
afterEach(
  () => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())),
)

test('over HTTP/2 (h2c): no hop-by-hop headers, events arrive', async () => {
  const warnings: string[] = []
  const onWarning = (warning: Error) => warnings.push(warning.message)
  process.on('warning', onWarning)
  server = createServer((req, res) => void sendEventStream(req, res, ['a', 'b']))
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
  const session = connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  try {
    const stream = session.request({ ':path': '/' })
    const headers = await new Promise<Record<string, unknown>>((resolve) =>
      stream.on('response', resolve),
    )
    let body = ''
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => {
      body += chunk
    })
    await new Promise((resolve) => stream.on('end', resolve))
    expect(headers[':status']).toBe(200)
    expect(headers['content-type']).toBe('text/event-stream; charset=utf-8')
    expect(headers.connection).toBeUndefined()
    expect(headers['transfer-encoding']).toBeUndefined()
    expect(headers['keep-alive']).toBeUndefined()
    expect(body).toBe(`${OPENING_FRAME}data: a\r\n\r\ndata: b\r\n\r\n`)
    expect(warnings.filter((w) => /connection|hop/i.test(w))).toEqual([])
  } finally {
    session.close()
    process.off('warning', onWarning)
  }
})
