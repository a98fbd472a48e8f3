/**
 * The events every contestant sends, built the same way in every server so that the load
 * generator can check each one exactly: a payload is its index in 10 decimal digits followed
 * by a fixed filler, so a client checks it with one digit parse and one native byte compare.
 * Broadcast payloads also carry the publish time (monotonic clock, µs) for latency.
 */

/** Digits of the event index at the start of every payload. */
export const INDEX_DIGITS = 10
/** Digits of the publish time (µs, `process.hrtime`) in broadcast payloads. */
export const TIME_DIGITS = 16

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_'
/** The filler bytes: plain ASCII, so the text and its UTF-8 bytes are the same length. */
export const FILLER = ALPHABET.repeat(Math.ceil((1 << 20) / ALPHABET.length)).slice(0, 1 << 20)

const ZEROS = '0'.repeat(32)

function digits(value: number, width: number): string {
  const text = String(value)
  return text.length >= width ? text : ZEROS.slice(0, width - text.length) + text
}

/** A function giving the payload of event `i`, `size` bytes long (at least 16). */
export function payloads(size: number): (i: number) => string {
  if (size < INDEX_DIGITS + 6) throw new Error(`bench: payload size ${size} is too small`)
  const filler = FILLER.slice(0, size - INDEX_DIGITS)
  return (i) => digits(i, INDEX_DIGITS) + filler
}

/** The monotonic clock in µs; the same clock in every process on one machine. */
export function nowMicros(): number {
  return Number(process.hrtime.bigint() / 1000n)
}

/** The payloads of one broadcast round: index, publish time, filler; built at publish time. */
export function broadcastPayload(i: number, size: number): string {
  const head = digits(i, INDEX_DIGITS) + digits(nowMicros(), TIME_DIGITS)
  return head + FILLER.slice(0, size - head.length)
}
