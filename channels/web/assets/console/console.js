// The support console: sign-in, the header, the live queue, and the switch
// between the conversation view and the unrecognised messages. Served at
// /console; the other modules sit next to this file.

import { api, ApiError, setCsrfToken, setSignedOutHandler } from './api.js';
import { ConversationView } from './conversation.js';
import { el, replaceChildren } from './dom.js';
import { detectLanguage, language, LANGUAGES, onLanguageChange, setLanguage, t } from './i18n.js';
import { AdminView } from './admin.js';
import { TeachDialog, UnrecognisedView } from './learning.js';
import { LiveSocket } from './live.js';
import { QueueView } from './queue.js';

const AGENTS_MAX_AGE_MS = 60000;

const app = document.getElementById('app');
let session = null;
let shell = null;
let live = null;
let knownWaiting = null;
let agentsCache = { at: 0, list: null };
let signInMessage = '';

// ---- notification: title badge and sound ----

let userInteracted = false;
let audioContext = null;
for (const type of ['pointerdown', 'keydown']) {
  addEventListener(type, () => {
    userInteracted = true;
  }, { capture: true });
}

/** Plays a short two-tone beep; browsers allow audio only after the user interacted with the page. */
function beep() {
  if (!userInteracted) {
    return;
  }
  try {
    audioContext = audioContext || new AudioContext();
    const start = audioContext.currentTime;
    for (const [offset, frequency] of [[0, 880], [0.16, 1175]]) {
      const oscillator = audioContext.createOscillator();
      const gain = audioContext.createGain();
      oscillator.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.2, start + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.14);
      oscillator.connect(gain).connect(audioContext.destination);
      oscillator.start(start + offset);
      oscillator.stop(start + offset + 0.15);
    }
  } catch (error) {
    console.warn('console: could not play the new-conversation sound', error);
  }
}

function updateTitle() {
  const waiting = shell ? shell.queue.waitingCount : 0;
  document.title = waiting > 0 ? `(${waiting}) ${t('app.title')}` : t('app.title');
}

// ---- sign-in ----

function languageSelect() {
  const select = el('select', {
    className: 'lang-select',
    attrs: { 'aria-label': t('app.language') },
    on: { change: () => setLanguage(select.value, true) },
  });
  for (const option of LANGUAGES) {
    select.appendChild(el('option', { value: option.code, text: option.name, selected: option.code === language() }));
  }
  return select;
}

function showSignIn(message = '') {
  stopLive();
  if (shell) {
    shell.admin.stop();
  }
  session = null;
  shell = null;
  signInMessage = message;
  renderSignIn();
}

function renderSignIn() {
  const name = el('input', { name: 'name', autocomplete: 'username', required: true, id: 'sign-in-name' });
  const password = el('input', {
    name: 'password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
    id: 'sign-in-password',
  });
  const error = el('p', { className: 'sign-in-error', role: 'alert', text: signInMessage, hidden: !signInMessage });
  const submit = el('button', { type: 'submit', className: 'primary', text: t('signIn.submit') });
  const form = el(
    'form',
    { className: 'sign-in-card' },
    el('div', { className: 'sign-in-top' }, el('span', { className: 'brand', text: t('app.title') }), languageSelect()),
    el('h1', { text: t('signIn.heading') }),
    el('label', { htmlFor: 'sign-in-name', text: t('signIn.name') }),
    name,
    el('label', { htmlFor: 'sign-in-password', text: t('signIn.password') }),
    password,
    error,
    submit,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    submit.textContent = t('signIn.busy');
    try {
      const body = await api.post('/session', { name: name.value.trim(), password: password.value });
      signInMessage = '';
      signedIn(body);
    } catch (failure) {
      signInMessage = failure instanceof ApiError ? failure.describe() : String(failure);
      error.textContent = signInMessage;
      error.hidden = false;
      submit.disabled = false;
      submit.textContent = t('signIn.submit');
      password.value = '';
      password.focus();
    }
  });
  replaceChildren(app, el('div', { className: 'sign-in' }, form));
  document.body.className = 'signed-out';
  updateTitle();
  name.focus();
}

async function signOut() {
  try {
    await api.del('/session');
  } catch (error) {
    console.warn('console: sign-out failed; showing the sign-in form anyway', error);
  }
  showSignIn();
}

// ---- the signed-in shell ----

