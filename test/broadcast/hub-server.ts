/**
 * A test server around a Broadcaster: `GET /?topic=a&topic=b` streams a subscription (with the
 * request's Last-Event-ID), and the subscriptions it made are kept for the tests to inspect.
 */

import type { Broadcaster, Subscription } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { nodeServer, type TestServer, waitFor } from '../helpers/servers.ts'

export interface HubServer extends TestServer {
  subscriptions: Subscription[]
  /** Waits until `count` subscriptions were made and are live. */
  live(count: number): Promise<void>
  /** The URL of a stream of `topics`. */
  stream(...topics: string[]): string
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
      { onError: () => {}, retry: 100 },
    )
  })
  return Object.assign(server, {
    subscriptions,
    async live(count: number) {
      await waitFor(() => subscriptions.length >= count, 5000, `${count} subscriptions`)
      await Promise.all(subscriptions.map((subscription) => subscription.ready))
    },
    stream: (...topics: string[]) =>
      `${server.url}/?${topics.map((topic) => `topic=${encodeURIComponent(topic)}`).join('&')}`,
  })
}
