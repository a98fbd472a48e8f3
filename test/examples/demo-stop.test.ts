/**
 * `npm start`, stopped the two ways a user stops it: SIGTERM to the npm process (`kill <pid>`,
 * systemd, Docker) and SIGINT to its whole process group (Ctrl+C in a terminal). Either way the
 * demo must say goodbye to open streams, end them cleanly, and exit with code 0, leaving
 * nothing listening. Run through npm on purpose: npm forwards the signal to the script's shell,
 * and a shell that does not pass it on leaves the server running (the bug this guards against).
 * A Ctrl+C also reaches the server twice (from the terminal, and forwarded by npm), so each case
 * sends its signal again while the server is stopping.
 */

import { connect } from 'node:net'
import { afterEach, expect, test } from 'vitest'
import { follow } from '../helpers/streams.ts'
import { within } from '../helpers/wait.ts'
import { type RunningExample, runNpmStart, stopAllExamples } from './run-example.ts'

afterEach(stopAllExamples)

/** Resolves with the error of a TCP connection attempt to 127.0.0.1:`port` (none: undefined). */
function connectError(port: number): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(undefined)
    })
    socket.once('error', resolve)
  })
}

const stops: Array<[string, (demo: RunningExample) => void]> = [
  ['SIGTERM to the npm process', (demo) => demo.child.kill('SIGTERM')],
  [
    'Ctrl+C (SIGINT to the process group)',
    (demo) => process.kill(-(demo.child.pid ?? 0), 'SIGINT'),
  ],
]

test.each(stops)(
  'npm start stops cleanly on %s',
  async (_, stop) => {
    // A job runs while the signal arrives: it must stop too, not publish into a closed Broadcaster.
    // Its steps are long, so the process is still finishing one when the signal comes again.
    const demo = await runNpmStart({
      env: { CLOCK_MS: '100', STATS_MS: '100', JOB_STEP_MS: '1500' },
      timeout: 60_000,
    })
    const port = Number(new URL(demo.url).port)

    const tab = follow(`${demo.url}/events`, { timeout: 60_000 })
    const { events } = tab
    expect((await fetch(`${demo.url}/job`, { method: 'POST' })).status).toBe(202)
    await tab.until('the job to start', (e) => e.some((x) => x.event === 'job'), 15_000)
    const clock = events.find((e) => e.event === 'clock')
    const serverPid = Number(/^pid (\d+)$/.exec(JSON.parse(clock?.data ?? '{}').instance)?.[1])
    expect(serverPid).toBeGreaterThan(0)
    expect(serverPid).not.toBe(demo.child.pid)

    stop(demo)

    // The same signal again once the server has closed, while the job's current step keeps the
    // process alive: what npm's forwarded copy of a Ctrl+C is when npm is slow, or a second
    // Ctrl+C. It must not cut the shutdown short (the process killed by the signal).
    await demo.waitForLine(/^demo: server closed/, 10_000)
    stop(demo)

    // The open stream got the farewell, then a proper end of the response (not a reset, which
    // rejects here with its cause).
    await within(tab.ended(), 10_000, 'the stream to end')
    expect(events.at(-1)).toMatchObject({ event: 'shutdown' })
    expect(await within(demo.exited, 10_000, 'npm start to exit')).toEqual({
      code: 0,
      signal: null,
    })
    await demo.waitForLine(/^demo: stopped$/)
    // The job stopped without an error, and nothing else went wrong on the way out.
    expect(demo.lines.filter((line) => /error|fail/i.test(line))).toEqual([])
    // The server process is gone (npm waited for it), and nothing listens on the port.
    expect(() => process.kill(serverPid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }))
    expect((await connectError(port))?.code).toBe('ECONNREFUSED')
  },
  90_000,
)
