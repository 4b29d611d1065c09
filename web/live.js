// Live updates from GET /v1/events (Server-Sent Events). EventSource cannot send an
// Authorization header, so the stream is read with fetch() and parsed here. After an error
// or the end of the stream it reconnects with Last-Event-ID (the server replays what was
// missed) after a backoff of 1, 2, 4 … 30 s. A server without the route (404) gets polled
// instead: a tick every POLL_MS, and the page says so.

export const POLL_MS = 5000;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;
// The server sends ": keep-alive" every 15 s (by default); a stream silent for this long is
// taken as dead and reopened.
const SILENCE_MS = 60000;

// An incremental SSE parser (the WHATWG "event stream" rules, without `retry`): feed it text
// in chunks of any size; it calls onEvent({id, type, data}) once per complete event. `id` is
// the last id seen (ids persist across events, as in EventSource).
export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buf = '';
    this.lastId = null;
    this.type = '';
    this.data = [];
  }

  feed(text) {
    this.buf += text;
    for (;;) {
      const i = this.buf.search(/[\r\n]/);
      if (i < 0) return;
      // A CR at the end of the chunk may be the first half of a CRLF: wait for the next chunk.
      if (this.buf[i] === '\r' && i === this.buf.length - 1) return;
      const skip = this.buf[i] === '\r' && this.buf[i + 1] === '\n' ? 2 : 1;
      const line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + skip);
      this.line(line);
    }
  }

  line(line) {
    if (line === '') { this.dispatch(); return; }
    if (line[0] === ':') return;  // a comment, e.g. ": keep-alive"
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'event') this.type = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.lastId = value;
  }

  dispatch() {
    if (this.data.length) this.onEvent({ id: this.lastId, type: this.type || 'message', data: this.data.join('\n') });
    this.type = '';
    this.data = [];
  }
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

// One connection to the event stream for the signed-in token.
//   onEvent(event):  a parsed event: the data object (id, type, time, …) of the contract.
//   onOpen():        the stream (re)opened, or a poll tick: refresh what the page shows, since
//                    events before a first open are not replayed.
//   onStatus(s):     {mode: 'connecting'|'live'|'reconnecting'|'polling'|'off', text}.
//   onUnauthorized(): the token was rejected (401).
export class LiveFeed {
  constructor({ onEvent, onOpen, onStatus, onUnauthorized }) {
    Object.assign(this, { onEvent, onOpen, onStatus, onUnauthorized });
    this.controller = null;
    this.lastId = null;
  }

  start(token) {
    this.stop();
    this.lastId = null;
    this.controller = new AbortController();
    this.run(token, this.controller.signal);
  }

  stop() {
    if (this.controller) this.controller.abort();
    this.controller = null;
    this.status('off', 'not signed in');
  }

  status(mode, text) {
    this.mode = mode;
    this.onStatus({ mode, text });
  }

  async run(token, signal) {
    let backoff = BACKOFF_MIN_MS;
    while (!signal.aborted) {
      this.status('connecting', 'connecting to the event stream…');
      const res = await this.open(token, signal);
      if (signal.aborted) return;
      if (res && res.status === 404) { await this.poll(signal); return; }
      if (res && res.status === 401) { this.onUnauthorized(); return; }
      const type = res ? res.headers.get('Content-Type') || '' : '';
      if (res && res.ok && res.body && type.startsWith('text/event-stream')) {
        this.status('live', 'live');
        this.onOpen();
        if (await this.read(res.body, signal)) backoff = BACKOFF_MIN_MS;
        if (signal.aborted) return;
      }
      this.status('reconnecting', `stream lost; reconnecting in ${Math.round(backoff / 1000)} s`);
      await sleep(backoff, signal);
      backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    }
  }

  async open(token, signal) {
    const headers = { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' };
    if (this.lastId != null) headers['Last-Event-ID'] = this.lastId;
    try {
      return await fetch('/v1/events', { headers, cache: 'no-store', signal });
    } catch {
      return null;  // network error or aborted
    }
  }

  // Reads the stream until it ends or fails; true when at least one event arrived.
  async read(body, signal) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let got = false;
    const parser = new SseParser((e) => {
      if (e.id != null) this.lastId = e.id;
      let data;
      try { data = JSON.parse(e.data); } catch { return; }  // not ours: skip it
      got = true;
      this.onEvent(data);
    });
    let silence = null;
    const arm = () => {
      clearTimeout(silence);
      silence = setTimeout(() => reader.cancel().catch(() => {}), SILENCE_MS);
    };
    const abort = () => reader.cancel().catch(() => {});
    signal.addEventListener('abort', abort, { once: true });
    try {
      arm();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        arm();
        parser.feed(decoder.decode(value, { stream: true }));
      }
    } catch {
      // the connection broke: the caller reconnects
    } finally {
      clearTimeout(silence);
      signal.removeEventListener('abort', abort);
    }
    return got;
  }

  // The server has no event stream: tick every POLL_MS while the tab is visible.
  async poll(signal) {
    this.status('polling', `event stream not available; refreshing every ${POLL_MS / 1000} s`);
    while (!signal.aborted) {
      await sleep(POLL_MS, signal);
      if (!signal.aborted && document.visibilityState === 'visible') this.onOpen();
    }
  }
}
