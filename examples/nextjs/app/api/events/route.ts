import { EventSourceResponse } from 'oven-sse'
import { ticks } from '../../../lib/ticks'

// Oven's streams need Node's runtime (the default) and must never be prerendered or cached.
export const runtime = 'nodejs'
export const dynamic = 'force-dynamic'

/** GET /api/events: ticks, resumed after `Last-Event-ID`; stops when the client leaves. */
export function GET(request: Request): Response {
  return new EventSourceResponse(ticks, { request })
}
