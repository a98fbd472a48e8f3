/**
 * The chat's tRPC client (router.ts): `httpSubscriptionLink` for the subscription, with the
 * `eventsource` package's `EventSource` (Node has none before v22, and tRPC's link needs one),
 * and `httpBatchLink` for the mutation.
 *
 * Run:  npx tsx examples/trpc/client.ts [--url http://127.0.0.1:8000] [--room lobby]
 *                                        [--token ada-token] [--follow] [message ...]
 *
 * It publishes `joined`, subscribes from that message's id (so it sees everything published
 * after it, its own messages included), sends each message given on the command line, prints
 * every event, and exits once its messages have come back — or never, with `--follow`.
 * Cut the server's connections meanwhile (or restart a Redis-backed server): the link
 * reconnects and resumes after the last id it printed.
 */

import { parseArgs } from 'node:util'
import {
  createTRPCClient,
  httpBatchLink,
  httpSubscriptionLink,
  splitLink,
  TRPCClientError,
} from '@trpc/client'
import { EventSource } from 'eventsource'
import type { AppRouter } from './router.ts'

const { values, positionals } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:8000' },
    room: { type: 'string', default: 'lobby' },
    token: { type: 'string', default: 'ada-token' },
    follow: { type: 'boolean', default: false },
  },
  allowPositionals: true,
})
const { url, room, token } = values

const client = createTRPCClient<AppRouter>({
  links: [
    splitLink({
      condition: (op) => op.type === 'subscription',
      // A browser's EventSource sends no custom headers: the token goes in the URL instead
      // (`connectionParams`), or in a cookie.
      true: httpSubscriptionLink({ url, EventSource, connectionParams: { token } }),
      false: httpBatchLink({ url, headers: { authorization: `Bearer ${token}` } }),
    }),
  ],
})

/** Prints why a call failed, with tRPC's error code, and sets a failing exit code. */
function failed(what: string, error: unknown): undefined {
  const code = error instanceof TRPCClientError ? error.data?.code : undefined
  console.error(`${what} failed: ${(error as Error).message} (${code ?? 'no code'})`)
  process.exitCode = 1
  return undefined
}

/** Sends each message once the previous one is published, so they keep their order. */
async function sendInOrder(texts: string[]): Promise<void> {
  try {
    for (const text of texts) await client.send.mutate({ room, text })
  } catch (error) {
    failed('send', error)
  }
}

/** Follows the room from event `start` on; see the module comment. */
function follow(start: string): void {
  let waiting = positionals.length
  const subscription = client.onMessage.subscribe(
    { room, lastEventId: start },
    {
      onStarted() {
        void sendInOrder(positionals)
      },
      onData({ id, data }) {
        if (data.type === 'reset') {
          // The history no longer covers the gap: reload the room's state, then carry on.
          console.log(`${id} reset (${data.reason}): reload ${data.topics.join(', ')}`)
          return
        }
        console.log(`${id} ${data.message.user}: ${data.message.text}`)
        if (positionals.includes(data.message.text)) waiting--
        if (waiting <= 0 && !values.follow) {
          subscription.unsubscribe()
          console.log('done')
        }
      },
      onError: (error) => failed('subscription', error),
    },
  )
}

// A subscription without `lastEventId` starts from "now" as the server sees it, once the
// procedure has subscribed, which is after the client's `onStarted`. To see everything from a
// known point, start from an id: here, that of our own `joined`.
const joined = await client.send
  .mutate({ room, text: 'joined' })
  .catch((error: unknown) => failed('send', error))
if (joined) follow(joined.id)
