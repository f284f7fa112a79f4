// The console's WebSocket: queue snapshots, events of watched conversations
// and customer presence. It reconnects with exponential backoff and re-sends
// its watch after every reconnect. A browser that goes offline may keep a dead
// socket open for minutes, so going offline drops the socket at once and
// coming back online (or back to the tab) reconnects without waiting.

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
    this.onOffline = () => this.drop();
    this.onOnline = () => this.retryNow();
    this.onVisible = () => {
      if (document.visibilityState === 'visible') {
        this.retryNow();
      }
    };
    addEventListener('offline', this.onOffline);
    addEventListener('online', this.onOnline);
    document.addEventListener('visibilitychange', this.onVisible);
    this.connect();
  }

  stop() {
    this.stopped = true;
    removeEventListener('offline', this.onOffline);
    removeEventListener('online', this.onOnline);
    document.removeEventListener('visibilitychange', this.onVisible);
    clearTimeout(this.timer);
    if (this.socket) {
      this.socket.close(1000);
      this.socket = null;
    }
  }

  /** Closes the current socket as dead and schedules a reconnect. */
  drop() {
    const socket = this.socket;
    if (this.stopped || !socket) {
      return;
    }
    this.socket = null;
    socket.close();
    this.handlers.onClose();
    this.scheduleReconnect();
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
