/**
 * A {@link PresenceStore} in this process: presence for a single instance, and the reference
 * the shared stores are tested against.
 *
 * Web-standard: no `node:` imports.
 *
 * @module
 */

import type { PresenceLeave, PresenceList, PresenceMember, PresenceStore } from './presence.ts'

interface Entry {
  readonly topic: string
  readonly member: string
  expiresAt: number
}

interface TopicMembers {
  /** Connections per member. */
  readonly connections: Map<string, number>
  /** Each member's latest info, as JSON. */
  readonly info: Map<string, string>
}

/**
 * Presence entries in a `Map`, with expiry on `Date.now()`. Every instance has its own: use
 * `RedisPresenceStore` (from `oven-sse/redis`) to see the members of every instance.
 */
export class MemoryPresenceStore implements PresenceStore {
  readonly #entries = new Map<string, Entry>()
  readonly #topics = new Map<string, TopicMembers>()

  async join(
    topic: string,
    connection: string,
    member: string,
    info: string | undefined,
    ttl: number,
  ): Promise<boolean> {
    if (this.#entries.has(connection)) return false
    this.#entries.set(connection, { topic, member, expiresAt: Date.now() + ttl })
    let members = this.#topics.get(topic)
    if (!members) {
      members = { connections: new Map(), info: new Map() }
      this.#topics.set(topic, members)
    }
    const held = members.connections.get(member) ?? 0
    members.connections.set(member, held + 1)
    if (info !== undefined) members.info.set(member, info)
    return held === 0
  }

  async leave(connection: string): Promise<PresenceLeave | undefined> {
    return this.#remove(connection)
  }

  async renew(connections: readonly string[], ttl: number): Promise<string[]> {
    const expiresAt = Date.now() + ttl
    const lost: string[] = []
    for (const connection of connections) {
      const entry = this.#entries.get(connection)
      if (entry) entry.expiresAt = expiresAt
      else lost.push(connection)
    }
    return lost
  }

  async sweep(limit: number): Promise<{ removed: number; leaves: PresenceLeave[] }> {
    const now = Date.now()
    const leaves: PresenceLeave[] = []
    let removed = 0
    for (const [connection, entry] of this.#entries) {
      if (removed >= limit) break
      if (entry.expiresAt > now) continue
      removed++
      const leave = this.#remove(connection)
      if (leave) leaves.push(leave)
    }
    return { removed, leaves }
  }

  async members(topic: string, limit: number): Promise<PresenceList> {
    const members = this.#topics.get(topic)
    if (!members) return { total: 0, members: [] }
    const list: PresenceMember[] = []
    for (const [member, connections] of members.connections) {
      if (list.length >= limit) break
      const info = members.info.get(member)
      list.push(
        info === undefined
          ? { member, connections }
          : { member, connections, info: JSON.parse(info) },
      )
    }
    return { total: members.connections.size, members: list }
  }

  async close(): Promise<void> {
    this.#entries.clear()
    this.#topics.clear()
  }

  #remove(connection: string): PresenceLeave | undefined {
    const entry = this.#entries.get(connection)
    if (!entry) return undefined
    this.#entries.delete(connection)
    const { topic, member } = entry
    const members = this.#topics.get(topic)
    const left = (members?.connections.get(member) ?? 1) - 1
    if (left > 0) {
      members?.connections.set(member, left)
      return undefined
    }
    members?.connections.delete(member)
    members?.info.delete(member)
    if (members?.connections.size === 0) this.#topics.delete(topic)
    return { topic, member }
  }
}
