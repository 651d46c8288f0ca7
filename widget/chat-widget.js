/*!
 * Bürgerservice chat widget: <buergerservice-chat>.
 * Plain JavaScript, no dependencies, no build step, no third-party requests.
 * Speaks the citizen socket of docs/DESIGN "Wire protocol": GET /ws/chat?lang, then the first
 * frame {"type":"hello","token","after","lang"} (credentials never in the URL).
 *
 * Embed with one tag (the gateway serves this file at /widget.js):
 *   <script src="/widget.js" data-server="" data-lang="de" data-title="…" defer></script>
 * data-server: gateway base URL (empty: origin of this script); data-lang: de|en;
 * data-title: panel title; data-accent: accent colour (else CSS --bs-accent, default #0b4f8a);
 * data-invite-after: seconds on the page before a small "Can I help you?" invitation appears
 * beside the launcher (absent: never); once dismissed or once the chat was opened it is not
 * shown again on this origin (localStorage), nor while a conversation is under way;
 * data-mount="false": only define the element, do not append one to <body>.
 *
 * Styling hooks: ::part(launcher|panel|header|title|close|log|message|bubble|quick-reply|
 * typing|status|composer|input|send|options|options-list|erase-dialog). The header's options
 * button offers the conversation as an HTML page or JSON file and its deletion (with a
 * confirmation dialog): POST /api/conversation/export|erase, token as a Bearer header
 * (docs/data-protection.md). Events (bubbling, composed): buergerservice-chat:open,
 * buergerservice-chat:close, buergerservice-chat:message (detail: the message frame, plus
 * `replay: true` for history and `pending: true` plus `client_id` for the citizen's own sends).
 * Methods: show(), hide(), toggle(), send(text). performance.mark('bs-widget-interactive') is set
 * when the launcher is usable (benchmarks/widget_timing.py).
 */
