/**
 * Records every message of Oven's diagnostics channels, as a user's subscriber would receive
 * them (through `node:diagnostics_channel`), until `stop()`.
 */

import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { CHANNELS } from '../../src/index.ts'

/** One recorded message: the channel's key in `CHANNELS` and what was published. */
export interface Recorded {
  channel: keyof typeof CHANNELS
  message: Record<string, unknown>
}

/** Subscribes to `channels` (default: all); `stop()` unsubscribes. */
export function recordChannels(channels = Object.keys(CHANNELS) as Array<keyof typeof CHANNELS>) {
  const seen: Recorded[] = []
  const listeners = channels.map((channel) => {
    const listener = (message: unknown) => {
      seen.push({ channel, message: message as Record<string, unknown> })
    }
    subscribe(CHANNELS[channel], listener)
    return [CHANNELS[channel], listener] as const
  })
  return {
    seen,
    /** The messages of one channel. */
    of(channel: keyof typeof CHANNELS) {
      return seen.filter((entry) => entry.channel === channel).map((entry) => entry.message)
    },
    stop() {
      for (const [name, listener] of listeners) unsubscribe(name, listener)
    },
  }
}
