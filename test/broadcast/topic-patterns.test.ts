/**
 * Topic patterns: the segment trie finds exactly what a naive scan of every pattern finds
 * (fast-check, seeded), malformed patterns and bad options are refused naming the problem, the
 * private rule, and the bounded answer to a huge topic list.
 */

import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { PatternTrie } from '../../src/broadcast/pattern-trie.ts'
import {
  bindPattern,
  matches,
  namesExplicitly,
  overlaps,
  parsePattern,
} from '../../src/broadcast/topic-pattern.ts'
import { Broadcaster, type Broker, MemoryBroker } from '../../src/index.ts'

const SEGMENTS = ['a', 'b', 'c', '']
const segment = fc.constantFrom(...SEGMENTS)
const topicArb = fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/'))
const patternArb = fc
  .tuple(fc.array(fc.constantFrom(...SEGMENTS, '*'), { minLength: 1, maxLength: 4 }), fc.boolean())
  .map(([parts, rest]) => (rest ? [...parts.slice(0, -1), '**'] : parts).join('/'))

/** The reference: one regular expression per pattern, tried on every topic. */
function naive(pattern: string, topic: string): boolean {
  const source = pattern
    .split('/')
    .map((part) => (part === '*' ? '[^/]*' : part === '**' ? '[^/]*(?:/[^/]*)*' : part))
    .join('/')
  return new RegExp(`^${source}$`).test(topic)
}

