/**
 * A lean HTTP/1.1 response reader over a raw socket, for the load generator: Node's own HTTP
 * client hands JavaScript one callback per chunk of the chunked encoding, which would make the
 * client, not the server, the bottleneck when a server writes one chunk per 64-byte event.
 * This reader decodes the chunked framing in place and passes body bytes on as slices of the
 * socket's buffers, without copying.
 */

const CR = 13
const LF = 10

/** What a {@link ResponseDecoder} reports. */
export interface ResponseHandlers {
  head(status: number, headers: string): void
  body(buf: Buffer, start: number, end: number): void
  end(): void
}

const State = { Head: 0, Size: 1, SizeLineEnd: 2, Data: 3, DataEnd: 4, Raw: 5, Done: 6 } as const
type State = (typeof State)[keyof typeof State]

/** Decodes one HTTP/1.1 response (chunked, or delimited by the connection's end). */
export class ResponseDecoder {
  #state: State = State.Head
  #head = ''
  #size = 0
  #sawSizeDigit = false
  #remaining = 0
  #skip = 0
  readonly #on: ResponseHandlers

  constructor(handlers: ResponseHandlers) {
    this.#on = handlers
  }

  /** The response's status, once its head has been read (`0` before). */
  status = 0

  /** Whether the head has been read. */
  get headSeen(): boolean {
    return this.#state !== State.Head
  }

  /** Whether the final chunk has been read. */
  get done(): boolean {
    return this.#state === State.Done
  }

  /** Feeds bytes read from the socket. */
  feed(buf: Buffer): void {
    let pos = 0
    const length = buf.length
    while (pos < length) {
      switch (this.#state) {
        case State.Head: {
          // Heads are small and arrive once per connection: text is fine here.
          this.#head += buf.toString('latin1', pos)
          const end = this.#head.indexOf('\r\n\r\n')
          if (end < 0) return
          const headText = this.#head.slice(0, end)
          const consumed = end + 4 - (this.#head.length - (length - pos))
          this.#head = ''
          pos += consumed
          const status = Number(headText.slice(9, 12))
          const lower = headText.toLowerCase()
          this.#state = lower.includes('transfer-encoding: chunked') ? State.Size : State.Raw
          this.status = status
          this.#on.head(status, headText)
          break
        }
        case State.Size: {
          // "<hex>[;ext]\r\n": the size ends at the first byte that is not a hex digit.
          while (pos < length) {
            const c = buf[pos]!
            const digit =
              c >= 48 && c <= 57
                ? c - 48
                : c >= 97 && c <= 102
                  ? c - 87
                  : c >= 65 && c <= 70
                    ? c - 55
                    : -1
            if (digit < 0) {
              this.#state = State.SizeLineEnd
              break
            }
            this.#size = this.#size * 16 + digit
            this.#sawSizeDigit = true
            pos++
          }
          break
        }
        case State.SizeLineEnd: {
          const lf = buf.indexOf(LF, pos)
          if (lf < 0) return
          pos = lf + 1
          if (!this.#sawSizeDigit) throw new Error('bench: malformed chunk size line')
          this.#remaining = this.#size
          this.#size = 0
          this.#sawSizeDigit = false
          if (this.#remaining === 0) {
            this.#state = State.Done
            this.#on.end()
            return
          }
          this.#state = State.Data
          break
        }
        case State.Data: {
          const take = Math.min(this.#remaining, length - pos)
          this.#on.body(buf, pos, pos + take)
          pos += take
          this.#remaining -= take
          if (this.#remaining === 0) {
            this.#state = State.DataEnd
            this.#skip = 2
          }
          break
        }
        case State.DataEnd: {
          // The CRLF after each chunk's data.
          const c = buf[pos]!
          if ((this.#skip === 2 && c !== CR) || (this.#skip === 1 && c !== LF)) {
            throw new Error('bench: missing CRLF after a chunk')
          }
          pos++
          if (--this.#skip === 0) this.#state = State.Size
          break
        }
        case State.Raw: {
          this.#on.body(buf, pos, length)
          return
        }
        case State.Done:
          return
      }
    }
  }

  /** The socket ended: a response without chunked framing ends here. */
  close(): void {
    if (this.#state === State.Raw) {
      this.#state = State.Done
      this.#on.end()
    }
  }
}

/**
 * Splits an event stream into lines and reports each `data` line's value as a slice, without
 * copying (except for a line split across two reads). Other lines (`id:`, `event:`, comments,
 * `retry:`, blank lines) are skipped: contestants differ in them, the payload is what counts.
 * Lines end in LF or CRLF (no contestant here uses a bare CR).
 */
export class DataLines {
  #carry: Buffer | undefined
  readonly #onData: (buf: Buffer, start: number, end: number) => void
  /** Body bytes seen. */
  bytes = 0

  constructor(onData: (buf: Buffer, start: number, end: number) => void) {
    this.#onData = onData
  }

  feed(buf: Buffer, start: number, end: number): void {
    this.bytes += end - start
    let pos = start
    if (this.#carry !== undefined) {
      const lf = buf.indexOf(LF, pos)
      if (lf < 0 || lf >= end) {
        this.#carry = Buffer.concat([this.#carry, buf.subarray(pos, end)])
        return
      }
      const line = Buffer.concat([this.#carry, buf.subarray(pos, lf + 1)])
      this.#carry = undefined
      this.#line(line, 0, line.length - 1)
      pos = lf + 1
    }
    while (pos < end) {
      const lf = buf.indexOf(LF, pos)
      if (lf < 0 || lf >= end) {
        this.#carry = Buffer.from(buf.subarray(pos, end))
        return
      }
      this.#line(buf, pos, lf)
      pos = lf + 1
    }
  }

  #line(buf: Buffer, start: number, lf: number): void {
    let end = lf
    if (end > start && buf[end - 1] === CR) end--
    // "data:" then an optional space, as a client reads it.
    if (
      end - start >= 5 &&
      buf[start] === 100 &&
      buf[start + 1] === 97 &&
      buf[start + 2] === 116 &&
      buf[start + 3] === 97 &&
      buf[start + 4] === 58
    ) {
      const value = buf[start + 5] === 32 ? start + 6 : start + 5
      this.#onData(buf, value, end)
    }
  }
}
