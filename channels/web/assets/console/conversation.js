// The conversation view: header with state and actions (claim, transfer, hand
// back, close), the transcript with the bot's reading of every customer
// message, the details column, and the composer.

import { api, conversationPath } from './api.js';
import { Composer } from './composer.js';
import { el, replaceChildren } from './dom.js';
import { formatTime, t } from './i18n.js';
import { channelName, presenceText, reasonText } from './queue.js';

/** Maximum distance from the bottom, in px, at which the transcript follows new messages. */
const FOLLOW_SLACK_PX = 80;

/** Other candidate intents below this confidence (they would show as 0%) are left out. */
const MIN_SHOWN_CONFIDENCE = 0.005;

export class ConversationView {
  /**
   * `context`: me() → {name, role}, live (LiveSocket), teach(message) opens the
   * teach dialog, agents() → Promise of [{name, role}].
   */
  constructor(root, context) {
    this.root = root;
    this.context = context;
    this.id = null;
    this.detail = null;
    this.events = [];
    this.seqs = new Set();
    this.alertText = '';
    this.reloadTimer = null;
    this.drafts = new Map();
    this.composer = new Composer(
      (target, mode, text) => this.send(target, mode, text),
      (target, text, error) => this.sendFailed(target, text, error),
      (error) => this.showError(error),
    );
    this.renderEmpty();
  }

  /** Opens conversation `id`, or shows the placeholder for null. */
  async open(id) {
    if (this.id) {
      this.drafts.set(this.id, this.composer.draft);
    }
    this.id = id;
    this.composer.target = id;
    this.detail = null;
    this.events = [];
    this.seqs = new Set();
    this.alertText = '';
    this.context.live.watch(id);
    if (!id) {
      this.renderEmpty();
      return;
    }
    this.composer.draft = this.drafts.get(id) || '';
    replaceChildren(this.root, el('p', { className: 'placeholder', text: t('conversation.loading') }));
    await this.load();
  }

  /** Reads the conversation from the server and renders it whole. */
  async load() {
    const id = this.id;
    try {
      const detail = await api.get(conversationPath(id));
      if (id !== this.id) {
        return;
      }
      this.detail = detail;
      this.events = [];
      this.seqs = new Set();
      for (const event of detail.events || []) {
        this.remember(event);
      }
      this.render();
    } catch (error) {
      if (id !== this.id) {
        return;
      }
      this.alertText = error.describe ? error.describe() : String(error);
      if (this.detail) {
        this.render();
      } else {
        replaceChildren(this.root, el('p', { className: 'conv-alert', role: 'alert', text: this.alertText }));
      }
    }
  }

