/**
 * Runs the resumable chat with a fake model (a word every 150 ms):
 * `node --import tsx examples/resumable-chat/server.ts`, open the URL, ask, reload mid-answer.
 */

import { createServer } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { createChatApp } from './app.ts'

async function* fakeModel(prompt: string, signal: AbortSignal): AsyncIterable<string> {
  const words = `You asked: "${prompt}". Here is a long answer, one word at a time, so that you have time to reload the page and see it carry on where it was.`
  for (const word of words.split(' ')) {
    await sleep(150, undefined, { signal })
    yield `${word} `
  }
}

const app = createChatApp(fakeModel)
const server = createServer(app.handler)
server.listen(Number(process.env.PORT ?? 8000), '127.0.0.1', () => {
  console.log(`resumable chat on http://127.0.0.1:${process.env.PORT ?? 8000}`)
})
process.once('SIGINT', () => {
  server.closeAllConnections()
  server.close()
  void app.runs.close()
})
