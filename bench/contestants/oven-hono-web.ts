/**
 * Oven's Hono helper on `@hono/node-server` through the web `Response` (`direct: false`): the
 * path every Hono app took before the fast path, and still takes behind a middleware.
 */

import type { Server } from 'node:http'
import { createAdaptorServer } from '@hono/node-server'
import { listening, runContestant } from '../lib/contestant.ts'
import { honoApp } from '../lib/hono-app.ts'
import { OPTIONS, publish, subscriberCount } from '../lib/oven.ts'

const WEB = { ...OPTIONS, direct: false } as const

runContestant({
  listen: () => listening(createAdaptorServer({ fetch: honoApp(WEB).fetch }) as Server),
  publish,
  subscribers: subscriberCount,
})
