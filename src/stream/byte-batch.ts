/**
 * A stream's pending output once it holds bytes: the encoded events of a broadcaster, which
 * every subscriber's stream shares (`ServerSentEvent.bytes`), among text of the stream's own.
 *
 * Written as one fresh `Uint8Array`: the shared bytes are copied, never handed on, so nothing
 * downstream (a web stream's reader, a transform) can change what other streams send. A copy
 * costs far less than what it replaces: measured in the broadcast bench, each socket encoding
 * the same text again (`Buffer.byteLength`, then UTF-8 in `writev`, `TextEncoder` on the web
 * path) was a quarter to a third of the server's CPU.
 *
 * @internal
 * @module
 */

const utf8 = new TextEncoder()

/** Pending parts in order, and their size (characters of text count as bytes: a bound). */
export class ByteBatch {
  readonly #parts: Array<string | Uint8Array> = []
  #size = 0

  /** Bytes and characters held: what the pump's batch bound is checked against. */
  get size(): number {
    return this.#size
  }

  /** Whether {@link ByteBatch.toBytes} gives a shared event's own bytes (the only part). */
  get shared(): boolean {
    return this.#parts.length === 1 && typeof this.#parts[0] !== 'string'
  }

  add(part: string | Uint8Array): void {
    this.#parts.push(part)
    this.#size += part.length
  }

  /**
   * Everything held as one array: a new one, or the only part as it is (see
   * {@link ByteBatch.shared}).
   */
  toBytes(): Uint8Array {
    const only = this.#parts[0]
    if (this.#parts.length === 1 && typeof only !== 'string') return only!
    const parts = this.#parts.map((part) => (typeof part === 'string' ? utf8.encode(part) : part))
    let length = 0
    for (const part of parts) length += part.length
    const out = new Uint8Array(length)
    let at = 0
    for (const part of parts) {
      out.set(part, at)
      at += part.length
    }
    return out
  }
}
