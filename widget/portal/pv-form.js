/**
 * The form "Photovoltaikanlage anmelden" (photovoltaik-antrag.html): five steps in one page,
 * each checked before the next with the gateway's own rules and German messages
 * (handover/applications/pv_form.py, which checks them all again), then sent as
 * multipart/form-data to POST /api/applications/pv.
 *
 * Accessible as GOV.UK's patterns ask: an error summary at the top that takes focus and links
 * to each field; every invalid field has aria-invalid and its message in aria-describedby;
 * after a step change focus is on the step's heading ("Schritt 2 von 5 …"), so the step is
 * announced; the page title says the step and whether there are errors. Everything works with
 * the keyboard alone (native controls only). Without this script every step shows and the form
 * posts to the same endpoint.
 *
 * Values the citizen entered are shown only in elements with the class `cobrowse-mask`
 * (the summary), so co-browsing masks them.
 */
(() => {
  'use strict';

  const STEPS = 5;
  const ENDPOINT = '/api/applications/pv';
  // The chat widget's conversation token (widget/chat-widget.js keeps it in sessionStorage):
  // sent along, never in a URL, so the application is linked to the citizen's open chat.
  const CHAT_TOKEN_KEY = 'buergerservice-chat:token';
  const MAX_UPLOAD_BYTES = 5 * 1024 * 1024;
  const MAX_KWP = 1000;
  const EMAIL = /^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$/;
  const PHONE = /^\+?[0-9 ()/-]{6,30}$/;
  const POSTAL_CODE = /^\d{5}$/;
  const NUMBER = /^-?\d+(?:[.,](\d+))?$/;
  // A file's type by its first bytes, and the name endings that type may have.
  const SIGNATURES = [
    [[0x25, 0x50, 0x44, 0x46, 0x2d], /\.pdf$/i], // %PDF-
    [[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], /\.png$/i],
    [[0xff, 0xd8, 0xff], /\.jpe?g$/i],
  ];
  const STEP_FIELDS = {
    1: ['first_name', 'last_name', 'email', 'phone'],
    2: ['street', 'postal_code', 'city'],
    3: ['installation_type', 'power_kwp', 'listed_building', 'grid_operator'],
    4: ['upload'],
    5: ['confirm'],
  };
  const CHOICES = {
    installation_type: ['dach', 'freiflaeche'],
    listed_building: ['ja', 'nein'],
    grid_operator: ['stadtwerke-musterstadt', 'musterland-netz', 'anderer', 'unbekannt'],
  };
  const MAX_LENGTH = { first_name: 100, last_name: 100, email: 254, street: 200, city: 100 };
  const REQUIRED = {
    first_name: 'Geben Sie Ihren Vornamen ein.',
    last_name: 'Geben Sie Ihren Nachnamen ein.',
    email: 'Geben Sie Ihre E-Mail-Adresse ein.',
    street: 'Geben Sie Straße und Hausnummer der Anlage ein.',
    postal_code: 'Geben Sie die Postleitzahl der Anlage ein.',
    city: 'Geben Sie den Ort der Anlage ein.',
    installation_type: 'Wählen Sie aus, ob die Anlage auf dem Dach oder auf einer Freifläche steht.',
    power_kwp: 'Geben Sie die Leistung der Anlage in kWp ein.',
    listed_building: 'Wählen Sie aus, ob das Gebäude unter Denkmalschutz steht.',
    grid_operator: 'Wählen Sie Ihren Netzbetreiber aus.',
    confirm: 'Bestätigen Sie, dass Ihre Angaben richtig und vollständig sind.',
  };
  const MESSAGES = {
    tooLong: 'Dieser Eintrag darf höchstens {n} Zeichen lang sein.',
    email: 'Geben Sie eine E-Mail-Adresse im richtigen Format ein, zum Beispiel name@beispiel.de.',
    phone: 'Geben Sie eine Telefonnummer nur mit Ziffern, Leerzeichen und den Zeichen + ( ) / - ein, zum Beispiel 01234 567890.',
    postalCode: 'Die Postleitzahl hat genau fünf Ziffern, zum Beispiel 12345.',
    powerNumber: 'Geben Sie die Leistung als Zahl ein, zum Beispiel 9,8.',
    powerPositive: 'Die Leistung muss größer als 0 kWp sein.',
    powerMax: 'Die Leistung darf höchstens 1000 kWp betragen.',
    powerDecimals: 'Geben Sie die Leistung mit höchstens zwei Nachkommastellen ein.',
    choice: 'Wählen Sie eine der angebotenen Möglichkeiten aus.',
    uploadType: 'Die Datei muss ein PDF, ein PNG oder ein JPEG sein.',
    uploadMismatch: 'Der Inhalt der Datei passt nicht zu ihrem Namen. Wählen Sie ein PDF (.pdf), ein PNG (.png) oder ein JPEG (.jpg).',
    uploadSize: 'Die Datei darf höchstens 5 MB groß sein.',
    uploadEmpty: 'Die ausgewählte Datei ist leer.',
    network: 'Der Antrag konnte nicht gesendet werden. Bitte prüfen Sie Ihre Internetverbindung und versuchen Sie es erneut.',
    failed: 'Der Antrag konnte gerade nicht angenommen werden. Bitte versuchen Sie es in einigen Minuten erneut.',
  };

  const form = document.getElementById('pv-form');
  if (!form) return;
  const summaryBox = document.getElementById('error-summary');
  const errorList = document.getElementById('error-list');
  const next = document.getElementById('next');
  const back = document.getElementById('back');
  const done = document.getElementById('done');
  const stepList = document.getElementById('steps');
  const TITLE = document.title;
  let current = 1;
  let sending = false;

  const section = (step) => document.getElementById(`step-${step}`);
  const group = (name) => form.querySelector(`[data-field="${name}"]`);
  const controls = (name) => Array.from(form.querySelectorAll(`[name="${name}"]`));
  const stepOf = (name) => Number(Object.keys(STEP_FIELDS).find((s) => STEP_FIELDS[s].includes(name)));
  const stepTitle = (step) => stepList.querySelector(`[data-step="${step}"]`).textContent;

  // Each control's own descriptions (hints), so an error's id can be added and taken away again.
  for (const el of form.querySelectorAll('[name], fieldset[data-field]')) {
    el.dataset.describedby = el.getAttribute('aria-describedby') || '';
  }

  function value(name) {
    const field = form.elements[name];
    if (name === 'confirm') return field.checked ? 'ja' : '';
    return (field.value || '').trim();
  }

  function fieldError(name, text) {
    if (!text) return REQUIRED[name] || null;
    const limit = MAX_LENGTH[name];
    if (limit && [...text].length > limit) return MESSAGES.tooLong.replace('{n}', String(limit));
    if (name === 'email' && !EMAIL.test(text)) return MESSAGES.email;
    if (name === 'phone' && !PHONE.test(text)) return MESSAGES.phone;
    if (name === 'postal_code' && !POSTAL_CODE.test(text)) return MESSAGES.postalCode;
    if (name === 'power_kwp') return powerError(text);
    if (CHOICES[name] && !CHOICES[name].includes(text)) return MESSAGES.choice;
    return null;
  }

  function powerError(text) {
    const match = NUMBER.exec(text);
    if (!match) return MESSAGES.powerNumber;
    const number = Number(text.replace(',', '.'));
    if (!(number > 0)) return MESSAGES.powerPositive;
    if (number > MAX_KWP) return MESSAGES.powerMax;
    if (match[1] && match[1].replace(/0+$/, '').length > 2) return MESSAGES.powerDecimals;
    return null;
  }

  /** The upload is judged by its first bytes, as the gateway judges it, not by its name. */
  async function uploadError() {
    const file = form.elements.upload.files[0];
    if (!file) return null;
    if (file.size > MAX_UPLOAD_BYTES) return MESSAGES.uploadSize;
    if (file.size === 0) return MESSAGES.uploadEmpty;
    const head = new Uint8Array(await file.slice(0, 8).arrayBuffer());
    const found = SIGNATURES.find(([sig]) => sig.every((byte, i) => head[i] === byte));
    if (!found) return MESSAGES.uploadType;
    return found[1].test(file.name) ? null : MESSAGES.uploadMismatch;
  }

  /** [[field name, message]] for every invalid field of `step`, in the form's order. */
  async function check(step) {
    const errors = [];
    for (const name of STEP_FIELDS[step]) {
      const message = name === 'upload' ? await uploadError() : fieldError(name, value(name));
      if (message) errors.push([name, message]);
    }
    return errors;
  }

  function clearErrors() {
    summaryBox.hidden = true;
    errorList.replaceChildren();
    for (const box of form.querySelectorAll('.has-error')) box.classList.remove('has-error');
    for (const message of form.querySelectorAll('.error-message')) message.remove();
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    for (const el of form.querySelectorAll('[data-describedby]')) {
      if (el.dataset.describedby) el.setAttribute('aria-describedby', el.dataset.describedby);
      else el.removeAttribute('aria-describedby');
    }
  }

  function describe(el, id) {
    el.setAttribute('aria-describedby', [el.dataset.describedby, id].filter(Boolean).join(' '));
  }

  function focusField(name) {
    const target = controls(name)[0];
    if (!target) return;
    (group(name).querySelector('legend, label') || target).scrollIntoView({ block: 'center' });
    target.focus({ preventScroll: true });
  }

  /** Error summary at the top (focused) with links to the fields, and a message at each field. */
  function showErrors(errors) {
    clearErrors();
    for (const [name, message] of errors) {
      const item = document.createElement('li');
      if (name && group(name)) {
        const link = document.createElement('a');
        link.href = `#${controls(name)[0].id}`;
        link.textContent = message;
        link.addEventListener('click', (event) => {
          event.preventDefault();
          focusField(name);
        });
        item.append(link);
        markInvalid(name, message);
      } else {
        item.textContent = message;
      }
      errorList.append(item);
    }
    summaryBox.hidden = false;
    document.title = `Fehler: ${stepTitleText()}`;
    summaryBox.focus();
  }

  function markInvalid(name, message) {
    const box = group(name);
    const id = `${name}-error`;
    const text = document.createElement('p');
    text.className = 'error-message';
    text.id = id;
    const prefix = document.createElement('span');
    prefix.className = 'visually-hidden';
    prefix.textContent = 'Fehler: ';
    text.append(prefix, message);
    box.classList.add('has-error');
    const first = box.querySelector('.choice, input, select');
    first.before(text);
    if (box.tagName === 'FIELDSET') describe(box, id);
    for (const control of controls(name)) {
      control.setAttribute('aria-invalid', 'true');
      describe(control, id);
    }
  }

  function stepTitleText() {
    return `Schritt ${current} von ${STEPS}: ${stepTitle(current)} – ${TITLE}`;
  }

  function show(step, { focus = true } = {}) {
    current = step;
    for (let s = 1; s <= STEPS; s++) section(s).hidden = s !== step;
    for (const item of stepList.children) {
      if (Number(item.dataset.step) === step) item.setAttribute('aria-current', 'step');
      else item.removeAttribute('aria-current');
    }
    back.hidden = step === 1;
    next.textContent = step === STEPS ? 'Antrag absenden' : 'Weiter';
    if (step === STEPS) renderSummary();
    document.title = stepTitleText();
    if (focus) {
      const heading = section(step).querySelector('.step-heading');
      heading.focus({ preventScroll: true });
      heading.scrollIntoView({ block: 'start' });
    }
  }

  function shown(name) {
    const text = value(name);
    if (name === 'installation_type' || name === 'listed_building') {
      const checked = form.querySelector(`[name="${name}"]:checked`);
      return checked ? form.querySelector(`label[for="${checked.id}"]`).textContent : '';
    }
    if (name === 'grid_operator') {
      const select = form.elements.grid_operator;
      return select.value ? select.options[select.selectedIndex].textContent : '';
    }
    if (name === 'power_kwp') return text ? `${text.replace('.', ',')} kWp` : '';
    if (name === 'upload') {
      const file = form.elements.upload.files[0];
      if (!file) return 'Keine Datei';
      const size = (file.size / (1024 * 1024)).toLocaleString('de-DE', { maximumFractionDigits: 1 });
      return `${file.name} (${size === '0' ? 'unter 0,1' : size} MB)`;
    }
    return text || 'Nicht angegeben';
  }

  function renderSummary() {
    for (const cell of document.querySelectorAll('[data-show]')) {
      cell.textContent = shown(cell.dataset.show);
    }
  }

  function chatToken() {
    try { return window.sessionStorage.getItem(CHAT_TOKEN_KEY); } catch (e) { return null; }
  }

  /** The gateway's refusal as [[field, message]]: fields of the first step that has any. */
  function refusalErrors(status, body) {
    const fields = (body && typeof body.fields === 'object' && body.fields) || {};
    if (status === 413 && !fields.upload) fields.upload = MESSAGES.uploadSize;
    const named = Object.entries(fields).filter(([name]) => stepOf(name));
    if (!named.length) return { step: STEPS, errors: [[null, (body && body.message) || MESSAGES.failed]] };
    const step = Math.min(...named.map(([name]) => stepOf(name)));
    return { step, errors: named.filter(([name]) => stepOf(name) === step) };
  }

  async function send() {
    sending = true;
    next.disabled = true;
    next.textContent = 'Wird gesendet …';
    const headers = {};
    const token = chatToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    try {
      const response = await fetch(ENDPOINT, { method: 'POST', body: new FormData(form), headers, credentials: 'same-origin' });
      let body = null;
      try { body = await response.json(); } catch (e) { /* not JSON: a proxy's error page */ }
      if (response.status === 201 && body && body.number) {
        received(body.number);
        return;
      }
      const refusal = refusalErrors(response.status, body);
      show(refusal.step, { focus: false });
      showErrors(refusal.errors);
    } catch (e) {
      show(STEPS, { focus: false });
      showErrors([[null, MESSAGES.network]]);
    } finally {
      sending = false;
      next.disabled = false;
      if (!done.hidden) return;
      next.textContent = current === STEPS ? 'Antrag absenden' : 'Weiter';
    }
  }

  function received(number) {
    clearErrors();
    form.hidden = true;
    stepList.hidden = true;
    document.getElementById('application-number').textContent = number;
    done.hidden = false;
    document.title = `Antrag eingegangen – ${TITLE}`;
    done.focus();
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (sending) return;
    const errors = await check(current);
    if (errors.length) {
      showErrors(errors);
      return;
    }
    clearErrors();
    if (current < STEPS) {
      show(current + 1);
      return;
    }
    for (let step = 1; step < STEPS; step++) {
      const earlier = await check(step);
      if (earlier.length) {
        show(step, { focus: false });
        showErrors(earlier);
        return;
      }
    }
    await send();
  });

  back.addEventListener('click', () => {
    clearErrors();
    show(Math.max(1, current - 1));
  });

  for (const change of form.querySelectorAll('[data-goto]')) {
    change.addEventListener('click', () => {
      clearErrors();
      show(Number(change.dataset.goto));
    });
  }

  show(1, { focus: false });
})();