(() => {
  'use strict';

  const TAG = 'buergerservice-chat';
  const NS = TAG + ':'; // sessionStorage key prefix; also the event name prefix
  const SCRIPT = document.currentScript;
  const SCRIPT_ORIGIN = (() => {
    try { return new URL(SCRIPT.src, location.href).origin; } catch (e) { return location.origin; }
  })();

  // Reconnect backoff: retry a blip quickly, but never wait longer than 15 s, so a returning
  // gateway is found soon without every tab hammering it in lockstep (jitter below).
  const RETRY_MIN_MS = 500;
  const RETRY_MAX_MS = 15000;
  // The bot answers within one HTTP round trip; if nothing comes, stop pretending it types.
  const BOT_TYPING_MS = 30000;
  // An agent typing frame without a follow-up is stale after this long (lost "active:false").
  const AGENT_TYPING_MS = 8000;
  // Our own typing signal to the agent turns to "stopped" after this much idle time.
  const OWN_TYPING_IDLE_MS = 3000;
  // Errors are shown briefly; the offline banner stays as long as the condition lasts.
  const FLASH_MS = 6000;

  const T = {
    de: {
      title: 'Bürgerservice', chat: 'Chat', open: 'Chat öffnen', closeChat: 'Chat schließen',
      close: 'Schließen', unread: ['neue Nachricht', 'neue Nachrichten'],
      intro: 'Stellen Sie Ihre Frage. Der digitale Assistent antwortet sofort; auf Wunsch übernimmt eine Mitarbeiterin oder ein Mitarbeiter des Bürgerservice.',
      label: 'Ihre Nachricht', placeholder: 'Ihre Nachricht …', send: 'Senden',
      you: 'Sie', bot: 'Assistent', agent: 'Bürgerservice', replies: 'Antwortvorschläge',
      history: 'Chatverlauf',
      newTab: '(öffnet in neuem Tab)', pending: 'wird gesendet …',
      connecting: 'Verbindung wird hergestellt …',
      offline: 'Keine Verbindung – Nachrichten werden gesendet, sobald die Verbindung wieder steht.',
      botTyping: 'Der Assistent schreibt …', agentTyping: '{name} schreibt …',
      queued: 'Sie sind in der Warteschlange. Gleich ist jemand für Sie da.',
      queuedPos: 'Sie sind in der Warteschlange (Position {n}).',
      eta: 'Geschätzte Wartezeit: etwa {m} Min.',
      withAgent: '{name} ist jetzt für Sie da.',
      withAgentAnon: 'Eine Mitarbeiterin oder ein Mitarbeiter ist jetzt für Sie da.',
      backToBot: 'Der digitale Assistent ist wieder für Sie da.',
      closed: 'Das Gespräch wurde beendet.',
      end: 'Gespräch beenden', restart: 'Neues Gespräch beginnen',
      csatQ: 'Wie zufrieden waren Sie mit dem Gespräch?', star: '{n} von 5 Sternen',
      csatComment: 'Möchten Sie uns noch etwas mitteilen? (optional)',
      csatSend: 'Bewertung senden', csatThanks: 'Vielen Dank für Ihre Rückmeldung!',
      invite: 'Kann ich Ihnen helfen?', inviteOpen: 'Chat starten', inviteClose: 'Einladung schließen',
      options: 'Gesprächsoptionen', downloadHtml: 'Gespräch herunterladen (HTML-Seite)',
      downloadJson: 'Gespräch herunterladen (JSON-Datei)', erase: 'Gespräch löschen',
      eraseQ: 'Gespräch endgültig löschen?',
      eraseBody: 'Der gesamte Verlauf und alles, was der Bürgerservice dazu gespeichert hat, wird gelöscht. Das lässt sich nicht rückgängig machen. Laden Sie das Gespräch vorher herunter, wenn Sie es behalten möchten.',
      eraseYes: 'Endgültig löschen', cancel: 'Abbrechen', erased: 'Ihr Gespräch wurde gelöscht.',
      downloaded: 'Der Download wurde gestartet.',
      downloadFailed: 'Der Download ist fehlgeschlagen. Bitte versuchen Sie es erneut.',
      eraseFailed: 'Das Gespräch konnte nicht gelöscht werden. Bitte versuchen Sie es erneut.',
      cbView: '{name} möchte die Seite des Bürgerportals sehen, auf der Sie gerade sind, um Sie zu begleiten.',
      cbSees: 'Sichtbar: diese Seite, wohin Sie scrollen und klicken.',
      cbHidden: 'Nicht sichtbar: was Sie in Formularfelder eingeben, der Chat, andere Tabs und Programme.',
      cbPointerQ: '{name} möchte auf Stellen dieser Seite zeigen und Felder hervorheben. Eingeben oder klicken kann {name} nichts.',
      cbYes: 'Zulassen', cbNo: 'Ablehnen', cbDeclined: 'Sie haben abgelehnt.',
      cbOn: 'Sie teilen diese Seite mit {name}.', cbPointerOn: '{name} darf auf Stellen der Seite zeigen.',
      cbEnded: 'Das Teilen der Seite ist beendet.', cbBanner: '{name} sieht diese Seite', cbStop: 'Beenden',
      cbLink: '{name} schlägt Ihnen eine Seite vor:', cbOpen: 'Seite öffnen',
      cbHighlight: '{name} hebt hervor: {label}', cbPointer: '{name} zeigt auf eine Stelle der Seite.',
      errors: {
        bad_frame: 'Die Nachricht konnte nicht verarbeitet werden.',
        too_large: 'Die Nachricht ist zu lang. Bitte kürzen Sie sie.',
        rate_limited: 'Bitte warten Sie einen Moment, bevor Sie weitere Nachrichten senden.',
        bot_unavailable: 'Der Assistent ist gerade nicht erreichbar. Bitte versuchen Sie es später erneut.',
        '': 'Es ist ein Fehler aufgetreten.',
      },
    },
    en: {
      title: 'Citizen service', chat: 'Chat', open: 'Open chat', closeChat: 'Close chat',
      close: 'Close', unread: ['new message', 'new messages'],
      intro: 'Ask your question. The digital assistant answers right away; if you wish, a member of the citizen service team takes over.',
      label: 'Your message', placeholder: 'Your message …', send: 'Send',
      you: 'You', bot: 'Assistant', agent: 'Citizen service', replies: 'Suggested replies',
      history: 'Conversation',
      newTab: '(opens in a new tab)', pending: 'sending …',
      connecting: 'Connecting …',
      offline: 'No connection – messages will be sent as soon as the connection is back.',
      botTyping: 'The assistant is typing …', agentTyping: '{name} is typing …',
      queued: 'You are in the queue. Someone will be with you shortly.',
      queuedPos: 'You are in the queue (position {n}).',
      eta: 'Estimated wait: about {m} min.',
      withAgent: '{name} is now here to help you.',
      withAgentAnon: 'A member of staff is now here to help you.',
      backToBot: 'The digital assistant is back to help you.',
      closed: 'The conversation has ended.',
      end: 'End conversation', restart: 'Start a new conversation',
      csatQ: 'How satisfied were you with this conversation?', star: '{n} of 5 stars',
      csatComment: 'Anything else you would like to tell us? (optional)',
      csatSend: 'Send rating', csatThanks: 'Thank you for your feedback!',
      invite: 'Can I help you?', inviteOpen: 'Start chat', inviteClose: 'Close invitation',
      options: 'Conversation options', downloadHtml: 'Download conversation (HTML page)',
      downloadJson: 'Download conversation (JSON file)', erase: 'Delete conversation',
      eraseQ: 'Delete this conversation for good?',
      eraseBody: 'The whole conversation and everything the citizen service stored about it will be deleted. This cannot be undone. Download the conversation first if you want to keep it.',
      eraseYes: 'Delete for good', cancel: 'Cancel', erased: 'Your conversation has been deleted.',
      downloaded: 'The download has started.',
      downloadFailed: 'The download failed. Please try again.',
      eraseFailed: 'The conversation could not be deleted. Please try again.',
      cbView: '{name} would like to see the page of the city portal you are on, to guide you.',
      cbSees: 'Visible: this page, where you scroll and click.',
      cbHidden: 'Not visible: what you type into form fields, the chat, other tabs and programs.',
      cbPointerQ: '{name} would like to point at places on this page and highlight fields. {name} cannot type or click anything.',
      cbYes: 'Allow', cbNo: 'Decline', cbDeclined: 'You declined.',
      cbOn: 'You are sharing this page with {name}.', cbPointerOn: '{name} may point at places on the page.',
      cbEnded: 'Page sharing has ended.', cbBanner: '{name} sees this page', cbStop: 'Stop',
      cbLink: '{name} suggests a page:', cbOpen: 'Open page',
      cbHighlight: '{name} highlights: {label}', cbPointer: '{name} points at a place on the page.',
      errors: {
        bad_frame: 'The message could not be processed.',
        too_large: 'The message is too long. Please shorten it.',
        rate_limited: 'Please wait a moment before sending more messages.',
        bot_unavailable: 'The assistant is not available right now. Please try again later.',
        '': 'Something went wrong.',
      },
    },
  };

  const fill = (s, vars) => s.replace(/\{(\w+)\}/g, (_, k) => String(vars[k]));

  /** The conversation lives as long as the tab (sessionStorage); what the citizen declined, longer (localStorage). */
  const storage = (kind) => ({
    get(k) { try { return window[kind].getItem(NS + k); } catch (e) { return null; } },
    set(k, v) {
      try { v == null ? window[kind].removeItem(NS + k) : window[kind].setItem(NS + k, String(v)); } catch (e) { /* storage disabled: memory only */ }
    },
  });
  const store = storage('sessionStorage');
  const lasting = storage('localStorage');

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
    el.append(...kids.filter((c) => c != null));
    return el;
  }

  /** Only web, mail and phone links are rendered; anything else (javascript:, data:) is dropped. */
  function safeUrl(u) {
    try {
      const url = new URL(u, location.href);
      return /^(https?|mailto|tel):$/.test(url.protocol) ? url.href : null;
    } catch (e) { return null; }
  }

  function link(href, text, t) {
    return h('a', { href, target: '_blank', rel: 'noopener noreferrer', text },
      h('span', { class: 'sr', text: ' ' + t.newTab }));
  }

  /** Fills `el` with `text`, turning bare http(s) URLs into links; everything stays text nodes. */
  function richText(el, text, t) {
    String(text == null ? '' : text).split(/(https?:\/\/[^\s<>"']*[^\s<>"'.,;:!?)\]])/).forEach((part, i) => {
      const href = i % 2 ? safeUrl(part) : null;
      el.append(href ? link(href, part, t) : part);
    });
  }

  const ICON = {
    chat: '<svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true"><path fill="currentColor" d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zm3 6.2a1.3 1.3 0 1 0 0 2.6 1.3 1.3 0 0 0 0-2.6zm5 0a1.3 1.3 0 1 0 0 2.6 1.3 1.3 0 0 0 0-2.6zm5 0a1.3 1.3 0 1 0 0 2.6 1.3 1.3 0 0 0 0-2.6z"/></svg>',
    x: '<svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true"><path fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round" d="M6 6l12 12M18 6L6 18"/></svg>',
    more: '<svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true"><circle fill="currentColor" cx="12" cy="5" r="2"/><circle fill="currentColor" cx="12" cy="12" r="2"/><circle fill="currentColor" cx="12" cy="19" r="2"/></svg>',
    send: '<svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true"><path fill="currentColor" d="M3.4 20.4l17.5-7.5a1 1 0 0 0 0-1.8L3.4 3.6a1 1 0 0 0-1.4 1.1L4 11l9 1-9 1-2 6.3a1 1 0 0 0 1.4 1.1z"/></svg>',
  };

  const CSS = `
:host{--a:var(--bs-accent,#0b4f8a)}
.w{all:initial;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1b1f24}
.w *,.w *::before,.w *::after{box-sizing:border-box}
button,textarea{font:inherit;color:inherit;letter-spacing:inherit;margin:0}
button{cursor:pointer}
[hidden]{display:none!important}
.sr{position:absolute;width:1px;height:1px;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);clip-path:inset(50%);white-space:nowrap}
:focus-visible{outline:3px solid #fff;outline-offset:0;box-shadow:0 0 0 6px #1b1f24}
.launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;display:flex;align-items:center;gap:8px;height:54px;padding:0 22px 0 18px;border:0;border-radius:27px;background:var(--a);color:#fff;font-weight:650;font-size:17px;box-shadow:0 6px 18px rgba(0,0,0,.28);transition:transform .15s}
.launcher:hover{transform:translateY(-2px)}
.inv{position:fixed;right:20px;bottom:88px;z-index:2147483000;max-width:min(300px,calc(100vw - 40px));padding:14px 46px 14px 16px;border:1px solid #d3d9e1;border-radius:14px;background:#fff;box-shadow:0 8px 24px rgba(0,0,0,.22);animation:in .25s ease-out}
.inv::after{content:"";position:absolute;right:34px;bottom:-7px;width:12px;height:12px;background:#fff;border:solid #d3d9e1;border-width:0 1px 1px 0;transform:rotate(45deg)}
.iq{margin:0 0 10px;font-weight:650}
.ia{padding:8px 16px;border:0;border-radius:10px;background:var(--a);color:#fff;font-weight:600}
.ix{position:absolute;top:4px;right:4px;display:grid;place-items:center;width:40px;height:40px;border:0;border-radius:50%;background:none;color:#434d5a}
.ix:hover{background:#eef1f4}
.badge{min-width:22px;height:22px;padding:0 6px;border-radius:11px;background:#c0262d;color:#fff;font-size:13px;line-height:22px;text-align:center}
.panel{position:fixed;right:20px;bottom:88px;z-index:2147483001;width:min(400px,calc(100vw - 40px));height:min(640px,calc(100vh - 112px));display:flex;flex-direction:column;background:#fff;border-radius:16px;box-shadow:0 14px 44px rgba(0,0,0,.3);overflow:hidden;animation:in .2s ease-out}
@keyframes in{from{opacity:0;transform:translateY(14px)}}
.head{display:flex;align-items:center;gap:8px;padding:12px 10px 12px 18px;background:var(--a);color:#fff}
h2{flex:1;margin:0;font-size:17px;font-weight:700;line-height:1.3}
.x,.opt{flex:none;display:grid;place-items:center;width:44px;height:44px;border:0;border-radius:50%;background:transparent;color:#fff}
.x:hover,.opt:hover{background:rgba(255,255,255,.18)}
.scroll{position:relative;flex:1;overflow-y:auto;overscroll-behavior:contain;padding:16px 14px;background:#f4f6f9}
.scroll:focus-visible{outline:3px solid #1b1f24;outline-offset:-3px;box-shadow:inset 0 0 0 6px #fff}
.intro{margin:0 6px 14px;font-size:14px;color:#4a5462;text-align:center}
.log{display:flex;flex-direction:column;gap:12px}
.m{display:flex;flex-direction:column;align-items:flex-start;max-width:86%}
.m[data-from=citizen]{align-self:flex-end;align-items:flex-end}
.b{padding:9px 13px;border:1px solid #d3d9e1;border-radius:16px 16px 16px 4px;background:#fff;white-space:pre-wrap;overflow-wrap:anywhere}
.m[data-from=citizen] .b{background:var(--a);border-color:var(--a);color:#fff;border-radius:16px 16px 4px 16px}
.m[data-from=citizen] .b a{color:#fff}
.m[data-from=agent] .b{background:#e9f5ee;border-color:#9fcdb0}
.who{margin:0 0 3px 4px;font-size:13px;font-weight:650;color:#1c5a32}
.meta{margin:3px 4px 0;font-size:12px;color:#566070}
.m[data-from=system]{align-self:center;max-width:92%;text-align:center;font-size:14px;color:#434d5a}
.b a,.links a{color:var(--a);font-weight:600;text-decoration:underline;text-underline-offset:2px}
.links{list-style:none;margin:6px 0 0;padding:0;display:flex;flex-direction:column;gap:4px;font-size:15px}
.links a::after{content:" ↗";text-decoration:none}
.qr{display:flex;flex-wrap:wrap;gap:6px;margin-top:8px}
.qr button{padding:7px 14px;border:1.5px solid var(--a);border-radius:18px;background:#fff;color:var(--a);font-size:15px;font-weight:600;text-align:left}
.qr button:hover{background:var(--a);color:#fff}
.typing{display:inline-flex;align-items:center;gap:8px;margin-top:12px;padding:11px 14px;border:1px solid #d3d9e1;border-radius:16px 16px 16px 4px;background:#fff;font-size:13px;color:#434d5a}
.dots{display:inline-flex;gap:4px}
.dots i{width:7px;height:7px;border-radius:50%;background:#5b6574;animation:blink 1.2s infinite}
.dots i:nth-child(2){animation-delay:.2s;opacity:.7}.dots i:nth-child(3){animation-delay:.4s;opacity:.45}
@keyframes blink{0%,80%,100%{opacity:.35;transform:none}40%{opacity:1;transform:translateY(-3px)}}
.status{font-size:14px;color:#3b4451;background:#fff}
.status:not(:empty){padding:8px 16px;border-top:1px solid #e1e5ea}
.status.off{background:#fff3c4;color:#433300}
.status.err{background:#fdeaea;color:#8a1820}
.composer{display:flex;align-items:flex-end;gap:8px;padding:10px 12px;border-top:1px solid #e1e5ea;background:#fff}
textarea{flex:1;min-height:46px;max-height:132px;padding:11px 12px;border:1.5px solid #737d8a;border-radius:12px;background:#fff;line-height:1.4;resize:none}
textarea:focus-visible{outline:0;border-color:var(--a);box-shadow:0 0 0 2px var(--a)}
textarea::placeholder{color:#5e6775;opacity:1}
.send{flex:none;display:grid;place-items:center;width:46px;height:46px;border:0;border-radius:50%;background:var(--a);color:#fff}
.foot{display:flex;flex-direction:column;padding:0 12px;background:#fff}
.end{align-self:flex-end;margin:-4px 0 6px;padding:4px;border:0;background:none;color:#3b4451;font-size:13px;text-decoration:underline}
.restart{margin:10px 0;padding:12px;border:0;border-radius:12px;background:var(--a);color:#fff;font-weight:650}
.cs{margin-top:6px;padding:12px 14px;border:1px solid #d3d9e1;border-radius:12px;background:#fff;text-align:left}
fieldset{margin:0;padding:0;border:0;min-width:0}
legend{padding:0;font-weight:650;color:#1b1f24}
.stars{display:flex;gap:2px}
.stars label{position:relative;display:grid;place-items:center;width:44px;height:44px;font-size:28px;line-height:1;color:#767f8c;cursor:pointer}
.stars input{position:absolute;inset:0;margin:0;opacity:0;cursor:pointer}
.stars input:focus-visible+span{outline:3px solid var(--a);outline-offset:2px;border-radius:4px}
.stars label.on{color:#a15c00}
.cs label[for]{display:block;margin:8px 0 4px;font-size:14px;color:#1b1f24}
.cs textarea{width:100%;min-height:60px}
.cs .send2{margin-top:8px;padding:8px 16px;border:0;border-radius:10px;background:var(--a);color:#fff;font-weight:600}
.cs .send2:disabled{background:#8b94a1;cursor:not-allowed}
.opts{display:flex;flex-direction:column;gap:2px;padding:6px 10px;border-bottom:1px solid #e1e5ea;background:#fff}
.opts button{padding:10px 12px;border:0;border-radius:8px;background:none;color:#1b1f24;text-align:left;font-size:15px}
.opts button:hover{background:#eef1f4}
.opts .danger,.dlg .danger{color:#a3121b}
.dlg{max-width:min(360px,calc(100vw - 40px));padding:18px 18px 14px;border:0;border-radius:14px;box-shadow:0 14px 44px rgba(0,0,0,.35);color:#1b1f24;font:16px/1.45 system-ui,sans-serif}
.dlg::backdrop{background:rgba(0,0,0,.45)}
.dlg h3{margin:0 0 8px;font-size:17px}
.dlg p{margin:0 0 14px;font-size:15px}
.dlg .acts{display:flex;flex-wrap:wrap;justify-content:flex-end;gap:8px}
.dlg button{padding:9px 16px;border:1.5px solid #737d8a;border-radius:10px;background:#fff;font-weight:600}
.dlg .danger{border-color:#a3121b;background:#a3121b;color:#fff}
.cb{margin-top:6px}.cb p{margin:0 0 6px}.cb ul{margin:0 0 8px;padding-left:18px;font-size:14px}
.cbb{position:fixed;top:0;left:50%;z-index:2147483002;display:flex;align-items:center;gap:12px;padding:8px 10px 8px 16px;border-radius:0 0 12px 12px;background:#7c2d12;color:#fff;font-weight:650;transform:translateX(-50%);box-shadow:0 4px 14px rgba(0,0,0,.3)}
.cbb button{padding:6px 14px;border:2px solid #fff;border-radius:8px;background:#fff;color:#7c2d12;font-weight:700}
.cb-highlight,.cb-pointer{position:fixed;z-index:2147482999;pointer-events:none}
.cb-highlight{border:3px solid #c2410c;border-radius:6px;box-shadow:0 0 0 4px rgba(194,65,12,.3)}
.cb-pointer{width:24px;height:24px;margin:-12px 0 0 -12px;border:3px solid #fff;border-radius:50%;background:#c2410c;box-shadow:0 0 0 2px #c2410c}
@media (max-width:480px){.panel{inset:0;width:100%;height:100%;border-radius:0;animation:none}}
@media (prefers-reduced-motion:reduce){*,*::before,*::after{animation:none!important;transition:none!important}}
@media (forced-colors:active){.launcher,.send,.b,.qr button,.restart,.ia{border:1px solid CanvasText}}
@media print{.launcher,.panel,.inv{display:none!important}}`;

  // The scrolling body (intro, log, typing) is a named region and a tab stop of its own, so a
  // keyboard can scroll a conversation that holds no link or button (WCAG 2.1.1); its focus ring
  // is drawn inside, as the panel clips anything outside. Role "log" and its live announcements
  // stay on .log; .scroll stays the containing block of the .sr texts.
  const SHELL = `<style>${CSS}</style><div class="w">
<div class="inv" part="invitation" role="group" aria-labelledby="iq" hidden><p class="iq" id="iq"></p><button class="ia" part="invitation-accept" type="button"></button><button class="ix" part="invitation-dismiss" type="button">${ICON.x}</button></div><div class="sr" role="status"></div>
<div class="cbb" part="cobrowse-banner" role="region" hidden><span></span><button type="button"></button></div><div class="cbl"></div><div class="sr cbs" role="status"></div>
<button class="launcher" part="launcher" type="button" aria-expanded="false" aria-controls="panel">${ICON.chat}<span class="ll"></span><span class="badge" hidden aria-hidden="true"></span></button>
<section class="panel" id="panel" part="panel" role="dialog" hidden>
<div class="head" part="header"><h2 part="title"></h2><button class="opt" part="options" type="button" aria-expanded="false" aria-controls="opts" hidden>${ICON.more}</button><button class="x" part="close" type="button">${ICON.x}</button></div>
<div class="opts" id="opts" part="options-list" role="group" hidden><button type="button" data-act="html"></button><button type="button" data-act="json"></button><button type="button" class="danger" data-act="erase"></button></div>
<dialog class="dlg" part="erase-dialog" aria-labelledby="dq" aria-describedby="db"><h3 id="dq"></h3><p id="db"></p><div class="acts"><button type="button" data-act="cancel"></button><button type="button" class="danger" data-act="confirm"></button></div></dialog>
<div class="scroll" part="body" role="region" tabindex="0"><p class="intro"></p>
<div class="log" part="log" role="log" aria-live="polite" aria-relevant="additions"></div>
<div class="typing" part="typing" role="status" hidden><span class="dots" aria-hidden="true"><i></i><i></i><i></i></span><span class="tl"></span></div></div>
<div class="status" part="status" role="status" aria-live="polite"></div>
<form class="composer" part="composer"><label class="sr" for="in"></label><textarea id="in" part="input" rows="1" autocomplete="off" enterkeyhint="send"></textarea><button class="send" part="send" type="submit">${ICON.send}</button></form>
<div class="foot"><button class="restart" type="button" hidden></button><button class="end" type="button" hidden></button></div>
</section></div>`;

  class BuergerserviceChat extends HTMLElement {
    /** Defines the element once; a second script tag or bundle copy is harmless. */
    static define(tag = TAG, registry = customElements) {
      if (!registry.get(tag)) registry.define(tag, this);
      return registry.get(tag);
    }

    static get observedAttributes() { return ['data-lang', 'data-title', 'data-accent', 'data-invite-after']; }

    constructor() {
      super();
      this._ws = null; // current socket; null when closed
      this._ready = false; // a `session` frame arrived on the current socket
      this._everReady = false;
      this._active = false; // the citizen has opened the chat (or has a conversation): stay connected
      this._attempt = 0; // reconnect attempts since the last good session
      this._timers = new Map();
      this._rendered = new Set(); // seqs of durable events already in the log
      this._maxSeq = 0; // highest seq rendered on this page: the `after` of a reconnect
      this._sessionSeq = 0; // seq of the session frame; events up to it are history (replay)
      this._state = 'bot';
      this._lineState = 'bot'; // conversation state as of the last rendered state line
      this._agentName = '';
      this._outbox = []; // {id, text | payload+label}; in memory: sent, seq
      this._bubbles = new Map(); // client_id → pending bubble element
      this._isOpen = false;
      this._unread = 0;
      this._typingOn = false;
      this._onOnline = () => this._reconnectNow(true);
      this._onOffline = () => { this._wentOffline = true; this._renderStatus(); };
    }

    get lang() {
      const l = (this.dataset.lang || document.documentElement.lang || 'de').slice(0, 2).toLowerCase();
      return T[l] ? l : 'de';
    }

    get t() { return T[this.lang]; }

    get heading() { return this.dataset.title || this.t.title; }

    get server() { return this.dataset.server || SCRIPT_ORIGIN; }

    get opened() { return this._isOpen; }

    /** Seconds on the page before the invitation; null (no invitation) when absent or invalid. */
    get inviteAfter() {
      const s = parseFloat(this.dataset.inviteAfter);
      return s >= 0 ? s : null;
    }

    connectedCallback() {
      if (!this.shadowRoot) this._build();
      this.classList.add('cobrowse-block'); // a shared page never shows the chat itself
      this._applyTexts();
      this._applyAccent();
      addEventListener('online', this._onOnline);
      addEventListener('offline', this._onOffline);
      if (!this._loaded) this._load();
      if (this._active) this._connect();
      if (store.get('open') === '1') this.show({ focus: false });
      this._planInvite();
      if (!this._marked && self.performance && performance.mark) { this._marked = true; performance.mark('bs-widget-interactive'); }
    }

    disconnectedCallback() {
      removeEventListener('online', this._onOnline);
      removeEventListener('offline', this._onOffline);
      for (const id of this._timers.values()) clearTimeout(id);
      this._timers.clear();
      this._showTyping(null);
      this._drop();
    }

    attributeChangedCallback(name) {
      if (!this.shadowRoot) return;
      if (name === 'data-accent') this._applyAccent();
      else if (name === 'data-invite-after') this._planInvite();
      else this._applyTexts();
    }

    /** Opens the panel; connects on first open. */
    show({ focus = true } = {}) {
      if (!this._isOpen) {
        this._isOpen = true;
        store.set('open', '1');
        this._endInvite(true);
        this._panel.hidden = false;
        this._unread = 0;
        this._applyTexts();
        this._active = true;
        this._connect();
        this._renderStatus();
        this._scrollDown(true);
        this._emit('open');
      }
      if (focus) (this._form.hidden ? this._restartBtn : this._input).focus();
    }

    /** Closes the panel and (by default) returns focus to the launcher. */
    hide({ focus = true } = {}) {
      if (!this._isOpen) return;
      this._isOpen = false;
      store.set('open', null);
      this._panel.hidden = true;
      this._applyTexts();
      if (focus) this._launcher.focus();
      this._emit('close');
    }

    toggle() { this._isOpen ? this.hide() : this.show(); }

    /** Sends a text message as the citizen (queued while offline). */
    send(text) {
      text = String(text == null ? '' : text).trim();
      if (text) this._send({ text });
    }

    // ---- building and texts -------------------------------------------------------------

    _build() {
      const root = this.attachShadow({ mode: 'open' });
      root.innerHTML = SHELL; // static markup only; no message data ever goes through innerHTML
      const $ = (s) => root.querySelector(s);
      this._w = $('.w');
      this._launcher = $('.launcher');
      this._panel = $('.panel');
      this._log = $('.log');
      this._scroll = $('.scroll');
      this._typing = $('.typing');
      this._status = $('.status');
      this._form = $('form');
      this._input = $('textarea');
      this._restartBtn = $('.restart');
      this._endBtn = $('.end');
      this._inv = $('.inv');
      this._announcer = $('[role=status]');
      this._cbBanner = $('.cbb');
      this._cbLayer = $('.cbl');
      this._cbSay = $('.cbs');
      this._cbBanner.querySelector('button').addEventListener('click', () => this._cbStop());
      this._buildDataControls($);
      this._launcher.addEventListener('click', () => this.toggle());
      $('.ia').addEventListener('click', () => this.show());
      $('.ix').addEventListener('click', () => this._endInvite(true));
      $('.x').addEventListener('click', () => this.hide());
      this._restartBtn.addEventListener('click', () => this._restart());
      this._endBtn.addEventListener('click', () => this._sendFrame({ type: 'end' }));
      this._form.addEventListener('submit', (e) => { e.preventDefault(); this._submit(); });
      this._input.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); this._submit(); }
      });
      this._input.addEventListener('input', () => { this._autosize(); this._ownTyping(); });
      root.addEventListener('keydown', (e) => {
        if (e.key !== 'Escape' || e.isComposing || this._dlg.open) return;
        if (!this._opts.hidden) { e.preventDefault(); this._toggleOptions(false, true); return; }
        if (this._isOpen) { e.preventDefault(); this.hide(); } else if (!this._inv.hidden) { e.preventDefault(); this._endInvite(true); }
      });
    }

    _applyTexts() {
      const t = this.t;
      const l = this._launcher;
      this._w.lang = this.lang;
      l.querySelector('.ll').textContent = t.chat;
      l.setAttribute('aria-expanded', String(this._isOpen));
      const badge = l.querySelector('.badge');
      badge.hidden = !this._unread;
      badge.textContent = String(this._unread);
      l.setAttribute('aria-label', this._isOpen ? t.closeChat
        : t.open + (this._unread ? ` (${this._unread} ${t.unread[+(this._unread > 1)]})` : ''));
      this._panel.setAttribute('aria-label', this.heading);
      this._panel.querySelector('h2').textContent = this.heading;
      this._panel.querySelector('.x').setAttribute('aria-label', t.close);
      this._panel.querySelector('.intro').textContent = t.intro;
      this._scroll.setAttribute('aria-label', t.history);
      this._form.querySelector('label').textContent = t.label;
      this._input.placeholder = t.placeholder;
      this._form.querySelector('.send').setAttribute('aria-label', t.send);
      this._restartBtn.textContent = t.restart;
      this._endBtn.textContent = t.end;
      this._applyDataTexts(t);
      this._cbBanner.setAttribute('aria-label', t.cbBanner.replace('{name} ', ''));
      this._cbBanner.querySelector('button').textContent = t.cbStop;
      this._inv.querySelector('.iq').textContent = t.invite;
      this._inv.querySelector('.ia').textContent = t.inviteOpen;
      this._inv.querySelector('.ix').setAttribute('aria-label', t.inviteClose);
      if (this._announcer.textContent) this._announcer.textContent = t.invite;
      this._renderStatus();
    }

    _applyAccent() {
      const a = this.dataset.accent;
      if (a) this.style.setProperty('--bs-accent', a);
      else this.style.removeProperty('--bs-accent');
    }

    _emit(name, detail) {
      this.dispatchEvent(new CustomEvent(NS + name, { bubbles: true, composed: true, detail }));
    }

    _timer(name, ms, fn) {
      clearTimeout(this._timers.get(name));
      this._timers.set(name, setTimeout(() => { this._timers.delete(name); fn(); }, ms));
    }

    _clear(name) { clearTimeout(this._timers.get(name)); this._timers.delete(name); }

    // ---- proactive invitation ---------------------------------------------------------------

    /** Never over an open chat or a conversation under way, never again once declined or used. */
    _mayInvite() {
      return this.inviteAfter != null && !this._isOpen && !this._active && lasting.get('invite') !== 'done';
    }

    /** Counts from the page's start (time on the page), not from when the element was attached. */
    _planInvite() {
      this._clear('invite');
      if (!this._mayInvite()) { this._endInvite(false); return; }
      this._timer('invite', Math.max(0, this.inviteAfter * 1000 - performance.now()), () => {
        if (!this._mayInvite()) return;
        this._inv.hidden = false;
        this._announcer.textContent = this.t.invite; // polite: read out, focus stays where it is
      });
    }

    /** Hides the invitation; `done` (declined or chat opened) keeps it away on this origin. */
    _endInvite(done) {
      this._clear('invite');
      if (done) lasting.set('invite', 'done');
      if (!this._inv || this._inv.hidden) return;
      const focused = this._inv.contains(this.shadowRoot.activeElement);
      this._inv.hidden = true;
      this._announcer.textContent = '';
      if (focused && !this._isOpen) this._launcher.focus();
    }

    // ---- persistence ----------------------------------------------------------------------

    _load() {
      this._loaded = true;
      this._token = store.get('token');
      this._convId = store.get('conversation');
      this._seenAtLoad = Number(store.get('seq')) || 0;
      let box = [];
      try { box = JSON.parse(store.get('outbox') || '[]'); } catch (e) { /* corrupt: start empty */ }
      this._outbox = Array.isArray(box) ? box.filter((x) => x && typeof x.id === 'string') : [];
      for (const it of this._outbox) this._pendingBubble(it);
      // A stored token means a conversation is under way: connect now so it is restored.
      this._active = !!this._token || this._outbox.length > 0;
    }

    _saveOutbox() {
      store.set('outbox', this._outbox.length
        ? JSON.stringify(this._outbox.map(({ id, text, payload, label }) => ({ id, text, payload, label })))
        : null);
    }

    // ---- connection -----------------------------------------------------------------------

    _connect() {
      if (this._ws || !this.isConnected) return;
      this._clear('retry');
      let ws;
      try {
        const u = new URL(this.server.replace(/\/+$/, '') + '/ws/chat', location.href);
        u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
        // The token never goes into the URL (access logs, proxies): it is the hello frame's.
        u.searchParams.set('lang', this.lang);
        ws = new WebSocket(u.href);
      } catch (e) {
        this._scheduleRetry();
        return;
      }
      this._ws = ws;
      this._renderStatus();
      ws.onopen = () => {
        if (this._ws !== ws) return;
        const hello = { type: 'hello', lang: this.lang };
        if (this._token) hello.token = this._token;
        if (this._maxSeq) hello.after = this._maxSeq;
        ws.send(JSON.stringify(hello));
      };
      ws.onmessage = (e) => { if (this._ws === ws) this._onFrame(e.data); };
      ws.onclose = () => {
        if (this._ws !== ws) return;
        this._ws = null;
        this._ready = false;
        for (const it of this._outbox) it.sent = false; // resent (same client_id) after reconnect
        this._showTyping(null);
        this._renderState();
        this._renderStatus();
        this._scheduleRetry();
      };
    }

    /** Closes the current socket without triggering a reconnect. */
    _drop() {
      const ws = this._ws;
      this._ws = null;
      this._ready = false;
      if (ws) { ws.onopen = ws.onclose = ws.onmessage = null; try { ws.close(1000); } catch (e) { /* already closed */ } }
      for (const it of this._outbox) it.sent = false;
    }

    _scheduleRetry() {
      const cap = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** this._attempt++);
      // "Equal jitter": half the delay fixed, half random.
      this._timer('retry', cap / 2 + (Math.random() * cap) / 2, () => this._connect());
    }

    /** Reconnect at once (network came back). An old socket may be silently dead: replace it. */
    _reconnectNow(fresh) {
      if (!this._active) return;
      if (fresh && this._wentOffline && this._ws) this._drop();
      this._wentOffline = false;
      this._attempt = 0;
      this._connect();
      this._renderStatus();
    }

    _sendFrame(obj) {
      const ws = this._ws;
      if (!this._ready || !ws || ws.readyState !== 1) return false;
      ws.send(JSON.stringify(obj));
      return true;
    }

    // ---- incoming frames --------------------------------------------------------------------

    _onFrame(raw) {
      let f;
      try { f = JSON.parse(raw); } catch (e) { return; }
      if (!f || typeof f !== 'object') return;
      switch (f.type) {
        case 'session': return this._onSession(f);
        case 'ack': return this._onAck(f);
        case 'error': return this._onError(f);
        case 'typing': if (f.from === 'agent') this._showTyping(f.active ? 'agent' : null); return;
        default: if (typeof f.seq === 'number' && !this._rendered.has(f.seq)) this._onEvent(f);
      }
    }

    _onSession(f) {
      const other = this._convId && f.conversation_id !== this._convId;
      this._token = f.token || this._token;
      this._convId = f.conversation_id || null;
      store.set('token', this._token);
      store.set('conversation', this._convId);
      if (other) {
        // Unknown/expired token: the server started a new conversation. Its seqs restart,
        // so forget ours; if we asked for `after`, ask again for everything.
        const asked = this._maxSeq > 0;
        this._resetLog();
        if (asked) { this._drop(); this._connect(); return; }
      }
      this._ready = this._everReady = true;
      this._attempt = 0;
      this._sessionSeq = Number(f.seq) || 0;
      if (f.state) this._state = f.state;
      this._renderState();
      this._renderStatus();
      for (const it of this._outbox) this._transmit(it);
    }

    _onEvent(f) {
      const seq = f.seq;
      const live = seq > this._sessionSeq;
      const near = this._nearBottom();
      this._rendered.add(seq);
      if (seq > this._maxSeq) { this._maxSeq = seq; store.set('seq', seq); }
      if (f.type === 'message') this._onMessage(f, live);
      else if (f.type === 'state') this._onState(f, live);
      else if (f.type === 'csat_request') this._place(this._csat(seq), seq);
      else if (f.type === 'cobrowse') this._onCobrowse(f);
      this._renderState();
      this._cbSync();
      this._scrollDown(near);
    }

    _onMessage(f, live) {
      const from = ['citizen', 'bot', 'agent'].includes(f.from) ? f.from : 'bot';
      let el = null;
      if (from === 'citizen') {
        // The echo of our own message may come before its ack: adopt the pending bubble.
        // The server echoes our client_id; older servers may not, so fall back to the text.
        const it = this._outbox.find((x) => !x.seq && (f.client_id != null
          ? x.id === f.client_id
          : f.text != null && [x.text, x.label, x.payload].includes(f.text)));
        if (it) { it.seq = f.seq; el = this._bubbles.get(it.id); this._markSent(el, f.ts); }
      } else {
        if (f.from === 'agent' && f.agent && f.agent.name) this._agentName = f.agent.name;
        this._showTyping(null);
        if (live && !this._isOpen && f.seq > this._seenAtLoad) { this._unread++; this._applyTexts(); }
      }
      if (!el) {
        el = this._bubble(from, f.text, f);
        this._emit('message', Object.assign({}, f, { replay: !live }));
      }
      this._place(el, f.seq);
      this._retireReplies(el);
    }

    _onState(f, live) {
      if (f.agent && f.agent.name) this._agentName = f.agent.name;
      if (live) this._state = f.state;
      const t = this.t;
      const s = f.state;
      let text = '';
      if (s === 'queued') {
        text = f.position ? fill(t.queuedPos, { n: f.position }) : t.queued;
        if (f.eta_s > 0) text += ' ' + fill(t.eta, { m: Math.max(1, Math.round(f.eta_s / 60)) });
      } else if (s === 'with_agent') {
        text = f.agent && f.agent.name ? fill(t.withAgent, { name: f.agent.name }) : t.withAgentAnon;
      } else if (s === 'closed' && f.reason === 'erased') {
        // Erased (here, in another tab, or by the city): nothing of it stays in this page.
        this._forgetErased();
        return;
      } else if (s === 'closed') text = t.closed;
      else if (s === 'bot' && this._lineState !== 'bot') text = t.backToBot;
      const prev = this._lastLine;
      if (s === 'queued' && this._lineState === 'queued' && prev && prev === this._lastSeqd()) {
        prev.firstChild.textContent = text; // queue position update: rewrite, don't pile up lines
        prev.dataset.seq = f.seq;
      } else if (text) {
        this._lastLine = h('div', { class: 'm', 'data-from': 'system', part: 'message message-system' }, h('span', { text }));
        this._place(this._lastLine, f.seq);
      }
      this._lineState = s;
      if (s !== 'bot') this._showTyping(null);
    }

    _onAck(f) {
      const i = this._outbox.findIndex((x) => x.id === f.client_id);
      if (i < 0 || typeof f.seq !== 'number') return;
      const [it] = this._outbox.splice(i, 1);
      this._saveOutbox();
      const el = this._bubbles.get(it.id);
      this._bubbles.delete(it.id);
      if (this._flashMsg && this._flashMsg[1] === 'err') { this._flashMsg = null; this._renderStatus(); }
      if (!el) return;
      if (Number(el.dataset.seq) === f.seq) return; // adopted from the echo already
      if (el.dataset.seq) {
        // Adopted the wrong echo (an earlier message with the same text): that bubble stays
        // as that event; this ack's event still needs a bubble.
        if (!this._rendered.has(f.seq)) this._onEvent({ type: 'message', from: 'citizen', seq: f.seq, text: it.text || it.label });
      } else if (this._rendered.has(f.seq)) {
        el.remove(); // the echo was rendered on its own (replay after a lost ack)
      } else {
        this._rendered.add(f.seq);
        if (f.seq > this._maxSeq) { this._maxSeq = f.seq; store.set('seq', f.seq); }
        this._markSent(el);
        this._place(el, f.seq);
      }
    }

    _onError(f) {
      const t = this.t;
      this._flash(f.message || t.errors[f.code] || t.errors[''], 'err');
      this._showTyping(null);
      if (f.code !== 'too_large' && f.code !== 'rate_limited') return;
      // Server answers frames in order: the oldest unacknowledged sent message was refused.
      const it = this._outbox.find((x) => x.id === f.client_id) || this._outbox.find((x) => x.sent && !x.seq);
      if (!it) return;
      this._outbox.splice(this._outbox.indexOf(it), 1);
      this._saveOutbox();
      const el = this._bubbles.get(it.id);
      if (el) el.remove();
      this._bubbles.delete(it.id);
      if (it.text) {
        const cur = this._input.value.trim();
        this._input.value = cur && cur !== it.text ? it.text + '\n' + cur : it.text;
        this._autosize();
        if (this._isOpen) this._input.focus();
      }
    }

    // ---- sending ------------------------------------------------------------------------------

    _submit() {
      const text = this._input.value.trim();
      if (!text) return;
      this._input.value = '';
      this._autosize();
      this._send({ text });
    }

    _send({ text, payload, label }) {
      if (this._state === 'closed') return;
      const it = { id: uuid() };
      if (payload != null) { it.payload = payload; it.label = label; } else it.text = text;
      this._outbox.push(it);
      this._saveOutbox();
      const el = this._pendingBubble(it);
      this._retireReplies(el);
      this._scrollDown(true);
      this._emit('message', { from: 'citizen', text: it.text || it.label, client_id: it.id, pending: true });
      if (this._typingOn) this._ownTyping(true);
      this._active = true;
      this._endInvite(false);
      this._transmit(it);
      this._connect();
    }

    _transmit(it) {
      if (it.sent || it.seq) return;
      const frame = { type: 'message', client_id: it.id };
      // A button sends its payload for the bot and its title as the readable text.
      if (it.text != null) frame.text = it.text; else { frame.payload = it.payload; frame.text = it.label; }
      if (!this._sendFrame(frame)) return;
      it.sent = true;
      if (this._state === 'bot') this._showTyping('bot');
    }

    _ownTyping(stop) {
      if (stop) {
        this._clear('own');
        if (this._typingOn) this._sendFrame({ type: 'typing', active: false });
        this._typingOn = false;
        return;
      }
      if (this._state !== 'queued' && this._state !== 'with_agent') return;
      if (!this._typingOn) this._typingOn = this._sendFrame({ type: 'typing', active: true });
      this._timer('own', OWN_TYPING_IDLE_MS, () => this._ownTyping(true));
    }

    _restart() {
      this._drop();
      this._token = this._convId = null;
      store.set('token', null);
      store.set('conversation', null);
      this._outbox = [];
      this._saveOutbox();
      this._bubbles.clear();
      this._resetLog();
      this._attempt = 0;
      this._connect();
      this._input.focus();
    }

    _resetLog() {
      if (this._cb) { this._cb.view = false; this._cbSync(); this._cb = null; }
      this._log.replaceChildren(...this._bubbles.values());
      this._rendered.clear();
      this._maxSeq = this._sessionSeq = 0;
      store.set('seq', null);
      this._state = this._lineState = 'bot';
      this._lastLine = null;
      this._renderState();
    }

    // ---- rendering --------------------------------------------------------------------------

    _bubble(from, text, f) {
      const t = this.t;
      const el = h('div', { class: 'm', 'data-from': from, part: 'message message-' + from });
      if (from === 'agent') el.append(h('div', { class: 'who', text: (f.agent && f.agent.name) || this._agentName || t.agent }));
      else el.append(h('span', { class: 'sr', text: (from === 'bot' ? t.bot : t.you) + ': ' }));
      const b = h('div', { class: 'b', part: 'bubble' });
      richText(b, text, t);
      el.append(b);
      const links = (Array.isArray(f.links) ? f.links : [])
        .map((l) => l && safeUrl(l.url) && h('li', null, link(safeUrl(l.url), String(l.title || l.url), t)))
        .filter(Boolean);
      if (links.length) el.append(h('ul', { class: 'links' }, ...links));
      const buttons = (Array.isArray(f.buttons) ? f.buttons : []).filter((x) => x && x.title);
      if (buttons.length) {
        el.append(h('div', { class: 'qr', role: 'group', 'aria-label': t.replies }, ...buttons.map((x) => h('button', {
          type: 'button', part: 'quick-reply', text: String(x.title),
          onclick: () => this._send({ payload: x.payload != null ? x.payload : x.title, label: String(x.title) }),
        }))));
      }
      el.append(h('div', { class: 'meta' }, this._time(f.ts)));
      return el;
    }

    _pendingBubble(it) {
      const el = this._bubble('citizen', it.text != null ? it.text : it.label, {});
      el.dataset.status = 'pending';
      el.lastChild.textContent = this.t.pending;
      this._bubbles.set(it.id, el);
      this._place(el);
      return el;
    }

    _markSent(el, ts) {
      if (!el) return;
      el.dataset.status = 'sent';
      el.lastChild.replaceChildren(this._time(ts || new Date().toISOString()));
    }

    _time(ts) {
      const d = new Date(ts);
      if (!ts || isNaN(d)) return null;
      return h('time', { datetime: d.toISOString(), text: d.toLocaleTimeString(this.lang === 'en' ? 'en-GB' : 'de-DE', { hour: '2-digit', minute: '2-digit' }) });
    }

    /** Durable events are kept in seq order; pending bubbles (no seq yet) stay at the end. */
    _place(el, seq) {
      if (seq == null) { this._log.append(el); return; }
      el.dataset.seq = seq;
      let ref = this._log.lastElementChild;
      while (ref && !(ref !== el && ref.dataset.seq && Number(ref.dataset.seq) < seq)) ref = ref.previousElementSibling;
      if (ref) ref.after(el); else this._log.prepend(el);
    }

    _lastSeqd() {
      let n = this._log.lastElementChild;
      while (n && !n.dataset.seq) n = n.previousElementSibling;
      return n;
    }

    /** Quick replies are answers to one question: once the citizen has said something after them, hide them. */
    _retireReplies(el) {
      if (el.dataset.from === 'citizen') {
        for (const g of this._log.querySelectorAll('.qr')) {
          if (el.compareDocumentPosition(g) & Node.DOCUMENT_POSITION_PRECEDING) g.hidden = true;
        }
      } else if (el.querySelector('.qr')) {
        for (let n = el.nextElementSibling; n; n = n.nextElementSibling) {
          if (n.dataset.from === 'citizen') { el.querySelector('.qr').hidden = true; break; }
        }
      }
    }

    _csat(seq) {
      const t = this.t;
      const el = h('div', { class: 'm', 'data-from': 'system', part: 'message message-system' });
      const done = (store.get('csat') || '').split(',').includes(String(seq));
      if (done) { el.append(t.csatThanks); return el; }
      let score = 0;
      // Native radios: one tab stop, arrow keys choose, the fieldset's legend names the group.
      const stars = [1, 2, 3, 4, 5].map((n) => h('label', null,
        h('input', {
          type: 'radio', name: 'r' + seq, value: String(n), 'aria-label': fill(t.star, { n }),
          onchange: () => {
            score = n;
            stars.forEach((s, i) => s.classList.toggle('on', i < n));
            submit.disabled = false;
          },
        }), h('span', { 'aria-hidden': 'true', text: '★' })));
      const id = 'c' + seq;
      const comment = h('textarea', { id, rows: '2' });
      const submit = h('button', { type: 'submit', class: 'send2', text: t.csatSend, disabled: true });
      el.append(h('form', {
        class: 'cs',
        onsubmit: (e) => {
          e.preventDefault();
          if (!score) return;
          const frame = { type: 'csat', score };
          if (comment.value.trim()) frame.comment = comment.value.trim();
          if (!this._sendFrame(frame)) { this._flash(t.offline, 'off'); return; }
          store.set('csat', [store.get('csat'), seq].filter(Boolean).join(','));
          el.replaceChildren(t.csatThanks);
        },
      }, h('fieldset', null, h('legend', { text: t.csatQ }), h('div', { class: 'stars', part: 'rating' }, ...stars)),
        h('label', { for: id, text: t.csatComment }), comment, submit));
      return el;
    }

    _showTyping(kind) {
      const el = this._typing;
      const t = this.t;
      if (!kind) { el.hidden = true; this._clear('typing'); return; }
      const near = this._nearBottom();
      const label = kind === 'bot' ? t.botTyping : fill(t.agentTyping, { name: this._agentName || t.agent });
      el.setAttribute('aria-label', label);
      const tl = el.querySelector('.tl');
      tl.textContent = label;
      tl.className = kind === 'bot' ? 'tl sr' : 'tl';
      el.hidden = false;
      this._scrollDown(near);
      this._timer('typing', kind === 'bot' ? BOT_TYPING_MS : AGENT_TYPING_MS, () => this._showTyping(null));
    }

    // ---- co-browsing (docs/protocol.md "Co-browsing") ---------------------------------------------

    /** A durable co-browse event: a request to answer, its answer, the end, a page offered. */
    _onCobrowse(f) {
      const t = this.t;
      const cb = this._cb || (this._cb = { view: false, pointer: false, agent: '', cards: new Map() });
      if (f.agent && f.agent.name) cb.agent = String(f.agent.name);
      const name = cb.agent || this._agentName || t.agent;
      const line = (...kids) => h('div', { class: 'm', 'data-from': 'system', part: 'message message-system' }, ...kids);
      if (f.state === 'requested' && f.request_id) {
        const view = f.step === 'view';
        const id = 'cb' + f.seq;
        const answer = (accept) => () => {
          if (!this._sendFrame({ type: 'cobrowse_answer', request_id: f.request_id, accept })) { this._flash(t.offline, 'off'); return; }
          for (const b of acts.querySelectorAll('button')) b.disabled = true;
        };
        const acts = h('div', { class: 'qr' },
          h('button', { type: 'button', 'data-act': 'yes', text: t.cbYes, onclick: answer(true) }),
          h('button', { type: 'button', 'data-act': 'no', text: t.cbNo, onclick: answer(false) }));
        const card = line(h('div', { class: 'cs cb', role: 'group', 'aria-labelledby': id, part: 'cobrowse-consent' },
          h('p', { id, text: fill(view ? t.cbView : t.cbPointerQ, { name }) }),
          view ? h('ul', null, h('li', { text: t.cbSees }), h('li', { text: t.cbHidden })) : '', acts));
        for (const old of cb.cards.values()) old.acts.hidden = true; // a newer request replaces it
        cb.cards.set(f.request_id, { card, acts });
        this._place(card, f.seq);
        if (!this._isOpen && f.seq > this._sessionSeq) this.show({ focus: false });
      } else if (f.state === 'accepted' || f.state === 'declined') {
        const asked = cb.cards.get(f.request_id);
        if (asked) asked.acts.hidden = true;
        if (f.state === 'accepted') cb[f.step === 'pointer' ? 'pointer' : 'view'] = true;
        const text = f.state === 'declined' ? t.cbDeclined : fill(f.step === 'pointer' ? t.cbPointerOn : t.cbOn, { name });
        this._place(line(h('span', { text })), f.seq);
      } else if (f.state === 'ended') {
        cb.view = cb.pointer = false;
        for (const c of cb.cards.values()) c.acts.hidden = true;
        this._place(line(h('span', { text: t.cbEnded })), f.seq);
      } else if (f.state === 'link' && /^\/(?![\/\\])/.test(String(f.path))) {
        const url = new URL(f.path, location.origin).href;
        this._place(line(h('span', { text: fill(t.cbLink, { name }) }), h('div', { class: 'qr' },
          h('button', { type: 'button', text: `${t.cbOpen}: ${f.path}`, onclick: () => location.assign(url) }))), f.seq);
      }
    }

    /** Share the page while the citizen allows it (and the conversation is open); else stop. */
    _cbSync() {
      const cb = this._cb;
      if (!cb) return;
      const on = cb.view && this._state !== 'closed' && !!this._token;
      this._cbBanner.hidden = !on;
      if (on) this._cbBanner.querySelector('span').textContent = fill(this.t.cbBanner, { name: cb.agent || this.t.agent });
      if (!on && cb.ctl) { const ctl = cb.ctl; cb.ctl = null; ctl.stop(); }
      if (on && cb.ctl && cb.pointer) cb.ctl.allowPointer();
      if (!on || cb.ctl || cb.loading) return;
      const go = () => {
        cb.loading = false;
        const api = window.BuergerserviceCobrowse;
        if (!api || cb.ctl || !(cb.view && this._state !== 'closed')) return;
        cb.ctl = api.start({
          server: this.server, token: this._token, layer: this._cbLayer, agentName: cb.agent,
          texts: { highlight: this.t.cbHighlight, pointer: this.t.cbPointer },
          announce: (text) => { this._cbSay.textContent = text; },
          onEnd: (why) => { cb.ctl = null; if (why !== 'stopped') { cb.view = cb.pointer = false; this._cbSync(); } },
        });
        if (cb.pointer) cb.ctl.allowPointer();
      };
      cb.loading = true;
      if (window.BuergerserviceCobrowse) { go(); return; }
      // Loaded only now: the widget's own script stays small for everyone who never shares.
      const script = document.createElement('script');
      script.src = this.server.replace(/\/+$/, '') + '/cobrowse/citizen.js';
      script.onload = go;
      script.onerror = () => { cb.loading = false; };
      document.head.append(script);
    }

    /** "Beenden" on the banner: stop at once here, and tell the gateway (and so the agent). */
    _cbStop() {
      this._sendFrame({ type: 'cobrowse_end' });
      this._cb.view = this._cb.pointer = false;
      this._cbSync();
      (this._isOpen ? this._input : this._launcher).focus();
    }

    // ---- download and deletion (docs/data-protection.md) ----------------------------------------

    _buildDataControls($) {
      this._optsBtn = $('.opt');
      this._opts = $('.opts');
      this._dlg = $('.dlg');
      this._optsBtn.addEventListener('click', () => this._toggleOptions(this._opts.hidden));
      this._opts.addEventListener('click', (e) => {
        const act = e.target.closest('button') && e.target.closest('button').dataset.act;
        if (act === 'html' || act === 'json') this._download(act);
        else if (act === 'erase') this._askErase();
      });
      this._dlg.querySelector('[data-act=cancel]').addEventListener('click', () => this._dlg.close());
      this._dlg.querySelector('[data-act=confirm]').addEventListener('click', () => this._erase());
      // Closing the dialog any way (Cancel, Escape) returns focus to where it was opened from.
      this._dlg.addEventListener('close', () => { if (!this._erasing) this._optsBtn.focus(); });
    }

    _applyDataTexts(t) {
      this._optsBtn.setAttribute('aria-label', t.options);
      this._opts.setAttribute('aria-label', t.options);
      this._opts.querySelector('[data-act=html]').textContent = t.downloadHtml;
      this._opts.querySelector('[data-act=json]').textContent = t.downloadJson;
      this._opts.querySelector('[data-act=erase]').textContent = t.erase;
      this._dlg.querySelector('h3').textContent = t.eraseQ;
      this._dlg.querySelector('p').textContent = t.eraseBody;
      this._dlg.querySelector('[data-act=cancel]').textContent = t.cancel;
      this._dlg.querySelector('[data-act=confirm]').textContent = t.eraseYes;
    }

    _toggleOptions(open, focusButton) {
      if (!this._opts) return;
      this._opts.hidden = !open;
      this._optsBtn.setAttribute('aria-expanded', String(!!open));
      if (open) this._opts.querySelector('button').focus();
      else if (focusButton) this._optsBtn.focus();
    }

    /** POST with the conversation token as a Bearer header: the token never goes into a URL. */
    _dataRequest(path, body) {
      return fetch(this.server.replace(/\/+$/, '') + path, {
        method: 'POST',
        headers: { Authorization: 'Bearer ' + this._token, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
        credentials: 'omit',
        cache: 'no-store',
      });
    }

    async _download(format) {
      const t = this.t;
      try {
        const r = await this._dataRequest('/api/conversation/export', { format });
        if (!r.ok) throw new Error(String(r.status));
        const blob = await r.blob();
        const name = (/filename="([^"]+)"/.exec(r.headers.get('content-disposition') || '') || [])[1]
          || 'gespraech.' + format;
        const url = URL.createObjectURL(blob);
        const a = h('a', { href: url, download: name, hidden: true });
        this.shadowRoot.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60000);
        this._flash(t.downloaded, '');
      } catch (e) {
        this._flash(t.downloadFailed, 'err');
      }
    }

    _askErase() {
      this._toggleOptions(false);
      this._dlg.showModal();
      // The safe choice has the focus; the destructive one needs a deliberate move.
      this._dlg.querySelector('[data-act=cancel]').focus();
    }

    async _erase() {
      const t = this.t;
      const confirm = this._dlg.querySelector('[data-act=confirm]');
      confirm.disabled = true;
      try {
        const r = await this._dataRequest('/api/conversation/erase', { confirm: true });
        // 401: already erased (another tab, the city) or expired: gone either way.
        if (!r.ok && r.status !== 401) throw new Error(String(r.status));
        this._erasing = true;
        this._dlg.close();
        this._erasing = false;
        this._forgetErased();
      } catch (e) {
        this._dlg.close();
        this._flash(t.eraseFailed, 'err');
      } finally {
        confirm.disabled = false;
      }
    }

    /** The conversation is erased: drop socket, token, stored state and the visible log. */
    _forgetErased() {
      this._drop();
      this._clear('retry');
      this._token = this._convId = null;
      for (const k of ['token', 'conversation', 'seq', 'outbox']) store.set(k, null);
      this._outbox = [];
      this._bubbles.clear();
      this._active = false;
      this._resetLog();
      this._log.append(h('div', { class: 'm', 'data-from': 'system', part: 'message message-system' },
        h('span', { text: this.t.erased })));
      this._flash(this.t.erased, '');
      if (this._isOpen) this._input.focus();
    }

    _renderState() {
      const closed = this._state === 'closed';
      this._form.hidden = closed;
      this._restartBtn.hidden = !closed;
      this._endBtn.hidden = closed || !this._ready || !this._maxSeq;
      this._optsBtn.hidden = !this._token || !this._maxSeq;
      if (this._optsBtn.hidden) this._toggleOptions(false);
    }

    _flash(msg, cls) {
      this._flashMsg = [msg, cls];
      this._renderStatus();
      this._timer('flash', FLASH_MS, () => { this._flashMsg = null; this._renderStatus(); });
    }

    _renderStatus() {
      if (!this._status) return;
      const t = this.t;
      let [msg, cls] = this._flashMsg || ['', ''];
      if (!msg && this._active && !this._ready) {
        if (!navigator.onLine || this._everReady || this._attempt > 0) [msg, cls] = [t.offline, 'off'];
        else msg = t.connecting;
      } else if (!msg && !navigator.onLine) [msg, cls] = [t.offline, 'off'];
      if (this._status.textContent !== msg) this._status.textContent = msg;
      this._status.className = 'status ' + cls;
    }

    _autosize() {
      const i = this._input;
      i.style.height = 'auto';
      i.style.height = Math.min(i.scrollHeight + 3, 132) + 'px';
    }

    _nearBottom() {
      const s = this._scroll;
      return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
    }

    _scrollDown(force) {
      if (force && this._isOpen) this._scroll.scrollTop = this._scroll.scrollHeight;
    }
  }

  BuergerserviceChat.define();
  window.BuergerserviceChat = window.BuergerserviceChat || BuergerserviceChat;

  // Auto-mount one instance, passing the script tag's data attributes on.
  function mount() {
    if (!SCRIPT || SCRIPT.dataset.mount === 'false' || document.querySelector(TAG)) return;
    const el = document.createElement(TAG);
    for (const k of ['server', 'lang', 'title', 'accent', 'invite-after']) {
      const v = SCRIPT.getAttribute('data-' + k);
      if (v != null) el.setAttribute('data-' + k, v);
    }
    document.body.append(el);
  }
  if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount, { once: true });
})();
