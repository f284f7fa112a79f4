// Learning from customer messages: the teach dialog (append a message as an
// example of an existing or new intent) and the list of unrecognised messages.

import { api } from './api.js';
import { el, replaceChildren } from './dom.js';
import { formatTime, t } from './i18n.js';
import { channelName } from './queue.js';

export class TeachDialog {
  /** `onAdded(message)` is called after the server stored the example. */
  constructor(onAdded) {
    this.onAdded = onAdded;
    this.message = null;
    this.intents = [];

    this.heading = el('h2');
    this.messageLabel = el('div', { className: 'field-label' });
    this.quote = el('blockquote', { className: 'teach-text' });
    this.intentLabel = el('label', { className: 'field-label', htmlFor: 'teach-intent' });
    this.intentInput = el('input', {
      id: 'teach-intent',
      className: 'teach-intent',
      autocomplete: 'off',
      attrs: { list: 'teach-intents' },
      on: { input: () => this.updateHint() },
    });
    this.datalist = el('datalist', { id: 'teach-intents' });
    this.hint = el('p', { className: 'teach-hint' });
    this.result = el('p', { className: 'teach-result', role: 'status' });
    this.submitButton = el('button', { type: 'submit', className: 'primary teach-submit' });
    this.cancelButton = el('button', { type: 'button', className: 'teach-cancel', on: { click: () => this.dialog.close() } });
    this.form = el(
      'form',
      { on: { submit: (event) => { event.preventDefault(); this.submit(); } } },
      this.heading,
      this.messageLabel,
      this.quote,
      this.intentLabel,
      this.intentInput,
      this.datalist,
      this.hint,
      this.result,
      el('div', { className: 'dialog-buttons' }, this.cancelButton, this.submitButton),
    );
    this.dialog = el('dialog', { className: 'teach-dialog' }, this.form);
    document.body.appendChild(this.dialog);
    this.relabel();
  }

  relabel() {
    this.heading.textContent = t('teach.title');
    this.messageLabel.textContent = t('teach.message');
    this.intentLabel.textContent = t('teach.intent');
    this.intentInput.placeholder = t('teach.intentPlaceholder');
    this.submitButton.textContent = t('teach.submit');
    this.cancelButton.textContent = this.done ? t('teach.close') : t('teach.cancel');
    this.updateHint();
  }

  /** Opens the dialog for `message` {conversation_id, seq, text, lang, intent}. */
  async open(message) {
    this.message = message;
    this.done = false;
    this.quote.textContent = message.text;
    this.intentInput.value = '';
    this.intentInput.disabled = false;
    this.submitButton.disabled = false;
    this.setResult('', false);
    this.relabel();
    this.dialog.showModal();
    this.intentInput.focus();
    try {
      const body = await api.get('/intents');
      this.intents = body.intents || [];
    } catch (error) {
      this.intents = [];
      this.setResult(error.describe ? error.describe() : String(error), true);
    }
    replaceChildren(
      this.datalist,
      this.intents.map((intent) => el('option', { value: intent.name, label: t('teach.examples', { count: intent.examples }) })),
    );
    this.updateHint();
  }

  isKnown(name) {
    return this.intents.some((intent) => intent.name === name);
  }

  updateHint() {
    const name = this.intentInput.value.trim();
    this.hint.textContent = name && !this.done && !this.isKnown(name) ? t('teach.newIntent', { intent: name }) : '';
  }

  setResult(text, isError) {
    this.result.textContent = text;
    this.result.classList.toggle('error', isError);
    this.result.classList.toggle('success', !isError && !!text);
  }

  async submit() {
    const intent = this.intentInput.value.trim();
    if (!intent) {
      this.setResult(t('teach.missingIntent'), true);
      return;
    }
    this.submitButton.disabled = true;
    this.setResult(t('teach.busy'), false);
    try {
      const added = await api.post('/examples', {
        conversation_id: this.message.conversation_id,
        seq: this.message.seq,
        intent,
        new_intent: !this.isKnown(intent),
      });
      const lines = [t('teach.added', { file: added.file, line: added.line })];
      if (added.reload) {
        lines.push(added.reload);
      }
      this.setResult(lines.join(' '), false);
      this.done = true;
      this.intentInput.disabled = true;
      this.relabel();
      this.onAdded(this.message);
    } catch (error) {
      this.setResult(error.describe ? error.describe() : String(error), true);
      this.submitButton.disabled = false;
    }
  }
}

export class UnrecognisedView {
  /** `teach(message)` opens the teach dialog; `openConversation(id)` shows a conversation. */
  constructor(root, teach, openConversation) {
    this.root = root;
    this.teach = teach;
    this.openConversation = openConversation;
    this.messages = [];
    this.error = '';
    this.loaded = false;
  }

  async load() {
    try {
      const body = await api.get('/unrecognised?limit=100');
      this.messages = body.messages || [];
      this.error = '';
    } catch (error) {
      this.error = error.describe ? error.describe() : String(error);
    }
    this.loaded = true;
    this.render();
  }

  /** Drops a message from the list after it was taught or dismissed. */
  remove(conversationId, seq) {
    this.messages = this.messages.filter((item) => !(item.conversation_id === conversationId && item.seq === seq));
    this.render();
  }

  async dismiss(item) {
    try {
      await api.del(`/unrecognised/${encodeURIComponent(item.conversation_id)}/${item.seq}`);
      this.remove(item.conversation_id, item.seq);
    } catch (error) {
      this.error = error.describe ? error.describe() : String(error);
      this.render();
    }
  }

  render() {
    const header = el(
      'header',
      { className: 'page-header' },
      el('h1', { text: t('unrecognised.title') }),
      el('button', { type: 'button', className: 'refresh', text: t('unrecognised.refresh'), on: { click: () => this.load() } }),
    );
    const intro = el('p', { className: 'muted', text: t('unrecognised.intro') });
    const alert = el('p', { className: 'conv-alert', role: 'alert', text: this.error, hidden: !this.error });
    const list = el('ul', { className: 'unrecognised-list' });
    if (this.loaded && this.messages.length === 0) {
      list.appendChild(el('li', { className: 'placeholder', text: t('unrecognised.empty') }));
    }
    for (const item of this.messages) {
      list.appendChild(this.renderItem(item));
    }
    replaceChildren(this.root, el('div', { className: 'unrecognised' }, header, intro, alert, list));
  }

  renderItem(item) {
    const meta = el(
      'div',
      { className: 'item-top' },
      el('span', { className: `badge channel channel-${item.channel}`, text: channelName(item.channel) }),
      el('span', { className: 'badge lang', text: String(item.lang || '').toUpperCase() }),
      el('time', { text: formatTime(item.at) }),
      el('span', { className: 'conversation-id', text: item.conversation_id }),
    );
    const buttons = el(
      'div',
      { className: 'row-buttons' },
      el('button', {
        type: 'button',
        className: 'primary teach',
        text: t('teach.button'),
        on: { click: () => this.teach({ conversation_id: item.conversation_id, seq: item.seq, text: item.text, lang: item.lang }) },
      }),
      el('button', { type: 'button', className: 'dismiss', text: t('unrecognised.dismiss'), on: { click: () => this.dismiss(item) } }),
      el('button', {
        type: 'button',
        className: 'link open',
        text: t('unrecognised.open'),
        on: { click: () => this.openConversation(item.conversation_id) },
      }),
    );
    return el(
      'li',
      { className: 'unrecognised-item', data: { id: item.conversation_id, seq: String(item.seq) } },
      meta,
      el('div', { className: 'bubble', text: item.text }),
      buttons,
    );
  }
}