function signedIn(body) {
  session = body;
  setCsrfToken(body.csrf);
  agentsCache = { at: 0, list: null };
  knownWaiting = null;
  buildShell();
  startLive();
  route();
}

function buildShell() {
  const queueRoot = el('div', { className: 'queue-sections' });
  const viewRoot = el('main', { className: 'view' });
  const banner = el('div', { className: 'banner', role: 'status', hidden: true });
  const notice = el('div', { className: 'notice-bar', role: 'status', hidden: true });
  const header = el('header', { className: 'topbar' });
  replaceChildren(app, header, banner, notice, el('div', { className: 'layout' }, el('aside', { className: 'queue' }, queueRoot), viewRoot));
  document.body.className = 'signed-in';

  const conversationRoot = el('div', { className: 'conversation-root' });
  const unrecognisedRoot = el('div', { className: 'unrecognised-root', hidden: true });
  const adminRoot = el('div', { className: 'admin-root', hidden: true });
  viewRoot.append(conversationRoot, unrecognisedRoot, adminRoot);

  shell = { header, banner, notice, viewRoot, conversationRoot, unrecognisedRoot, adminRoot, bannerState: { state: 'connecting' } };
  shell.admin = new AdminView(adminRoot);
  shell.queue = new QueueView(queueRoot, (id) => {
    location.hash = `#/c/${encodeURIComponent(id)}`;
  });
  shell.teach = new TeachDialog((message) => shell.unrecognised.remove(message.conversation_id, message.seq));
  const teach = (message) => shell.teach.open(message);
  live = new LiveSocket(liveHandlers());
  shell.conversation = new ConversationView(conversationRoot, {
    me: () => session.agent,
    live,
    teach,
    agents: loadAgents,
  });
  shell.unrecognised = new UnrecognisedView(unrecognisedRoot, teach, (id) => {
    location.hash = `#/c/${encodeURIComponent(id)}`;
  });
  renderHeader();
  shell.queue.render();
  renderBanner();
  updateTitle();
}

function renderHeader() {
  const agent = session.agent;
  const view = currentRoute().view;
  const nav = el(
    'nav',
    {},
    el('a', { href: '#/', className: `nav-conversations${view === 'conversations' ? ' active' : ''}`, text: t('nav.conversations') }),
    el('a', { href: '#/unrecognised', className: `nav-unrecognised${view === 'unrecognised' ? ' active' : ''}`, text: t('nav.unrecognised') }),
    agent.role === 'admin' ? el('a', { href: '#/admin', className: `nav-admin${view === 'admin' ? ' active' : ''}`, text: t('nav.admin') }) : null,
  );
  replaceChildren(
    shell.header,
    el('span', { className: 'brand', text: t('app.title') }),
    nav,
    el('span', { className: 'spacer' }),
    agent.role === 'admin' ? el('button', { type: 'button', className: 'reload-bot', text: t('reload.button'), on: { click: reloadBot } }) : null,
    languageSelect(),
    el('span', { className: 'me' }, el('strong', { text: agent.name }), ` · ${t(`role.${agent.role}`)}`),
    el('button', { type: 'button', className: 'sign-out', text: t('signOut'), on: { click: signOut } }),
  );
}

function renderBanner() {
  const { state, retryAt } = shell.bannerState;
  const banner = shell.banner;
  banner.hidden = state === 'open';
  banner.classList.toggle('lost', state === 'waiting');
  if (state === 'open') {
    return;
  }
  if (state === 'connecting') {
    replaceChildren(banner, t('conn.connecting'));
    return;
  }
  const seconds = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
  replaceChildren(
    banner,
    t('conn.lost', { seconds }),
    el('button', { type: 'button', className: 'link retry', text: t('conn.retry'), on: { click: () => live && live.retryNow() } }),
  );
}

/** Shows a message under the header until dismissed. */
function showNotice(text, isError) {
  const notice = shell.notice;
  notice.classList.toggle('error', isError);
  replaceChildren(
    notice,
    el('span', { className: 'notice-text', text }),
    el('button', { type: 'button', className: 'link dismiss-notice', text: t('notice.dismiss'), on: { click: () => { notice.hidden = true; } } }),
  );
  notice.hidden = false;
}

