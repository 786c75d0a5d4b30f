// A bare XMPP-over-WebSocket client (RFC 7395) that logs in with SASL PLAIN and binds, keeping
// every message as text: for tests that look at frames (pings, closes) rather than stanzas.
import { WebSocket } from 'ws';

export interface WsSession {
  ws: WebSocket;
  /** Every text message received, in order. */
  messages: string[];
  /** Resolves when the WebSocket closes. */
  closed: Promise<void>;
  /** WebSocket ping frames received so far. */
  pings(): number;
  /** Waits for a message matching `pattern` (5 s at most). */
  next(pattern: RegExp): Promise<string>;
  /** When the login finished (ms). */
  started: number;
}

const FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';

export async function wsLogin(port: number, user: string, options: { password?: string; resource?: string; autoPong?: boolean } = {}): Promise<WsSession> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, ['xmpp'], { autoPong: options.autoPong ?? true });
  const messages: string[] = [];
  let pings = 0;
  ws.on('ping', () => { pings++; });
  ws.on('message', (data: Buffer) => messages.push(data.toString()));
  const closed = new Promise<void>((resolve) => ws.on('close', () => resolve()));
  const next = async (pattern: RegExp) => {
    const deadline = Date.now() + 5000;
    for (;;) {
      const found = messages.find((m) => pattern.test(m));
      if (found) return found;
      if (ws.readyState === WebSocket.CLOSED) throw new Error(`closed waiting for ${pattern}: ${messages.join('')}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}: ${messages.join('')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const open = `<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`;
  ws.send(open);
  await next(/<mechanism>PLAIN</);
  ws.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${options.password ?? 'secret'}`).toString('base64')}</auth>`);
  await next(/<success/);
  messages.length = 0;
  ws.send(open);
  await next(/<bind/);
  const resource = options.resource ? `<resource>${options.resource}</resource>` : '';
  ws.send(`<iq xmlns='jabber:client' type='set' id='ws-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>${resource}</bind></iq>`);
  await next(/id='ws-bind'/);
  return { ws, messages, closed, pings: () => pings, next, started: Date.now() };
}
