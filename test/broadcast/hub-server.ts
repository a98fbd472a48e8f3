/**
 * A test server around a Broadcaster: `GET /?topic=a&topic=b` streams a subscription (with the
 * request's Last-Event-ID), and the subscriptions it made are kept for the tests to inspect.
 * Every error a stream reports is kept too: a file that uses these servers asserts, after each
 * test, that there were none (`takeHubServerErrors`), so no stream fails unseen.
 */

import type { Broadcaster, Subscription } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { nodeServer, type TestServer } from '../helpers/servers.ts'
import { waitFor } from '../helpers/wait.ts'

export interface HubServer extends TestServer {
  subscriptions: Subscription[]
  /** Waits until `count` subscriptions were made and are live. */
  live(count: number): Promise<void>
  /** The URL of a stream of `topics`. */
  stream(...topics: string[]): string
}

/** Errors reported by the streams of every hub server, not yet taken. */
const reported: unknown[] = []

/** The errors the streams of hub servers reported since the last call; forgets them. */
export function takeHubServerErrors(): unknown[] {
  return reported.splice(0)
}

export async function hubServer(hub: Broadcaster): Promise<HubServer> {
  const subscriptions: Subscription[] = []
  const server = await nodeServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const topics = url.searchParams.getAll('topic')
    void sendEventStream(
      req,
      res,
      (ctx) => {
        const subscription = hub.subscribe(topics, ctx)
        subscriptions.push(subscription)
        return subscription
      },
      // A short reconnection delay keeps EventSource tests quick.
      { onError: (error) => reported.push(error), retry: 100 },
    )
  })
  return Object.assign(server, {
    subscriptions,
    async live(count: number) {
      await waitFor(`${count} subscriptions made`, () => subscriptions.length, {
        until: (made) => made >= count,
      })
      await Promise.all(subscriptions.map((subscription) => subscription.ready))
    },
    stream: (...topics: string[]) =>
      `${server.url}/?${topics.map((topic) => `topic=${encodeURIComponent(topic)}`).join('&')}`,
  })
}
