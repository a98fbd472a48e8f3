/**
 * The broadcast benchmark on its own: 100 × 256 B events fanned out to 1 000 and 5 000 clients,
 * Oven's `Broadcaster` (through `sendEventStream` and `EventSourceResponse`) beside a plain
 * `Set` of `res.write` in the same run. Server CPU per delivery, p50/p99 delivery latency, time
 * until every client has every event; every byte checked on the client side.
 *
 * It is scenario 3 of `npm run bench` (bench/run.ts), restricted to these contestants:
 *
 *   npx tsx bench/broadcast.ts            # full: 3 repetitions
 *   npx tsx bench/broadcast.ts --quick    # 500 clients, 1 repetition
 *   npx tsx bench/broadcast.ts --reps 2   # any other flag of bench/run.ts
 *
 * Results go to $TMPDIR/oven-bench-broadcast.json unless `--out` is given, so this partial run
 * never replaces the full run's bench/results/latest.json.
 */

import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const run = fileURLToPath(new URL('./run.ts', import.meta.url))
const args = process.argv.slice(2)
if (!args.includes('--contestants')) args.push('--contestants', 'plain,oven-node,oven-web')
if (!args.some((arg) => arg === '--docs' || arg === '--no-docs')) args.push('--no-docs')
// A partial run must not replace the full run's bench/results/latest.json.
if (!args.includes('--out')) args.push('--out', join(tmpdir(), 'oven-bench-broadcast.json'))
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', run, '--scenario', 'broadcast', ...args],
  { stdio: 'inherit' },
)
process.exit(result.status ?? 1)
