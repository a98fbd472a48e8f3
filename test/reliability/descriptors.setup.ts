/**
 * Global setup of the "heavy" test project (vitest.config.ts) and of the stress tier: their
 * suites hold up to 3 000 (stress: 5 000) streams open in one process, i.e. two sockets per
 * stream (both ends of each loopback connection) plus the server's and the runner's own. Checked before any of them runs, so a low descriptor
 * limit fails once, saying what to do, instead of as EMFILE in the middle of a test.
 *
 * Node raises its soft limit to the hard limit as it starts (so `ulimit -Sn 1024` alone does
 * not hurt), and the npm scripts raise it too; the hard limit is what decides.
 */

import { execFileSync } from 'node:child_process'

/** Descriptors each tier needs: two per stream, and room for the runner and other handles. */
const NEEDED: Record<string, number> = { heavy: 8192, stress: 12_000 }

/** The descriptor limit this process's children get (`ulimit -n`); Infinity for unlimited. */
function descriptorLimit(): number {
  const text = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim()
  return text === 'unlimited' ? Number.POSITIVE_INFINITY : Number(text)
}

/** Fails, saying what to do, when the project's suites could run out of descriptors. */
export default function checkDescriptors(project: { config: { name?: string } }): void {
  if (process.platform === 'win32') return
  const name = project.config.name ?? ''
  const needed = NEEDED[name] ?? NEEDED.heavy!
  const limit = descriptorLimit()
  if (limit >= needed) return
  throw new Error(
    `The ${name} suites need ${needed} file descriptors, but this process may open ${limit}, ` +
      `its hard limit (ulimit -Hn). Raise the hard limit: limits.conf, systemd LimitNOFILE, ` +
      `or docker run --ulimit nofile=${needed}.`,
  )
}
