/**
 * 03 — Streaming query results from a database, with the connection owned by the stream.
 *
 * The rule from sse-starlette's "Database Streaming (Thread-Safe)": open the connection (or
 * session, or transaction) *inside* the source, and close it in the source's `finally`. A stream
 * outlives the request handler that started it, so a connection opened by the handler — or a
 * per-request one from your framework — may be closed or reused while the stream still reads
 * from it. Inside the source, it lives exactly as long as the stream: when the client hangs up,
 * `ctx.signal` aborts, the generator's `finally` runs, and the connection is closed at once.
 *
 * The database is SQLite through sql.js (SQLite compiled to WebAssembly): nothing to install,
 * no server to run. At start the example writes a small database file; each stream opens it.
 *
 * Run:  npx tsx examples/03_database_streaming.ts
 * Then: curl -N 'http://127.0.0.1:8000/tasks/stream?completed=false&limit=3'
 *
 * Endpoints:
 *   /tasks/stream   one `event: task` per row (`id` = the row id, JSON data), ROW_MS apart;
 *                   query parameters `completed=true|false` and `limit=N`
 *   /tasks          the same rows as a plain JSON response
 *   /status         open database connections, and how many were ever opened
 *
 * Environment: PORT (default 8000), ROW_MS (default 300).
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import initSqlJs, { type Database } from 'sql.js'
import { sendEventStream } from '../src/node.ts'

const rowDelay = Number(process.env.ROW_MS ?? 300)

interface Task {
  id: number
  title: string
  completed: boolean
}

interface TaskQuery {
  completed: boolean | undefined
  limit: number
}

const SQL = await initSqlJs()
const directory = mkdtempSync(join(tmpdir(), 'oven-example-03-'))
const file = join(directory, 'tasks.sqlite')
process.on('exit', () => rmSync(directory, { recursive: true, force: true }))

// Seed the database file once, as a migration would.
{
  const db = new SQL.Database()
  db.run(
    'CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT NOT NULL, completed INTEGER NOT NULL)',
  )
  const titles = [
    ['Implement SSE streaming', 1],
    ['Open the connection inside the source', 1],
    ['Close it when the client disconnects', 0],
    ['Write the smoke test', 0],
    ['Ship it', 0],
  ] as const
  for (const [title, completed] of titles) {
    db.run('INSERT INTO tasks (title, completed) VALUES (?, ?)', [title, completed])
  }
  writeFileSync(file, db.export())
  db.close()
}

let open = 0
let opened = 0

/** Opens a connection to the database file. With a server database this is `pool.connect()`. */
function connect(): Database {
  const db = new SQL.Database(readFileSync(file))
  open++
  opened++
  return db
}

function close(db: Database): void {
  db.close()
  open--
}

function selectTasks(db: Database, query: TaskQuery) {
  const where = query.completed === undefined ? '' : 'WHERE completed = $completed'
  const statement = db.prepare(
    `SELECT id, title, completed FROM tasks ${where} ORDER BY id LIMIT $limit`,
  )
  statement.bind({
    $limit: query.limit,
    ...(query.completed === undefined ? {} : { $completed: query.completed ? 1 : 0 }),
  })
  return statement
}

function toTask(row: Record<string, unknown>): Task {
  return { id: Number(row.id), title: String(row.title), completed: row.completed === 1 }
}

// CORRECT: the connection is opened inside the source and closed in its `finally`, whatever
// ends the stream: the last row, the client hanging up, a server shutdown or an error.
async function* streamTasks(query: TaskQuery, signal: AbortSignal) {
  const db = connect()
  console.log(`db: connection opened (open: ${open})`)
  const statement = selectTasks(db, query)
  try {
    while (statement.step()) {
      const task = toTask(statement.getAsObject())
      yield { id: String(task.id), event: 'task', data: task }
      // Aborted at once on disconnect: the loop does not sit out the delay first.
      await sleep(rowDelay, undefined, { signal })
    }
  } finally {
    statement.free()
    close(db)
    console.log(
      `db: connection closed (${signal.aborted ? String(signal.reason) : 'done'}, open: ${open})`,
    )
  }
}

function readQuery(url: URL): TaskQuery {
  const completed = url.searchParams.get('completed')
  const limit = Number(url.searchParams.get('limit') ?? 100)
  return {
    completed: completed === null ? undefined : completed === 'true',
    limit: Number.isInteger(limit) && limit > 0 ? limit : 100,
  }
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost')
  if (url.pathname === '/tasks/stream') {
    const query = readQuery(url)
    void sendEventStream(req, res, ({ signal }) => streamTasks(query, signal))
    return
  }
  if (url.pathname === '/tasks') {
    // A plain request: open, read everything, close — before the response is sent.
    const db = connect()
    const tasks: Task[] = []
    try {
      const statement = selectTasks(db, readQuery(url))
      while (statement.step()) tasks.push(toTask(statement.getAsObject()))
      statement.free()
    } finally {
      close(db)
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(tasks))
    return
  }
  if (url.pathname === '/status') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ open, opened }))
    return
  }
  res.writeHead(404, { 'content-type': 'text/plain' }).end('try /tasks/stream, /tasks or /status\n')
})

server.listen(Number(process.env.PORT ?? 8000), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  console.log(`listening on http://127.0.0.1:${port}`)
  console.log(`  curl -N 'http://127.0.0.1:${port}/tasks/stream?completed=false&limit=3'`)
})
