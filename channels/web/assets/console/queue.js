// The live queue in the left column: waiting, mine and others, with waiting
// times that tick every second.

import { el, replaceChildren } from './dom.js';
import { formatDuration, t, tOr } from './i18n.js';

let clockOffsetMs = 0;

/** Returns the server's current time in milliseconds, estimated from the last queue snapshot. */
export function serverNow() {
  return Date.now() + clockOffsetMs;
}

/** Returns the channel's name in the UI language. */
export function channelName(channel) {
  return tOr(`channel.${channel}`, channel);
}

/** Returns the handoff reason in words. */
export function reasonText(reason) {
  return reason ? tOr(`reason.${reason}`, reason) : '';
}

/** Returns how the customer is doing in words: online, left, or silent for some minutes. */
export function presenceText(presence, lastCustomerAt) {
  if (presence === 'left') {
    return t('presence.left');
  }
  const silentMinutes = lastCustomerAt ? Math.floor((serverNow() - lastCustomerAt) / 60000) : 0;
  if (silentMinutes >= 1) {
    return t('presence.silent', { minutes: silentMinutes });
  }
  return presence === 'online' ? t('presence.online') : '';
}

export class QueueView {
  /** `onOpen(id)` is called when the agent picks a conversation. */
  constructor(root, onOpen) {
    this.root = root;
    this.onOpen = onOpen;
    this.queue = { waiting: [], mine: [], others: [] };
    this.receivedAt = performance.now();
    this.selected = null;
  }

  /** Stores a snapshot from the server and renders it. */
  update(queue) {
    this.queue = {
      waiting: queue.waiting || [],
      mine: queue.mine || [],
      others: queue.others || [],
    };
    this.receivedAt = performance.now();
    const sample = this.queue.waiting[0];
    if (sample && typeof sample.since === 'number' && typeof sample.waiting_seconds === 'number') {
      clockOffsetMs = sample.since + sample.waiting_seconds * 1000 - Date.now();
    }
    this.render();
  }

  select(id) {
    this.selected = id;
    for (const button of this.root.querySelectorAll('.queue-item')) {
      button.classList.toggle('selected', button.dataset.id === id);
    }
  }

  /** Returns the queue entry of a conversation, or undefined. */
  find(id) {
    const { waiting, mine, others } = this.queue;
    return [...waiting, ...mine, ...others].find((item) => item.conversation_id === id);
  }

  render() {
    const sections = ['waiting', 'mine', 'others'].map((name) => this.renderSection(name));
    replaceChildren(this.root, sections);
    this.tick();
  }

  renderSection(name) {
    const items = this.queue[name];
    const heading = el(
      'h2',
      { className: 'queue-heading' },
      el('span', { text: t(`queue.${name}`) }),
      el('span', { className: `count count-${name}`, text: String(items.length) }),
    );
    const list = el('ul', { className: 'queue-list' });
    if (items.length === 0) {
      list.appendChild(el('li', { className: 'queue-empty', text: t('queue.empty') }));
    }
    for (const item of items) {
      list.appendChild(el('li', {}, this.renderItem(name, item)));
    }
    return el('section', { className: `queue-section queue-${name}`, data: { section: name } }, heading, list);
  }

  renderItem(section, item) {
    const presence = item.presence || 'unknown';
    const badges = el(
      'div',
      { className: 'item-top' },
      el('span', { className: `badge channel channel-${item.channel}`, text: channelName(item.channel) }),
      el('span', { className: 'badge lang', text: String(item.lang || '').toUpperCase() }),
      el('span', {
        className: `presence-dot presence-${presence}`,
        title: presenceText(presence, item.last_customer_at) || presence,
      }),
      el('span', {
        className: 'elapsed',
        data: { since: String(item.since ?? ''), waiting: String(item.waiting_seconds ?? '') },
      }),
    );
    const preview = el('div', {
      className: item.preview ? 'preview' : 'preview empty',
      text: item.preview || t('queue.noPreview'),
    });
    const meta = section === 'waiting' ? reasonText(item.reason) : t('queue.with', { agent: item.agent || '?' });
    const detail = el(
      'div',
      { className: 'item-meta' },
      el('span', { className: 'meta-main', text: meta }),
      el('span', { className: 'meta-presence', text: presenceText(presence, item.last_customer_at) }),
    );

    const classes = ['queue-item', `customer-${presence}`];
    if (item.conversation_id === this.selected) {
      classes.push('selected');
    }
    return el(
      'button',
      {
        type: 'button',
        className: classes.join(' '),
        data: { id: item.conversation_id },
        title: item.conversation_id,
        on: { click: () => this.onOpen(item.conversation_id) },
      },
      badges,
      preview,
      detail,
    );
  }

  /** Updates the elapsed times; waiting times count from the snapshot, so clock skew does not matter. */
  tick() {
    const sinceSnapshot = (performance.now() - this.receivedAt) / 1000;
    for (const node of this.root.querySelectorAll('.elapsed')) {
      const waiting = node.dataset.waiting;
      let seconds;
      if (waiting !== '') {
        seconds = Number(waiting) + sinceSnapshot;
      } else if (node.dataset.since !== '') {
        seconds = (serverNow() - Number(node.dataset.since)) / 1000;
      } else {
        continue;
      }
      node.textContent = formatDuration(seconds);
    }
  }

  get waitingCount() {
    return this.queue.waiting.length;
  }
}
