/**
 * The cluster example: three instances of `instance.ts` behind nginx, which balances requests
 * across them (round robin), sharing one Redis. A message posted to any instance reaches the
 * room's subscribers on all three; a client that reconnects lands on another instance and
 * resumes with `Last-Event-ID`; `members` answers for the whole cluster; an instance killed
 * with SIGKILL is skipped by nginx, its clients resume elsewhere, and its members expire.
 *
 * Needs `nginx` (Debian: `apt-get install nginx-light`) and, without REDIS_URL, `redis-server`.
 *
 * Run:  npx tsx examples/cluster/run.ts
 * Then: curl -N 'http://127.0.0.1:8000/rooms/lobby/events?user=ada'           (a few terminals)
 *       curl -X POST http://127.0.0.1:8000/rooms/lobby/messages \
 *            -H 'content-type: application/json' -d '{"user":"ada","text":"hi"}'
 *       curl http://127.0.0.1:8000/rooms/lobby/members
 *
 * Environment: PORT (nginx's port, default 8000), REDIS_URL (default: a redis-server of its
 * own on a free port), PRESENCE_TTL and MAX_PER_USER (passed to the instances).
 *
 * The nginx configuration it writes (printed with `--print-config`) is the part to copy:
 * HTTP/1.1 to the upstream with keep-alive, a read timeout longer than the keep-alive ping,
 * and a retry on another instance when one refuses connections. Buffering needs no setting:
 * Oven's `X-Accel-Buffering: no` header turns it off for event streams only.
 */

import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const NAMES = ['a', 'b', 'c']
const here = fileURLToPath(new URL('.', import.meta.url))

/** A free port on 127.0.0.1 (for a child that cannot report the port it got). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolve(port))
    })
  })
}

/** Resolves once something accepts connections on `port`; fails after `ms`. */
async function reachable(port: number, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection(port, '127.0.0.1')
      socket.once('connect', () => resolve(socket.end() !== undefined))
      socket.once('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`${what} did not accept connections in ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** nginx in front of the instances: one upstream, round robin. */
function nginxConfig(dir: string, port: number, upstreams: number[]): string {
  return `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream oven {
${upstreams.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=5s;`).join('\n')}
    keepalive 32;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://oven;
      # HTTP/1.1 with the upstream, keep-alive connections reused.
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      # An event stream is quiet between events: wait longer than Oven's ping (15 s).
      proxy_read_timeout 1h;
      # A dead instance refuses the connection: try the next one.
      proxy_next_upstream error timeout;
    }
  }
}
`
}

const children = new Map<string, ChildProcess>()
let stopping = false

function start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.set(name, child)
  const relay = (chunk: Buffer) => {
    // An instance's own "listening on" line is announced below, with its pid; the one
    // "listening on" this process prints is the proxy's.
    for (const line of chunk.toString().split('\n')) {
      if (line && !line.startsWith('listening on')) console.log(`[${name}] ${line}`)
    }
  }
  child.stdout?.on('data', relay)
  child.stderr?.on('data', relay)
  child.once('exit', (code, signal) => {
    children.delete(name)
    console.log(`${name} exited (${signal ?? code})`)
  })
  return child
}

const dir = mkdtempSync(join(tmpdir(), 'oven-cluster-'))
let redisUrl = process.env.REDIS_URL
if (!redisUrl) {
  const port = await freePort()
  start('redis', 'redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
  ])
  await reachable(port, 'redis-server')
  redisUrl = `redis://127.0.0.1:${port}`
}

const ports = await Promise.all(NAMES.map(() => freePort()))
NAMES.forEach((name, index) => {
  const child = start(name, process.execPath, ['--import', 'tsx', join(here, 'instance.ts')], {
    PORT: String(ports[index]),
    INSTANCE: name,
    REDIS_URL: redisUrl,
  })
  console.log(`instance ${name} pid ${child.pid} on http://127.0.0.1:${ports[index]}`)
})
await Promise.all(ports.map((port, index) => reachable(port, `instance ${NAMES[index]}`, 60_000)))

const requested = Number(process.env.PORT ?? 8000)
const port = requested === 0 ? await freePort() : requested
const config = nginxConfig(dir, port, ports)
if (process.argv.includes('--print-config')) console.log(config)
writeFileSync(join(dir, 'nginx.conf'), config)
start('nginx', 'nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')])
await reachable(port, 'nginx')
console.log(`listening on http://127.0.0.1:${port}`)

/** Ends `name` with `signal` (if it is running) and waits for it to exit. */
function end(name: string, signal: NodeJS.Signals): Promise<void> {
  const child = children.get(name)
  if (!child) return Promise.resolve()
  return new Promise((resolve) => {
    child.once('exit', () => resolve())
    child.kill(signal)
  })
}

async function stop() {
  if (stopping) return
  stopping = true
  // The instances first: their streams end cleanly and they leave presence, which needs Redis.
  await Promise.all(NAMES.map((name) => end(name, 'SIGTERM')))
  await end('nginx', 'SIGQUIT')
  await end('redis', 'SIGTERM')
  console.log('cluster stopped')
}
process.once('SIGTERM', () => void stop())
process.once('SIGINT', () => void stop())