/** Reloads the bot folder (admins only) and shows the outcome. */
async function reloadBot(event) {
  const button = event.currentTarget;
  button.disabled = true;
  button.textContent = t('reload.busy');
  try {
    const report = await api.post('/admin/reload');
    const lines = [t('reload.done')];
    if (report.retrained) {
      lines.push(t('reload.retrained'));
    }
    if (report.reindexed) {
      lines.push(t('reload.reindexed'));
    }
    showNotice(lines.join(' '), false);
  } catch (error) {
    const report = error.body || {};
    if (error.status === 422 && Array.isArray(report.diagnostics)) {
      const detail = report.error || report.diagnostics.join('\n');
      showNotice(t('reload.failed', { detail }), true);
    } else {
      showNotice(error instanceof ApiError ? error.describe() : String(error), true);
    }
  } finally {
    button.disabled = false;
    button.textContent = t('reload.button');
  }
}

async function loadAgents() {
  if (!agentsCache.list || Date.now() - agentsCache.at > AGENTS_MAX_AGE_MS) {
    const body = await api.get('/agents');
    agentsCache = { at: Date.now(), list: body.agents || [] };
  }
  return agentsCache.list;
}

// ---- live updates ----

function liveHandlers() {
  return {
    onQueue(queue) {
      if (!shell) {
        return;
      }
      const waitingIds = (queue.waiting || []).map((item) => item.conversation_id);
      const arrived = knownWaiting ? waitingIds.filter((id) => !knownWaiting.has(id)) : [];
      knownWaiting = new Set(waitingIds);
      shell.queue.update(queue);
      for (const id of arrived) {
        const button = shell.queue.root.querySelector(`.queue-item[data-id="${CSS.escape(id)}"]`);
        if (button) {
          button.classList.add('arrived');
        }
      }
      if (arrived.length) {
        beep();
      }
      updateTitle();
    },
    onEvent(event) {
      if (shell) {
        shell.conversation.onEvent(event);
      }
    },
    onPresence(id, presence) {
      if (shell) {
        shell.conversation.onPresence(id, presence);
      }
    },
    onStatus(status) {
      if (shell) {
        shell.bannerState = status;
        renderBanner();
      }
    },
    onOpen(reconnected) {
      if (reconnected && shell) {
        shell.conversation.refresh();
      }
    },
    async onClose() {
      try {
        await api.get('/me');
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) {
          showSignIn(t('error.not_signed_in'));
        }
      }
    },
  };
}

function startLive() {
  live.start();
}

function stopLive() {
  if (live) {
    live.stop();
    live = null;
  }
}

// ---- routing ----

function currentRoute() {
  const hash = location.hash;
  if (hash.startsWith('#/c/')) {
    return { view: 'conversations', id: decodeURIComponent(hash.slice(4)) };
  }
  if (hash === '#/unrecognised') {
    return { view: 'unrecognised' };
  }
  if (hash === '#/admin' && session && session.agent.role === 'admin') {
    return { view: 'admin' };
  }
  return { view: 'conversations', id: null };
}

function route() {
  if (!shell) {
    return;
  }
  const { view, id } = currentRoute();
  renderHeader();
  shell.conversationRoot.hidden = view !== 'conversations';
  shell.unrecognisedRoot.hidden = view !== 'unrecognised';
  shell.adminRoot.hidden = view !== 'admin';
  if (view === 'admin') {
    shell.admin.start();
    return;
  }
  shell.admin.stop();
  if (view === 'unrecognised') {
    shell.unrecognised.load();
    return;
  }
  shell.queue.select(id);
  if (id !== shell.conversation.id) {
    shell.conversation.open(id);
  }
}

addEventListener('hashchange', route);

// ---- start ----

setInterval(() => {
  if (shell) {
    shell.queue.tick();
    shell.conversation.tick();
    if (shell.bannerState.state === 'waiting') {
      renderBanner();
    }
  }
}, 1000);

onLanguageChange(() => {
  if (!shell) {
    renderSignIn();
    return;
  }
  renderHeader();
  renderBanner();
  shell.queue.render();
  shell.conversation.relabel();
  shell.teach.relabel();
  if (!shell.unrecognisedRoot.hidden) {
    shell.unrecognised.render();
  }
  if (!shell.adminRoot.hidden) {
    shell.admin.render();
  }
  updateTitle();
});

setSignedOutHandler(() => showSignIn(t('error.not_signed_in')));

async function start() {
  setLanguage(detectLanguage());
  try {
    signedIn(await api.get('/me'));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      showSignIn();
    } else {
      showSignIn(error instanceof ApiError ? error.describe() : String(error));
    }
  }
}

start();
