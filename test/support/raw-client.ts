// A raw XML client for byte-level tests: sends exactly the bytes given and parses what the
// server sends back into elements, so tests can wait for a stanza or for the stream to end.
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { createStreamParser } from '../../src/xml/parser.js';
import type { Element } from '../../src/xml/element.js';

export const STREAM_OPEN = (to = 'localhost', extra = "version='1.0'") =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${to}' ${extra}>`;

export class RawClient {
  /** Everything the server sent, as text. */
  received = '';
  readonly stanzas: Element[] = [];
  header: Record<string, string> | undefined;
  ended = false;
  closed: Promise<void>;
  private waiters: (() => void)[] = [];
  private parser = this.newParser();

  private constructor(private socket: Socket) {
    this.closed = new Promise((resolve) => socket.on('close', () => { this.ended = true; this.notify(); resolve(); }));
    this.listen(socket);
  }

  static connect(port: number, opts: { tls?: boolean; servername?: string } = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = opts.tls
        ? tlsConnect({ port, host: '127.0.0.1', servername: opts.servername ?? 'localhost', rejectUnauthorized: false })
        : connect(port, '127.0.0.1');
      socket.once(opts.tls ? 'secureConnect' : 'connect', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Takes over an already connected socket (e.g. after a STARTTLS upgrade done by the test). */
  static wrap(socket: Socket): RawClient {
    return new RawClient(socket);
  }

  private listen(socket: Socket): void {
    socket.on('data', (d: Buffer) => {
      this.received += d.toString('utf8');
      this.parser.write(d);
      this.notify();
    });
    socket.on('error', () => {});
  }

  private newParser() {
    return createStreamParser({
      streamStart: (h) => { this.header = h.attrs; },
      stanza: (el) => { this.stanzas.push(el); },
      streamEnd: () => { this.ended = true; },
      error: () => {},
    }, { maxStanzaSize: 10_000_000, maxDepth: 100 });
  }

  /** The server will send a new stream header (after SASL success or STARTTLS). */
  restartParser(): void {
    this.parser = this.newParser();
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** The TLS socket, for channel binding data (tls-exporter, the server certificate). */
  get tls(): import('node:tls').TLSSocket {
    return this.socket as import('node:tls').TLSSocket;
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Waits until a received stanza matches; removes and returns it. */
  async waitFor(match: (el: Element) => boolean, timeoutMs = 5000, what = 'a matching stanza'): Promise<Element> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.stanzas.findIndex(match);
      if (i >= 0) return this.stanzas.splice(i, 1)[0]!;
      if (this.ended) throw new Error(`stream ended while waiting for ${what}; received: ${this.received}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; received: ${this.received}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  waitForName(name: string, attrs: Record<string, string> = {}, timeoutMs?: number): Promise<Element> {
    return this.waitFor((el) => el.name === name && Object.entries(attrs).every(([k, v]) => el.attrs[k] === v), timeoutMs, `<${name} ${JSON.stringify(attrs)}>`);
  }

  /** Waits for the server to close the connection; returns the stream error condition, if any. */
  async waitForClose(timeoutMs = 5000): Promise<string | undefined> {
    await Promise.race([this.closed, new Promise((_, reject) => setTimeout(() => reject(new Error(`connection not closed; received: ${this.received}`)), timeoutMs))]);
    const err = this.stanzas.find((s) => s.name === 'error' && s.attrs.xmlns === 'http://etherx.jabber.org/streams');
    return err?.firstElement()?.name;
  }

  /** Nothing matching arrives within the given time. */
  async expectNothing(match: (el: Element) => boolean, ms = 300): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    const found = this.stanzas.find(match);
    if (found) throw new Error(`unexpected stanza: ${found}`);
  }

  /** Opens a stream and authenticates with SASL PLAIN, then binds `resource`. */
  async login(user: string, password: string, domain = 'localhost', resource = 'test'): Promise<string> {
    this.send(STREAM_OPEN(domain));
    await this.waitForName('features');
    this.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${password}`).toString('base64')}</auth>`);
    await this.waitForName('success');
    this.restartParser();
    this.send(STREAM_OPEN(domain));
    await this.waitForName('features');
    this.send(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
    const bound = await this.waitForName('iq', { id: 'bind1' });
    return bound.getChild('bind')!.getChildText('jid')!;
  }

  end(): void {
    this.socket.end('</stream:stream>');
  }

  destroy(): void {
    this.socket.destroy();
  }
}
