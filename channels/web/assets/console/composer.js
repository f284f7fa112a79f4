// The message composer: reply or internal note, Enter sends and Shift+Enter
// adds a line, and a picker of canned replies (the bot's responses in the
// conversation's language).

import { api } from './api.js';
import { el, replaceChildren } from './dom.js';
import { t } from './i18n.js';

const cannedByLang = new Map();

async function cannedReplies(lang) {
  if (!cannedByLang.has(lang)) {
    const loading = api.get(`/canned?lang=${encodeURIComponent(lang)}`).then((body) => body.replies || []);
    cannedByLang.set(lang, loading);
    loading.catch(() => cannedByLang.delete(lang));
  }
  return cannedByLang.get(lang);
}

export class Composer {
  /**
   * `send(target, mode, text)` posts the text and resolves when the server
   * accepted it; `failed(target, text, error)` keeps the text of a failed send.
   */
  constructor(send, failed, showError) {
    this.sendText = send;
    this.failed = failed;
    this.showError = showError;
    this.target = null;
    this.mode = 'reply';
    this.canReply = false;
    this.lang = 'en';
    this.queue = Promise.resolve();

    this.input = el('textarea', { className: 'composer-input', rows: 3, on: { keydown: (event) => this.onKey(event) } });
    this.replyTab = el('button', { type: 'button', className: 'mode mode-reply', on: { click: () => this.setMode('reply') } });
    this.noteTab = el('button', { type: 'button', className: 'mode mode-note', on: { click: () => this.setMode('note') } });
    this.cannedButton = el('button', { type: 'button', className: 'canned-button', on: { click: () => this.toggleCanned() } });
    this.sendButton = el('button', { type: 'submit', className: 'send primary' });
    this.hint = el('div', { className: 'composer-hint' });
    this.cannedFilter = el('input', { type: 'search', className: 'canned-filter', on: { input: () => this.renderCanned() } });
    this.cannedList = el('ul', { className: 'canned-list' });
    this.cannedPanel = el('div', { className: 'canned-panel', hidden: true }, this.cannedFilter, this.cannedList);
    this.replies = [];

    this.root = el(
      'form',
      { className: 'composer', on: { submit: (event) => { event.preventDefault(); this.submit(); } } },
      el('div', { className: 'composer-modes' }, this.replyTab, this.noteTab),
      this.cannedPanel,
      this.input,
      el('div', { className: 'composer-bar' }, this.cannedButton, this.hint, this.sendButton),
    );
    this.relabel();
  }

  /** Sets the conversation's language (for canned replies) and whether this agent may reply. */
  configure(lang, canReply) {
    this.lang = lang || 'en';
    this.canReply = canReply;
    if (!canReply && this.mode === 'reply') {
      this.hideCanned();
    }
    this.relabel();
  }

  setMode(mode) {
    this.mode = mode;
    this.relabel();
    this.input.focus();
  }

  relabel() {
    const note = this.mode === 'note';
    this.root.classList.toggle('note-mode', note);
    this.replyTab.textContent = t('composer.reply');
    this.noteTab.textContent = t('composer.note');
    this.replyTab.classList.toggle('active', !note);
    this.noteTab.classList.toggle('active', note);
    this.replyTab.setAttribute('aria-pressed', String(!note));
    this.noteTab.setAttribute('aria-pressed', String(note));
    this.cannedButton.textContent = t('canned.button');
    this.cannedFilter.placeholder = t('canned.filter');
    this.sendButton.textContent = note ? t('composer.addNote') : t('composer.send');
    this.input.placeholder = note ? t('composer.notePlaceholder') : t('composer.replyPlaceholder');

    const blocked = !note && !this.canReply;
    this.hint.textContent = blocked ? t('composer.claimFirst') : '';
    this.input.disabled = blocked;
    this.sendButton.disabled = blocked;
    this.cannedButton.disabled = blocked;
    if (!this.cannedPanel.hidden) {
      this.renderCanned();
    }
  }

  onKey(event) {
    if (event.key === 'Escape' && !this.cannedPanel.hidden) {
      this.hideCanned();
      return;
    }
    // Enter during IME composition (Chinese input) picks a candidate; it must not send.
    if (event.key !== 'Enter' || event.shiftKey || event.isComposing || event.keyCode === 229) {
      return;
    }
    event.preventDefault();
    this.submit();
  }

  /**
   * Sends the text in the box to the current target (conversation). The box
   * empties at once so the agent can type on, and sends go out one after
   * another in order.
   */
  submit() {
    const text = this.input.value.trim();
    if (!text || this.input.disabled) {
      return;
    }
    const target = this.target;
    const mode = this.mode;
    this.input.value = '';
    this.hideCanned();
    this.queue = this.queue.then(async () => {
      try {
        await this.sendText(target, mode, text);
      } catch (error) {
        this.failed(target, text, error);
      }
    });
    return this.queue;
  }

  /** Puts the text of a failed send back in front of whatever was typed since. */
  restore(text) {
    const typed = this.input.value;
    this.input.value = typed ? `${text}\n${typed}` : text;
  }

  get draft() {
    return this.input.value;
  }

  set draft(text) {
    this.input.value = text;
  }

  async toggleCanned() {
    if (!this.cannedPanel.hidden) {
      this.hideCanned();
      return;
    }
    this.cannedPanel.hidden = false;
    this.cannedFilter.value = '';
    replaceChildren(this.cannedList);
    try {
      this.replies = await cannedReplies(this.lang);
    } catch (error) {
      this.replies = [];
      this.showError(error);
    }
    this.renderCanned();
    this.cannedFilter.focus();
  }

  hideCanned() {
    this.cannedPanel.hidden = true;
  }

  renderCanned() {
    const filter = this.cannedFilter.value.trim().toLowerCase();
    const matching = this.replies.filter(
      (reply) => !filter || reply.name.toLowerCase().includes(filter) || reply.text.toLowerCase().includes(filter),
    );
    const items = matching.map((reply) =>
      el(
        'li',
        {},
        el(
          'button',
          { type: 'button', className: 'canned-item', on: { click: () => this.useCanned(reply.text) } },
          el('span', { className: 'canned-name', text: reply.name }),
          el('span', { className: 'canned-text', text: reply.text }),
        ),
      ),
    );
    if (items.length === 0) {
      items.push(el('li', { className: 'canned-empty', text: t('canned.empty') }));
    }
    replaceChildren(this.cannedList, items);
  }

  useCanned(text) {
    const start = this.input.selectionStart ?? this.input.value.length;
    const end = this.input.selectionEnd ?? start;
    this.input.value = this.input.value.slice(0, start) + text + this.input.value.slice(end);
    this.hideCanned();
    this.input.focus();
    this.input.setSelectionRange(start + text.length, start + text.length);
  }
}