  scheduleReload() {
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => this.load(), 150);
  }

  remember(event) {
    if (this.seqs.has(event.seq)) {
      return false;
    }
    this.seqs.add(event.seq);
    this.events.push(event);
    this.events.sort((a, b) => a.seq - b.seq);
    return true;
  }

  /** Adds an event from the WebSocket or an API response; state changes reload the conversation. */
  onEvent(event) {
    if (!this.detail || event.conversation_id !== this.id) {
      return;
    }
    const last = this.events.length ? this.events[this.events.length - 1].seq : 0;
    if (!this.remember(event)) {
      return;
    }
    const follow = this.nearBottom();
    if (event.seq !== last + 1 || (event.kind && event.kind.handoff)) {
      this.scheduleReload();
    }
    if (this.transcript) {
      if (event.seq > last) {
        this.transcript.appendChild(this.renderEvent(event));
        this.rerenderAnswered(event);
      } else {
        this.renderTranscript();
      }
      if (follow) {
        this.scrollToBottom();
      }
    }
  }

  /** Renders again the customer message that a bot reply follows, so that its reading shows. */
  rerenderAnswered(reply) {
    const previous = this.events.find((other) => other.seq === reply.seq - 1);
    if (!isBotReply(reply) || !previous || (previous.kind || {}).type !== 'customer') {
      return;
    }
    const node = this.transcript.querySelector(`[data-seq="${previous.seq}"]`);
    if (node) {
      node.replaceWith(this.renderEvent(previous));
    }
  }

  onPresence(id, presence) {
    if (this.detail && id === this.id) {
      this.detail.presence = presence;
      this.renderHeader();
      this.renderDetails();
    }
  }

  /** Reloads after a reconnect, because events may have been missed. */
  refresh() {
    if (this.id) {
      this.load();
    }
  }

  tick() {
    if (this.presenceNode && this.detail) {
      this.presenceNode.textContent = presenceText(this.detail.presence, this.detail.last_customer_at);
    }
  }

  relabel() {
    this.composer.relabel();
    if (this.detail) {
      this.render();
    } else if (!this.id) {
      this.renderEmpty();
    }
  }

  // ---- rendering ----

  renderEmpty() {
    this.transcript = null;
    replaceChildren(this.root, el('p', { className: 'placeholder', text: t('conversation.pick') }));
  }

  render() {
    this.header = el('header', { className: 'conv-header' });
    this.alertNode = el('p', { className: 'conv-alert', role: 'alert' });
    this.transcript = el('ol', { className: 'transcript' });
    this.details = el('aside', { className: 'conv-details' });
    const main = el('div', { className: 'conv-main' }, this.header, this.alertNode, this.transcript, this.composer.root);
    replaceChildren(this.root, el('div', { className: 'conversation' }, main, this.details));

    this.renderHeader();
    this.renderTranscript();
    this.renderDetails();
    this.setAlert(this.alertText);
    this.scrollToBottom();
  }

  renderHeader() {
    if (!this.header) {
      return;
    }
    const detail = this.detail;
    const state = detail.state || { name: 'bot' };
    const me = this.context.me();
    const mine = state.name === 'agent' && state.agent === me.name;
    this.composer.configure(detail.lang, mine);

    this.presenceNode = el('span', {
      className: `presence presence-${detail.presence || 'unknown'}`,
      text: presenceText(detail.presence, detail.last_customer_at),
    });
    const title = el(
      'div',
      { className: 'conv-title' },
      el('h1', { text: detail.conversation_id }),
      el(
        'div',
        { className: 'conv-subtitle' },
        el('span', { className: `badge channel channel-${detail.channel}`, text: channelName(detail.channel) }),
        el('span', { className: 'badge lang', text: String(detail.lang || '').toUpperCase() }),
        el('span', { className: `state-pill state-${state.name}`, text: stateText(state) }),
        state.reason && state.name === 'waiting' ? el('span', { className: 'reason', text: reasonText(state.reason) }) : null,
        this.presenceNode,
      ),
    );
    replaceChildren(this.header, title, this.renderActions(state, mine, me));
  }

  renderActions(state, mine, me) {
    const actions = el('div', { className: 'conv-actions' });
    if (state.name === 'waiting' || state.name === 'bot') {
      actions.appendChild(this.actionButton('claim', t('action.claim'), () => this.act('/claim'), 'primary'));
    }
    if (state.name === 'agent' && !mine) {
      actions.appendChild(el('span', { className: 'claimed-by', text: t('conversation.claimedBy', { agent: state.agent }) }));
    }
    if (state.name === 'agent' && (mine || me.role === 'admin')) {
      actions.appendChild(this.transferControl(state));
    }
    if (mine) {
      actions.appendChild(this.actionButton('handback', t('action.handBack'), () => this.act('/handback')));
      actions.appendChild(this.actionButton('close', t('action.close'), () => this.act('/close'), 'danger'));
    }
    return actions;
  }

  actionButton(name, label, onClick, kind = '') {
    return el('button', {
      type: 'button',
      className: `action action-${name} ${kind}`.trim(),
      text: label,
      on: { click: onClick },
    });
  }

  transferControl(state) {
    const select = el('select', { className: 'transfer-select', attrs: { 'aria-label': t('action.transferTo') } });
    select.appendChild(el('option', { value: '', text: t('action.transferTo') }));
    const button = this.actionButton('transfer', t('action.transfer'), () => {
      if (select.value) {
        this.act('/transfer', { to: select.value });
      }
    });
    button.disabled = true;
    select.addEventListener('change', () => {
      button.disabled = !select.value;
    });
    this.context.agents().then(
      (agents) => {
        for (const agent of agents) {
          if (agent.name !== state.agent) {
            select.appendChild(el('option', { value: agent.name, text: agent.name }));
          }
        }
      },
      (error) => this.showError(error),
    );
    return el('span', { className: 'transfer' }, select, button);
  }

  renderTranscript() {
    if (!this.transcript) {
      return;
    }
    replaceChildren(this.transcript, this.events.map((event) => this.renderEvent(event)));
  }

  renderEvent(event) {
    const kind = event.kind || {};
    if (kind.type === 'customer') {
      return this.renderCustomer(event, kind);
    }
    if (kind.type === 'note') {
      return message('note', event, t('note.label', { agent: kind.agent }), kind.text);
    }
    if (kind.type === 'reply') {
      return this.renderReply(event, kind);
    }
    return message('other', event, kind.type || '?', JSON.stringify(kind));
  }

  renderReply(event, reply) {
    const author = reply.author || { type: 'bot' };
    const me = this.context.me();
    let label = t('author.bot');
    let role = 'bot';
    if (author.type === 'agent') {
      role = 'agent';
      label = author.id === me.name ? `${author.id} (${t('author.you')})` : author.id;
    }
    const node = message(role, event, label, reply.text);
    if (reply.handoff) {
      node.classList.add('msg-notice');
    }
    if (reply.quick_replies && reply.quick_replies.length) {
      node.appendChild(
        el('div', { className: 'quick-replies' }, reply.quick_replies.map((quick) => el('span', { className: 'chip', text: quick.title }))),
      );
    }
    return node;
  }

  renderCustomer(event, customer) {
    const content = customer.content || {};
    const isText = content.type === 'text';
    const text = isText ? content.value : t('message.nonText', { kind: (content.value && content.value.kind) || '?' });
    const node = message('customer', event, t('author.customer'), text);
    if (this.wasRead(event, customer.understanding)) {
      node.appendChild(renderUnderstanding(customer.understanding, this.slotsBefore(event.seq)));
    }
    if (isText) {
      node.appendChild(
        el('button', {
          type: 'button',
          className: 'teach link',
          text: t('teach.button'),
          on: {
            click: () => this.context.teach({
              conversation_id: event.conversation_id,
              seq: event.seq,
              text: content.value,
              lang: this.detail.lang,
              intent: customer.understanding && customer.understanding.intent,
            }),
          },
        }),
      );
    }
    return node;
  }

  /**
   * Tells whether the bot read a customer message. Messages sent while an
   * agent handles the conversation carry an empty reading; an empty reading
   * followed by a bot reply is a real fallback.
   */
  wasRead(event, understanding) {
    if (!understanding) {
      return false;
    }
    if (understanding.intent || understanding.knowledge_source || (understanding.ranking || []).length) {
      return true;
    }
    const next = this.events.find((other) => other.seq === event.seq + 1);
    return !!next && isBotReply(next);
  }

  /** Returns the slots after the last customer message before `seq`, to show only what changed. */
  slotsBefore(seq) {
    for (let index = this.events.length - 1; index >= 0; index--) {
      const event = this.events[index];
      const kind = event.kind || {};
      if (event.seq < seq && kind.type === 'customer' && kind.understanding) {
        return kind.understanding.slots || {};
      }
    }
    return {};
  }

  renderDetails() {
    if (!this.details) {
      return;
    }
    const detail = this.detail;
    const state = detail.state || { name: 'bot' };
    const rows = [
      [t('conversation.channel'), channelName(detail.channel)],
      [t('conversation.language'), detail.lang],
      [t('conversation.state'), stateText(state)],
      [t('conversation.presence'), presenceText(detail.presence, detail.last_customer_at) || '—'],
    ];
    if (state.reason) {
      rows.push([t('conversation.reason'), reasonText(state.reason)]);
    }
    const list = el('dl', {}, rows.map(([name, value]) => [el('dt', { text: name }), el('dd', { text: value })]));
    const slots = Object.entries(detail.slots || {});
    const slotList = slots.length
      ? el('dl', { className: 'slots' }, slots.map(([name, value]) => [el('dt', { text: name }), el('dd', { text: String(value) })]))
      : el('p', { className: 'muted', text: t('conversation.noSlots') });
    replaceChildren(
      this.details,
      el('h2', { text: t('conversation.details') }),
      list,
      el('h2', { text: t('conversation.slots') }),
      slotList,
    );
  }

  setAlert(text) {
    this.alertText = text || '';
    if (this.alertNode) {
      this.alertNode.textContent = this.alertText;
      this.alertNode.hidden = !this.alertText;
    }
  }

  showError(error) {
    this.setAlert(error && error.describe ? error.describe() : String(error));
  }

  nearBottom() {
    const node = this.transcript;
    return !node || node.scrollHeight - node.scrollTop - node.clientHeight < FOLLOW_SLACK_PX;
  }

  scrollToBottom() {
    if (this.transcript) {
      this.transcript.scrollTop = this.transcript.scrollHeight;
    }
  }

  // ---- actions ----

  async act(suffix, body = {}) {
    const id = this.id;
    this.setAlert('');
    for (const button of this.root.querySelectorAll('.conv-actions button')) {
      button.disabled = true;
    }
    try {
      const answer = await api.post(conversationPath(id, suffix), body);
      for (const event of (answer && answer.events) || []) {
        this.onEvent(event);
      }
    } catch (error) {
      if (id === this.id) {
        this.showError(error);
      }
    }
    if (id === this.id) {
      await this.load();
    }
  }

  async send(id, mode, text) {
    if (id === this.id) {
      this.setAlert('');
    }
    const suffix = mode === 'note' ? '/notes' : '/messages';
    const answer = await api.post(conversationPath(id, suffix), { text });
    if (answer && answer.event && id === this.id) {
      this.onEvent(answer.event);
      this.scrollToBottom();
    }
  }

  /** Keeps a failed send's text: back in the box, or in the draft of the conversation it was for. */
  sendFailed(id, text, error) {
    if (id === this.id) {
      this.composer.restore(text);
      this.showError(error);
      return;
    }
    const draft = this.drafts.get(id);
    this.drafts.set(id, draft ? `${text}\n${draft}` : text);
  }
}

