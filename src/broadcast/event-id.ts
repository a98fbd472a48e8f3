/**
 * Broadcast event ids: `<epoch>-<seq>`, for example `k3x9qf2m1a-1042`.
 *
 * - `seq` is one sequence shared by every topic of a broker, so a single number is a position
 *   on *every* topic at once: "I have seen everything up to 1042". A subscription covering
 *   twenty topics resumes from that one number, and because the id does not depend on which
 *   topics a subscriber listens to, every subscriber receives the same bytes.
 * - `epoch` names the broker's history. It changes when the history is lost (a Redis restart
 *   without persistence, a flush), so an id from before the loss is recognised as such instead
 *   of being read as a position in the new history (Centrifugo does the same).
 *
 * Ids come back from clients in `Last-Event-ID`, so parsing is strict and bounded: anything
 * longer than {@link MAX_EVENT_ID_LENGTH} characters or not of this exact form is refused
 * without being scanned further.
 *
 * @module
 */

/** A position in a broker's history: which history (`epoch`) and how far (`seq`). */
export interface Position {
  /** Names one life of the broker's history; changes when the history is lost. */
  readonly epoch: string
  /** The sequence number, shared by every topic of the broker; `0` means "before the first". */
  readonly seq: number
}

/** The longest `Last-Event-ID` value Oven tries to parse as a broadcast position. */
export const MAX_EVENT_ID_LENGTH = 48

// An epoch is 1-16 lowercase base-36 characters; seq is a decimal integer without leading
// zeros, at most 15 digits (always a safe integer).
const EVENT_ID = /^([0-9a-z]{1,16})-(0|[1-9][0-9]{0,14})$/

/** Formats a position as an event id. */
export function formatEventId(epoch: string, seq: number): string {
  return `${epoch}-${seq}`
}

/**
 * Parses an event id made by {@link formatEventId}; `undefined` for anything else (too long,
 * wrong form), so a forged or foreign `Last-Event-ID` can never throw or cost more than a
 * bounded check.
 */
export function parseEventId(text: unknown): Position | undefined {
  if (typeof text !== 'string' || text.length > MAX_EVENT_ID_LENGTH) return undefined
  const match = EVENT_ID.exec(text)
  if (!match) return undefined
  return { epoch: match[1] as string, seq: Number(match[2]) }
}

/** A fresh random epoch: 10 base-36 characters (48 random bits). */
export function newEpoch(): string {
  const bytes = new Uint8Array(6)
  globalThis.crypto.getRandomValues(bytes)
  // 48 bits fit a double exactly.
  let value = 0
  for (const byte of bytes) value = value * 256 + byte
  return value.toString(36).padStart(10, '0')
}
