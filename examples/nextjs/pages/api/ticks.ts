import type { NextApiRequest, NextApiResponse } from 'next'
import { sendEventStream } from 'oven-sse/node'
import { ticks } from '../../lib/ticks'

// A stream is not a response body to size-check (Next warns past 4 MB otherwise).
export const config = { api: { responseLimit: false } }

/** GET /api/ticks: the Pages Router's `req`/`res`, streamed by Oven's Node transport. */
export default async function handler(req: NextApiRequest, res: NextApiResponse): Promise<void> {
  await sendEventStream(req, res, ticks)
}
