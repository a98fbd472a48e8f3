/** The contestants: one server file each under bench/contestants/. */

export interface ContestantInfo {
  /** File name under bench/contestants/ without `.ts`. */
  id: string
  /** How tables name it. */
  label: string
  /** Whether it is Oven (targets and "Oven ahead" checks apply). */
  oven: boolean
  /** The scenarios it takes part in; all when absent. */
  scenarios?: readonly string[]
}

export const CONTESTANTS: readonly ContestantInfo[] = [
  { id: 'plain', label: 'node:http res.write loop (the limit)', oven: false },
  {
    id: 'plain-frames',
    label: 'node:http loop writing pre-encoded frames',
    oven: false,
    scenarios: ['stream'],
  },
  { id: 'oven-node', label: 'Oven sendEventStream', oven: true },
  { id: 'oven-web', label: 'Oven EventSourceResponse (@hono/node-server)', oven: true },
  { id: 'oven-hono', label: 'Oven on Hono (@hono/node-server, fast path)', oven: true },
  { id: 'oven-hono-web', label: 'Oven on Hono (@hono/node-server, web path)', oven: true },
  { id: 'oven-fastify', label: 'Oven on Fastify', oven: true },
  { id: 'better-sse', label: 'better-sse', oven: false },
  { id: 'hono', label: 'Hono streamSSE', oven: false },
  { id: 'fastify-sse', label: '@fastify/sse', oven: false },
]

/** The baseline every ratio is taken against. */
export const BASELINE = 'plain'
