import { afterEach, expect, test, vi } from 'vitest'
import { readEvents } from '../../src/testing.ts'
import { EXAMPLE_TEST_TIMEOUT, runExample, stopAllExamples } from './run-example.ts'

afterEach(stopAllExamples)
vi.setConfig({ testTimeout: EXAMPLE_TEST_TIMEOUT })

const status = async (url: string) =>
  (await (await fetch(`${url}/status`)).json()) as { open: number; opened: number }

test('03_database_streaming: rows as events; the connection closes with the stream', async () => {
  const example = await runExample('03_database_streaming.ts', { env: { ROW_MS: '20' } })

  const all = await readEvents(`${example.url}/tasks/stream`)
  expect(all.map((event) => [event.id, event.event])).toEqual([
    ['1', 'task'],
    ['2', 'task'],
    ['3', 'task'],
    ['4', 'task'],
    ['5', 'task'],
  ])
  expect(JSON.parse(all[0]!.data)).toEqual({
    id: 1,
    title: 'Implement SSE streaming',
    completed: true,
  })
  await example.waitForLine(/^db: connection closed \(done, open: 0\)$/)

  const open = await readEvents(`${example.url}/tasks/stream?completed=false&limit=2`)
  expect(open.map((event) => JSON.parse(event.data).title)).toEqual([
    'Close it when the client disconnects',
    'Write the smoke test',
  ])

  const json = (await (await fetch(`${example.url}/tasks?completed=true`)).json()) as unknown[]
  expect(json).toHaveLength(2)

  // A client that hangs up mid-stream: the connection is closed at once, not after the rows.
  const slow = await runExample('03_database_streaming.ts', { env: { ROW_MS: '60000' } })
  const first = await readEvents(`${slow.url}/tasks/stream`, { count: 1 })
  expect(first[0]!.id).toBe('1')
  await slow.waitForLine(/^db: connection closed \(disconnect, open: 0\)$/, 5000)
  expect(await status(slow.url)).toEqual({ open: 0, opened: 1 })
})