describe('the pattern trie', () => {
  test('finds exactly the patterns a naive scan finds, through adds and deletes', () => {
    fc.assert(
      fc.property(
        fc.array(patternArb, { maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        fc.array(topicArb, { minLength: 1, maxLength: 10 }),
        (patterns, deletions, topics) => {
          const trie = new PatternTrie<number>()
          const live = new Map<number, string>()
          patterns.forEach((text, index) => {
            trie.add(parsePattern(text, 'test', false), index)
            live.set(index, text)
          })
          for (const pick of deletions) {
            if (patterns.length === 0) break
            const index = pick % patterns.length
            trie.delete(parsePattern(patterns[index]!, 'test', false), index)
            live.delete(index)
          }
          expect(trie.size).toBe(live.size)
          for (const topic of topics) {
            const found: number[] = []
            trie.match(topic.split('/'), (index) => found.push(index))
            const expected = [...live].filter(([, text]) => naive(text, topic)).map(([i]) => i)
            expect(found.sort((x, y) => x - y)).toEqual(expected)
            for (const [, text] of live) {
              expect(matches(parsePattern(text, 'test', false), topic.split('/'))).toBe(
                naive(text, topic),
              )
            }
          }
        },
      ),
      { seed: 13, numRuns: 300 },
    )
  })

  test('two patterns overlap exactly when some topic matches both', () => {
    // Every topic of 1 to 5 segments over the alphabet: a witness exists among them if any does.
    let level = [...SEGMENTS]
    const topics = [...level]
    for (let depth = 2; depth <= 5; depth++) {
      level = level.flatMap((topic) => SEGMENTS.map((part) => `${topic}/${part}`))
      topics.push(...level)
    }
    fc.assert(
      fc.property(patternArb, patternArb, (a, b) => {
        const witness = topics.some((topic) => naive(a, topic) && naive(b, topic))
        expect(overlaps(parsePattern(a, 't', false), parsePattern(b, 't', false))).toBe(witness)
      }),
      { seed: 13, numRuns: 500 },
    )
  })
})

describe('pattern syntax', () => {
  test.each([
    ['orders/**/items', '"**" may only be the last segment'],
    ['orders/a*', 'segment "a*" mixes "*", "{" or "}" with other characters'],
    ['user/{id/x', 'segment "{id" mixes "*", "{" or "}" with other characters'],
    ['user/{1id}/x', 'segment "{1id}" mixes "*", "{" or "}" with other characters'],
    ['user/{id}', 'parameters such as "{id}" belong in grants only'],
  ])('%s is malformed: %s', (text, why) => {
    expect(() => parsePattern(text, 'subscribe()', false)).toThrow(
      `Invalid topic pattern in subscribe(): expected segments separated by "/", each literal ` +
        `text, "*", a final "**" or "{name}", received string ${JSON.stringify(text)}: ${why}.`,
    )
  })

  test('a parameter is bound to one literal segment, never to something wider', () => {
    const grant = parsePattern('user/{sub}/**', 'a grant', true)
    expect(bindPattern(grant, { sub: 'alice' }, 'a grant').source).toBe('user/alice/**')
    for (const value of ['*', 'a/b', '', '**', '{x}', undefined]) {
      expect(() => bindPattern(grant, { sub: value as string }, 'a grant')).toThrow(
        /Invalid parameter "sub" of the grant "user\/\{sub\}\/\*\*" in a grant: expected one topic segment/,
      )
    }
  })

  test('explicit names for private topics: literal wherever the declaration is fixed', () => {
    const declared = parsePattern('user/*/**', 'privateTopics', false)
    const explicit = (text: string) => namesExplicitly(parsePattern(text, 't', false), declared)
    expect(explicit('user/42/**')).toBe(true)
    expect(explicit('user/42/inbox')).toBe(true)
    expect(explicit('user/42/*')).toBe(true)
    expect(explicit('user/*/inbox')).toBe(false)
    expect(explicit('user/**')).toBe(false)
    expect(explicit('**')).toBe(false)
    expect(explicit('*/42/inbox')).toBe(false)
  })
})

describe('Broadcaster options and limits', () => {
  test.each([
    [
      { authorize: 'yes' },
      'Invalid option "authorize": expected a function (request, topics) => grants, received string "yes".',
    ],
    [
      { authorizeTimeout: 0 },
      'Invalid option "authorizeTimeout": expected an integer >= 1, received number 0.',
    ],
    [
      { authorizeTimeout: 1.5 },
      'Invalid option "authorizeTimeout": expected an integer >= 1, received number 1.5.',
    ],
    [
      { privateTopics: 'user/*' },
      'Invalid option "privateTopics": expected an array of topic patterns, received string "user/*".',
    ],
    [
      { privateTopics: ['user/{id}'] },
      /Invalid topic pattern in privateTopics: .*parameters such as "\{id\}" belong in grants only/,
    ],
  ])('%o is refused', (options, message) => {
    expect(() => new Broadcaster(options as never)).toThrow(message)
  })

  test('100 000 requested topics: refused at once, before the hook runs', async () => {
    let calls = 0
    const hub = new Broadcaster({
      authorize: () => {
        calls++
        return true
      },
    })
    const topics = Array.from({ length: 100_000 }, (_, i) => `t/${i}`)
    await expect(hub.subscribeAuthorized(topics)).rejects.toThrow(
      'Invalid option "topics": expected at most 1000 topics per subscription (the ' +
        "Broadcaster's maxTopics option), received 100000.",
    )
    expect(calls).toBe(0)
    await hub.close()
  })

  test('with a hook, subscribe() refuses: every subscription goes through the hook', async () => {
    const hub = new Broadcaster({ authorize: () => true })
    expect(() => hub.subscribe('news')).toThrow(/subscribeAuthorized/)
    await hub.close()
  })

  test('a topic with a reserved character cannot be published', async () => {
    const hub = new Broadcaster()
    await expect(hub.publish('orders/*', 'x')).rejects.toThrow(
      'Invalid topic in publish(): expected a topic without "*", "{" or "}" (reserved for ' +
        'patterns), received string "orders/*".',
    )
    await hub.close()
  })

  test('an answer of no known form is an error naming what was received', async () => {
    for (const [answer, received] of [
      [undefined, 'undefined'],
      ['orders/*', 'string "orders/*"'],
      [{ refuse: 500 }, 'number 500 as "refuse"'],
      [{ grant: 'orders/*' }, 'string "orders/*" as "grant"'],
    ] as const) {
      const hub = new Broadcaster({ authorize: () => answer as never })
      await expect(hub.subscribeAuthorized('orders/1')).rejects.toThrow(
        'Invalid answer from the Broadcaster option "authorize": expected true, false, an array ' +
          'of topics or patterns, { grant, params } or { refuse: 401 | 403, reason }, received ' +
          `${received}.`,
      )
      await hub.close()
    }
  })

  test('a pattern on a broker without listenAll is refused, naming the pattern', async () => {
    const memory = new MemoryBroker()
    const plain: Broker = {
      attach: (sink) => memory.attach(sink),
      publish: (...args) => memory.publish(...args),
      listen: (topic) => memory.listen(topic),
      unlisten: (topic) => memory.unlisten(topic),
      read: (...args) => memory.read(...args),
      close: () => memory.close(),
    }
    const hub = new Broadcaster({ broker: plain })
    expect(() => hub.subscribe(['news', 'orders/*'])).toThrow(
      /a pattern needs a broker that can listen to every topic .*the pattern "orders\/\*"/,
    )
    await hub.close()
  })
})
