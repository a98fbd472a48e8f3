/**
 * Keeps the benchmark harness from rotting: runs `bench/run.ts --tiny` for Oven's
 * `sendEventStream` (a contestant that needs no bench-only dependency) and checks that every
 * run delivered exactly what was sent. No performance assertion: only correctness. One
 * contestant only, so the few processes it starts stay short and light beside other tests.
 */

import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, expect, test } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'oven-bench-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

interface Results {
  records: Array<{
    scenario: string
    contestant: string
    params: Record<string, number>
    metrics: Record<string, number>
    error: string | undefined
  }>
  failures: string[]
}

test('the benchmark harness runs every scenario and checks what clients received', async () => {
  const out = join(dir, 'results.json')
  const args = ['--import', 'tsx', 'bench/run.ts', '--tiny', '--contestants', 'oven-node']
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = execFile(
      process.execPath,
      [...args, '--no-docs', '--out', out],
      // A deadline for the whole tiny run (53 s with both cores busy, over 90 s on a crowded box).
      { cwd: root, timeout: 240_000 },
      (error, _stdout, stderr) => resolve({ code: error ? (child.exitCode ?? 1) : 0, stderr }),
    )
  })
  expect(stderr).not.toContain('ERROR')
  expect(code, stderr).toBe(0)
  const results = JSON.parse(readFileSync(out, 'utf8')) as Results
  expect(results.failures).toEqual([])
  for (const contestant of ['oven-node']) {
    const mine = results.records.filter((r) => r.contestant === contestant)
    expect(new Set(mine.map((r) => r.scenario))).toEqual(
      new Set(['stream', 'idle', 'subscribers', 'broadcast']),
    )
    for (const record of mine) {
      expect(record.error).toBeUndefined()
      for (const value of Object.values(record.metrics)) expect(Number.isFinite(value)).toBe(true)
    }
  }
}, 270_000)
