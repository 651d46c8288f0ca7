/**
 * Co-browsing, the agent's view: loaded by the agent console when the citizen agreed.
 *
 * Replays the citizen's page live (rrweb's Replayer in live mode, in a sandboxed iframe
 * without scripts) from /ws/cobrowse/agent. The agent cannot type into or click the page:
 * a transparent layer over the view takes her clicks and turns them into a pointer at that
 * place or a highlight of the element there, which the gateway passes on only while the
 * citizen allows it. Built into widget/dist/console.js by `make cobrowse`.
 */
import { Replayer } from '@rrweb/replay';

/**
 * Opens the view. `o`: { server, token, conversationId, container, title, onPage(path),
 * onEnd(reason), onError(message) }. Returns { setMode('pointer'|'highlight'|null),
 * clear(), close(), replayer() }.
 */
function open(o) {
  let ws = null;
  let player = null;
  let closed = false;
  let mode = null;
  const stage = document.createElement('div');
  stage.className = 'cbv-stage';
  stage.setAttribute('data-testid', 'cobrowse-stage');
  const glass = document.createElement('div');
  glass.className = 'cbv-glass';
  glass.setAttribute('aria-hidden', 'true');
  const echo = document.createElement('div');
  echo.className = 'cbv-echo';
  echo.hidden = true;
  o.container.replaceChildren(stage, glass, echo);

  function connect() {
    const u = new URL(String(o.server).replace(/\/+$/, '') + '/ws/cobrowse/agent', location.href);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    ws = new WebSocket(u.href);
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token: o.token, conversation_id: o.conversationId }));
    ws.onmessage = (e) => {
      let f;
      try { f = JSON.parse(e.data); } catch (err) { return; }
      if (f.type === 'events' && Array.isArray(f.events)) f.events.forEach(add);
      else if (f.type === 'error') o.onError(String(f.message || f.code));
      else if (f.type === 'end') finish('ended');
    };
    ws.onclose = (e) => { if (!closed) finish(e.code === 1000 ? 'ended' : 'refused'); };
  }

  function add(event) {
    if (event.type === 4 && event.data && event.data.href) {
      try { o.onPage(new URL(event.data.href).pathname); } catch (err) { /* not a URL */ }
    }
    if (!player) {
      if (event.type !== 4 && event.type !== 2) return; // wait for a page's start
      player = new Replayer([], {
        root: stage, liveMode: true, mouseTail: false, showWarning: false, showDebug: false,
        UNSAFE_replayCanvas: false, triggerFocus: false, useVirtualDom: false,
        insertStyleRules: ['.cobrowse-block{background:#d9dde3 !important}'],
      });
      player.iframe.title = o.title || 'Shared page';
      player.iframe.tabIndex = -1; // nothing in it to operate; the view itself scrolls
      // Every event is older than this baseline, so the replayer applies it the moment it
      // arrives (in the order the page sent it) instead of scheduling it by the page's
      // clock: no added delay, and no dependence on the two machines' clocks agreeing.
      player.startLive(Number.MAX_SAFE_INTEGER);
      fit();
    }
    player.addEvent(event);
    if (event.type === 4) requestAnimationFrame(fit);
  }

  /** Scale the replayed page to the width of the view. */
  function fit() {
    if (!player) return;
    const frame = player.iframe;
    const w = parseFloat(frame.width) || frame.offsetWidth;
    const h = parseFloat(frame.height) || frame.offsetHeight;
    if (!w) return;
    const scale = Math.min(1, o.container.clientWidth / w);
    player.wrapper.style.transform = `scale(${scale})`;
    player.wrapper.style.transformOrigin = '0 0';
    stage.style.height = h * scale + 'px';
    stage.dataset.scale = String(scale);
  }

  glass.addEventListener('click', (e) => {
    if (!mode || !player || !ws || ws.readyState !== 1) return;
    const scale = Number(stage.dataset.scale) || 1;
    const box = stage.getBoundingClientRect();
    const x = (e.clientX - box.left) / scale;
    const y = (e.clientY - box.top) / scale;
    const doc = player.iframe.contentDocument;
    const win = player.iframe.contentWindow;
    if (mode === 'pointer') {
      ws.send(JSON.stringify({ type: 'guide', kind: 'pointer', x: x + win.scrollX, y: y + win.scrollY }));
      showEcho({ left: x - 8, top: y - 8, width: 16, height: 16 }, scale, true);
      return;
    }
    let el = doc.elementFromPoint(x, y);
    // A field's label or wrapper names the field itself where there is one.
    const field = el && el.closest && (el.closest('label') && el.closest('label').control);
    if (field) el = field;
    const id = el ? player.getMirror().getId(el) : -1;
    if (id > 0) {
      ws.send(JSON.stringify({ type: 'guide', kind: 'highlight', node: id }));
      const r = el.getBoundingClientRect();
      showEcho({ left: r.left - 4, top: r.top - 4, width: r.width + 8, height: r.height + 8 }, scale, false);
    }
  });

  function showEcho(r, scale, round) {
    Object.assign(echo.style, {
      left: r.left * scale + 'px', top: r.top * scale + 'px', width: r.width * scale + 'px', height: r.height * scale + 'px',
      borderRadius: round ? '50%' : '4px',
    });
    echo.hidden = false;
  }

  function finish(reason) {
    if (closed) return;
    closed = true;
    if (ws) { ws.onclose = null; try { ws.close(1000); } catch (e) { /* closed */ } }
    if (player) { try { player.destroy(); } catch (e) { /* gone */ } }
    o.onEnd(reason);
  }

  addEventListener('resize', fit);
  connect();
  return {
    setMode(m) { mode = m; glass.classList.toggle('on', !!m); },
    clear() {
      echo.hidden = true;
      if (ws && ws.readyState === 1) ws.send(JSON.stringify({ type: 'guide', kind: 'clear' }));
    },
    close() { removeEventListener('resize', fit); finish('closed'); },
    replayer() { return player; },
  };
}

window.BuergerserviceCobrowseView = { open };
