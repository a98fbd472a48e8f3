/**
 * Topic authorization: what a Broadcaster's `authorize` hook answers, and how a subscription's
 * requested topics are narrowed to what it grants (docs/authorization.md).
 *
 * The rules, in one place:
 * - The hook's answer is `true` (everything requested), `false` (refused: 403), a list of
 *   grants (topics or patterns), `{ grant, params }` (patterns with `{name}` parameters bound
 *   to `params`), or `{ refuse: 401 | 403, reason }`. A hook that throws, or returns anything
 *   else, is an error (the framework's 500), never a refusal: a key server that is down must
 *   reach your logs, not look like a wrong password to the client.
 * - A requested topic is kept when a grant covers it; a requested pattern is kept when a grant
 *   overlaps it, and each event it brings is then checked against the grants. Nothing kept:
 *   refused with 403.
 * - A private topic (one matching the Broadcaster's `privateTopics`) is covered only by a grant
 *   that names it explicitly (see {@link namesExplicitly}), and reached by a requested pattern
 *   only if that pattern names it explicitly too: neither `**` requested nor `**` granted
 *   includes another user's `user/42/inbox`.
 *
 * @internal
 * @module
 */

import { describe, SseError } from '../errors.ts'
import { PatternTrie } from './pattern-trie.ts'
import {
  bindPattern,
  namesExplicitly,
  overlaps,
  type Pattern,
  parsePattern,
} from './topic-pattern.ts'

/**
 * What an `authorize` hook answers; see {@link BroadcasterOptions.authorize}.
 *
 * - `true` — grants every requested topic, as requested;
 * - `false` — refuses: the client gets `403`;
 * - a list of topics and patterns — grants those: the requested topics are narrowed to them;
 * - `{ grant, params }` — the same, with `{name}` parameters in the grants bound to `params`
 *   (each value must be one literal segment);
 * - `{ refuse: 401 | 403, reason }` — refuses with that status (`401` for missing, expired or
 *   invalid credentials, `403` for valid ones that do not allow this). `reason` goes into the
 *   error's message (your logs), never to the client.
 */
export type Authorization =
  | boolean
  | readonly string[]
  | { readonly grant: readonly string[]; readonly params?: Readonly<Record<string, string>> }
  | { readonly refuse: 401 | 403; readonly reason?: string | undefined }

/** Decides which of the requested topics a request may subscribe to; see {@link Authorization}. */
export type AuthorizeHook<Req = unknown> = {
  authorize(request: Req, topics: readonly string[]): Authorization | PromiseLike<Authorization>
}['authorize']

/** What a subscription may receive, once authorized. */
export interface Narrowed {
  /** Requested topics without wildcards, granted: listened to directly, read on resume. */
  readonly topics: readonly string[]
  /** Requested patterns with wildcards that some grant overlaps. */
  readonly patterns: readonly Pattern[]
  /** The grants, to check each event a pattern brings; `undefined`: the request itself. */
  readonly grants: Grants | undefined
}

/** The private topic declarations of a Broadcaster: patterns without parameters. */
export class PrivateTopics {
  readonly #declared = new PatternTrie<Pattern>()

  constructor(patterns: readonly Pattern[]) {
    for (const pattern of patterns) this.#declared.add(pattern, pattern)
  }

  get size(): number {
    return this.#declared.size
  }

  /**
   * Whether `pattern` (a grant or a requested pattern) may reach the topic of `segments`:
   * always for a public topic; for a private one, only if it names every declaration that
   * makes the topic private explicitly.
   */
  reaches(pattern: Pattern, segments: readonly string[]): boolean {
    if (this.#declared.size === 0) return true
    let explicit = true
    this.#declared.match(segments, (declared) => {
      if (!namesExplicitly(pattern, declared)) explicit = false
    })
    return explicit
  }
}

/** A subscription's grants, bound and parsed, in a trie: see {@link Grants.covers}. */
export class Grants {
  readonly #trie = new PatternTrie<Pattern>()
  readonly #list: readonly Pattern[]

  constructor(list: readonly Pattern[]) {
    this.#list = list
    for (const grant of list) this.#trie.add(grant, grant)
  }

  /** Whether a grant covers the topic of `segments`, private topics included. */
  covers(segments: readonly string[], privateTopics: PrivateTopics): boolean {
    let covered = false
    this.#trie.match(segments, (grant) => {
      if (!covered && privateTopics.reaches(grant, segments)) covered = true
    })
    return covered
  }

  /** Whether a grant overlaps the requested pattern. */
  overlaps(pattern: Pattern): boolean {
    return this.#list.some((grant) => overlaps(grant, pattern))
  }
}

