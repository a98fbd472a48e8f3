/**
 * Setup for mutation runs only (vitest.mutation.config.ts). Stryker's vitest runner runs test
 * files in worker threads, where `process.on('SIGKILL', …)` is accepted silently instead of
 * throwing EINVAL as it does on the main thread (a worker never receives signals). The suite
 * checks that `installShutdownHandlers` refuses SIGKILL and SIGSTOP by that EINVAL; this puts the
 * main thread's behaviour back so that check means the same thing under Stryker.
 */

import { isMainThread } from 'node:worker_threads'

if (!isMainThread) {
  const on = process.on.bind(process)
  process.on = ((event: string | symbol, listener: (...args: unknown[]) => void) => {
    if (event === 'SIGKILL' || event === 'SIGSTOP') {
      throw Object.assign(new Error(`uv_signal_start EINVAL`), {
        code: 'EINVAL',
        syscall: 'uv_signal_start',
      })
    }
    return on(event, listener)
  }) as typeof process.on
}
