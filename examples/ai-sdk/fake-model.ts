/**
 * A language model that needs no network or key, for the example and its test: the AI SDK's
 * own `MockLanguageModelV3` (from `ai/test`) streaming the parts a provider would stream.
 */

import { MockLanguageModelV3, simulateReadableStream } from 'ai/test'

/** One part of a model's stream (what a provider's `doStream` yields). */
export type ModelStreamPart =
  Awaited<ReturnType<MockLanguageModelV3['doStream']>>['stream'] extends ReadableStream<infer P>
    ? P
    : never

/** The parts before the text: the stream's start and the text block's start. */
export const TEXT_START: ModelStreamPart[] = [
  { type: 'stream-start', warnings: [] },
  { type: 'text-start', id: 'text' },
]

/** The parts after the text: the text block's end and the model's finish. */
export const TEXT_END: ModelStreamPart[] = [
  { type: 'text-end', id: 'text' },
  {
    type: 'finish',
    finishReason: { unified: 'stop', raw: 'stop' },
    usage: {
      inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 },
      outputTokens: { total: 1, text: 1, reasoning: 0 },
    },
  },
]

/** A text delta of the text block. */
export const delta = (text: string): ModelStreamPart => ({
  type: 'text-delta',
  id: 'text',
  delta: text,
})

/** A model that answers every prompt with `text`, one word every `wordMs` milliseconds. */
export function fakeModel(text: string, wordMs: number): MockLanguageModelV3 {
  return new MockLanguageModelV3({
    doStream: async () => ({
      stream: simulateReadableStream({
        chunks: [
          ...TEXT_START,
          ...text.split(' ').map((word, i) => delta(i === 0 ? word : ` ${word}`)),
          ...TEXT_END,
        ],
        chunkDelayInMs: wordMs,
      }),
    }),
  })
}
