/*!
 * Bürgerservice agent console: <buergerservice-agent-console>.
 * Plain JavaScript, no dependencies, no build step, no third-party requests.
 * Speaks the agent API of docs/protocol.md: POST /api/agent/login, then GET /ws/agent, whose first
 * frame is {"type":"auth","token"} (the token never goes into a URL).
 *
 * The gateway serves the page at /agent and this file at /agent-console.js. The element renders
 * into the light DOM (the page owns the styles), so test hooks (data-testid) are plain selectors.
 * Every piece of conversation data reaches the DOM through textContent / Text nodes only.
 * Events (bubbling, composed): buergerservice-agent:queued (detail: the new queue items),
 * buergerservice-agent:assigned (detail: {conversation_id}).
 */
(() => {
  'use strict';

  const TAG = 'buergerservice-agent-console';
  const NS = 'buergerservice-agent:'; // sessionStorage key prefix; also the event name prefix

  // Reconnect backoff: a blip is retried quickly, a longer outage at most every 30 s, with
  // jitter so that a restarted gateway is not hit by every console at the same instant.
  const RETRY_MIN_MS = 500;
  const RETRY_MAX_MS = 30000;
  // Our typing signal to the citizen turns to "stopped" after this much idle time.
  const OWN_TYPING_IDLE_MS = 3000;
  // A citizen typing frame without its "active:false" is stale after this long.
  const CITIZEN_TYPING_MS = 8000;
  // After the tickets frame on (re)connect, the server sends `assigned` for every chat we still
  // have. A chat that got none within this time is no longer ours (e.g. re-queued after an outage).
  const CONFIRM_MS = 6000;
  // Queue items waiting longer than this are highlighted.
  const LONG_WAIT_S = 300;

  const REASONS = {
    citizen_request: 'Wunsch nach Mitarbeiter/in',
    // The bot's handover reasons (actions/handover.py).
    not_understood: 'Vom Bot zweimal nicht verstanden',
    complaint: 'Beschwerde',
    listed_building: 'Denkmalschutz – Einzelfallprüfung',
    advisor_unclear: 'Bauvorhaben – Einzelfallprüfung',
    case_api_unavailable: 'Meldung konnte nicht gespeichert werden',
    agent_disconnected: 'Verbindung zur Kollegin/zum Kollegen verloren',
    transfer: 'Weitergeleitet',
  };
  // Why a chat left the agent without their doing (the `unassigned` frame).
  const UNASSIGNED = {
    transferred: 'Die Leitung hat das Gespräch in eine andere Warteschlange weitergeleitet.',
    requeued: 'Sie waren zu lange nicht verbunden; das Gespräch wartet wieder in der Warteschlange.',
    citizen_ended: 'Die Bürgerin/der Bürger hat das Gespräch beendet.',
    released: 'Sie haben das Gespräch in einem anderen Fenster abgegeben.',
  };
  // An erased conversation (docs/data-protection.md): its transcript leaves the console too.
  const ERASED_TEXT = 'Das Gespräch wurde auf Wunsch gelöscht (Datenschutz). Sein Verlauf ist nicht mehr verfügbar.';
  const AUDIT_ACTIONS = {
    accept: 'hat das Gespräch übernommen', read_transcript: 'hat den Verlauf geöffnet',
    export: 'hat Daten exportiert', erase: 'hat Daten gelöscht',
    read_audit_log: 'hat dieses Protokoll gelesen', read_deletion_records: 'hat die Löschnachweise gelesen',
  };
  const CHANNELS = { web: 'Web-Chat', telegram: 'Telegram', facebook: 'Facebook Messenger', whatsapp: 'WhatsApp', matrix: 'Matrix' };
  const LANGUAGES = { de: 'Deutsch', en: 'Englisch' };
  const STEPS = { view: 'die Seite sehen', pointer: 'auf der Seite zeigen' };
  /** A co-browse event in the transcript: who asked, who agreed, who saw which page. */
  const cobrowseText = (e) => {
    const name = e.agent && e.agent.name ? str(e.agent.name) : 'Mitarbeiter/in';
    switch (e.state) {
      case 'requested': return `${name} fragt, ob sie/er ${STEPS[e.step] || 'die Seite sehen'} darf.`;
      case 'accepted': return `Bürger/in erlaubt: ${STEPS[e.step] || str(e.step)}.`;
      case 'declined': return 'Bürger/in hat abgelehnt.';
      case 'page': return `${name} sieht die Seite ${str(e.path)}.`;
      case 'link': return `${name} schlägt die Seite ${str(e.path)} vor.`;
      case 'ended': return `Bildschirm ansehen beendet${{ citizen: ' (von Bürger/in)', agent: ' (von Mitarbeiter/in)' }[e.by] || ''}.`;
      default: return 'Bildschirm ansehen.';
    }
  };
  const ERRORS = {
    already_taken: 'Dieses Gespräch wurde bereits von einer Kollegin oder einem Kollegen übernommen.',
    not_assigned: 'Dieses Gespräch ist Ihnen nicht (mehr) zugewiesen.',
    at_capacity: 'Sie betreuen bereits die höchstmögliche Zahl an Gesprächen. Beenden oder übergeben Sie zuerst ein Gespräch.',
    unknown_queue: 'Diese Warteschlange gibt es nicht, oder niemand bearbeitet sie.',
    bad_frame: 'Die Aktion konnte vom Server nicht verarbeitet werden.',
    too_large: 'Die Nachricht ist zu lang. Bitte kürzen Sie sie.',
    rate_limited: 'Zu viele Aktionen in kurzer Zeit. Bitte warten Sie einen Moment.',
    outside_window: 'WhatsApp stellt 24 Stunden nach der letzten Nachricht der Bürgerin oder des Bürgers nur noch die freigegebene Vorlage zu.',
    no_template: 'Für diesen Kanal ist keine Vorlage eingerichtet.',
  };
  // Intents of citizen turns that are no question to look up in the knowledge search.
  const NOT_QUESTIONS = ['greet', 'goodbye', 'thank', 'affirm', 'deny', 'request_human', 'bot_challenge', 'chitchat', 'feedback'];
  // Rasa's bookkeeping slots: nothing the citizen told us.
  const HIDDEN_SLOTS = ['session_started_metadata', 'requested_slot'];
  const CANNED = [
    ['Begrüßung', 'Guten Tag, mein Name ist {name}. Ich habe Ihren bisherigen Chatverlauf gelesen und helfe Ihnen gern weiter.'],
    ['Moment bitte', 'Einen Moment bitte, ich prüfe das für Sie.'],
    ['Rückfrage', 'Damit ich Ihnen verbindlich antworten kann, benötige ich noch eine Angabe von Ihnen: '],
    ['Weiterleitung', 'Für Ihr Anliegen ist eine Fachkollegin bzw. ein Fachkollege zuständig. Ich leite Sie jetzt weiter; Ihr bisheriger Chatverlauf wird übernommen.'],
    ['Abschluss', 'Kann ich sonst noch etwas für Sie tun? Andernfalls wünsche ich Ihnen einen schönen Tag.'],
  ];

  const store = {
    get(k) { try { return sessionStorage.getItem(NS + k); } catch (e) { return null; } },
    set(k, v) {
      try { v == null ? sessionStorage.removeItem(NS + k) : sessionStorage.setItem(NS + k, String(v)); } catch (e) { /* storage disabled: memory only */ }
    },
  };

  const fill = (s, vars) => s.replace(/\{(\w+)\}/g, (m, k) => (vars[k] != null ? String(vars[k]) : m));

  function uuid() {
    try { if (crypto.randomUUID) return crypto.randomUUID(); } catch (e) { /* insecure context */ }
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    const x = Array.from(b, (n) => n.toString(16).padStart(2, '0')).join('');
    return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
  }

  /** Creates an element. Text only ever goes in through `text` (textContent) or string children (Text nodes). */
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const k in attrs) {
      const v = attrs[k];
      if (v == null || v === false) continue;
      if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    el.append(...kids.flat().filter((c) => c != null && c !== false));
    return el;
  }

  /** Only web links are rendered; anything else (javascript:, data:) is dropped. */
  function safeUrl(u) {
    try {
      const url = new URL(String(u), location.href);
      return /^https?:$/.test(url.protocol) ? url.href : null;
    } catch (e) { return null; }
  }

  const str = (v) => (v == null ? '' : typeof v === 'string' ? v : JSON.stringify(v));
  const reasonText = (r) => REASONS[r] || str(r) || '–';
  const mmss = (s) => {
    s = Math.max(0, Math.floor(s));
    return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  };
  const time = (ts) => {
    const d = new Date(ts);
    if (!ts || isNaN(d)) return null;
    return h('time', { datetime: d.toISOString(), text: d.toLocaleTimeString('de-DE', { hour: '2-digit', minute: '2-digit' }) });
  };
  const duration = (s) => {
    s = Math.max(0, Math.round(Number(s) || 0));
    return s < 60 ? `${s} Sek.` : `${Math.floor(s / 60)} Min. ${s % 60} Sek.`;
  };
  const percent = (c) => `${Math.round(Number(c) * 100)} %`;

  class AgentConsole extends HTMLElement {
    /** Defines the element once; a second script tag is harmless. */
    static define(tag = TAG, registry = customElements) {
      if (!registry.get(tag)) registry.define(tag, this);
      return registry.get(tag);
    }

    constructor() {
      super();
      this._ws = null;
      this._attempt = 0;
      this._timers = new Map();
      this._agent = null; // {id, name, role, skills}
      this._queue = []; // last queue items, each with `_at` (ms, when received)
      this._queueSeen = null; // conversation ids seen in the queue so far (null: no queue frame yet)
      this._chats = new Map(); // conversation_id → chat
      this._active = null; // conversation_id of the selected tab
      this._accepting = null; // conversation_id we asked to accept (focus its tab on `assigned`)
      this._lastMessage = null; // {chat, cid} of the last message frame sent, for errors
      this._interacted = false; // WebAudio may only start after a user gesture
      this._audio = null;
      this._baseTitle = document.title || 'Bürgerservice – Agentenkonsole';
      this._tick = null;
      this._onGesture = () => { this._interacted = true; };
      this._onOnline = () => { if (this._token() && !this._ws) { this._attempt = 0; this._connect(); } };
    }

    connectedCallback() {
      if (!this._built) this._build();
      addEventListener('pointerdown', this._onGesture, true);
      addEventListener('keydown', this._onGesture, true);
      addEventListener('online', this._onOnline);
      this._tick = setInterval(() => this._updateWaits(), 1000);
      if (this._token()) this._connect(); else this._startSignedOut();
    }

    // Sign-in with the city's identity provider, when the gateway has one: the button, and
    // the token of a sign-in that has just come back from the provider (an HttpOnly cookie
    // holds its one-time code, so no credential is ever in a URL).
    async _startSignedOut() {
      this._showLogin();
      try {
        const res = await fetch('/api/agent/oidc/config', { credentials: 'same-origin' });
        const config = res.ok ? await res.json() : null;
        if (!config || !config.enabled) return;
        this._ssoLink.textContent = config.label || this._ssoLink.textContent;
        this._sso.hidden = false;
        const done = await fetch('/api/agent/oidc/session', { method: 'POST', credentials: 'same-origin' });
        if (done.status !== 200) return;
        const data = await done.json();
        if (!data || !data.token) return;
        store.set('token', data.token);
        if (data.agent) this._setAgent(data.agent);
        this._attempt = 0;
        this._connect();
      } catch (e) { /* the password form stays usable */ }
    }

    // Logout ends the session on the server (every replica closes its sockets); an OIDC
    // session is then ended at the identity provider too.
    async _signOut() {
      const token = this._token();
      let next = null;
      if (token) {
        try {
          const res = await fetch('/api/agent/logout', {
            method: 'POST', headers: { Authorization: 'Bearer ' + token }, credentials: 'same-origin',
          });
          const data = res.ok ? await res.json() : null;
          next = data && data.end_session_url;
        } catch (e) { /* logged out here anyway */ }
      }
      this._logout();
      if (next) location.assign(next);
    }

    disconnectedCallback() {
      removeEventListener('pointerdown', this._onGesture, true);
      removeEventListener('keydown', this._onGesture, true);
      removeEventListener('online', this._onOnline);
      clearInterval(this._tick);
      for (const id of this._timers.values()) clearTimeout(id);
      this._timers.clear();
      for (const chat of this._chats.values()) clearTimeout(chat.typingTimer);
      this._drop();
      if (this._audio) { this._audio.close().catch(() => {}); this._audio = null; }
      document.title = this._baseTitle;
    }

    _token() { return store.get('token'); }

    _emit(name, detail) {
      this.dispatchEvent(new CustomEvent(NS + name, { bubbles: true, composed: true, detail }));
    }

    _timer(name, ms, fn) {
      clearTimeout(this._timers.get(name));
      this._timers.set(name, setTimeout(() => { this._timers.delete(name); fn(); }, ms));
    }

    _clear(name) { clearTimeout(this._timers.get(name)); this._timers.delete(name); }

    // ---- building ---------------------------------------------------------------------------

    _build() {
      this._built = true;
      this.replaceChildren();
      this._who = h('span', { class: 'ac-who' });
      this._conn = h('span', { class: 'ac-conn', 'data-state': 'offline', text: 'Nicht verbunden' });
      this._soundBox = h('input', { type: 'checkbox', id: 'ac-sound', checked: store.get('sound') !== '0' });
      this._soundBox.addEventListener('change', () => store.set('sound', this._soundBox.checked ? '1' : '0'));
      this._logoutBtn = h('button', { type: 'button', text: 'Abmelden', onclick: () => this._signOut() });
      this._userBar = h('div', { class: 'ac-top-user', hidden: true, style: 'display:contents' },
        this._who, this._conn,
        h('label', { class: 'ac-sound', for: 'ac-sound' }, this._soundBox, 'Ton bei neuen Anfragen'),
        this._logoutBtn);
      const top = h('header', { class: 'ac-top' }, h('h1', { text: 'Bürgerservice – Agentenkonsole' }), this._userBar);
      this._status = h('div', { class: 'ac-status', role: 'status', 'aria-live': 'polite', 'data-testid': 'status' });
      this._announcer = h('div', { class: 'sr', 'aria-live': 'polite', 'aria-atomic': 'true' });

      // Login
      this._user = h('input', { type: 'text', id: 'ac-user', name: 'username', autocomplete: 'username', required: true, 'data-testid': 'login-username', autocapitalize: 'none', spellcheck: 'false' });
      this._pass = h('input', { type: 'password', id: 'ac-pass', name: 'password', autocomplete: 'current-password', required: true, 'data-testid': 'login-password' });
      this._loginErr = h('p', { class: 'ac-error', id: 'ac-login-error', role: 'alert', hidden: true });
      this._loginBtn = h('button', { type: 'submit', class: 'ac-btn', text: 'Anmelden', 'data-testid': 'login-submit' });
      this._login = h('div', { class: 'ac-login', hidden: true },
        h('form', { 'aria-labelledby': 'ac-login-h', novalidate: true, onsubmit: (e) => { e.preventDefault(); this._doLogin(); } },
          h('h2', { id: 'ac-login-h', text: 'Anmeldung für Mitarbeitende' }),
          this._loginErr,
          h('div', { class: 'ac-field' }, h('label', { for: 'ac-user', text: 'Benutzername' }), this._user),
          h('div', { class: 'ac-field' }, h('label', { for: 'ac-pass', text: 'Passwort' }), this._pass),
          this._loginBtn),
        this._sso = h('p', { class: 'ac-sso', hidden: true },
          this._ssoLink = h('a', { class: 'ac-btn', href: '/api/agent/oidc/login', 'data-testid': 'login-oidc', text: 'Mit dem Dienstkonto anmelden' })));

      // Desk: queue, tickets, supervisor overview | chats
      this._queueCount = h('span', { class: 'ac-count', text: '0' });
      this._queueList = h('ul', { class: 'ac-list', 'aria-labelledby': 'ac-queue-h' });
      this._queueEmpty = h('p', { class: 'ac-empty', text: 'Niemand wartet.' });
      // Only the channels a conversation waits on are offered; "all" stays first.
      this._channelFilter = h('select', { id: 'ac-channel-filter', 'data-testid': 'channel-filter',
        onchange: () => this._renderQueue() }, h('option', { value: '', text: 'Alle Kanäle' }));
      this._channelField = h('div', { class: 'ac-field ac-filter', hidden: true },
        h('label', { for: 'ac-channel-filter', text: 'Kanal' }), this._channelFilter);
      this._ticketCount = h('span', { class: 'ac-count', text: '0' });
      this._ticketList = h('ul', { class: 'ac-list', 'aria-labelledby': 'ac-tickets-h' });
      this._ticketEmpty = h('p', { class: 'ac-empty', text: 'Keine offenen Rückrufwünsche.' });
      this._supBody = h('tbody');
      this._sup = h('section', { class: 'ac-card ac-sup', 'aria-labelledby': 'ac-sup-h', hidden: true },
        h('h2', { id: 'ac-sup-h', text: 'Übersicht (Leitung)' }),
        h('table', null,
          h('caption', { class: 'sr', text: 'Wartende Anfragen je Warteschlange' }),
          h('thead', null, h('tr', null, h('th', { scope: 'col', text: 'Warteschlange' }),
            h('th', { scope: 'col', class: 'n', text: 'Wartend' }), h('th', { scope: 'col', class: 'n', text: 'Längste Wartezeit' }))),
          this._supBody),
        this._agentsTable = h('table', { 'data-testid': 'agents-table' },
          h('caption', { text: 'Kolleg/innen und Auslastung' }),
          h('thead', null, h('tr', null, h('th', { scope: 'col', text: 'Name' }), h('th', { scope: 'col', text: 'Status' }),
            h('th', { scope: 'col', class: 'n', text: 'Gespräche' }), h('th', { scope: 'col', text: 'Themen' }))),
          this._agentsBody = h('tbody')));
      this._tabs = h('div', { class: 'ac-tabs', role: 'tablist', 'aria-label': 'Ihre Gespräche', hidden: true });
      this._tabs.addEventListener('keydown', (e) => this._tabKeys(e));
      this._noChat = h('p', { class: 'ac-nochat', text: 'Sie haben gerade kein Gespräch. Nehmen Sie eine Anfrage aus der Warteschlange an.' });
      this._panels = h('div', { class: 'ac-chats-panels', style: 'display:flex;flex-direction:column;flex:1;min-height:0' });
      this._desk = h('div', { class: 'ac-desk', hidden: true },
        h('div', { class: 'ac-side' },
          h('section', { class: 'ac-card', 'aria-labelledby': 'ac-queue-h' },
            h('h2', { id: 'ac-queue-h' }, 'Warteschlange', this._queueCount), this._channelField,
            this._queueEmpty, this._queueList),
          this._sup,
          this._auditPanel = this._buildAuditPanel(),
          h('section', { class: 'ac-card', 'aria-labelledby': 'ac-tickets-h' },
            h('h2', { id: 'ac-tickets-h' }, 'Rückrufwünsche (Tickets)', this._ticketCount), this._ticketEmpty, this._ticketList)),
        h('section', { class: 'ac-chats', 'aria-labelledby': 'ac-chats-h' },
          h('h2', { id: 'ac-chats-h', class: 'sr', text: 'Gespräche' }), this._tabs, this._noChat, this._panels));

      this.append(top, this._status, h('main', { id: 'ac-main', tabindex: '-1' }, this._login, this._desk), this._announcer);
    }

    _showLogin(message) {
      this._desk.hidden = true;
      this._userBar.hidden = true;
      this._login.hidden = false;
      this._setStatus('');
      this._loginError(message || '');
      this._user.focus();
    }

    _loginError(msg) {
      this._loginErr.textContent = msg;
      this._loginErr.hidden = !msg;
      for (const el of [this._user, this._pass]) {
        if (msg) { el.setAttribute('aria-invalid', 'true'); el.setAttribute('aria-describedby', 'ac-login-error'); } else { el.removeAttribute('aria-invalid'); el.removeAttribute('aria-describedby'); }
      }
    }

    _showDesk() {
      this._login.hidden = true;
      this._desk.hidden = false;
      this._userBar.hidden = false;
    }

    _setStatus(msg, kind) {
      this._status.textContent = msg;
      this._status.className = 'ac-status' + (kind === 'info' ? ' info' : '');
    }

    _announce(msg) {
      // Clear first so that the same text twice is announced twice.
      this._announcer.textContent = '';
      setTimeout(() => { this._announcer.textContent = msg; }, 50);
    }

    // ---- login / logout -----------------------------------------------------------------------

    async _doLogin() {
      const username = this._user.value.trim();
      const password = this._pass.value;
      if (!username || !password) {
        this._loginError('Bitte geben Sie Benutzername und Passwort ein.');
        (username ? this._pass : this._user).focus();
        return;
      }
      this._loginBtn.disabled = true;
      this._loginBtn.textContent = 'Anmeldung läuft …';
      try {
        const res = await fetch('/api/agent/login', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ username, password }),
          credentials: 'same-origin',
        });
        if (res.status === 401) { this._loginError('Benutzername oder Passwort ist falsch.'); this._pass.select(); return; }
        if (res.status === 429 || res.status === 503) {
          const wait = Math.max(1, parseInt(res.headers.get('Retry-After') || '1', 10) || 1);
          this._loginError(`Zu viele Anmeldeversuche. Bitte warten Sie ${wait} Sekunde${wait === 1 ? '' : 'n'} und versuchen Sie es dann erneut.`);
          return;
        }
        if (!res.ok) { this._loginError(`Die Anmeldung ist fehlgeschlagen (Fehler ${res.status}).`); return; }
        const data = await res.json();
        if (!data || !data.token) { this._loginError('Die Anmeldung ist fehlgeschlagen.'); return; }
        store.set('token', data.token);
        this._pass.value = '';
        this._loginError('');
        if (data.agent) this._setAgent(data.agent);
        this._attempt = 0;
        this._connect();
      } catch (e) {
        this._loginError('Der Server ist nicht erreichbar. Bitte versuchen Sie es gleich noch einmal.');
      } finally {
        this._loginBtn.disabled = false;
        this._loginBtn.textContent = 'Anmelden';
      }
    }

    _logout(message) {
      store.set('token', null);
      this._drop();
      this._clear('retry');
      this._clear('confirm');
      for (const chat of this._chats.values()) clearTimeout(chat.typingTimer);
      this._chats.clear();
      this._active = null;
      this._tabs.replaceChildren();
      this._panels.replaceChildren();
      this._tabs.hidden = true;
      this._noChat.hidden = false;
      this._queue = [];
      this._queueSeen = null;
      this._renderQueue();
      this._renderTickets([]);
      this._agentsBody.replaceChildren();
      this._agent = null;
      this._setConn('offline');
      this._showLogin(message);
    }

    // ---- connection ---------------------------------------------------------------------------

    _connect() {
      if (this._ws) return;
      const token = this._token();
      if (!token) { this._showLogin(); return; }
      this._clear('retry');
      this._showDesk();
      this._setConn('connecting');
      let ws;
      try {
        const u = new URL('/ws/agent', location.href);
        u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
        ws = new WebSocket(u.href);
      } catch (e) {
        this._scheduleRetry();
        return;
      }
      this._ws = ws;
      ws.onopen = () => { if (this._ws === ws) ws.send(JSON.stringify({ type: 'auth', token })); };
      ws.onmessage = (e) => { if (this._ws === ws) this._onFrame(e.data); };
      ws.onclose = (e) => {
        if (this._ws !== ws) return;
        this._ws = null;
        this._clear('confirm');
        for (const chat of this._chats.values()) this._showTyping(chat, false);
        if (e.code === 4401) {
          this._logout('Ihre Anmeldung ist abgelaufen oder ungültig. Bitte melden Sie sich erneut an.');
          return;
        }
        this._setConn('offline');
        if (e.code === 4408) this._attempt = 0; // too slow: reconnect and replay at once
        this._scheduleRetry();
      };
    }

    /** Closes the socket without a reconnect. */
    _drop() {
      const ws = this._ws;
      this._ws = null;
      if (ws) { ws.onopen = ws.onclose = ws.onmessage = null; try { ws.close(1000); } catch (e) { /* already closed */ } }
    }

    _scheduleRetry() {
      const cap = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** this._attempt++);
      const ms = cap / 2 + (Math.random() * cap) / 2; // "equal jitter"
      this._setStatus(`Verbindung zum Server unterbrochen. Neuer Versuch in ${Math.ceil(ms / 1000)} s …`);
      this._timer('retry', ms, () => this._connect());
    }

    _setConn(state) {
      this._conn.dataset.state = state;
      this._conn.textContent = state === 'online' ? 'Verbunden' : state === 'connecting' ? 'Verbindung wird hergestellt …' : 'Nicht verbunden';
    }

    _send(frame) {
      const ws = this._ws;
      if (!ws || ws.readyState !== 1) return false;
      ws.send(JSON.stringify(frame));
      return true;
    }

    /** Sends a frame the agent asked for; says so when the connection is down. */
    _act(frame) {
      if (this._send(frame)) return true;
      this._setStatus('Keine Verbindung zum Server. Die Aktion wurde nicht ausgeführt.');
      return false;
    }

    // ---- incoming frames ----------------------------------------------------------------------

    _onFrame(raw) {
      let f;
      try { f = JSON.parse(raw); } catch (e) { return; }
      if (!f || typeof f !== 'object') return;
      switch (f.type) {
        case 'hello': return this._onHello(f);
        case 'queue': return this._onQueue(f);
        case 'tickets': return this._onTickets(f);
        case 'assigned': return this._onAssigned(f);
        case 'ack': return this._onAck(f);
        case 'error': return this._onError(f);
        case 'typing': return this._onTyping(f);
        case 'agents': return this._renderAgents(Array.isArray(f.items) ? f.items : []);
        case 'unassigned': return this._onUnassigned(f);
        default:
          if (typeof f.seq === 'number' && f.conversation_id) this._onEvent(f);
      }
    }

    _onHello(f) {
      this._attempt = 0;
      this._setConn('online');
      this._setStatus('');
      if (f.agent) this._setAgent(f.agent);
      this._showDesk();
      // Until the server re-sends `assigned` for a chat, it is not confirmed as still ours.
      for (const chat of this._chats.values()) if (!chat.ended) chat.confirmed = false;
    }

    _setAgent(agent) {
      this._agent = agent;
      this._who.replaceChildren(h('span', { class: 'sr', text: 'Angemeldet als ' }), String(agent.name || agent.id || ''),
        h('span', { class: 'ac-role', text: agent.role === 'supervisor' ? 'Leitung' : 'Mitarbeiter/in' }));
      this._sup.hidden = agent.role !== 'supervisor';
      this._auditPanel.hidden = agent.role !== 'supervisor';
      for (const chat of this._chats.values()) this._fillTransferOptions(chat);
    }

    _onQueue(f) {
      const now = Date.now();
      const items = (Array.isArray(f.items) ? f.items : []).filter((i) => i && i.conversation_id)
        .map((i) => Object.assign({}, i, { _at: now }));
      const first = this._queueSeen == null;
      const seen = this._queueSeen || new Set();
      const fresh = items.filter((i) => !seen.has(i.conversation_id));
      this._queueSeen = new Set(items.map((i) => i.conversation_id));
      this._queue = items;
      this._renderQueue();
      // A chat we hold that shows up in the queue is no longer ours (re-queued after an outage).
      for (const i of items) {
        const chat = this._chats.get(i.conversation_id);
        if (chat && !chat.ended) this._endChat(chat, 'Das Gespräch wartet wieder in der Warteschlange und ist Ihnen nicht mehr zugewiesen.');
      }
      if (first) {
        if (items.length) this._announce(`${items.length} ${items.length === 1 ? 'Anfrage wartet' : 'Anfragen warten'} in der Warteschlange.`);
      } else if (fresh.length) {
        this._beep();
        const i = fresh[0];
        this._announce(fresh.length === 1
          ? `Neue Anfrage in der Warteschlange ${i.queue}: ${reasonText(i.reason)}. ${items.length} wartend.`
          : `${fresh.length} neue Anfragen in der Warteschlange. ${items.length} wartend.`);
        this._emit('queued', fresh);
      }
    }

    _onTickets(f) {
      this._renderTickets(Array.isArray(f.items) ? f.items : []);
      // The `assigned` frames for chats we still have follow right after this frame.
      this._timer('confirm', CONFIRM_MS, () => {
        for (const chat of this._chats.values()) {
          if (!chat.ended && chat.confirmed === false) this._endChat(chat, 'Dieses Gespräch ist Ihnen nicht mehr zugewiesen.');
        }
      });
    }

    _onAssigned(f) {
      const cid = String(f.conversation_id);
      let chat = this._chats.get(cid);
      const isNew = !chat;
      if (!chat) chat = this._newChat(cid);
      chat.context = f.context && typeof f.context === 'object' ? f.context : {};
      chat.events = new Map(); // the transcript replaces whatever we had: no duplicates on reconnect
      for (const e of Array.isArray(f.transcript) ? f.transcript : []) if (e && typeof e.seq === 'number') chat.events.set(e.seq, e);
      // The server's reply window counts the transcript so far; later citizen messages reopen it.
      chat.windowSeq = Math.max(0, ...chat.events.keys());
      chat.confirmed = true;
      if (chat.ended) { chat.ended = false; chat.endedText = ''; }
      this._renderContext(chat);
      this._prefillKnowledge(chat);
      this._renderTranscript(chat);
      this._renderEnded(chat);
      this._renderTab(chat);
      this._renderCobrowse(chat);
      // Messages typed while the connection was down (or not yet acked) go out now, same client_id.
      for (const p of chat.pending.values()) if (!p.failed) this._send({ type: 'message', conversation_id: cid, client_id: p.id, text: p.text });
      const mine = this._accepting === cid;
      if (mine) this._accepting = null;
      if (mine || !this._active || !this._chats.has(this._active)) {
        this._select(cid, mine);
        if (mine) chat.input.focus();
      }
      if (isNew) {
        this._announce(`Gespräch übernommen: ${this._chatLabel(chat)}.`);
        this._emit('assigned', { conversation_id: cid });
      }
    }

    _onEvent(f) {
      const chat = this._chats.get(String(f.conversation_id));
      if (!chat || chat.events.has(f.seq)) return;
      chat.events.set(f.seq, f);
      const log = chat.log;
      const near = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
      this._place(chat, this._entry(chat, f));
      if (near) log.scrollTop = log.scrollHeight;
      if (f.type === 'message' && f.from === 'citizen') {
        this._prefillKnowledge(chat);
        this._showTyping(chat, false);
        if (this._active !== chat.id || document.hidden) { chat.unread = true; this._renderTab(chat); }
        this._announce(`Nachricht von Bürger/in (${this._chatLabel(chat)}): ${str(f.text)}`);
      }
      if (f.type === 'cobrowse') this._renderCobrowse(chat);
      if (f.type === 'state' && f.reason === 'erased') this._erasedChat(chat, f);
      else if (f.type === 'state' && f.state !== 'with_agent') {
        this._endChat(chat, this._stateText(f));
      }
    }

    _onAck(f) {
      const chat = this._chats.get(String(f.conversation_id));
      if (!chat) return;
      const p = chat.pending.get(f.client_id);
      if (!p) return;
      chat.pending.delete(f.client_id);
      p.el.remove();
      if (typeof f.seq === 'number' && !chat.events.has(f.seq)) {
        // The event itself may come after the ack; show it now, the event is then a duplicate.
        const ev = { type: 'message', from: 'agent', seq: f.seq, ts: new Date().toISOString(), text: p.text, agent: { name: this._agent && this._agent.name } };
        chat.events.set(f.seq, ev);
        this._place(chat, this._entry(chat, ev));
        chat.log.scrollTop = chat.log.scrollHeight;
      }
    }

    _onUnassigned(f) {
      const chat = this._chats.get(String(f.conversation_id));
      if (!chat) return; // a chat this console does not show (any more)
      if (chat.erased) return; // its erasure said all there is to say
      const text = UNASSIGNED[f.reason] || 'Dieses Gespräch ist Ihnen nicht mehr zugewiesen.';
      if (chat.ended && chat.endedText === text) return;
      if (chat.ended) {
        // Its state event may have ended it already; the reason says more.
        chat.endedText = text;
        this._renderEnded(chat);
      } else {
        this._endChat(chat, text);
      }
      this._announce(`${this._chatLabel(chat)}: ${text}`);
    }

    _onError(f) {
      let msg = ERRORS[f.code] || str(f.message) || 'Es ist ein Fehler aufgetreten.';
      // The error names the conversation the refused frame was about.
      const about = f.conversation_id != null ? this._chats.get(String(f.conversation_id)) : null;
      if (about) msg = `${this._chatLabel(about)}: ${msg}`;
      this._setStatus(msg);
      this._announce(msg);
      if (f.code === 'already_taken' || f.code === 'not_assigned' || f.code === 'at_capacity') this._accepting = null;
      if (about && f.code === 'not_assigned') this._endChat(about, 'Dieses Gespräch ist Ihnen nicht mehr zugewiesen.');
      // The server answers frames in order: a refused message is the last one we sent.
      const last = this._lastMessage;
      const sameChat = !last || f.conversation_id == null || String(f.conversation_id) === last.chat.id;
      if (last && sameChat && ['too_large', 'rate_limited', 'bad_frame', 'not_assigned'].includes(f.code)) {
        const p = last.chat.pending.get(last.cid);
        if (p) {
          p.failed = true;
          p.el.classList.add('failed');
          p.el.querySelector('.state').textContent = 'Nicht gesendet';
          if (!last.chat.input.value.trim()) last.chat.input.value = p.text;
        }
        this._lastMessage = null;
      }
    }

    _onTyping(f) {
      const chat = this._chats.get(String(f.conversation_id));
      if (chat && f.from === 'citizen') this._showTyping(chat, !!f.active);
    }

    // ---- queue and tickets --------------------------------------------------------------------

    _renderChannelFilter() {
      const channels = [...new Set(this._queue.map((i) => String(i.channel || 'web')))].sort();
      const chosen = this._channelFilter.value;
      if (chosen && !channels.includes(chosen)) channels.push(chosen);
      const options = [...this._channelFilter.options].slice(1).map((o) => o.value);
      if (options.join() !== channels.join()) {
        this._channelFilter.replaceChildren(this._channelFilter.options[0],
          ...channels.map((c) => h('option', { value: c, text: CHANNELS[c] || c })));
        this._channelFilter.value = chosen;
      }
      this._channelField.hidden = channels.length < 2 && !chosen;
    }

    _renderQueue() {
      this._renderChannelFilter();
      const channel = this._channelFilter.value;
      const items = channel ? this._queue.filter((i) => String(i.channel || 'web') === channel) : this._queue;
      const focused = document.activeElement && this._queueList.contains(document.activeElement)
        ? document.activeElement.closest('[data-conversation-id]') : null;
      const focusId = focused && focused.dataset.conversationId;
      const old = new Map([...this._queueList.children].map((li) => [li.dataset.conversationId, li]));
      const lis = items.map((i) => {
        const li = old.get(i.conversation_id) || this._queueItem(i);
        this._fillQueueItem(li, i);
        return li;
      });
      const same = lis.length === this._queueList.children.length && lis.every((li, n) => this._queueList.children[n] === li);
      if (!same) this._queueList.replaceChildren(...lis);
      if (focusId) {
        const again = lis.find((li) => li.dataset.conversationId === focusId);
        if (again && !again.contains(document.activeElement)) again.querySelector('button').focus();
      }
      this._queueEmpty.hidden = items.length > 0;
      this._queueEmpty.textContent = channel && this._queue.length ? 'Niemand wartet über diesen Kanal.' : 'Niemand wartet.';
      this._queueCount.textContent = String(items.length);
      this._queueCount.setAttribute('aria-label', `${items.length} wartend`);
      const all = this._queue.length;
      document.title = (all ? `(${all}) ` : '') + this._baseTitle;
      this._renderSupervisor();
      this._updateWaits();
    }

    _queueItem(i) {
      const id = 'q-' + String(i.conversation_id).replace(/[^\w-]/g, '_');
      const li = h('li', { class: 'ac-q', 'data-testid': 'queue-item', 'data-conversation-id': i.conversation_id },
        h('h3', { id: id + '-h' }, h('span', { class: 'q' }),
          h('span', null, h('span', { class: 'sr', text: 'Wartezeit ' }), h('span', { class: 'ac-wait' }))),
        h('p', { class: 'ac-meta', id: id + '-m' }),
        h('p', { class: 'ac-preview', id: id + '-p' }),
        h('button', {
          type: 'button', class: 'ac-btn', text: 'Annehmen', 'data-testid': 'accept-button',
          'aria-describedby': `${id}-h ${id}-m ${id}-p`,
          onclick: () => this._accept(i.conversation_id),
        }));
      return li;
    }

    _fillQueueItem(li, i) {
      li._item = i;
      li.querySelector('.q').textContent = `Warteschlange: ${str(i.queue)}`;
      const why = i.reason === 'transfer' && i.transferred_from
        ? `${reasonText(i.reason)} aus ${str(i.transferred_from)} (ursprünglich: ${reasonText(i.original_reason)})` : reasonText(i.reason);
      li.querySelector('.ac-meta').textContent = [why, LANGUAGES[i.language] || str(i.language), CHANNELS[i.channel] || str(i.channel)].filter(Boolean).join(' · ');
      // The bot's one-line summary says more than the last thing the citizen typed ("Ja, bitte").
      const p = li.querySelector('.ac-preview');
      p.textContent = i.summary ? str(i.summary) : (i.preview ? `„${str(i.preview)}“` : '');
      p.hidden = !p.textContent;
    }

    _waitingNow(i) { return (Number(i.waiting_s) || 0) + (Date.now() - i._at) / 1000; }

    _updateWaits() {
      for (const li of this._queueList.children) {
        const i = li._item;
        if (!i) continue;
        const s = this._waitingNow(i);
        const text = mmss(s);
        const w = li.querySelector('.ac-wait');
        if (w.textContent !== text) w.textContent = text;
        li.classList.toggle('long', s >= LONG_WAIT_S);
      }
      if (!this._sup.hidden) this._renderSupervisor();
    }

    _renderSupervisor() {
      if (this._sup.hidden) return;
      const by = new Map();
      for (const i of this._queue) {
        const q = by.get(i.queue) || { n: 0, max: 0 };
        q.n++;
        q.max = Math.max(q.max, this._waitingNow(i));
        by.set(i.queue, q);
      }
      const rows = [...by].map(([q, v]) => h('tr', null, h('th', { scope: 'row', text: str(q) }),
        h('td', { class: 'n', text: String(v.n) }), h('td', { class: 'n', text: mmss(v.max) })));
      if (!rows.length) rows.push(h('tr', null, h('td', { colspan: '3', text: 'Alle Warteschlangen sind leer.' })));
      this._supBody.replaceChildren(...rows);
    }

    /** The supervisor's view of colleagues: presence and load, from the `agents` frame. */
    _renderAgents(items) {
      if (this._sup.hidden) return;
      const rows = items.filter((a) => a && a.id).map((a) => {
        const load = Number(a.load) || 0;
        const cap = Number(a.capacity) || 0;
        return h('tr', { 'data-agent-id': str(a.id) },
          h('th', { scope: 'row' }, str(a.name || a.id), a.role === 'supervisor' ? h('span', { class: 'ac-meta', text: ' (Leitung)' }) : null),
          h('td', { text: a.online ? 'angemeldet' : 'abgemeldet' }),
          h('td', { class: 'n', text: `${load} von ${cap}` }),
          h('td', { text: (Array.isArray(a.skills) ? a.skills : []).map(str).join(', ') || '–' }));
      });
      if (!rows.length) rows.push(h('tr', null, h('td', { colspan: '4', text: 'Keine Kolleg/innen angelegt.' })));
      this._agentsBody.replaceChildren(...rows);
    }

    // ---- the audit log (supervisors; GET /api/admin/audit) ------------------------------------

    _buildAuditPanel() {
      this._auditBody = h('tbody');
      this._auditStatus = h('p', { class: 'ac-meta', role: 'status', 'aria-live': 'polite' });
      this._auditTable = h('table', { 'data-testid': 'audit-table', hidden: true },
        h('caption', { text: 'Wer hat wann welches Gespräch gelesen, exportiert oder gelöscht (neueste zuerst)' }),
        h('thead', null, h('tr', null, h('th', { scope: 'col', text: 'Zeit' }), h('th', { scope: 'col', text: 'Wer' }),
          h('th', { scope: 'col', text: 'Was' }), h('th', { scope: 'col', text: 'Gespräch' }))),
        this._auditBody);
      return h('section', { class: 'ac-card ac-audit', 'aria-labelledby': 'ac-audit-h', hidden: true },
        h('h2', { id: 'ac-audit-h', text: 'Zugriffsprotokoll (Datenschutz)' }),
        h('button', { type: 'button', class: 'ac-btn', 'data-testid': 'audit-load', text: 'Protokoll laden', onclick: () => this._loadAudit() }),
        this._auditStatus, this._auditTable);
    }

    async _loadAudit() {
      this._auditStatus.textContent = 'Protokoll wird geladen …';
      let res = null;
      let body = null;
      try {
        res = await fetch('/api/admin/audit?limit=100', {
          headers: { Authorization: 'Bearer ' + (this._token() || '') }, credentials: 'same-origin', cache: 'no-store',
        });
        body = await res.json();
      } catch (e) { /* unreachable or not JSON: reported below */ }
      if (!res || !res.ok || !body || !Array.isArray(body.items)) {
        this._auditStatus.textContent = (body && typeof body.message === 'string' && body.message)
          || (res ? `Das Protokoll konnte nicht geladen werden (Fehler ${res.status}).` : 'Der Server ist nicht erreichbar.');
        return;
      }
      const rows = body.items.filter((e) => e && e.action).map((e) => {
        const d = new Date(e.ts);
        const cid = str(e.conversation_id || '');
        return h('tr', { 'data-testid': 'audit-entry' },
          h('td', { text: isNaN(d) ? str(e.ts) : d.toLocaleString('de-DE', { dateStyle: 'short', timeStyle: 'medium' }) }),
          h('td', { text: `${str(e.actor)}${e.via && e.via !== 'console' ? ` (${str(e.via)})` : ''}` }),
          h('td', { text: AUDIT_ACTIONS[e.action] || str(e.action) }),
          h('td', { text: cid.startsWith('conversation:') ? 'gelöschtes Gespräch' : cid.slice(0, 8) || '–' }));
      });
      this._auditBody.replaceChildren(...rows);
      this._auditTable.hidden = !rows.length;
      this._auditStatus.textContent = rows.length ? `${rows.length} Einträge geladen.` : 'Noch keine Einträge.';
    }

    /** The conversation was erased: the agent sees it end, and its transcript goes. */
    _erasedChat(chat) {
      chat.erased = true;
      chat.events.clear();
      chat.log.replaceChildren();
      if (chat.ended) { chat.endedText = ERASED_TEXT; this._renderEnded(chat); } else this._endChat(chat, ERASED_TEXT);
      this._announce(`${this._chatLabel(chat)}: ${ERASED_TEXT}`);
    }

    _renderTickets(items) {
      this._ticketCount.textContent = String(items.length);
      this._ticketEmpty.hidden = items.length > 0;
      this._ticketList.replaceChildren(...items.map((t) => {
        const d = new Date(t.created_at);
        return h('li', { class: 'ac-t', 'data-testid': 'ticket' },
          h('b', { text: `${str(t.id)} · ${str(t.contact)}` }),
          h('span', { class: 'ac-meta', text: isNaN(d) ? '' : d.toLocaleString('de-DE', { dateStyle: 'short', timeStyle: 'short' }) }),
          h('div', { class: 'txt', style: 'white-space:pre-wrap', text: str(t.text) }));
      }));
    }

    _accept(cid) {
      this._setStatus('');
      if (this._act({ type: 'accept', conversation_id: cid })) this._accepting = cid;
    }

    // ---- chats ----------------------------------------------------------------------------------

    _newChat(cid) {
      const key = 'c-' + String(cid).replace(/[^\w-]/g, '_');
      const chat = {
        id: cid, key, context: {}, events: new Map(), pending: new Map(), ended: false, endedText: '',
        confirmed: true, unread: false, note: false, typingOn: false, typingTimer: null,
      };
      chat.tab = h('button', {
        type: 'button', role: 'tab', id: key + '-tab', class: 'ac-tab', 'aria-selected': 'false', 'aria-controls': key + '-panel',
        tabindex: '-1', 'data-testid': 'chat-tab', 'data-conversation-id': cid, onclick: () => this._select(cid, false),
      });
      chat.ctx = h('dl', { class: 'ac-ctx', 'aria-label': 'Kontext des Gesprächs' });
      chat.log = h('ol', { class: 'ac-log', 'data-testid': 'transcript', 'aria-label': 'Gesprächsverlauf', tabindex: '0' });
      chat.typing = h('p', { class: 'ac-typing' });
      chat.endedBox = h('div', { class: 'ac-ended', hidden: true });
      // A messenger that takes free text only for a while after the citizen's last message.
      chat.windowText = h('p', { 'data-testid': 'reply-window' });
      chat.templateBtn = h('button', { type: 'button', class: 'ac-btn sec', text: 'Vorlage senden', 'data-testid': 'template-button',
        hidden: true, onclick: () => this._act({ type: 'template', conversation_id: chat.id, client_id: uuid() }) });
      chat.windowBox = h('div', { class: 'ac-window', role: 'status', hidden: true }, chat.windowText, chat.templateBtn);

      // Composer
      chat.input = h('textarea', { id: key + '-in', rows: '3', 'data-testid': 'composer-input', autocomplete: 'off' });
      chat.inputLabel = h('label', { class: 'main', for: key + '-in' });
      chat.input.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); this._submit(chat); }
      });
      chat.input.addEventListener('input', () => this._ownTyping(chat));
      chat.noteBtn = h('button', {
        type: 'button', class: 'ac-btn sec ac-toggle', 'aria-pressed': 'false', text: 'Notiz', 'data-testid': 'note-toggle',
        title: 'Interne Notiz statt Nachricht (nur für Kolleg/innen sichtbar)',
        onclick: () => this._setNoteMode(chat, !chat.note),
      });
      chat.canned = h('select', { id: key + '-canned' },
        h('option', { value: '', text: 'Textbaustein einfügen …' }),
        ...CANNED.map(([title], n) => h('option', { value: String(n), text: title })));
      chat.canned.addEventListener('change', () => this._insertCanned(chat));
      chat.sendBtn = h('button', { type: 'submit', class: 'ac-btn', text: 'Senden', 'data-testid': 'composer-send' });
      chat.form = h('form', { class: 'ac-compose', onsubmit: (e) => { e.preventDefault(); this._submit(chat); } },
        chat.inputLabel, chat.input,
        h('div', { class: 'row' },
          h('label', { class: 'sr', for: key + '-canned', text: 'Textbaustein' }), chat.canned,
          h('span', { class: 'grow' }), chat.noteBtn, chat.sendBtn));

      // Actions
      chat.xferInput = h('input', { type: 'text', id: key + '-xfer', list: key + '-xfer-list', autocomplete: 'off', spellcheck: 'false', placeholder: 'z. B. general' });
      chat.xferList = h('datalist', { id: key + '-xfer-list' });
      chat.actions = h('div', { class: 'ac-actions', role: 'group', 'aria-label': 'Gespräch steuern' },
        h('button', { type: 'button', class: 'ac-btn sec', text: 'An Bot zurückgeben', 'data-testid': 'handback-button', onclick: () => this._finish(chat, 'handback') }),
        h('div', { class: 'xfer' },
          h('label', { for: key + '-xfer' }, 'Ziel-Warteschlange'), chat.xferInput, chat.xferList,
          h('button', { type: 'button', class: 'ac-btn sec', text: 'Weiterleiten', 'data-testid': 'transfer-button', onclick: () => this._transfer(chat) })),
        h('span', { class: 'grow', style: 'flex:1' }),
        h('button', { type: 'button', class: 'ac-btn danger', text: 'Beenden', 'data-testid': 'close-button', onclick: () => this._finish(chat, 'close') }));
      this._fillTransferOptions(chat);
      this._setNoteMode(chat, false);
      this._buildKnowledge(chat);

      this._buildCobrowse(chat);

      chat.heading = h('h3', { class: 'sr', id: key + '-h' });
      chat.panel = h('div', { role: 'tabpanel', id: key + '-panel', class: 'ac-panel', 'aria-labelledby': key + '-tab', hidden: true, 'data-conversation-id': cid },
        chat.heading, chat.ctx, chat.log, chat.typing, chat.endedBox, chat.windowBox, chat.form, chat.kb, chat.cb.box, chat.actions);
      this._tabs.append(chat.tab);
      this._panels.append(chat.panel);
      this._noChat.hidden = true;
      this._tabs.hidden = false;
      this._chats.set(cid, chat);
      return chat;
    }

    _chatLabel(chat) {
      const c = chat.context || {};
      // The citizen's words that led to the handover: the last citizen message before it was queued.
      let first = '';
      for (const s of [...chat.events.keys()].sort((a, b) => a - b)) {
        const e = chat.events.get(s);
        if (e.type === 'state' && (e.state === 'queued' || e.state === 'with_agent') && first) break;
        if (e.type === 'message' && e.from === 'citizen' && e.text) first = str(e.text);
      }
      const short = first.length > 28 ? first.slice(0, 27) + '…' : first;
      return [c.queue ? str(c.queue) : '', short || chat.id.slice(0, 8)].filter(Boolean).join(': ');
    }

    _renderTab(chat) {
      const label = this._chatLabel(chat);
      chat.tab.replaceChildren(...[
        h('span', { class: 'lbl', text: label }),
        chat.ended && h('span', { class: 'st', text: '(beendet)' }),
        chat.unread && h('span', { class: 'dot', 'aria-hidden': 'true' }),
        chat.unread && h('span', { class: 'sr', text: ' (neue Nachricht)' }),
      ].filter(Boolean));
      chat.tab.title = label + (chat.ended ? ' (beendet)' : '');
      chat.tab.classList.toggle('ended', chat.ended);
      chat.heading.textContent = 'Gespräch ' + label;
    }

    _select(cid, focusTab) {
      const chat = this._chats.get(cid);
      if (!chat) return;
      this._active = cid;
      for (const c of this._chats.values()) {
        const on = c === chat;
        c.tab.setAttribute('aria-selected', String(on));
        c.tab.tabIndex = on ? 0 : -1;
        c.panel.hidden = !on;
      }
      if (chat.unread) { chat.unread = false; this._renderTab(chat); }
      chat.log.scrollTop = chat.log.scrollHeight;
      if (focusTab) chat.tab.focus();
    }

    /** Tabs pattern (WAI-ARIA APG): arrows move and select, Home/End jump. */
    _tabKeys(e) {
      const tabs = [...this._tabs.querySelectorAll('[role=tab]')];
      const i = tabs.indexOf(document.activeElement);
      if (i < 0) return;
      let j = null;
      if (e.key === 'ArrowRight' || e.key === 'ArrowDown') j = (i + 1) % tabs.length;
      else if (e.key === 'ArrowLeft' || e.key === 'ArrowUp') j = (i - 1 + tabs.length) % tabs.length;
      else if (e.key === 'Home') j = 0;
      else if (e.key === 'End') j = tabs.length - 1;
      if (j == null) return;
      e.preventDefault();
      this._select(tabs[j].dataset.conversationId, true);
    }

    _removeChat(chat) {
      const tabs = [...this._tabs.children];
      const i = tabs.indexOf(chat.tab);
      clearTimeout(chat.typingTimer);
      chat.tab.remove();
      chat.panel.remove();
      this._chats.delete(chat.id);
      const next = this._tabs.children[Math.min(i, this._tabs.children.length - 1)];
      if (next) this._select(next.dataset.conversationId, true);
      else { this._active = null; this._noChat.hidden = false; this._tabs.hidden = true; this._queueList.querySelector('button') ? this._queueList.querySelector('button').focus() : this.querySelector('#ac-main').focus(); }
    }

    _renderContext(chat) {
      const c = chat.context || {};
      const rows = [];
      const row = (k, v) => { if (v != null && v !== '' && !(Array.isArray(v) && !v.length)) rows.push(h('dt', { text: k }), h('dd', null, v)); };
      row('Grund', reasonText(c.reason));
      if (c.reason === 'transfer') {
        row('Weitergeleitet aus', str(c.transferred_from));
        row('Ursprünglicher Grund', c.original_reason ? reasonText(c.original_reason) : '');
      }
      row('Warteschlange', str(c.queue));
      row('Sprache', LANGUAGES[c.language] || str(c.language));
      row('Kanal', CHANNELS[c.channel] || str(c.channel));
      row('Wartezeit', typeof c.waited_s === 'number' ? duration(c.waited_s) : '');
      row('Zusammenfassung', str(c.summary));
      const slots = c.slots && typeof c.slots === 'object'
        ? Object.entries(c.slots).filter(([k, v]) => !HIDDEN_SLOTS.includes(k) && v != null && v !== '' && !(Array.isArray(v) && !v.length)) : [];
      if (slots.length) row('Angaben', h('ul', null, slots.map(([k, v]) => h('li', { text: `${k}: ${str(v)}` }))));
      const seen = new Set();
      const arts = (Array.isArray(c.articles) ? c.articles : []).filter((a) => {
        const u = a && safeUrl(a.url);
        if (!u || seen.has(u)) return false;
        seen.add(u);
        return true;
      });
      if (arts.length) {
        row('Gezeigte Artikel', h('ul', null, arts.map((a) => h('li', null,
          h('a', { href: safeUrl(a.url), target: '_blank', rel: 'noopener noreferrer', text: str(a.title || a.url) },
            h('span', { class: 'sr', text: ' (öffnet in neuem Tab)' })),
          typeof a.score === 'number' ? ` (Treffer ${percent(a.score)})` : null))));
      }
      chat.ctx.replaceChildren(...rows);
      this._renderWindow(chat);
    }

    /** WhatsApp's 24-hour window: free text until it closes, then only the approved template. */
    _renderWindow(chat) {
      const c = chat.context || {};
      if (typeof c.reply_window_closes_ms !== 'number' || chat.ended) { chat.windowBox.hidden = true; return; }
      let closes = c.reply_window_closes_ms;
      for (const e of chat.events.values()) {
        const later = e.type === 'message' && e.from === 'citizen' && e.seq > (chat.windowSeq || 0);
        const at = later ? Date.parse(e.ts) : NaN;
        if (at && typeof c.reply_window_s === 'number') closes = Math.max(closes, at + c.reply_window_s * 1000);
      }
      const open = Date.now() < closes;
      chat.windowBox.hidden = false;
      chat.windowText.textContent = open
        ? `Freie Antworten sind bis ${new Date(closes).toLocaleString('de-DE', { dateStyle: 'short', timeStyle: 'short' })} möglich (WhatsApp-Fenster von 24 Stunden).`
        : (c.template
          ? 'Die letzte Nachricht liegt über 24 Stunden zurück: WhatsApp stellt jetzt nur die freigegebene Vorlage zu.'
          : 'Die letzte Nachricht liegt über 24 Stunden zurück: WhatsApp stellt keine freien Texte mehr zu, und es ist keine Vorlage eingerichtet.');
      chat.templateBtn.hidden = open || !c.template;
      chat.input.disabled = !open;
      chat.sendBtn.disabled = !open;
    }

    _renderTranscript(chat) {
      this._renderWindow(chat);
      const seqs = [...chat.events.keys()].sort((a, b) => a - b);
      chat.log.replaceChildren(...seqs.map((s) => this._entry(chat, chat.events.get(s))), ...[...chat.pending.values()].map((p) => p.el));
      chat.log.scrollTop = chat.log.scrollHeight;
    }

    /** Durable entries in seq order; pending messages (no seq yet) stay at the end. */
    _place(chat, el) {
      const seq = Number(el.dataset.seq);
      let ref = chat.log.lastElementChild;
      while (ref && !(ref.dataset.seq && Number(ref.dataset.seq) < seq)) ref = ref.previousElementSibling;
      if (ref) ref.after(el); else chat.log.prepend(el);
    }

    _stateText(e) {
      const name = e.agent && e.agent.name ? str(e.agent.name) : '';
      switch (e.state) {
        case 'queued':
          if (e.reason === 'position') return `Warteposition ${str(e.position)}.`;
          return `In die Warteschlange gestellt: ${reasonText(e.reason)}${e.position ? ` (Position ${str(e.position)})` : ''}.`;
        case 'with_agent': return name ? `${name} hat das Gespräch übernommen.` : 'Eine Mitarbeiterin oder ein Mitarbeiter hat das Gespräch übernommen.';
        case 'bot': return e.reason === 'handback' ? 'An den Bot zurückgegeben.' : 'Der Bot führt das Gespräch.';
        case 'closed': {
          if (e.reason === 'erased') return ERASED_TEXT;
          const why = { agent_closed: 'von der Mitarbeiterin/dem Mitarbeiter', citizen_ended: 'von der Bürgerin/dem Bürger', offline_message: 'nach Aufnahme eines Rückrufwunschs' }[e.reason];
          return why ? `Gespräch ${why} beendet.` : 'Gespräch beendet.';
        }
        default: return `Status: ${str(e.state)}`;
      }
    }

    _entry(chat, e) {
      let from = 'system';
      if (e.type === 'note') from = 'note';
      else if (e.type === 'message') from = ['citizen', 'bot', 'agent'].includes(e.from) ? e.from : 'bot';
      const li = h('li', { class: 'ac-e', 'data-testid': 'transcript-entry', 'data-seq': String(e.seq), 'data-from': from });
      if (from === 'system') {
        li.append(e.type === 'state' ? this._stateText(e) : e.type === 'csat_request' ? 'Zufriedenheitsumfrage an Bürger/in gesendet.'
          : e.type === 'cobrowse' ? cobrowseText(e) : `Ereignis: ${str(e.type)}`);
        const t = time(e.ts);
        if (t) li.append(' (', t, ')');
        return li;
      }
      const who = h('div', { class: 'who' });
      if (from === 'citizen') who.append(h('b', { text: 'Bürger/in' }));
      else if (from === 'bot') who.append(h('span', { class: 'ac-tag bot', text: 'Bot' }), h('b', { text: 'Digitaler Assistent' }));
      else if (from === 'agent') who.append(h('b', { text: (e.agent && str(e.agent.name)) || 'Mitarbeiter/in' }));
      else who.append(h('span', { class: 'ac-tag note', text: 'Interne Notiz' }), h('b', { text: (e.agent && str(e.agent.name)) || '' }),
        h('span', { text: '– nicht für Bürger/in sichtbar' }));
      const t = time(e.ts);
      if (t) who.append(t);
      li.append(who, h('div', { class: 'txt', text: str(e.text) }));
      const links = (Array.isArray(e.links) ? e.links : []).filter((l) => l && safeUrl(l.url));
      if (links.length) {
        li.append(h('ul', { class: 'ac-links', 'aria-label': 'Gezeigte Links' }, links.map((l) => h('li', null,
          h('a', { href: safeUrl(l.url), target: '_blank', rel: 'noopener noreferrer', text: str(l.title || l.url) },
            h('span', { class: 'sr', text: ' (öffnet in neuem Tab)' }))))));
      }
      const buttons = (Array.isArray(e.buttons) ? e.buttons : []).filter((b) => b && b.title);
      if (buttons.length) li.append(h('div', { class: 'ac-ents', text: 'Angebotene Antworten: ' + buttons.map((b) => str(b.title)).join(' | ') }));
      const intent = from === 'citizen' && e.nlu && e.nlu.intent;
      if (intent && intent.name) {
        const conf = Number(intent.confidence);
        const known = isFinite(conf);
        li.append(h('span', {
          class: 'ac-intent' + (known && conf < 0.5 ? ' low' : ''), 'data-testid': 'intent-badge',
          text: `Absicht: ${str(intent.name)}${known ? ` (${percent(conf)})` : ''}`,
        }));
        const ents = (Array.isArray(e.nlu.entities) ? e.nlu.entities : []).filter((x) => x && x.entity);
        if (ents.length) li.append(h('span', { class: 'ac-ents', text: 'Erkannt: ' + ents.map((x) => `${str(x.entity)} = ${str(x.value)}`).join(', ') }));
      }
      return li;
    }

    _showTyping(chat, on) {
      clearTimeout(chat.typingTimer);
      chat.typing.textContent = on ? 'Bürger/in schreibt …' : '';
      if (on) chat.typingTimer = setTimeout(() => this._showTyping(chat, false), CITIZEN_TYPING_MS);
    }

    // ---- co-browsing (docs/protocol.md "Co-browsing") ---------------------------------------------

    _buildCobrowse(chat) {
      const key = chat.key;
      const cb = chat.cb = { pointer: false, pending: null, path: '', ctl: null, loading: false };
      const ask = (step) => () => this._act({ type: 'cobrowse_request', conversation_id: chat.id, step });
      const mode = (m, btn) => () => {
        const on = btn.getAttribute('aria-pressed') !== 'true';
        for (const b of [cb.pointBtn, cb.markBtn]) b.setAttribute('aria-pressed', String(on && b === btn));
        if (cb.ctl) cb.ctl.setMode(on ? m : null);
      };
      cb.status = h('p', { class: 'ac-cb-status', role: 'status', 'data-testid': 'cobrowse-status' });
      cb.askBtn = h('button', { type: 'button', class: 'ac-btn sec', text: 'Bildschirm ansehen', 'data-testid': 'cobrowse-request', onclick: ask('view') });
      cb.pointerBtn = h('button', { type: 'button', class: 'ac-btn sec', text: 'Zeigen erlauben lassen', 'data-testid': 'cobrowse-request-pointer', onclick: ask('pointer') });
      cb.pointBtn = h('button', { type: 'button', class: 'ac-btn sec', 'aria-pressed': 'false', text: 'Zeigen', 'data-testid': 'cobrowse-point' });
      cb.markBtn = h('button', { type: 'button', class: 'ac-btn sec', 'aria-pressed': 'false', text: 'Hervorheben', 'data-testid': 'cobrowse-highlight' });
      cb.pointBtn.onclick = mode('pointer', cb.pointBtn);
      cb.markBtn.onclick = mode('highlight', cb.markBtn);
      cb.clearBtn = h('button', { type: 'button', class: 'ac-btn sec', text: 'Markierung entfernen', onclick: () => cb.ctl && cb.ctl.clear() });
      cb.endBtn = h('button', { type: 'button', class: 'ac-btn danger', text: 'Ansehen beenden', 'data-testid': 'cobrowse-end',
        onclick: () => this._act({ type: 'cobrowse_end', conversation_id: chat.id }) });
      cb.linkInput = h('input', { type: 'text', id: key + '-cblink', autocomplete: 'off', spellcheck: 'false', placeholder: '/portal/photovoltaik/antrag' });
      cb.linkForm = h('form', { class: 'xfer', onsubmit: (e) => {
        e.preventDefault();
        const path = cb.linkInput.value.trim();
        if (path && this._act({ type: 'cobrowse_link', conversation_id: chat.id, path })) cb.linkInput.value = '';
      } }, h('label', { for: key + '-cblink', text: 'Seite vorschlagen' }), cb.linkInput, h('button', { type: 'submit', class: 'ac-btn sec', text: 'Senden' }));
      cb.screen = h('div', { class: 'cbv-view', role: 'region', tabindex: '0', 'aria-label': 'Seite der Bürgerin/des Bürgers (nur ansehen)', 'data-testid': 'cobrowse-view', hidden: true });
      cb.box = h('section', { class: 'ac-cb', 'aria-labelledby': key + '-cbh', hidden: true },
        h('h4', { id: key + '-cbh', text: 'Bildschirm ansehen' }), cb.status,
        h('div', { class: 'row' }, cb.askBtn, cb.pointerBtn, cb.pointBtn, cb.markBtn, cb.clearBtn, cb.endBtn), cb.linkForm, cb.screen);
    }

    /** The session's state, from the conversation's co-browse events; opens or closes the view. */
    _renderCobrowse(chat) {
      const cb = chat.cb;
      let view = false; let pointer = false; let pending = null; let path = '';
      for (const s of [...chat.events.keys()].sort((a, b) => a - b)) {
        const e = chat.events.get(s);
        if (e.type !== 'cobrowse') continue;
        if (e.state === 'requested') pending = e.step;
        else if (e.state === 'accepted') { pending = null; if (e.step === 'pointer') pointer = true; else view = true; }
        else if (e.state === 'declined') pending = null;
        else if (e.state === 'ended') { view = pointer = false; pending = null; path = ''; }
        else if (e.state === 'page') path = str(e.path);
      }
      const live = !chat.ended && chat.context.channel === 'web';
      view = view && live;
      Object.assign(cb, { pointer: pointer && view, pending, path });
      chat.cb.box.hidden = !live;
      cb.status.textContent = pending ? 'Warte auf die Zustimmung der Bürgerin/des Bürgers …'
        : view ? `Sie sehen die Seite${path ? ' ' + path : ''}. Eingaben in Formularfeldern bleiben verborgen.` : '';
      cb.askBtn.hidden = view || pending === 'view';
      cb.pointerBtn.hidden = !view || cb.pointer || pending === 'pointer';
      for (const b of [cb.pointBtn, cb.markBtn, cb.clearBtn]) b.hidden = !cb.pointer;
      cb.endBtn.hidden = !view;
      cb.linkForm.hidden = !view;
      cb.screen.hidden = !view;
      if (view && !cb.ctl && !cb.loading) this._openCobrowse(chat);
      if (!view && cb.ctl) { const ctl = cb.ctl; cb.ctl = null; ctl.close(); }
    }

    _openCobrowse(chat) {
      const cb = chat.cb;
      const go = () => {
        cb.loading = false;
        if (cb.ctl || cb.screen.hidden || !window.BuergerserviceCobrowseView) return;
        cb.ctl = window.BuergerserviceCobrowseView.open({
          server: location.origin, token: this._token(), conversationId: chat.id, container: cb.screen,
          title: 'Seite der Bürgerin/des Bürgers (nur ansehen)',
          onPage: (path) => { if (path !== cb.path) { cb.path = path; this._renderCobrowse(chat); } },
          onError: (msg) => this._setStatus(msg),
          onEnd: () => { cb.ctl = null; },
        });
      };
      cb.loading = true;
      if (window.BuergerserviceCobrowseView) { go(); return; }
      if (!document.querySelector('link[data-cobrowse]')) {
        document.head.append(h('link', { rel: 'stylesheet', href: '/cobrowse/console.css', 'data-cobrowse': '' }));
      }
      const script = h('script', { src: '/cobrowse/console.js' });
      script.onload = go;
      script.onerror = () => { cb.loading = false; this._setStatus('Die Ansicht der Seite konnte nicht geladen werden.'); };
      document.head.append(script);
    }

    _endChat(chat, text) {
      if (chat.ended) return;
      chat.ended = true;
      chat.endedText = text;
      this._renderCobrowse(chat);
      this._ownTyping(chat, true);
      this._showTyping(chat, false);
      this._renderEnded(chat);
      this._renderTab(chat);
    }

    _renderEnded(chat) {
      const ended = chat.ended;
      chat.form.hidden = ended;
      chat.kb.hidden = ended;
      chat.actions.hidden = ended;
      chat.cb.box.hidden = ended || chat.context.channel !== 'web';
      chat.endedBox.hidden = !ended;
      if (ended) {
        const wasInPanel = chat.panel.contains(document.activeElement) && !chat.log.contains(document.activeElement);
        const closeTab = h('button', { type: 'button', class: 'ac-btn sec', text: 'Tab schließen', onclick: () => this._removeChat(chat) });
        chat.endedBox.replaceChildren(h('span', { text: `${chat.endedText || 'Gespräch beendet.'} Der Verlauf ist nur noch lesbar.` }), closeTab);
        if (wasInPanel) closeTab.focus();
      }
    }

    _fillTransferOptions(chat) {
      const skills = (this._agent && Array.isArray(this._agent.skills)) ? this._agent.skills : [];
      const names = [...new Set([...skills, ...this._queue.map((i) => i.queue), 'general'])].filter(Boolean);
      chat.xferList.replaceChildren(...names.map((n) => h('option', { value: str(n) })));
    }

    // ---- the agent's actions -------------------------------------------------------------------

    _setNoteMode(chat, on) {
      chat.note = on;
      chat.noteBtn.setAttribute('aria-pressed', String(on));
      chat.form.classList.toggle('note', on);
      chat.inputLabel.textContent = on ? 'Interne Notiz (nur für Kolleg/innen sichtbar)' : 'Nachricht an Bürger/in';
      chat.sendBtn.textContent = on ? 'Notiz speichern' : 'Senden';
      chat.input.placeholder = on ? 'Notiz für Kolleg/innen …' : 'Ihre Antwort … (Enter sendet, Umschalt+Enter: neue Zeile)';
      if (on) this._ownTyping(chat, true);
    }

    _insertCanned(chat) {
      const n = chat.canned.value;
      chat.canned.value = '';
      if (n === '') return;
      this._insertText(chat, fill(CANNED[Number(n)][1], { name: (this._agent && this._agent.name) || '' }));
    }

    /** Puts `text` into the reply at the cursor, for the agent to edit and send (never sends). */
    _insertText(chat, text) {
      const el = chat.input;
      const start = el.selectionStart != null ? el.selectionStart : el.value.length;
      const end = el.selectionEnd != null ? el.selectionEnd : el.value.length;
      el.value = el.value.slice(0, start) + text + el.value.slice(end);
      el.focus();
      el.selectionStart = el.selectionEnd = start + text.length;
    }

    // ---- knowledge search ------------------------------------------------------------------------

    _buildKnowledge(chat) {
      const id = chat.key + '-kb';
      chat.kbInput = h('input', { type: 'search', id, 'data-testid': 'knowledge-query', autocomplete: 'off', enterkeyhint: 'search' });
      chat.kbInput.addEventListener('input', () => { chat.kbEdited = true; });
      chat.kbStatus = h('p', { class: 'ac-kb-status', role: 'status' });
      chat.kbList = h('ol', { class: 'ac-kb-list', 'aria-label': 'Treffer der Wissenssuche', 'data-testid': 'knowledge-results' });
      chat.kb = h('details', { class: 'ac-kb', open: true },
        h('summary', { text: 'Wissenssuche' }),
        h('form', { role: 'search', 'aria-label': 'Wissenssuche', onsubmit: (e) => { e.preventDefault(); this._searchKnowledge(chat); } },
          h('label', { for: id, text: 'Frage oder Suchbegriff (vorbelegt mit der letzten Frage der Bürgerin/des Bürgers)' }), chat.kbInput,
          h('button', { type: 'submit', class: 'ac-btn sec', text: 'Suchen', 'data-testid': 'knowledge-search' })),
        chat.kbStatus, chat.kbList);
    }

    /** The citizen's latest question (not a greeting or "a person, please"), unless the agent typed a search. */
    _prefillKnowledge(chat) {
      if (chat.kbEdited && chat.kbInput.value.trim()) return;
      let question = null;
      let latest = null;
      for (const s of [...chat.events.keys()].sort((a, b) => a - b)) {
        const e = chat.events.get(s);
        if (e.type !== 'message' || e.from !== 'citizen' || !e.text || str(e.text).startsWith('/')) continue;
        latest = e;
        const intent = e.nlu && e.nlu.intent && e.nlu.intent.name;
        if (!NOT_QUESTIONS.includes(intent)) question = e;
      }
      const pick = question || latest;
      if (pick) { chat.kbInput.value = str(pick.text); chat.kbEdited = false; }
    }

    async _searchKnowledge(chat) {
      const q = chat.kbInput.value.trim();
      if (!q) { chat.kbStatus.textContent = 'Bitte geben Sie eine Frage oder einen Suchbegriff ein.'; chat.kbInput.focus(); return; }
      const run = (chat.kbRun || 0) + 1;
      chat.kbRun = run; // a slower earlier search must not overwrite a later one
      chat.kbStatus.textContent = 'Suche läuft …';
      let res = null;
      let body = null;
      try {
        res = await fetch('/api/knowledge/search?' + new URLSearchParams({ q, k: '5' }), {
          headers: { Authorization: 'Bearer ' + (this._token() || '') }, credentials: 'same-origin',
        });
        body = await res.json();
      } catch (e) { /* unreachable or not JSON: reported below */ }
      if (chat.kbRun !== run) return;
      if (res && res.status === 401) { this._logout('Ihre Anmeldung ist abgelaufen oder ungültig. Bitte melden Sie sich erneut an.'); return; }
      if (!res || !res.ok || !Array.isArray(body)) {
        chat.kbStatus.textContent = (body && typeof body.message === 'string' && body.message)
          || (res ? `Die Suche ist fehlgeschlagen (Fehler ${res.status}).` : 'Der Server ist nicht erreichbar.');
        chat.kbList.replaceChildren();
        return;
      }
      const hits = body.filter((x) => x && x.text);
      chat.kbList.replaceChildren(...hits.map((hit, n) => this._knowledgeHit(chat, hit, `${chat.key}-kb-${n}`)));
      chat.kbStatus.textContent = hits.length ? `${hits.length} Treffer für „${q}“.` : `Keine Treffer für „${q}“.`;
    }

    _knowledgeHit(chat, hit, id) {
      const url = safeUrl(hit.url);
      const title = str(hit.title);
      const answer = str(hit.text).trim() + (url ? `\n\nMehr dazu: ${url}` : '');
      return h('li', { class: 'ac-kb-hit', 'data-testid': 'knowledge-hit' },
        h('div', { id },
          url ? h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', text: title }, h('span', { class: 'sr', text: ' (öffnet in neuem Tab)' }))
            : h('b', { text: title }),
          hit.section ? h('span', { class: 'sec', text: ` · ${str(hit.section)}` }) : null),
        h('p', { class: 'txt', text: str(hit.text) }),
        h('button', {
          type: 'button', class: 'ac-btn sec', text: 'Antwort einfügen', 'data-testid': 'insert-answer', 'aria-describedby': id,
          onclick: () => this._insertText(chat, answer),
        }));
    }

    _submit(chat) {
      if (chat.ended) return;
      const text = chat.input.value.trim();
      if (!text) { chat.input.focus(); return; }
      if (chat.note) {
        if (!this._act({ type: 'note', conversation_id: chat.id, text })) return;
        chat.input.value = '';
        this._setNoteMode(chat, false);
        chat.input.focus();
        return;
      }
      this._ownTyping(chat, true);
      const p = { id: uuid(), text, failed: false };
      p.el = h('li', { class: 'ac-e pending', 'data-from': 'agent', 'data-pending': 'true' },
        h('div', { class: 'who' }, h('b', { text: (this._agent && this._agent.name) || 'Sie' }), h('span', { class: 'state', text: 'wird gesendet …' })),
        h('div', { class: 'txt', text }));
      chat.pending.set(p.id, p);
      chat.log.append(p.el);
      chat.log.scrollTop = chat.log.scrollHeight;
      chat.input.value = '';
      this._lastMessage = { chat, cid: p.id };
      if (!this._send({ type: 'message', conversation_id: chat.id, client_id: p.id, text })) {
        p.el.querySelector('.state').textContent = 'wird gesendet, sobald die Verbindung steht …';
      }
      chat.input.focus();
    }

    _ownTyping(chat, stop) {
      if (stop) {
        clearTimeout(chat.ownTypingTimer);
        if (chat.typingOn) this._send({ type: 'typing', conversation_id: chat.id, active: false });
        chat.typingOn = false;
        return;
      }
      if (chat.note || chat.ended) return;
      if (!chat.input.value.trim()) { this._ownTyping(chat, true); return; }
      if (!chat.typingOn) chat.typingOn = this._send({ type: 'typing', conversation_id: chat.id, active: true });
      clearTimeout(chat.ownTypingTimer);
      chat.ownTypingTimer = setTimeout(() => this._ownTyping(chat, true), OWN_TYPING_IDLE_MS);
    }

    _transfer(chat) {
      const queue = chat.xferInput.value.trim().toLowerCase();
      if (!/^[a-z0-9_-]{1,32}$/.test(queue)) {
        this._setStatus('Bitte geben Sie eine gültige Warteschlange an (Kleinbuchstaben, Ziffern, - und _).');
        chat.xferInput.setAttribute('aria-invalid', 'true');
        chat.xferInput.focus();
        return;
      }
      chat.xferInput.removeAttribute('aria-invalid');
      this._finish(chat, 'transfer', queue);
    }

    _finish(chat, type, queue) {
      const frame = { type, conversation_id: chat.id };
      if (queue) frame.queue = queue;
      this._ownTyping(chat, true);
      if (!this._act(frame)) return;
      this._setStatus('');
      const text = type === 'handback' ? 'An den Bot zurückgegeben.'
        : type === 'transfer' ? `An die Warteschlange „${queue}“ weitergeleitet.` : 'Gespräch beendet.';
      // The server stops following the conversation: its own state event may not reach us.
      this._endChat(chat, text);
      chat.endedBox.querySelector('button').focus();
      this._announce(text);
    }

    // ---- notification ---------------------------------------------------------------------------

    _beep() {
      if (!this._interacted || !this._soundBox.checked) return;
      try {
        const Ctx = window.AudioContext || window.webkitAudioContext;
        if (!Ctx) return;
        this._audio = this._audio || new Ctx();
        const ctx = this._audio;
        if (ctx.state === 'suspended') ctx.resume();
        const t0 = ctx.currentTime;
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        osc.type = 'sine';
        osc.frequency.setValueAtTime(880, t0);
        osc.frequency.setValueAtTime(660, t0 + 0.12);
        gain.gain.setValueAtTime(0.0001, t0);
        gain.gain.exponentialRampToValueAtTime(0.15, t0 + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, t0 + 0.28);
        osc.connect(gain).connect(ctx.destination);
        osc.start(t0);
        osc.stop(t0 + 0.3);
      } catch (e) { /* no audio: the title and the live region still tell */ }
    }
  }

  AgentConsole.define();
  window.BuergerserviceAgentConsole = window.BuergerserviceAgentConsole || AgentConsole;
})();
