/*
 * Lepton chat widget. Add one tag to any page:
 *
 *   <script src="https://bot.example/widget.js" defer></script>
 *
 * Optional attributes on the tag: data-api (the server's base URL, default: where
 * this script was loaded from), data-lang ("en" or "zh", default: the browser's).
 *
 * The page can follow and set the widget's language: the widget fires a
 * "lepton:lang" event on window (event.detail.lang is "en" or "zh") when it
 * starts and whenever its language changes, and window.LeptonWidget.setLang("zh")
 * switches it.
 *
 * The widget builds its button and panel inside a shadow DOM so that page CSS and
 * widget CSS do not mix. Messages go out with POST, each with a fresh
 * client_message_id that is reused for retries, so a retried send is harmless.
 * Everything shown in the conversation arrives over the WebSocket (or in the POST
 * response) and is placed by its seq, so nothing shows twice. Message text is only
 * ever set with textContent.
 *
 * A stored conversation id that the server rejects (invalid_conversation_id) is
 * dropped: the widget starts a new conversation, says so, and sends the messages
 * still waiting to the new one.
 */
(function () {
  'use strict';

  if (window.__leptonWidget) {
    return;
  }
  window.__leptonWidget = true;

  var script = document.currentScript;
  var scriptUrl = script && script.src ? script.src : window.location.href;
  var apiBase = new URL((script && script.getAttribute('data-api')) || '.', scriptUrl);
  if (apiBase.pathname.charAt(apiBase.pathname.length - 1) !== '/') {
    apiBase.pathname += '/';
  }

  var STORAGE_PREFIX = 'lepton.';
  // Sessions expire after a day without messages by default, and a new session
  // numbers its events from 1 again, so the widget starts a new conversation then.
  // NOTE: a server with a shorter session TTL needs this lowered to match.
  var CONVERSATION_IDLE_MS = 23 * 60 * 60 * 1000;
  var SEND_ATTEMPTS = 6;
  var MAX_BACKOFF_MS = 30000;
  // The server's default limit on message text, in UTF-8 bytes. Longer texts are
  // stopped here, before sending. A server with a lower limit rejects them with
  // message_too_large, which the widget reports the same way.
  var MAX_MESSAGE_BYTES = 16 * 1024;
  // The server's rules for a conversation id. A stored id that breaks them is
  // replaced on load. The server also rejects another channel's prefix
  // ("telegram:42"); such an id is replaced once the server rejects it.
  var CONVERSATION_ID_RULES = /^[A-Za-z0-9_.:-]{1,128}$/;

  var STRINGS = {
    en: {
      title: 'Customer support',
      bot: 'Assistant',
      open: 'Open chat',
      close: 'Close chat',
      placeholder: 'Type a message…',
      send: 'Send',
      sending: 'Sending…',
      failed: 'Not sent.',
      retry: 'Retry',
      edit: 'Edit',
      typing: 'Typing…',
      greeting: 'Hi! Ask us about orders, shipping or returns.',
      waiting: 'Waiting for an agent…',
      joined: '{agent} joined the chat',
      backToBot: 'You are chatting with the assistant again',
      closed: 'The conversation was closed',
      restarted: 'Your previous chat could not continue, so a new one has started.',
      reconnecting: 'Reconnecting…',
      switchLang: '中文',
      switchLangLabel: 'Switch to Chinese',
      you: 'You',
      errors: {
        message_too_large: 'This message is too long. Please shorten it or send it in parts.',
        empty_text: 'This message is empty. Please type some text.',
        unavailable: 'The service is busy right now. Please try again in a moment.',
        offline: 'No connection to the server. Check your network and retry.',
        origin_not_allowed: 'Chat is not available on this page.',
        invalid_conversation_id: 'The chat cannot start right now. Please try again later.',
        internal: 'Something went wrong on our side. Please try again later.',
        other: 'The message could not be sent. Please try again later.'
      }
    },
    zh: {
      title: '在线客服',
      bot: '智能助手',
      open: '打开聊天',
      close: '关闭聊天',
      placeholder: '请输入消息…',
      send: '发送',
      sending: '发送中…',
      failed: '发送失败。',
      retry: '重试',
      edit: '编辑',
      typing: '正在输入…',
      greeting: '您好！订单、配送、退货的问题都可以问我。',
      waiting: '正在为您转接人工客服…',
      joined: '{agent} 已加入对话',
      backToBot: '已切换回智能助手',
      closed: '对话已结束',
      restarted: '之前的对话无法继续，已为您开始新的对话。',
      reconnecting: '正在重新连接…',
      switchLang: 'EN',
      switchLangLabel: '切换到英文',
      you: '我',
      errors: {
        message_too_large: '消息太长了，请删减或分几条发送。',
        empty_text: '消息是空的，请输入文字。',
        unavailable: '服务繁忙，请稍后再试。',
        offline: '无法连接服务器，请检查网络后重试。',
        origin_not_allowed: '此页面暂不支持在线客服。',
        invalid_conversation_id: '暂时无法开始对话，请稍后再试。',
        internal: '系统出了点问题，请稍后再试。',
        other: '消息未能发送，请稍后再试。'
      }
    }
  };

  var CSS = [
    ':host { all: initial; }',
    '* { box-sizing: border-box; }',
    '.root { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000;',
    '  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "PingFang SC", "Microsoft YaHei", sans-serif; color: #1f2328; }',
    '.launcher { width: 56px; height: 56px; border-radius: 50%; border: none; cursor: pointer;',
    '  background: #2563eb; color: #fff; box-shadow: 0 4px 14px rgba(0,0,0,.25); display: flex;',
    '  align-items: center; justify-content: center; position: relative; }',
    '.launcher:focus-visible, button:focus-visible, textarea:focus-visible { outline: 2px solid #93c5fd; outline-offset: 2px; }',
    '.launcher svg { width: 26px; height: 26px; fill: currentColor; }',
    '.badge { position: absolute; top: 2px; right: 2px; width: 12px; height: 12px; border-radius: 50%;',
    '  background: #ef4444; border: 2px solid #fff; }',
    '.panel { position: absolute; right: 0; bottom: 70px; width: 360px; max-width: calc(100vw - 40px);',
    '  height: 520px; max-height: calc(100vh - 110px); background: #fff; border-radius: 12px;',
    '  box-shadow: 0 10px 30px rgba(0,0,0,.25); display: flex; flex-direction: column; overflow: hidden; }',
    '[hidden] { display: none !important; }',
    'header { background: #2563eb; color: #fff; padding: 10px 12px; display: flex; align-items: center; gap: 8px; }',
    'header .titles { flex: 1; min-width: 0; }',
    'header .title { font-weight: 600; }',
    'header .status { font-size: 12px; opacity: .85; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }',
    'header button { background: rgba(255,255,255,.15); color: #fff; border: none; border-radius: 6px;',
    '  padding: 4px 8px; cursor: pointer; font: inherit; font-size: 13px; }',
    'header .close { min-width: 32px; min-height: 32px; font-size: 20px; line-height: 1; }',
    '.log { flex: 1; overflow-y: auto; padding: 12px; display: flex; flex-direction: column; gap: 6px; background: #f6f8fa; }',
    '.row { display: flex; flex-direction: column; max-width: 85%; }',
    '.row.customer { align-self: flex-end; align-items: flex-end; }',
    '.row.reply { align-self: flex-start; align-items: flex-start; }',
    '.author { font-size: 11px; color: #57606a; margin: 0 4px 2px; }',
    '.bubble { padding: 8px 11px; border-radius: 14px; white-space: pre-wrap; overflow-wrap: anywhere; }',
    '.customer .bubble { background: #2563eb; color: #fff; border-bottom-right-radius: 4px; }',
    '.reply .bubble { background: #fff; border: 1px solid #d0d7de; border-bottom-left-radius: 4px; }',
    '.reply.agent .bubble { border-color: #16a34a; }',
    '.pending .bubble { opacity: .7; }',
    '.state { font-size: 11px; color: #57606a; margin: 2px 4px 0; }',
    '.state.failed { color: #cf222e; }',
    '.state button { font: inherit; color: #2563eb; background: none; border: none; padding: 0 0 0 4px; cursor: pointer; text-decoration: underline; }',
    '.notice { align-self: center; font-size: 12px; color: #57606a; background: #eaeef2; border-radius: 10px; padding: 3px 10px; text-align: center; }',
    '.quick { display: flex; flex-wrap: wrap; gap: 6px; padding: 6px 12px 0; background: #f6f8fa; }',
    '.quick button { border: 1px solid #2563eb; color: #2563eb; background: #fff; border-radius: 14px;',
    '  padding: 4px 10px; cursor: pointer; font: inherit; font-size: 13px; }',
    '.typing { padding: 4px 14px; font-size: 12px; color: #57606a; background: #f6f8fa; }',
    '.alert { padding: 6px 12px; font-size: 13px; color: #cf222e; background: #fff5f5; border-top: 1px solid #ffd7d5; }',
    'form { display: flex; gap: 6px; padding: 8px; border-top: 1px solid #d0d7de; background: #fff; }',
    'textarea { flex: 1; resize: none; border: 1px solid #d0d7de; border-radius: 8px; padding: 7px 9px;',
    '  font: inherit; color: inherit; max-height: 110px; min-height: 36px; }',
    'form button { background: #2563eb; color: #fff; border: none; border-radius: 8px; padding: 0 14px; cursor: pointer; font: inherit; }',
    // Phones, and short landscape screens: the open panel takes the whole screen,
    // its close button stays in the header and the launcher hides behind it.
    '@media (max-width: 480px), (max-height: 430px) {',
    '  .root { right: 12px; bottom: 12px; }',
    '  .panel { position: fixed; top: 0; right: 0; bottom: 0; left: 0; width: auto; height: auto;',
    '    max-width: none; max-height: none; border-radius: 0; }',
    '  .root.open .launcher { display: none; }',
    '  header .close { min-width: 40px; min-height: 40px; }',
    // iOS Safari zooms into a focused input whose text is smaller than 16px.
    '  textarea { font-size: 16px; }',
    '}'
  ].join('\n');

  // ---- storage, ids, language ----

  var memoryStore = {};

  function load(key) {
    try {
      return window.localStorage.getItem(STORAGE_PREFIX + key);
    } catch (e) {
      return Object.prototype.hasOwnProperty.call(memoryStore, key) ? memoryStore[key] : null;
    }
  }

  function save(key, value) {
    memoryStore[key] = value;
    try {
      window.localStorage.setItem(STORAGE_PREFIX + key, value);
    } catch (e) {
      // Storage is blocked (private mode, sandboxed frame): the memory copy lasts for this page.
    }
  }

  function randomId() {
    var bytes = new Uint8Array(16);
    if (window.crypto && window.crypto.getRandomValues) {
      window.crypto.getRandomValues(bytes);
    } else {
      for (var i = 0; i < bytes.length; i++) {
        bytes[i] = Math.floor(Math.random() * 256);
      }
    }
    var hex = '';
    for (var j = 0; j < bytes.length; j++) {
      hex += (bytes[j] < 16 ? '0' : '') + bytes[j].toString(16);
    }
    return hex;
  }

  var restarted = false; // true once a conversation the server cannot use was replaced
  var cidCreatedHere = false; // true when this page created the current conversation id

  /** Returns the stored conversation id, or a new one when it is idle too long or breaks the id rules. */
  function conversationId() {
    var id = load('conversation');
    var lastActive = Number(load('lastActive') || 0);
    if (id && Date.now() - lastActive < CONVERSATION_IDLE_MS) {
      if (CONVERSATION_ID_RULES.test(id)) {
        return id;
      }
      restarted = true;
    }
    return newConversationId();
  }

  function newConversationId() {
    var id = 'web:' + randomId();
    save('conversation', id);
    save('started', '');
    cidCreatedHere = true;
    return id;
  }

  function detectLang() {
    var attribute = script && script.getAttribute('data-lang');
    var stored = load('lang');
    var candidates = [stored, attribute].concat(navigator.languages || [navigator.language]);
    for (var i = 0; i < candidates.length; i++) {
      var tag = String(candidates[i] || '').toLowerCase();
      if (tag.indexOf('zh') === 0) {
        return 'zh';
      }
      if (tag.indexOf('en') === 0) {
        return 'en';
      }
    }
    return 'en';
  }

  var lang = detectLang();
  var cid = conversationId();

  function t(key) {
    return STRINGS[lang][key];
  }

  function localeTag() {
    return lang === 'zh' ? 'zh-CN' : 'en';
  }

  function apiUrl(path) {
    return new URL('api/v1/conversations/' + encodeURIComponent(cid) + '/' + path, apiBase).toString();
  }

  function backoff(attempt) {
    var base = Math.min(MAX_BACKOFF_MS, 500 * Math.pow(2, attempt));
    return base / 2 + Math.random() * base / 2;
  }

  // ---- DOM ----

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function chatIcon() {
    var ns = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    var path = document.createElementNS(ns, 'path');
    path.setAttribute('d', 'M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z');
    svg.appendChild(path);
    return svg;
  }

  var ui = {};

  function buildUi() {
    var host = el('div');
    host.setAttribute('data-lepton-widget', '');
    var shadow = host.attachShadow({ mode: 'open' });
    var style = el('style');
    style.textContent = CSS;
    shadow.appendChild(style);

    ui.root = el('div', 'root');
    var root = ui.root;
    ui.panel = el('section', 'panel');
    ui.panel.setAttribute('role', 'dialog');
    ui.panel.hidden = true;

    var header = el('header');
    var titles = el('div', 'titles');
    ui.title = el('div', 'title');
    ui.status = el('div', 'status');
    titles.appendChild(ui.title);
    titles.appendChild(ui.status);
    ui.langButton = el('button', 'lang');
    ui.langButton.type = 'button';
    ui.closeButton = el('button', 'close', '×');
    ui.closeButton.type = 'button';
    header.appendChild(titles);
    header.appendChild(ui.langButton);
    header.appendChild(ui.closeButton);

    ui.log = el('div', 'log');
    ui.log.setAttribute('role', 'log');
    ui.log.setAttribute('aria-live', 'polite');
    ui.greeting = el('div', 'notice');
    ui.restarted = el('div', 'notice');
    ui.restarted.hidden = true;
    ui.confirmed = el('div');
    ui.confirmed.style.display = 'contents';
    ui.pending = el('div');
    ui.pending.style.display = 'contents';
    ui.log.appendChild(ui.greeting);
    ui.log.appendChild(ui.restarted);
    ui.log.appendChild(ui.confirmed);
    ui.log.appendChild(ui.pending);

    ui.quick = el('div', 'quick');
    ui.typing = el('div', 'typing');
    ui.typing.hidden = true;
    ui.alert = el('div', 'alert');
    ui.alert.setAttribute('role', 'alert');
    ui.alert.hidden = true;

    ui.form = el('form');
    ui.input = el('textarea');
    ui.input.rows = 1;
    ui.sendButton = el('button');
    ui.sendButton.type = 'submit';
    ui.form.appendChild(ui.input);
    ui.form.appendChild(ui.sendButton);

    ui.panel.appendChild(header);
    ui.panel.appendChild(ui.log);
    ui.panel.appendChild(ui.quick);
    ui.panel.appendChild(ui.typing);
    ui.panel.appendChild(ui.alert);
    ui.panel.appendChild(ui.form);

    ui.launcher = el('button', 'launcher');
    ui.launcher.type = 'button';
    ui.launcher.appendChild(chatIcon());
    ui.badge = el('span', 'badge');
    ui.badge.hidden = true;
    ui.launcher.appendChild(ui.badge);

    root.appendChild(ui.panel);
    root.appendChild(ui.launcher);
    shadow.appendChild(root);
    document.body.appendChild(host);

    ui.launcher.addEventListener('click', function () {
      setOpen(ui.panel.hidden);
    });
    ui.closeButton.addEventListener('click', function () {
      setOpen(false);
    });
    ui.langButton.addEventListener('click', function () {
      setLang(lang === 'zh' ? 'en' : 'zh');
    });
    ui.form.addEventListener('submit', function (e) {
      e.preventDefault();
      submitInput();
    });
    ui.input.addEventListener('input', checkInputLength);
    ui.input.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        submitInput();
      }
    });
  }

  function setOpen(open) {
    ui.panel.hidden = !open;
    ui.root.classList.toggle('open', open);
    ui.launcher.setAttribute('aria-label', open ? t('close') : t('open'));
    if (open) {
      ui.badge.hidden = true;
      scrollToEnd();
      ui.input.focus();
    }
  }

  function setLang(next) {
    if (!STRINGS[next] || next === lang) {
      return;
    }
    lang = next;
    save('lang', lang);
    renderAll();
    announceLang();
  }

  function announceLang() {
    var detail = { detail: { lang: lang } };
    window.dispatchEvent(new CustomEvent('lepton:lang', detail));
  }

  function scrollToEnd() {
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  // ---- conversation state ----

  var events = []; // received events, sorted by seq
  var seen = {}; // seq -> true
  var lastSeq = 0; // every event with seq <= lastSeq that the customer may see has been received
  var handoffStatus = { state: 'bot', agent: null };
  var queue = []; // unconfirmed sends, oldest first
  var posting = false;

  function accept(event) {
    if (!event || typeof event.seq !== 'number' || !event.kind || seen[event.seq]) {
      return;
    }
    seen[event.seq] = true;
    while (seen[lastSeq + 1]) {
      lastSeq += 1;
    }
    var index = events.length;
    while (index > 0 && events[index - 1].seq > event.seq) {
      index -= 1;
    }
    events.splice(index, 0, event);

    if (event.kind.type === 'customer' && event.kind.client_message_id) {
      confirmPending(event.kind.client_message_id);
    }
    if (event.kind.type === 'reply' && ui.panel.hidden) {
      ui.badge.hidden = false;
    }
    if (typeof event.at === 'number' && event.at > Number(load('lastActive') || 0)) {
      save('lastActive', String(event.at));
    }
    renderEvents();
  }

  function confirmPending(clientMessageId) {
    for (var i = 0; i < queue.length; i++) {
      if (queue[i].id === clientMessageId) {
        queue[i].confirmed = true;
      }
    }
    renderPending();
  }

  /** Returns the text of a customer event to show: a tapped quick reply shows its title, not its payload. */
  function customerText(event, index) {
    var content = event.kind.content || {};
    if (content.type !== 'text') {
      return '[' + (content.value && content.value.kind ? content.value.kind : 'attachment') + ']';
    }
    for (var i = index - 1; i >= 0; i--) {
      var kind = events[i].kind;
      if (kind.type !== 'reply') {
        continue;
      }
      var buttons = kind.quick_replies || [];
      for (var j = 0; j < buttons.length; j++) {
        if (buttons[j].payload === content.value) {
          return buttons[j].title;
        }
      }
      break;
    }
    return content.value;
  }

  function handoffNotice(handoff) {
    var state = handoff && handoff.state ? handoff.state.state : null;
    if (state === 'waiting_for_agent') {
      return t('waiting');
    }
    if (state === 'agent') {
      return t('joined').replace('{agent}', handoff.state.agent);
    }
    if (state === 'bot') {
      return t('backToBot');
    }
    if (state === 'closed') {
      return t('closed');
    }
    return null;
  }

  function renderEvents() {
    ui.confirmed.textContent = '';
    handoffStatus = { state: 'bot', agent: null };
    for (var i = 0; i < events.length; i++) {
      renderEvent(events[i], i);
    }
    renderQuickReplies();
    renderStatus();
    scrollToEnd();
  }

  function renderEvent(event, index) {
    var kind = event.kind;
    var time = new Date(event.at).toLocaleString(localeTag());
    if (kind.type === 'customer') {
      var row = el('div', 'row customer');
      var bubble = el('div', 'bubble', customerText(event, index));
      bubble.title = time;
      row.appendChild(bubble);
      ui.confirmed.appendChild(row);
      return;
    }
    if (kind.type !== 'reply') {
      return;
    }
    var state = kind.handoff && kind.handoff.state ? kind.handoff.state : null;
    if (state) {
      // A handoff announcement is shown as a notice: the bot's own text when it
      // has one, else a notice in the UI language.
      ui.confirmed.appendChild(el('div', 'notice', kind.text || handoffNotice(kind.handoff) || ''));
      handoffStatus = { state: state.state, agent: state.agent || null };
      return;
    }
    if (!kind.text) {
      return;
    }
    var isAgent = kind.author && kind.author.type === 'agent';
    var replyRow = el('div', isAgent ? 'row reply agent' : 'row reply');
    replyRow.appendChild(el('div', 'author', isAgent ? kind.author.id : t('bot')));
    var replyBubble = el('div', 'bubble', kind.text);
    replyBubble.title = time;
    replyRow.appendChild(replyBubble);
    ui.confirmed.appendChild(replyRow);
  }

  function renderQuickReplies() {
    ui.quick.textContent = '';
    var last = events[events.length - 1];
    var buttons = last && last.kind.type === 'reply' ? last.kind.quick_replies || [] : [];
    ui.quick.hidden = buttons.length === 0 || queue.length > 0;
    buttons.forEach(function (button) {
      var node = el('button', '', button.title);
      node.type = 'button';
      node.addEventListener('click', function () {
        send(button.payload, button.title);
      });
      ui.quick.appendChild(node);
    });
  }

  function renderStatus() {
    if (!socketOpen && socketWanted) {
      ui.status.textContent = t('reconnecting');
    } else if (handoffStatus.state === 'waiting_for_agent') {
      ui.status.textContent = t('waiting');
    } else if (handoffStatus.state === 'agent') {
      ui.status.textContent = handoffStatus.agent;
    } else {
      ui.status.textContent = t('bot');
    }
  }

  function renderPending() {
    ui.pending.textContent = '';
    queue = queue.filter(function (item) {
      return !item.confirmed;
    });
    queue.forEach(function (item) {
      var row = el('div', 'row customer pending');
      row.appendChild(el('div', 'bubble', item.display));
      if (item.failed) {
        var state = el('div', 'state failed', t('failed') + ' ' + errorText(item.errorCode));
        if (item.editable) {
          var edit = el('button', '', t('edit'));
          edit.type = 'button';
          edit.addEventListener('click', function () {
            editFailed(item);
          });
          state.appendChild(edit);
        }
        if (item.retryable) {
          var retry = el('button', '', t('retry'));
          retry.type = 'button';
          retry.addEventListener('click', function () {
            item.failed = false;
            item.attempts = 0;
            renderPending();
            pump();
          });
          state.appendChild(retry);
        }
        row.appendChild(state);
      } else {
        row.appendChild(el('div', 'state', t('sending')));
      }
      ui.pending.appendChild(row);
    });
    ui.typing.hidden = !posting;
    ui.quick.hidden = ui.quick.childNodes.length === 0 || queue.length > 0;
    scrollToEnd();
  }

  function renderAll() {
    ui.title.textContent = t('title');
    ui.greeting.textContent = t('greeting');
    ui.restarted.textContent = t('restarted');
    ui.restarted.hidden = !restarted;
    ui.input.placeholder = t('placeholder');
    ui.sendButton.textContent = t('send');
    ui.typing.textContent = t('typing');
    ui.alert.textContent = alertCode ? errorText(alertCode) : '';
    ui.langButton.textContent = t('switchLang');
    ui.langButton.setAttribute('aria-label', t('switchLangLabel'));
    ui.closeButton.setAttribute('aria-label', t('close'));
    ui.launcher.setAttribute('aria-label', ui.panel.hidden ? t('open') : t('close'));
    ui.panel.setAttribute('aria-label', t('title'));
    renderEvents();
    renderPending();
  }

  // ---- sending ----

  /** Returns the localised message for an error code of the API, or a general one. */
  function errorText(code) {
    var errors = t('errors');
    return Object.prototype.hasOwnProperty.call(errors, code) ? errors[code] : errors.other;
  }

  var alertCode = null; // the error code shown above the input box, or null

  function showAlert(code) {
    alertCode = code;
    ui.alert.textContent = code ? errorText(code) : '';
    ui.alert.hidden = !code;
  }

  /** Returns the text as the server will count it: without the characters it removes, trimmed. */
  function cleanedText(text) {
    return text.replace(/[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/g, '').trim();
  }

  function isTooLong(text) {
    // Each UTF-16 unit is at most 3 UTF-8 bytes, so short texts need no encoding.
    return text.length * 3 > MAX_MESSAGE_BYTES && new TextEncoder().encode(cleanedText(text)).length > MAX_MESSAGE_BYTES;
  }

  function checkInputLength() {
    var tooLong = isTooLong(ui.input.value);
    ui.input.setAttribute('aria-invalid', tooLong ? 'true' : 'false');
    if (tooLong) {
      showAlert('message_too_large');
    } else if (alertCode) {
      showAlert(null);
    }
  }

  function submitInput() {
    var text = ui.input.value;
    if (!cleanedText(text)) {
      return;
    }
    if (isTooLong(text)) {
      showAlert('message_too_large');
      ui.input.focus();
      return;
    }
    ui.input.value = '';
    showAlert(null);
    send(text, text);
  }

  /**
   * Handles a send the server rejected. A typed text goes back into the input box
   * when the box is empty, so the customer can fix it. Otherwise the failed bubble
   * offers to edit it.
   */
  function rejectSend(item, code) {
    item.failed = true;
    item.retryable = false;
    item.errorCode = code;
    item.editable = item.typed;
    if (item.typed && !ui.input.value) {
      item.confirmed = true;
      ui.input.value = item.text;
      checkInputLength();
      showAlert(code);
    }
  }

  function editFailed(item) {
    item.confirmed = true;
    ui.input.value = ui.input.value ? item.text + '\n' + ui.input.value : item.text;
    renderPending();
    checkInputLength();
    ui.input.focus();
  }

  function send(text, display) {
    var typed = text === display;
    queue.push({ id: randomId(), text: text, display: display, typed: typed, attempts: 0 });
    save('started', '1');
    save('lastActive', String(Date.now()));
    connect();
    renderPending();
    pump();
  }

  /** Posts the oldest unsent message; one at a time, so the bot reads them in order. */
  function pump() {
    if (posting) {
      return;
    }
    var item = null;
    for (var i = 0; i < queue.length; i++) {
      if (!queue[i].confirmed && !queue[i].failed) {
        item = queue[i];
        break;
      }
    }
    if (!item) {
      return;
    }
    posting = true;
    renderPending();
    post(item);
  }

  function post(item) {
    var postedCid = cid;
    var body = JSON.stringify({ text: item.text, client_message_id: item.id, locale: localeTag() });
    fetch(apiUrl('messages'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: body
    })
      .then(function (response) {
        return response.json().then(
          function (json) {
            return { response: response, json: json };
          },
          function () {
            return { response: response, json: null };
          }
        );
      })
      .then(function (result) {
        if (result.response.ok && result.json && result.json.events) {
          item.confirmed = true;
          result.json.events.forEach(accept);
          finishPost();
          return;
        }
        var status = result.response.status;
        var code = result.json && result.json.error && typeof result.json.error.code === 'string' ? result.json.error.code : 'other';
        if (status >= 500 || status === 408 || status === 429) {
          retryLater(item, status === 500 ? code : 'unavailable', retryAfterMs(result.response));
          return;
        }
        if (code === 'invalid_conversation_id' && restartConversation(postedCid)) {
          // The item is still queued, so the next post sends it to the new conversation.
          finishPost();
          return;
        }
        rejectSend(item, code);
        finishPost();
      })
      .catch(function () {
        retryLater(item, 'offline');
      });
  }

  // The server's Retry-After in milliseconds, at most MAX_BACKOFF_MS; 0 without one.
  function retryAfterMs(response) {
    var seconds = parseInt(response.headers.get('retry-after') || '', 10);
    return seconds > 0 ? Math.min(MAX_BACKOFF_MS, seconds * 1000) : 0;
  }

  function retryLater(item, code, waitMs) {
    item.attempts += 1;
    if (item.attempts >= SEND_ATTEMPTS) {
      item.failed = true;
      item.retryable = true;
      item.errorCode = code;
      finishPost();
      return;
    }
    setTimeout(function () {
      post(item);
    }, Math.max(backoff(item.attempts), waitMs || 0));
  }

  function finishPost() {
    posting = false;
    renderPending();
    pump();
  }

  // ---- receiving ----

  var socket = null;
  var socketOpen = false;
  var socketWanted = false;
  var reconnectAttempt = 0;
  var reconnectTimer = null;
  var checking = false; // true while checkConversation waits for the server

  function connect() {
    socketWanted = true;
    if (socket || reconnectTimer || checking) {
      return;
    }
    var socketCid = cid;
    var opened = false;
    var url = new URL(apiUrl('ws'));
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.searchParams.set('after', String(lastSeq));
    var current = new WebSocket(url.toString());
    socket = current;
    current.onopen = function () {
      opened = true;
      socketOpen = true;
      reconnectAttempt = 0;
      renderStatus();
    };
    current.onmessage = function (message) {
      if (socket !== current) {
        return;
      }
      var event;
      try {
        event = JSON.parse(message.data);
      } catch (e) {
        return;
      }
      accept(event);
      // The socket sends every event the customer may see in seq order, so
      // everything before this one has arrived. Agents' internal notes are
      // never sent, which leaves gaps in seq that would otherwise hold lastSeq
      // back and make each reconnect replay more.
      if (event && typeof event.seq === 'number' && event.seq > lastSeq) {
        lastSeq = event.seq;
      }
    };
    current.onclose = function () {
      if (socket !== current) {
        return;
      }
      socket = null;
      socketOpen = false;
      renderStatus();
      if (opened) {
        scheduleReconnect();
      } else {
        checkConversation(socketCid);
      }
    };
  }

  /**
   * Asks the transcript route why a WebSocket handshake failed, because a browser
   * does not expose the handshake's response. Starts a new conversation when the
   * server rejects the id, and otherwise reconnects after a pause.
   */
  function checkConversation(checkedCid) {
    checking = true;
    var url = new URL('api/v1/conversations/' + encodeURIComponent(checkedCid) + '/events?limit=1', apiBase);
    fetch(url.toString())
      .then(function (response) {
        return response.status === 400 ? response.json() : null;
      })
      .then(
        function (json) {
          return json && json.error ? json.error.code : null;
        },
        function () {
          return null;
        }
      )
      .then(function (code) {
        checking = false;
        if (checkedCid !== cid) {
          // A rejected send replaced the conversation meanwhile.
          if (socketWanted) {
            connect();
          }
          return;
        }
        if (code === 'invalid_conversation_id' && restartConversation(checkedCid)) {
          return;
        }
        scheduleReconnect();
      });
  }

  function dropSocket() {
    if (reconnectTimer) {
      clearTimeout(reconnectTimer);
      reconnectTimer = null;
    }
    reconnectAttempt = 0;
    var old = socket;
    socket = null;
    socketOpen = false;
    if (old) {
      old.close();
    }
  }

  /**
   * Replaces the conversation `rejectedCid`, which the server rejected, with a new
   * one and tells the customer. Messages still queued go to the new conversation.
   * Returns false, changing nothing, when this page created the rejected id,
   * because a server that rejects new ids too would otherwise restart forever.
   */
  function restartConversation(rejectedCid) {
    if (rejectedCid !== cid) {
      return true;
    }
    if (cidCreatedHere) {
      return false;
    }
    cid = newConversationId();
    restarted = true;
    events = [];
    seen = {};
    lastSeq = 0;
    dropSocket();

    var waiting = queue.some(function (item) {
      return !item.confirmed && !item.failed;
    });
    socketWanted = waiting;
    if (waiting) {
      save('started', '1');
      connect();
    }
    renderAll();
    return true;
  }

  function scheduleReconnect() {
    if (reconnectTimer) {
      return;
    }
    var delay = backoff(reconnectAttempt);
    reconnectAttempt += 1;
    reconnectTimer = setTimeout(function () {
      reconnectTimer = null;
      connect();
    }, delay);
  }

  function reconnectNow() {
    if (!socketWanted || socket) {
      return;
    }
    if (reconnectTimer) {
      clearTimeout(reconnectTimer);
      reconnectTimer = null;
    }
    connect();
  }

  // ---- start ----

  function start() {
    buildUi();
    renderAll();
    window.LeptonWidget = { setLang: setLang };
    announceLang();
    if (load('started') === '1') {
      connect();
    }
    window.addEventListener('online', reconnectNow);
    document.addEventListener('visibilitychange', function () {
      if (document.visibilityState === 'visible') {
        reconnectNow();
      }
    });
  }

  if (document.body) {
    start();
  } else {
    document.addEventListener('DOMContentLoaded', start);
  }
})();
