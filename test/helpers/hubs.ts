/**
 * Broadcasters made by a test, closed on teardown so that none outlives its test.
 */

import { Broadcaster, type BroadcasterOptions } from '../../src/index.ts'

const open: Broadcaster[] = []

/** A new `Broadcaster`, closed by {@link closeHubs}. */
export function newHub(options?: BroadcasterOptions): Broadcaster {
  const hub = new Broadcaster(options)
  open.push(hub)
  return hub
}

/** Closes every hub made by {@link newHub}; call from `afterEach`. */
export async function closeHubs(): Promise<void> {
  await Promise.all(open.splice(0).map((hub) => hub.close()))
}
