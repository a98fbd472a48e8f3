/**
 * Topic patterns: what a subscription or a grant may name instead of one topic.
 *
 * A topic is split into segments at `/`. In a pattern, a whole segment may be:
 * - `*` — exactly one segment, whatever it holds (`orders/*` matches `orders/7`, not
 *   `orders/7/items` nor `orders`);
 * - `**` — only as the last segment: one or more segments (`orders/**` matches `orders/7` and
 *   `orders/7/items`, not `orders`; `**` alone matches every topic);
 * - `{name}` — a parameter (a name of letters, digits and `_`, not starting with a digit), only
 *   in grants: it is replaced by the grant's value for `name` before anything is matched. A
 *   value must be one literal segment (non-empty, without `/`, `*`, `{`, `}`), so a user id
 *   taken from a token can never widen a grant.
 *
 * The characters `*`, `{` and `}` are reserved: a published topic cannot contain them, and in a
 * pattern they appear only as the whole segments above. Anything else is malformed and refused
 * with `ERR_SSE_INVALID_OPTION`.
 *
 * @module
 */

import { describe, SseError } from '../errors.ts'

/** One segment of a pattern: literal text, `*`, the trailing `**`, or a parameter. */
export type Segment =
  | { readonly kind: 'literal'; readonly text: string }
  | { readonly kind: 'one' }
  | { readonly kind: 'rest' }
  | { readonly kind: 'param'; readonly name: string }

/** A parsed topic or pattern. */
export interface Pattern {
  /** The text it was parsed from (parameters bound, for a bound grant). */
  readonly source: string
  readonly segments: readonly Segment[]
  /** Whether it has a wildcard (`*`, `**`): otherwise it names exactly one topic. */
  readonly wild: boolean
}

const RESERVED = /[*{}]/
const PARAM = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/
const ONE: Segment = { kind: 'one' }
const REST: Segment = { kind: 'rest' }

function malformed(text: string, where: string, why: string): never {
  throw new SseError(
    'ERR_SSE_INVALID_OPTION',
    `Invalid topic pattern in ${where}: expected segments separated by "/", each literal text, ` +
      `"*", a final "**" or "{name}", received ${describe(text)}: ${why}.`,
  )
}

/** Whether `text` holds a reserved character, so is a pattern rather than a topic. */
export function isPattern(text: string): boolean {
  return RESERVED.test(text)
}

/**
 * Parses a topic or pattern; throws `ERR_SSE_INVALID_OPTION` naming `where` when it is
 * malformed. `params` says whether `{name}` segments are allowed (grants only).
 */
export function parsePattern(text: string, where: string, params: boolean): Pattern {
  const parts = text.split('/')
  const segments: Segment[] = []
  let wild = false
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!
    if (!RESERVED.test(part)) {
      segments.push({ kind: 'literal', text: part })
    } else if (part === '*') {
      segments.push(ONE)
      wild = true
    } else if (part === '**') {
      if (i !== parts.length - 1) malformed(text, where, '"**" may only be the last segment')
      segments.push(REST)
      wild = true
    } else {
      const name = PARAM.exec(part)?.[1]
      if (name === undefined) {
        malformed(text, where, `segment "${part}" mixes "*", "{" or "}" with other characters`)
      }
      if (!params) malformed(text, where, `parameters such as "${part}" belong in grants only`)
      segments.push({ kind: 'param', name })
    }
  }
  return { source: text, segments, wild }
}

/**
 * Replaces the parameters of a grant by their values. Throws `ERR_SSE_INVALID_OPTION` for a
 * parameter without a value, or a value that is not one literal segment.
 */
export function bindPattern(
  pattern: Pattern,
  params: Readonly<Record<string, string>> | undefined,
  where: string,
): Pattern {
  if (!pattern.segments.some((segment) => segment.kind === 'param')) return pattern
  const segments = pattern.segments.map((segment): Segment => {
    if (segment.kind !== 'param') return segment
    const value: unknown = params?.[segment.name]
    if (
      typeof value !== 'string' ||
      value === '' ||
      value.includes('/') ||
      RESERVED.test(value) ||
      !value.isWellFormed()
    ) {
      throw new SseError(
        'ERR_SSE_INVALID_OPTION',
        `Invalid parameter "${segment.name}" of the grant ${JSON.stringify(pattern.source)} in ` +
          `${where}: expected one topic segment (a non-empty string without "/", "*", "{", "}"), ` +
          `received ${describe(value)}.`,
      )
    }
    return { kind: 'literal', text: value }
  })
  const source = segments
    .map((segment) =>
      segment.kind === 'literal' ? segment.text : segment.kind === 'one' ? '*' : '**',
    )
    .join('/')
  return { source, segments, wild: pattern.wild }
}

/** Whether the parameter-free `pattern` matches the topic whose segments are `topic`. */
export function matches(pattern: Pattern, topic: readonly string[]): boolean {
  const { segments } = pattern
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!
    if (segment.kind === 'rest') return topic.length > i
    if (i >= topic.length) return false
    if (segment.kind === 'literal' && segment.text !== topic[i]) return false
  }
  return topic.length === segments.length
}

/**
 * Whether some topic matches both parameter-free patterns: a requested pattern is kept when a
 * grant overlaps it (what it receives is then checked against the grants per event).
 */
export function overlaps(a: Pattern, b: Pattern): boolean {
  const x = a.segments
  const y = b.segments
  for (let i = 0; ; i++) {
    const s = x[i]
    const t = y[i]
    // Both ended together: the same length. A `**` takes any non-empty rest of the other.
    if (s === undefined || t === undefined) return s === t
    if (s.kind === 'rest') return true
    if (t.kind === 'rest') return true
    if (s.kind === 'literal' && t.kind === 'literal' && s.text !== t.text) return false
  }
}

/**
 * Whether the grant (or requested pattern) `grant` names the private declaration `declared`
 * explicitly: it has a literal segment at every position where `declared` has a segment other
 * than its trailing `**`. So with `user/*\/**` private, `user/42/**` is explicit, while
 * `user/*\/inbox`, `user/**` and `**` are not.
 */
export function namesExplicitly(grant: Pattern, declared: Pattern): boolean {
  const fixed = declared.segments.length - (declared.segments.at(-1)?.kind === 'rest' ? 1 : 0)
  for (let i = 0; i < fixed; i++) {
    if (grant.segments[i]?.kind !== 'literal') return false
  }
  return true
}
