/**
 * The MCP Streamable HTTP endpoint of app.ts with one tool, `count`, which counts slowly and
 * reports its progress: `npx tsx examples/mcp-stream/server.ts`. Connect any MCP client (the
 * MCP Inspector, `StreamableHTTPClientTransport` of `@modelcontextprotocol/sdk`) to
 * `http://127.0.0.1:<port>/mcp`, call `count` with a progress token, cut the connection: the
 * client resumes with `GET /mcp` and `Last-Event-ID`, and misses no step.
 *
 * Environment: PORT (default 8000), STEP_MS (the delay between two counts, default 500).
 */

import { createServer } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { createMcpApp } from './app.ts'

const stepMs = Number(process.env.STEP_MS ?? 500)

const app = createMcpApp({
  tools: {
    count: {
      description:
        'Counts from 1 to `to` (at most 100), slowly, reporting each number as progress.',
      inputSchema: {
        type: 'object',
        properties: { to: { type: 'integer', minimum: 1, maximum: 100 } },
        required: ['to'],
      },
      async *run(args, signal) {
        const to = args.to
        if (typeof to !== 'number' || !Number.isInteger(to) || to < 1 || to > 100) {
          return {
            content: [{ type: 'text', text: '`to` must be an integer from 1 to 100' }],
            isError: true,
          }
        }
        for (let n = 1; n <= to; n++) {
          await sleep(stepMs, undefined, { signal })
          yield { progress: n, total: to, message: `counted ${n}` }
        }
        return { content: [{ type: 'text', text: `counted to ${to}` }] }
      },
    },
  },
})

const server = createServer(app.handler)
server.listen(Number(process.env.PORT ?? 8000), '127.0.0.1', () => {
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : process.env.PORT
  console.log(`listening on http://127.0.0.1:${port}`)
})
process.once('SIGINT', () => {
  server.closeAllConnections()
  server.close()
  void app.runs.close()
})
