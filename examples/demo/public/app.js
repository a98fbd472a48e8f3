// The demo page: one EventSource for the whole page. Plain JavaScript, no build step.

const $ = (id) => document.getElementById(id)
const state = { received: 0, lastEventId: sessionStorage.getItem('oven-last-id') ?? '' }
let source

function connect() {
  // A new EventSource cannot set headers, so a tab that was reloaded or reopened by the
  // "drop" button sends its last id as the `lastEventId` query parameter, which Oven reads like
  // the `Last-Event-ID` header. The browser's own reconnects send the header by themselves.
  const url = state.lastEventId
    ? `/events?lastEventId=${encodeURIComponent(state.lastEventId)}`
    : '/events'
  source = new EventSource(url)
  source.onopen = () => setStatus('open', 'connected')
  source.onerror = () => setStatus('connecting', 'reconnecting…')
  for (const [name, handler] of Object.entries(handlers)) {
    source.addEventListener(name, (event) => {
      state.received++
      $('received').textContent = String(state.received)
      if (event.lastEventId) {
        state.lastEventId = event.lastEventId
        sessionStorage.setItem('oven-last-id', event.lastEventId)
        $('last-id').textContent = event.lastEventId
      }
      handler(JSON.parse(event.data), event)
    })
  }
}

function setStatus(value, text) {
  $('status').dataset.state = value
  $('status').textContent = text
}

const handlers = {
  clock(data) {
    $('clock').textContent = new Date(data.time).toLocaleTimeString()
    $('clock-instance').textContent = data.instance
  },
  chat(data, event) {
    const item = document.createElement('li')
    item.dataset.id = event.lastEventId
    const time = new Date(data.at).toLocaleTimeString()
    const who = document.createElement('b')
    who.textContent = data.user
    item.append(who, `: ${data.text} `)
    const when = document.createElement('span')
    when.className = 'muted'
    when.textContent = time
    item.append(when)
    $('messages').append(item)
    $('messages').scrollTop = $('messages').scrollHeight
  },
  job(data) {
    $('job-progress').value = data.percent
    $('job-percent').textContent = `${data.percent} %`
    $('job-stage').textContent = data.stage
    $('job-id').textContent = `${data.jobId} on ${data.instance}`
  },
  // The Broadcaster could not resume this tab without loss (the server restarted with the
  // in-memory broker, or the tab was away longer than the history covers). Say so.
  'oven-reset'(data) {
    const item = document.createElement('li')
    item.className = 'muted'
    item.textContent = `— history ${data.reason}: earlier messages may be missing —`
    $('messages').append(item)
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
  setTimeout(connect, 3000)
})

connect()
