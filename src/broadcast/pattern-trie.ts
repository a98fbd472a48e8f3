/**
 * A segment trie of patterns: finds every pattern matching a topic without looking at the
 * patterns that cannot match.
 *
 * Each node is one segment position; its children are the literal segments (a `Map`), one `*`
 * child, and the entries whose pattern ends there or continues with `**`. Matching a topic of
 * `d` segments walks at most the literal child and the `*` child per level, so its cost grows
 * with the depth and with how many patterns really match — not with how many patterns there
 * are. Measured in `bench/patterns.ts` (docs/authorization.md has the numbers): 10 000
 * patterns, about the same cost per match as 10.
 *
 * @internal
 * @module
 */

import type { Pattern } from './topic-pattern.ts'

class TrieNode<T> {
  literal: Map<string, TrieNode<T>> | undefined
  one: TrieNode<T> | undefined
  /** Entries whose pattern ends at this node. */
  here: Set<T> | undefined
  /** Entries whose pattern continues with `**` from this node. */
  rest: Set<T> | undefined

  get empty(): boolean {
    return (
      this.literal === undefined &&
      this.one === undefined &&
      this.here === undefined &&
      this.rest === undefined
    )
  }
}

/** Patterns (parameter-free) with a value each; see the module comment. */
export class PatternTrie<T> {
  readonly #root = new TrieNode<T>()
  #size = 0

  /** How many entries it holds. */
  get size(): number {
    return this.#size
  }

  /** Adds `value` under `pattern`. Adding the same pair twice keeps one. */
  add(pattern: Pattern, value: T): void {
    let node = this.#root
    for (const segment of pattern.segments) {
      if (segment.kind === 'rest') {
        node.rest ??= new Set()
        if (!node.rest.has(value)) this.#size++
        node.rest.add(value)
        return
      }
      if (segment.kind === 'one') {
        node = node.one ??= new TrieNode()
      } else if (segment.kind === 'literal') {
        node.literal ??= new Map()
        let child = node.literal.get(segment.text)
        if (!child) {
          child = new TrieNode()
          node.literal.set(segment.text, child)
        }
        node = child
      } else {
        throw new Error(`PatternTrie: unbound parameter {${segment.name}}`)
      }
    }
    node.here ??= new Set()
    if (!node.here.has(value)) this.#size++
    node.here.add(value)
  }

  /** Removes `value` from under `pattern`, and the nodes left empty. */
  delete(pattern: Pattern, value: T): void {
    const path: Array<{ parent: TrieNode<T>; key: string | undefined }> = []
    let node: TrieNode<T> | undefined = this.#root
    let set: Set<T> | undefined
    for (const segment of pattern.segments) {
      if (segment.kind === 'rest') {
        set = node.rest
        if (set?.delete(value)) this.#size--
        if (set?.size === 0) node.rest = undefined
        break
      }
      const parent: TrieNode<T> = node
      const key = segment.kind === 'literal' ? segment.text : undefined
      node = key === undefined ? parent.one : parent.literal?.get(key)
      if (!node) return
      path.push({ parent, key })
    }
    if (pattern.segments.at(-1)?.kind !== 'rest') {
      set = node.here
      if (set?.delete(value)) this.#size--
      if (set?.size === 0) node.here = undefined
    }
    // Prune from the deepest node up, while nodes are empty.
    for (let i = path.length - 1; i >= 0; i--) {
      const { parent, key } = path[i]!
      const child = key === undefined ? parent.one : parent.literal?.get(key)
      if (!child?.empty) return
      if (key === undefined) parent.one = undefined
      else {
        parent.literal!.delete(key)
        if (parent.literal!.size === 0) parent.literal = undefined
      }
    }
  }

  /**
   * Calls `visit` with every entry whose pattern matches the topic of `segments`. An entry
   * under several matching patterns is visited once per pattern.
   */
  match(segments: readonly string[], visit: (value: T) => void): void {
    this.#walk(this.#root, segments, 0, visit)
  }

  #walk(node: TrieNode<T>, segments: readonly string[], i: number, visit: (value: T) => void) {
    if (i === segments.length) {
      if (node.here) for (const value of node.here) visit(value)
      return
    }
    // `**` takes the rest: at least segment `i`, which exists.
    if (node.rest) for (const value of node.rest) visit(value)
    const literal = node.literal?.get(segments[i]!)
    if (literal) this.#walk(literal, segments, i + 1, visit)
    if (node.one) this.#walk(node.one, segments, i + 1, visit)
  }
}
