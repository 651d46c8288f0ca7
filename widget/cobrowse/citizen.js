/**
 * Co-browsing, the citizen's side: loaded by the chat widget only after the citizen agreed.
 *
 * Records this page with rrweb (every input value masked in the browser; only the fields
 * the city allow-lists for this page in clear; the chat widget itself blocked) and sends
 * it over /ws/cobrowse to the gateway, which masks again and relays it live to the one
 * agent the citizen agreed to. Draws the agent's pointer and highlight as an overlay that
 * is announced to screen readers and never takes focus. The agent cannot type or click.
 *
 * Never slows the page: events are batched; when the socket backs up, the queue is dropped
 * and a fresh full snapshot is taken once it drains (the gateway does the same for a slow
 * console). Built into widget/dist/citizen.js by `make cobrowse`.
 */
import { record } from '@rrweb/record';

const FLUSH_MS = 50; // batching: fewer frames, at most this much added latency
const BACKLOG_BYTES = 1024 * 1024; // the socket's unsent bytes before we drop and resnapshot
const MAX_FRAME_CHARS = 900 * 1024; // below the gateway's COBROWSE_MAX_FRAME_BYTES default
const RETRIES_MS = [500, 1000, 2000, 4000];
const PAUSE_MS = 2000; // after the gateway said "too much"
const MASK_CLASS = 'cobrowse-mask';
const BLOCK_CLASS = 'cobrowse-block';

/**
 * Starts sharing this page. `o`: { server, token, layer (an element to draw in, outside
 * the recording), texts: { pointer, highlight } with {name}/{label}, agentName,
 * announce(text), onEnd(reason) }. Returns { allowPointer(), stop() }.
 */
