/**
 * A tRPC v11 router whose subscription is fed by an Oven `Broadcaster` (docs/trpc.md): a chat
 * with rooms, over tRPC's own Server-Sent Events (`httpSubscriptionLink` on the client).
 *
 * - `onMessage({ room, lastEventId? })` yields each event of the room as
 *   `tracked(<Oven's event id>, RoomEvent)`. When the connection drops, tRPC's client reconnects
 *   and sends the last id back (as the `Last-Event-ID` header, or as `input.lastEventId` when it
 *   opens a new `EventSource`); the Broadcaster replays exactly what was missed from its
 *   history, then live events. With a `RedisBroker`, any instance can resume any client.
 * - When the history cannot cover the gap (the id is too old, from a lost history, or not one of
 *   Oven's), the subscription yields `{ type: 'reset', reason, topics }` instead of a replay,
 *   tracked by the current position: the client reloads the room, then carries on with live
 *   events. A reset is data, not an error: an error would end the subscription.
 * - When the Broadcaster ends the subscription while the client is still there (a shutdown,
 *   or a slow client dropped by `overflow: 'disconnect'`), the procedure throws tRPC's
 *   `SERVICE_UNAVAILABLE`, which the client retries: it reconnects and resumes. A generator
 *   that returned would tell the client that the subscription is over.
 * - `send({ room, text })` publishes a message; it resolves with the event's id.
 * - Both need a signed-in user (`ctx.user`); without one they fail with tRPC's `UNAUTHORIZED`,
 *   which the client's `onError` receives (tRPC does not retry it).
 *
 * `createContext` reads the user from `connectionParams.token` (what `httpSubscriptionLink`
 * can send from a browser, where `EventSource` takes no headers) or from an
 * `Authorization: Bearer <token>` header (what `httpBatchLink` sends).
 */

import { initTRPC, TRPCError, tracked } from '@trpc/server'
import type { CreateHTTPContextOptions } from '@trpc/server/adapters/standalone'
import { z } from 'zod'
import {
  type Broadcaster,
  RESET_EVENT,
  type ResetReason,
  type ServerSentEvent,
} from '../../src/index.ts'

/** A chat message as published and as delivered. */
export interface ChatMessage {
  user: string
  text: string
}

/** What `onMessage` yields (inside `tracked()`): a message, or Oven's reset. */
export type RoomEvent =
  | { type: 'message'; message: ChatMessage }
  | { type: 'reset'; reason: ResetReason; topics: string[] }

/** The context of every call: the signed-in user, if any. */
export interface Context {
  user: string | undefined
}

/** The example's users: token to name. A real app checks a session or a signed token here. */
export const TOKENS: ReadonlyMap<string, string> = new Map([
  ['ada-token', 'ada'],
  ['bob-token', 'bob'],
])

/** tRPC's `createContext` for the standalone (node:http) adapter. */
export function createContext({ req, info }: CreateHTTPContextOptions): Context {
  const token = info.connectionParams?.token ?? req.headers.authorization?.replace(/^Bearer /, '')
  return { user: token === undefined ? undefined : TOKENS.get(token) }
}

/** The Broadcaster topic of a room. */
export const roomTopic = (room: string) => `room:${room}`

/**
 * One Broadcaster event as `onMessage` yields it. Every event a Broadcaster sends has an id
 * (its position), the reset event included, so the client's `lastEventId` always moves on.
 * `data` is the JSON text the Broadcaster serialized once per publish; tRPC serializes what is
 * yielded again, once per subscriber.
 */
export function toTracked(event: ServerSentEvent) {
  const data = JSON.parse(event.data ?? 'null') as unknown
  const value: RoomEvent =
    event.event === RESET_EVENT
      ? { type: 'reset', ...(data as { reason: ResetReason; topics: string[] }) }
      : { type: 'message', message: data as ChatMessage }
  return tracked(event.id!, value)
}

const t = initTRPC.context<Context>().create({
  sse: {
    // A comment-like ping every 15 s keeps proxies from closing an idle stream; the client
    // reconnects (and resumes) when it has heard nothing for 20 s.
    ping: { enabled: true, intervalMs: 15_000 },
    client: { reconnectAfterInactivityMs: 20_000 },
  },
})

const signedIn = t.procedure.use(({ ctx, next }) => {
  if (ctx.user === undefined) {
    throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Sign in to join the chat.' })
  }
  return next({ ctx: { user: ctx.user } })
})

const room = z.string().regex(/^[\w-]{1,32}$/)

/** Options of {@link createAppRouter}. */
export interface AppRouterOptions {
  hub: Broadcaster
  /** Where the router says that a subscriber left (default `console.log`). */
  log?: (line: string) => void
}

/** The chat's router on `hub`; see the module comment. */
export function createAppRouter({ hub, log = console.log }: AppRouterOptions) {
  return t.router({
    send: signedIn
      .input(z.object({ room, text: z.string().min(1).max(2000) }))
      .mutation(async ({ ctx, input }) => {
        const message: ChatMessage = { user: ctx.user, text: input.text }
        return { id: await hub.publish(roomTopic(input.room), { event: 'message', data: message }) }
      }),

    onMessage: signedIn
      .input(z.object({ room, lastEventId: z.string().nullish() }))
      .subscription(async function* ({ ctx, input, signal }) {
        // Oven reads the history after `lastEventId` (listening first, so nothing published
        // meanwhile is missed), then live events. `signal` is tRPC's: it aborts when the client
        // goes away and ends the subscription, which ends this loop even while it waits for an
        // event; `return()` from tRPC would wait for that event otherwise.
        const subscription = hub.subscribe(roomTopic(input.room), {
          lastEventId: input.lastEventId ?? undefined,
          signal,
        })
        try {
          for await (const event of subscription) yield toTracked(event)
        } finally {
          log(`${ctx.user}'s subscription to ${input.room} ended`)
        }
        // Ended with the client still there: the broadcaster closed (a shutdown) or dropped
        // this client for falling behind (`overflow: 'disconnect'`). Returning would tell
        // tRPC's client that the subscription is complete, and it would stop for good; a
        // retryable error makes it reconnect and resume from its last id instead.
        if (!signal?.aborted) {
          throw new TRPCError({
            code: 'SERVICE_UNAVAILABLE',
            message: 'The event stream ended; reconnect to resume.',
          })
        }
      }),
  })
}

/** The router's type, for `createTRPCClient<AppRouter>`. */
export type AppRouter = ReturnType<typeof createAppRouter>
