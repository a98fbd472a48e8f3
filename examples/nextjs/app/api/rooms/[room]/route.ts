import { openEventSourceResponse } from 'oven-sse'
import { ticks } from '../../../../lib/ticks'

export const runtime = 'nodejs'
export const dynamic = 'force-dynamic'

/** Thrown by the check inside the content function; answered as a 401 below. */
class Unauthorized extends Error {}

/**
 * GET /api/rooms/<room>?token=letmein: the token is checked inside the content function, which
 * `openEventSourceResponse` runs before the response exists. A refusal is a plain 401, never a
 * 200 stream carrying an error; any other error is rethrown, and Next answers its own 500.
 */
export async function GET(
  request: Request,
  { params }: { params: Promise<{ room: string }> },
): Promise<Response> {
  const { room } = await params
  try {
    return await openEventSourceResponse(
      async (ctx) => {
        if (new URL(request.url).searchParams.get('token') !== 'letmein') {
          throw new Unauthorized(`a token is required for room ${room}`)
        }
        return ticks(ctx)
      },
      { request },
    )
  } catch (error) {
    if (error instanceof Unauthorized) return new Response(error.message, { status: 401 })
    throw error
  }
}
