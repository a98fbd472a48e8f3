/**
 * Next calls `register` once when a server process starts. The Node-only part is imported
 * only under Node's runtime (Next compiles this file for the edge runtime too).
 */
export async function register(): Promise<void> {
  if (process.env.NEXT_RUNTIME === 'nodejs') await import('./lib/shutdown')
}