function start(o) {
  let ws = null;
  let stopRecording = null;
  let queue = [];
  let flushTimer = 0;
  let stopped = false;
  let attempt = 0;
  let clearFields = {};
  let pointerAllowed = false;
  let needFull = false;
  let pausedUntil = 0;
  let lastPointerNote = 0;
  const marks = new Map(); // kind → {el, target?}
  let follow = 0;

  function connect() {
    const u = new URL(String(o.server).replace(/\/+$/, '') + '/ws/cobrowse', location.href);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    ws = new WebSocket(u.href);
    ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', token: o.token }));
    ws.onmessage = (e) => {
      let f;
      try { f = JSON.parse(e.data); } catch (err) { return; }
      onFrame(f);
    };
    ws.onclose = (e) => {
      if (stopped) return;
      if (e.code === 1000 || e.code >= 4400 || attempt >= RETRIES_MS.length) { finish(e.code === 1000 ? 'ended' : 'refused'); return; }
      setTimeout(() => { if (!stopped) connect(); }, RETRIES_MS[attempt++]);
    };
  }

  function onFrame(f) {
    switch (f.type) {
      case 'session':
        attempt = 0;
        clearFields = f.clear_fields && typeof f.clear_fields === 'object' ? f.clear_fields : {};
        pointerAllowed = pointerAllowed || !!f.pointer;
        if (!stopRecording) startRecording(); else snapshot();
        return;
      case 'snapshot': snapshot(); return;
      case 'guide': if (pointerAllowed) guide(f); return;
      case 'error':
        if (f.code === 'rate_limited' || f.code === 'too_large') {
          queue = [];
          pausedUntil = Date.now() + PAUSE_MS;
          needFull = true;
          setTimeout(() => { if (needFull) snapshot(); }, PAUSE_MS);
        }
        return;
      case 'end': finish('ended'); return;
      default:
    }
  }

  function allowed(el) {
    const names = clearFields[location.pathname];
    return !!(el && Array.isArray(names) && names.includes(el.name) && !el.closest('.' + MASK_CLASS));
  }

  function startRecording() {
    stopRecording = record({
      emit: push,
      maskAllInputs: true,
      maskInputFn: (text, el) => (allowed(el) ? text : '*'.repeat(text.length)),
      maskTextClass: MASK_CLASS,
      blockClass: BLOCK_CLASS,
      slimDOMOptions: 'all',
      recordCanvas: false,
      collectFonts: false,
      inlineImages: false,
      recordCrossOriginIframes: false,
      sampling: { mousemove: 100, scroll: 150, input: 'last', media: 800 },
    });
  }

  function snapshot() {
    if (!stopRecording || stopped) return;
    needFull = false;
    queue = [];
    record.takeFullSnapshot(true);
  }

  function push(event) {
    if (stopped || needFull || Date.now() < pausedUntil) return;
    queue.push(event);
    if (event.type === 2) flush(); // a full snapshot goes at once
    else if (!flushTimer) flushTimer = setTimeout(flush, FLUSH_MS);
  }

  function flush() {
    clearTimeout(flushTimer);
    flushTimer = 0;
    if (!ws || ws.readyState !== 1 || !queue.length) return;
    if (ws.bufferedAmount > BACKLOG_BYTES) {
      // The network does not keep up: drop what waits and start over from a snapshot.
      queue = [];
      needFull = true;
      setTimeout(function retry() { if (!needFull || stopped) return; if (ws && ws.bufferedAmount < BACKLOG_BYTES / 4) snapshot(); else setTimeout(retry, 250); }, 250);
      return;
    }
    let batch = [];
    let size = 0;
    const send = () => { if (batch.length) ws.send(JSON.stringify({ type: 'events', events: batch })); batch = []; size = 0; };
    for (const event of queue) {
      const n = JSON.stringify(event).length;
      if (size + n > MAX_FRAME_CHARS) send();
      batch.push(event);
      size += n;
    }
    send();
    queue = [];
  }

  // ---- guidance ------------------------------------------------------------------------

  function mark(kind) {
    let m = marks.get(kind);
    if (!m) {
      const el = document.createElement('div');
      el.className = 'cb-' + kind;
      el.setAttribute('aria-hidden', 'true');
      o.layer.append(el);
      m = { el, target: null };
      marks.set(kind, m);
    }
    return m;
  }

  function clearMarks() {
    for (const m of marks.values()) m.el.remove();
    marks.clear();
    cancelAnimationFrame(follow);
    follow = 0;
  }

  function place() {
    const h = marks.get('highlight');
    if (h && h.target) {
      const r = h.target.getBoundingClientRect();
      Object.assign(h.el.style, { left: r.left - 4 + 'px', top: r.top - 4 + 'px', width: r.width + 8 + 'px', height: r.height + 8 + 'px' });
    }
    const p = marks.get('pointer');
    if (p && p.at) Object.assign(p.el.style, { left: p.at.x - scrollX + 'px', top: p.at.y - scrollY + 'px' });
    follow = requestAnimationFrame(place);
  }

  function labelOf(el) {
    const named = (el.labels && el.labels[0] && el.labels[0].textContent) || el.getAttribute('aria-label') || el.textContent || '';
    return named.replace(/\s+/g, ' ').trim().slice(0, 80);
  }

  function guide(f) {
    const name = o.agentName || '';
    if (f.kind === 'clear') { clearMarks(); return; }
    if (f.kind === 'highlight') {
      const target = record.mirror.getNode(f.node);
      if (!target || target.nodeType !== 1 || !target.isConnected) return;
      const m = mark('highlight');
      m.target = target;
      const r = target.getBoundingClientRect();
      if (r.bottom < 0 || r.top > innerHeight) target.scrollIntoView({ block: 'center' });
      o.announce(o.texts.highlight.replace('{name}', name).replace('{label}', labelOf(target)));
    } else if (f.kind === 'pointer') {
      const m = mark('pointer');
      m.at = { x: f.x, y: f.y };
      if (Date.now() - lastPointerNote > 5000) o.announce(o.texts.pointer.replace('{name}', name));
      lastPointerNote = Date.now();
    }
    if (!follow) follow = requestAnimationFrame(place);
  }

  function finish(reason) {
    if (stopped) return;
    stopped = true;
    clearTimeout(flushTimer);
    if (stopRecording) stopRecording();
    clearMarks();
    if (ws) { ws.onclose = null; try { ws.close(1000); } catch (e) { /* closed */ } }
    o.onEnd(reason);
  }

  connect();
  return {
    allowPointer() { pointerAllowed = true; },
    stop() { finish('stopped'); },
  };
}

window.BuergerserviceCobrowse = { start };
