// The /ws socket: JWT in the subprotocol, reconnect with backoff, dispatch by message type.

const MAX_BACKOFF_MS = 30_000;

export class Socket {
  // token: async () => a fresh access token; onState: ("connecting"|"open"|"closed", detail) => void.
  constructor({ token, onState = () => {}, types = null }) {
    this.token = token;
    this.onState = onState;
    this.types = types;
    this.handlers = new Map();
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = true;
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/ws`;
  }

  on(type, handler) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(handler);
    return () => this.handlers.get(type).delete(handler);
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
    this.ws = null;
    this.onState("closed", "logged out");
  }

  subscribe(types) {
    this.types = types;
    this.send({ type: "subscribe", data: types });
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  async connect() {
    if (this.stopped) return;
    this.onState("connecting", this.attempt ? `retry ${this.attempt}` : "");
    let token;
    try {
      token = await this.token();
    } catch (error) {
      this.onState("closed", error.message);
      return; // logged out: nothing to reconnect with
    }
    if (this.stopped) return;
    const ws = new WebSocket(this.url(), ["multibot", `bearer.${token}`]);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.onState("open", "");
      if (this.types) this.send({ type: "subscribe", data: this.types });
    };
    ws.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      for (const key of [message.type, "*"]) {
        for (const handler of this.handlers.get(key) || []) {
          try {
            handler(message.data, message);
          } catch (error) {
            console.error("socket handler failed", message.type, error);
          }
        }
      }
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      // 4008: we fell behind and the server dropped us; come back at once, the rest with backoff.
      const delay = event.code === 4008 ? 200 : Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
      this.attempt += 1;
      this.onState("closed", `reconnecting in ${Math.round(delay / 1000)}s (code ${event.code})`);
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }
}
