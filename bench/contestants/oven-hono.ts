/**
 * Oven's Hono helper on `@hono/node-server`: `sse(c, content)` from Hono routes, no middleware.
 * With the Node bindings in `c.env` the helper writes to the Node response itself (the fast
 * path, docs/hono.md); `oven-hono-web` is the same app forced through the web `Response`.
 */

import type { Server } from 'node:http'
import { createAdaptorServer } from '@hono/node-server'
import { listening, runContestant } from '../lib/contestant.ts'
import { honoApp } from '../lib/hono-app.ts'
import { OPTIONS, publish, subscriberCount } from '../lib/oven.ts'

runContestant({
  listen: () => listening(createAdaptorServer({ fetch: honoApp(OPTIONS).fetch }) as Server),
  publish,
  subscribers: subscriberCount,
})