/** Splits a topic into the segments patterns match. */
export function segmentsOf(topic: string): string[] {
  return topic.split('/')
}

/** Runs the hook, bounded by `timeout` ms; rejects as the module comment says. */
export function runHook<Req>(
  hook: AuthorizeHook<Req>,
  request: Req,
  topics: readonly string[],
  timeout: number,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(
        new SseError(
          'ERR_SSE_TIMEOUT',
          `Broadcaster authorize(request, topics) did not settle within ${timeout} ms (the ` +
            'authorizeTimeout option): the subscription was not opened.',
        ),
      )
    }, timeout)
    const settle = (done: () => void) => {
      clearTimeout(timer)
      done()
    }
    try {
      Promise.resolve(hook(request, topics)).then(
        (value) => settle(() => resolve(value)),
        (error: unknown) => settle(() => reject(error)),
      )
    } catch (error) {
      settle(() => reject(error))
    }
  })
}

function badAnswer(received: unknown, why = ''): never {
  throw new SseError(
    'ERR_SSE_INVALID_OPTION',
    'Invalid answer from the Broadcaster option "authorize": expected true, false, an array of ' +
      'topics or patterns, { grant, params } or { refuse: 401 | 403, reason }, received ' +
      `${describe(received)}${why}.`,
  )
}

/**
 * Narrows the requested topics and patterns by the hook's answer.
 *
 * @param requested - the requested topics, parsed (no parameters).
 * @param maxGrants - the most grants an answer may hold.
 * @throws {@link SseError} `ERR_SSE_UNAUTHORIZED` / `ERR_SSE_FORBIDDEN` for a refusal,
 *   `ERR_SSE_INVALID_OPTION` for an answer that is none of the forms.
 */
export function narrow(
  answer: unknown,
  requested: readonly Pattern[],
  privateTopics: PrivateTopics,
  maxGrants: number,
): Narrowed {
  if (answer === false) throw refusal(403, 'authorize returned false')
  if (answer === true) return requestedAsIs(requested)
  let list: unknown
  let params: unknown
  if (Array.isArray(answer)) list = answer
  else if (typeof answer === 'object' && answer !== null && 'refuse' in answer) {
    const { refuse, reason } = answer as { refuse: unknown; reason?: unknown }
    if (refuse !== 401 && refuse !== 403) badAnswer(refuse, ' as "refuse"')
    if (reason !== undefined && typeof reason !== 'string') badAnswer(reason, ' as "reason"')
    throw refusal(refuse, reason ?? 'authorize refused')
  } else if (typeof answer === 'object' && answer !== null && 'grant' in answer) {
    ;({ grant: list, params } = answer as { grant: unknown; params?: unknown })
    if (params !== undefined && (typeof params !== 'object' || params === null)) {
      badAnswer(params, ' as "params"')
    }
  } else badAnswer(answer)
  if (!Array.isArray(list)) badAnswer(list, ' as "grant"')
  if (list.length > maxGrants) {
    throw new SseError(
      'ERR_SSE_INVALID_OPTION',
      `Invalid answer from the Broadcaster option "authorize": expected at most ${maxGrants} ` +
        `grants (the maxTopics option), received ${list.length}.`,
    )
  }
  const grants = new Grants(
    list.map((text: unknown) => {
      if (typeof text !== 'string' || text === '') badAnswer(text, ' as a grant')
      const where = 'an authorize grant'
      return bindPattern(
        parsePattern(text, where, true),
        params as Record<string, string> | undefined,
        where,
      )
    }),
  )
  const topics: string[] = []
  const patterns: Pattern[] = []
  for (const pattern of requested) {
    if (!pattern.wild) {
      if (grants.covers(segmentsOf(pattern.source), privateTopics)) topics.push(pattern.source)
    } else if (grants.overlaps(pattern)) patterns.push(pattern)
  }
  if (topics.length === 0 && patterns.length === 0) {
    throw refusal(403, 'none of the requested topics is granted')
  }
  return { topics, patterns, grants }
}

/** Without a hook (or with `true`): what was requested, the private rule applied to patterns. */
export function requestedAsIs(requested: readonly Pattern[]): Narrowed {
  const topics: string[] = []
  const patterns: Pattern[] = []
  for (const pattern of requested) {
    if (pattern.wild) patterns.push(pattern)
    else topics.push(pattern.source)
  }
  return { topics, patterns, grants: undefined }
}

/** The refusal a transport turns into `401` or `403` before the head. */
export function refusal(status: 401 | 403, reason: string): SseError {
  return status === 401
    ? new SseError('ERR_SSE_UNAUTHORIZED', `Subscription refused (401): ${reason}.`)
    : new SseError('ERR_SSE_FORBIDDEN', `Subscription refused (403): ${reason}.`)
}