function isBotReply(event) {
  const kind = event.kind || {};
  return kind.type === 'reply' && (!kind.author || kind.author.type === 'bot');
}

function stateText(state) {
  if (state.name === 'agent') {
    return t('state.agent', { agent: state.agent || '?' });
  }
  return t(`state.${state.name}`);
}

/** Builds one transcript entry; `text` is set as text, never parsed as markup. */
function message(role, event, label, text) {
  return el(
    'li',
    { className: `msg msg-${role}`, data: { seq: String(event.seq) } },
    el(
      'div',
      { className: 'msg-head' },
      el('span', { className: 'author', text: label }),
      el('time', { text: formatTime(event.at), dateTime: new Date(event.at).toISOString() }),
    ),
    el('div', { className: 'bubble', text }),
  );
}

/** Shows the bot's reading of a customer message: the intent acted on, other candidates, slots that changed, the knowledge source. */
function renderUnderstanding(understanding, slotsBefore) {
  const parts = [];
  const ranking = understanding.ranking || [];
  const acted = ranking.find((scored) => scored.intent === understanding.intent);
  const intentValue = understanding.intent
    ? `${understanding.intent}${acted ? ` ${percent(acted)}` : ''}`
    : t('context.noIntent');
  parts.push(contextItem(t('context.intent'), intentValue, understanding.intent ? 'matched' : 'fallback'));

  const others = ranking
    .filter((scored) => scored.intent !== understanding.intent && confidence(scored) >= MIN_SHOWN_CONFIDENCE)
    .slice(0, 3)
    .map((scored) => `${scored.intent} ${percent(scored)}`);
  if (others.length) {
    parts.push(contextItem(t('context.ranking'), others.join(' · ')));
  }
  const slots = Object.entries(understanding.slots || {})
    .filter(([name, value]) => slotsBefore[name] !== value)
    .map(([name, value]) => `${name}=${value}`);
  if (slots.length) {
    parts.push(contextItem(t('context.slots'), slots.join(', ')));
  }
  if (understanding.knowledge_source) {
    parts.push(contextItem(t('context.knowledge'), understanding.knowledge_source, 'knowledge'));
  }
  return el('div', { className: 'context' }, parts);
}

function contextItem(name, value, kind = '') {
  return el(
    'span',
    { className: `context-item ${kind}`.trim() },
    el('span', { className: 'context-name', text: name }),
    el('span', { className: 'context-value', text: value }),
  );
}

function confidence(scored) {
  return scored.confidence ?? scored.score ?? 0;
}

function percent(scored) {
  return `${Math.round(confidence(scored) * 100)}%`;
}
