// The demo page: one event stream for the whole page, read with Oven's client
// (`oven-sse/client`, which the demo server bundles as /client.js). Plain JavaScript.
//
// A page that opens (or reloads) connects without an id and first receives a `snapshot`: the
// recent chat and the job's state, whose id is the position the stream then continues from.
// So a reloaded page shows what a page that never left shows. When the stream drops, the
// client reconnects by itself with `Last-Event-ID` and gets only what it missed.

import { connect as openStream } from '/client.js'

const $ = (id) => document.getElementById(id)
/** The server keeps this many chat messages for the snapshot; the page shows as many. */
const CHAT_KEPT = 100
const state = {
  received: 0,
  lastEventId: '',
  /** This connection began with a snapshot (each connection, the browser's reconnects too). */
  snapshotted: false,
  /** A notice to show once the snapshot asked for by a reset has replaced the chat. */
  resetNotice: '',
  /** The server said goodbye: the errors that follow are expected. */
  stopping: false,
}
let source

/** Opens the stream; `resume` sends the last id seen (the "drop" button), else a snapshot comes. */
function connect({ resume }) {
  source = openStream('/events', {
    // Sent as `Last-Event-ID` on the first connection too (an EventSource cannot).
    lastEventId: resume && state.lastEventId ? state.lastEventId : undefined,
    // A demo server restarts in seconds: try again at least every 2 s.
    maxRetryDelay: 2000,
    onOpen() {
      state.snapshotted = false
      state.stopping = false
      setStatus('open', 'connected')
    },
    onReconnecting() {
      setStatus('connecting', state.stopping ? 'server stopped: reconnecting…' : 'reconnecting…')
    },
    onEvent(event) {
      if (!Object.hasOwn(handlers, event.event)) return
      const handler = handlers[event.event]
      state.received++
      $('received').textContent = String(state.received)
      if (event.lastEventId) {
        state.lastEventId = event.lastEventId
        $('last-id').textContent = event.lastEventId
      }
      handler(JSON.parse(event.data), event)
    },
  })
}

function setStatus(value, text) {
  $('status').dataset.state = value
  $('status').textContent = text
}

function chatItem(data, id) {
  const item = document.createElement('li')
  item.dataset.id = id
  const who = document.createElement('b')
  who.textContent = data.user
  item.append(who, `: ${data.text} `)
  const when = document.createElement('span')
  when.className = 'muted'
  when.textContent = new Date(data.at).toLocaleTimeString()
  item.append(when)
  return item
}

function showJob(job) {
  $('job-progress').value = job ? job.percent : 0
  $('job-percent').textContent = `${job ? job.percent : 0} %`
  $('job-stage').textContent = job ? job.stage : 'idle'
  $('job-id').textContent = job ? `${job.jobId} on ${job.instance}` : ''
}

function notice(text) {
  const item = document.createElement('li')
  item.className = 'muted'
  item.textContent = text
  $('messages').append(item)
}

const handlers = {
  clock(data) {
    $('clock').textContent = new Date(data.time).toLocaleTimeString()
    $('clock-instance').textContent = data.instance
  },
  // The state so far, first on a stream opened without an id: it replaces what the page shows.
  snapshot(data) {
    state.snapshotted = true
    $('messages').replaceChildren(...data.messages.map((message) => chatItem(message, message.id)))
    if (state.resetNotice) notice(state.resetNotice)
    state.resetNotice = ''
    $('messages').scrollTop = $('messages').scrollHeight
    showJob(data.job)
  },
  chat(data, event) {
    $('messages').append(chatItem(data, event.lastEventId))
    // As many as the server's snapshot holds, so a reloaded page shows the same list.
    const shown = $('messages').querySelectorAll('li[data-id]')
    if (shown.length > CHAT_KEPT) shown[0].remove()
    $('messages').scrollTop = $('messages').scrollHeight
  },
  job(data) {
    showJob(data)
  },
  // The Broadcaster could not resume this page without loss (the server restarted with the
  // in-memory broker, or the page was away longer than the history covers). As Oven's docs
  // advise, reload the state: a new stream without an id starts with a snapshot. A reset on a
  // stream that began with a snapshot is only reported, so this cannot loop.
  'oven-reset'(data) {
    const text = `— history ${data.reason}: earlier messages may be missing —`
    if (state.snapshotted) {
      notice(text)
      return
    }
    state.resetNotice = text
    source.close()
    connect({ resume: false })
  },
  // The server is stopping; the browser reconnects when it is back (or to another process).
  shutdown(data) {
    state.stopping = true
    setStatus('closed', `server ${data.instance} stopping`)
  },
  stats(data) {
    const rows = {
      server: data.instance + (data.redis ? ' (Redis)' : ''),
      'uptime (s)': data.uptime,
      'open tabs (this server)': data.tabs,
      'open streams': data.openStreams,
      'chat subscribers': data.chatSubscribers,
      'connections so far': data.connections,
      'events sent': data.eventsSent,
      'chat messages': data.messages,
      jobs: data.jobs,
    }
    const list = $('stats')
    list.replaceChildren()
    for (const [name, value] of Object.entries(rows)) {
      const dt = document.createElement('dt')
      dt.textContent = name
      const dd = document.createElement('dd')
      dd.textContent = String(value)
      dd.dataset.stat = name
      list.append(dt, dd)
    }
  },
  // Oven's metrics (oven-sse/otel), read on the server the way a Prometheus scrape reads them.
  metrics(data) {
    const entries = (record) =>
      Object.entries(record)
        .map(([name, value]) => `${name} ${value}`)
        .join(', ') || '—'
    const { latency } = data
    const rows = {
      'open streams': data.openStreams,
      'events sent': data.eventsSent,
      'bytes sent': data.bytesSent,
      'closed, by reason': entries(data.closed),
      'drops, by reason': entries(data.drops),
      'broker feed': entries(data.broker),
      'broker interruptions': data.brokerInterruptions,
      'broadcast deliveries': latency.count,
      'delivery latency (ms)':
        latency.count === 0
          ? '—'
          : `mean ${latency.meanMs}, p99 ≤ ${latency.p99UnderMs}, max ${latency.maxMs}`,
    }
    const list = $('operator')
    list.replaceChildren()
    for (const [name, value] of Object.entries(rows)) {
      const dt = document.createElement('dt')
      dt.textContent = name
      const dd = document.createElement('dd')
      dd.textContent = String(value)
      dd.dataset.metric = name
      list.append(dt, dd)
    }
  },
}

$('chat-user').value =
  sessionStorage.getItem('oven-user') ?? `guest-${Math.floor(Math.random() * 1000)}`
$('chat-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  const user = $('chat-user').value
  const text = $('chat-text').value
  sessionStorage.setItem('oven-user', user)
  const response = await fetch('/chat', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user, text }),
  })
  if (response.ok) $('chat-text').value = ''
})

$('job-start').addEventListener('click', async () => {
  const response = await fetch('/job', { method: 'POST' })
  if (response.status === 409) $('job-stage').textContent = 'a job is already running'
})

$('drop').addEventListener('click', () => {
  source.close()
  setStatus('closed', 'dropped: back in 3 s')
  setTimeout(() => connect({ resume: true }), 3000)
})

connect({ resume: false })
