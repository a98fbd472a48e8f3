/** The Hono app of the `oven-hono` contestants: the three routes, each one `sse(c, ...)`. */

import { Hono } from 'hono'
import { type HonoSseOptions, sse } from '../../src/hono.ts'
import { route } from './contestant.ts'
import { content } from './oven.ts'

/** An app whose routes stream with `options`. */
export function honoApp(options: HonoSseOptions): Hono {
  const app = new Hono()
  const handler = (c: { req: { url: string } }) => {
    const url = c.req.url
    return content<Request>(route(url.slice(url.indexOf('/', url.indexOf('//') + 2))))
  }
  app.get('/stream', (c) => sse(c, handler(c), options))
  app.get('/idle', (c) => sse(c, handler(c), options))
  app.get('/sub', (c) => sse(c, handler(c), options))
  return app
}
