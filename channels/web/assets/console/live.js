// The console's WebSocket: queue snapshots, events of watched conversations
// and customer presence. It reconnects with exponential backoff and re-sends
// its watch after every reconnect.

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;

export class LiveSocket {
  /**
   * `handlers`: onQueue(queue), onEvent(event), onPresence(id, presence),
   * onStatus({ state: 'connecting' | 'open' | 'waiting', retryAt }),
   * onOpen(reconnected) and onClose() (to check whether the session ended).
   */
  constructor(handlers) {
    this.handlers = handlers;
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.watched = null;
    this.stopped = true;
    this.openedBefore = false;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) {
      this.socket.close(1000);
      this.socket = null;
    }
  }

  /** Reconnects at once instead of waiting for the backoff timer. */
  retryNow() {
    if (this.stopped || (this.socket && this.socket.readyState <= WebSocket.OPEN)) {
      return;
    }
    clearTimeout(this.timer);
    this.connect();
  }

  /** Watches one conversation (or none with null) for its events. */
  watch(id) {
    if (this.watched && this.watched !== id) {
      this.send({ type: 'unwatch', conversation_id: this.watched });
    }
    this.watched = id;
    if (id) {
      this.send({ type: 'watch', conversation_id: id });
    }
  }

  get isOpen() {
    return !!this.socket && this.socket.readyState === WebSocket.OPEN;
  }

  send(message) {
    if (this.isOpen) {
      this.socket.send(JSON.stringify(message));
    }
  }

  connect() {
    const url = new URL('/console/api/ws', location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.handlers.onStatus({ state: 'connecting' });

    const socket = new WebSocket(url);
    this.socket = socket;
    socket.addEventListener('open', () => {
      const reconnected = this.openedBefore;
      this.openedBefore = true;
      this.attempt = 0;
      this.handlers.onStatus({ state: 'open' });
      if (this.watched) {
        this.send({ type: 'watch', conversation_id: this.watched });
      }
      this.handlers.onOpen(reconnected);
    });
    socket.addEventListener('message', (message) => this.dispatch(message.data));
    socket.addEventListener('close', () => {
      if (this.socket !== socket) {
        return;
      }
      this.socket = null;
      if (this.stopped) {
        return;
      }
      this.handlers.onClose();
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.attempt);
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    this.attempt += 1;
    this.handlers.onStatus({ state: 'waiting', retryAt: Date.now() + delay });
    this.timer = setTimeout(() => this.connect(), delay);
  }

  dispatch(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch (error) {
      console.warn('console: ignored a WebSocket frame that is not JSON', error);
      return;
    }
    if (frame.type === 'queue') {
      this.handlers.onQueue(frame);
    } else if (frame.type === 'event' && frame.event) {
      this.handlers.onEvent(frame.event);
    } else if (frame.type === 'presence') {
      this.handlers.onPresence(frame.conversation_id, frame.presence);
    }
  }
}
