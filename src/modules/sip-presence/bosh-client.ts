// A BOSH client (XEP-0124, XMPP over it per XEP-0206) for the bridge's external mode: it logs
// in to any XMPP server as one account and resource, keeps the session open by long-polling,
// and sends stanzas in it, as perl-bosh did (seed 003). Written here rather than taken from a
// library because the session is the product: the bridge must own the sid and rid to persist
// them and resume the same session after a restart, which browser-oriented clients hide.
//
// Per XEP-0124: rids increase by one per request; at most `requests` (hold + 1) are
// outstanding; a request that fails at the HTTP level is sent again with the same rid (14.3);
// a `terminate` body or an HTTP error status of a legacy server ends the session.
import type { Logger } from 'pino';
import { randomInt } from 'node:crypto';
import { createStreamParser } from '../../xml/parser.js';
import { escapeAttr, xml, type Element } from '../../xml/element.js';

export const NS_HTTPBIND = 'http://jabber.org/protocol/httpbind';
const NS_XBOSH = 'urn:xmpp:xbosh';
const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind';
const NS_SESSION = 'urn:ietf:params:xml:ns:xmpp-session';
const NS_CLIENT = 'jabber:client';
const NS_PING = 'urn:xmpp:ping';
const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

/** Resends of one request before the session is given up (XEP-0124 14.3). */
const MAX_RETRIES = 3;

export interface BoshAccount {
  /** The connection manager, e.g. https://xmpp.example.com/http-bind/. */
  url: string;
  /** The XMPP domain (the `to` of the session). */
  domain: string;
  username: string;
  password: string;
  resource: string;
}

export interface BoshClientOptions {
  /** Longest time, in seconds, the server may hold a request (the `wait` attribute). */
  wait: number;
  log: Logger;
  /** Called with the sid and the rid of each request before it is sent, so that they can be persisted. */
  onRequest?(sid: string, rid: number): void;
  /** The session ended without being asked to (server restart, timeout, error); `condition` as the server said. */
  onEnded?(condition: string): void;
}

/** The session ended (terminate body, HTTP error status, or too many failed resends). */
export class BoshTerminated extends Error {
  constructor(readonly condition: string) {
    super(`BOSH session ended: ${condition}`);
  }
}

/** The server refused the credentials: trying again with the same ones is pointless. */
export class BoshAuthFailed extends BoshTerminated {}

interface Response {
  attrs: Record<string, string>;
  children: Element[];
}

function parseResponse(text: string): Response {
  let attrs: Record<string, string> | undefined;
  const children: Element[] = [];
  let error: string | undefined;
  const p = createStreamParser({
    streamStart: (h) => {
      if (h.local !== 'body' || h.uri !== NS_HTTPBIND) error = `unexpected root ${h.local}`;
      attrs = h.attrs;
    },
    stanza: (el) => { children.push(el); },
    streamEnd: () => {},
    error: (c, t) => { error = `${c}: ${t}`; },
  }, { maxStanzaSize: 1 << 20, maxDepth: 64 });
  p.write(text);
  if (error || !attrs) throw new Error(`not a BOSH response (${error ?? 'empty'})`);
  return { attrs, children };
}

export class BoshClient {
  sid = '';
  rid = 0;
  /** Outstanding requests allowed by the server (hold + 1). */
  private requests = 2;
  /** Shortest time between two empty polls of a server that holds nothing (hold 0), in seconds. */
  private polling = 0;
  private inFlight = 0;
  private queue: Element[] = [];
  private waiters: { resolve(): void; reject(e: Error): void }[] = [];
  private inbox: Element[] = [];
  private running = false;
  /** The last response carried nothing (an empty poll of a hold-0 server must then wait `polling`). */
  private lastResponseEmpty = false;
  private ended = false;
  private readonly aborter = new AbortController();

  constructor(readonly account: BoshAccount, private readonly options: BoshClientOptions) {}

  get active(): boolean {
    return this.running && !this.ended;
  }

  /** Opens a new session: creation, SASL PLAIN, restart, resource binding; then polls. */
  async login(): Promise<void> {
    const { domain, username, password, resource } = this.account;
    // XEP-0124 7: a large random first rid, so that later ones stay below 2^53.
    this.rid = randomInt(1_000_000, 1_000_000_000);
    const created = await this.request(this.rid, { to: domain, 'xml:lang': 'en', wait: String(this.options.wait), hold: '1', ver: '1.6', 'xmpp:version': '1.0' }, []);
    if (!created.attrs.sid) throw new BoshTerminated('no sid in the session creation response');
    this.sid = created.attrs.sid;
    this.inbox.push(...created.children);
    const requests = Number(created.attrs.requests);
    if (Number.isInteger(requests) && requests >= 1) this.requests = requests;
    const polling = Number(created.attrs.polling);
    if (Number.isFinite(polling) && polling > 0) this.polling = polling;
    await this.expect((e) => e.name === 'features', 'stream features');
    const token = Buffer.from(`\0${username}\0${password}`).toString('base64');
    await this.exchange([xml('auth', { xmlns: NS_SASL, mechanism: 'PLAIN' }, token)]);
    const outcome = await this.expect((e) => e.attrs.xmlns === NS_SASL && (e.name === 'success' || e.name === 'failure'), 'SASL outcome');
    if (outcome.name === 'failure') {
      await this.terminate();
      throw new BoshAuthFailed(`authentication failed (${outcome.firstElement()?.name ?? 'no condition'})`);
    }
    await this.exchange([], { 'xmpp:restart': 'true', to: domain, 'xml:lang': 'en' });
    const features = await this.expect((e) => e.name === 'features', 'stream features after restart');
    await this.exchange([xml('iq', { xmlns: NS_CLIENT, type: 'set', id: 'bind' }, xml('bind', { xmlns: NS_BIND }, xml('resource', null, resource)))]);
    const bound = await this.expect((e) => e.name === 'iq' && e.attrs.id === 'bind', 'bind result');
    if (bound.attrs.type !== 'result') throw new BoshTerminated(`resource binding refused: ${bound.toString()}`);
    // RFC 3921 session establishment, for servers that still require it.
    const session = features.getChild('session', NS_SESSION);
    if (session && !session.getChild('optional')) {
      await this.exchange([xml('iq', { xmlns: NS_CLIENT, type: 'set', id: 'session' }, xml('session', { xmlns: NS_SESSION }))]);
      await this.expect((e) => e.name === 'iq' && e.attrs.id === 'session', 'session result');
    }
    this.startPolling();
  }

  /**
   * Takes up a session opened earlier (by this bridge before a restart, or perl-bosh) with the
   * next rids. Two empty requests go out at once: the server answers the first as soon as it
   * holds the second (hold 1), so a live session is known without waiting `wait` seconds.
   * Resolves false when the server no longer knows the session.
   */
  async resume(sid: string, lastRid: number): Promise<boolean> {
    this.sid = sid;
    this.rid = lastRid;
    this.running = true;
    const probe = this.fire([]);
    this.fire([]).catch(() => {}); // its failure is the probe's too
    try {
      await probe;
      return true;
    } catch {
      return false;
    }
  }

  /** Sends stanzas in the session; resolves once the request carrying them was answered. */
  send(...stanzas: Element[]): Promise<void> {
    if (this.ended) return Promise.reject(new BoshTerminated('session already ended'));
    this.queue.push(...stanzas);
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.pump();
    return done;
  }

  /** Ends the session (XEP-0124 13), with `last` (e.g. unavailable presence) in the final request. */
  async terminate(last?: Element): Promise<void> {
    if (this.ended) return;
    this.running = false;
    this.ended = true;
    this.failWaiters(new BoshTerminated('terminated'));
    try {
      await this.request(++this.rid, { type: 'terminate' }, last ? [last] : []);
    } catch (e) {
      this.options.log.debug({ err: e }, 'BOSH terminate request failed');
    } finally {
      this.aborter.abort();
    }
  }

  /** Stops using the session without ending it, so that it can be resumed (bridge shutdown). */
  detach(): void {
    this.running = false;
    this.ended = true;
    this.aborter.abort();
    this.failWaiters(new BoshTerminated('detached'));
  }

  private startPolling(): void {
    this.running = true;
    this.pump();
  }

  /** Keeps one request held by the server, and sends queued stanzas in a further one as allowed. */
  private pump(): void {
    while (this.active && (this.inFlight === 0 || (this.queue.length > 0 && this.inFlight < this.requests))) {
      this.fire(this.queue.splice(0)).catch(() => {});
    }
  }

  /** Sends the next request with `payload`; its response is delivered, a failure ends the session. */
  private fire(payload: Element[]): Promise<void> {
    const waiters = payload.length ? this.waiters.splice(0) : [];
    this.inFlight++;
    return this.request(++this.rid, {}, payload).then((res) => {
      this.inFlight--;
      for (const w of waiters) w.resolve();
      this.deliver(res.children);
      // XEP-0124 12: a server that holds nothing (hold 0) answers at once; poll it no faster than it asks.
      if (this.requests <= 1 && this.lastResponseEmpty && this.queue.length === 0 && this.polling > 0) {
        setTimeout(() => this.pump(), this.polling * 1000).unref();
      } else this.pump();
    }, (e: Error) => {
      this.inFlight--;
      for (const w of waiters) w.reject(e);
      this.lost(e);
      throw e;
    });
  }

  private lost(e: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.running = false;
    this.aborter.abort();
    this.failWaiters(e);
    const condition = e instanceof BoshTerminated ? e.condition : e.message;
    this.options.log.warn({ url: this.account.url, user: this.account.username, condition }, 'BOSH session lost');
    this.options.onEnded?.(condition);
  }

  private failWaiters(e: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(e);
  }

  /** Stanzas the server pushes: IQ requests get an answer (pings a result, anything else an error); the rest is of no use to a phone. */
  private deliver(children: Element[]): void {
    for (const el of children) {
      if (el.name !== 'iq' || (el.attrs.type !== 'get' && el.attrs.type !== 'set')) continue;
      const attrs: Record<string, string> = { xmlns: NS_CLIENT, id: el.attrs.id ?? '' };
      if (el.attrs.from) attrs.to = el.attrs.from;
      const ping = el.firstElement()?.is('ping', NS_PING);
      const reply = ping ? xml('iq', { ...attrs, type: 'result' })
        : xml('iq', { ...attrs, type: 'error' }, xml('error', { type: 'cancel', code: '503' }, xml('service-unavailable', { xmlns: NS_STANZAS })));
      void this.send(reply).catch(() => {});
    }
  }

  /** One request/response during login, before polling starts: its payloads go to the inbox. */
  private async exchange(payload: Element[], attrs: Record<string, string> = {}): Promise<void> {
    const res = await this.request(++this.rid, attrs, payload);
    this.inbox.push(...res.children);
  }

  /** Sends empty requests until an element matching arrives (login steps). */
  private async expect(match: (e: Element) => boolean, what: string): Promise<Element> {
    for (let polls = 0; ; polls++) {
      const i = this.inbox.findIndex(match);
      if (i >= 0) return this.inbox.splice(i, 1)[0]!;
      const error = this.inbox.find((e) => e.name === 'error');
      if (error) throw new BoshTerminated(`stream error while waiting for ${what}: ${error.toString()}`);
      if (polls > 5) throw new BoshTerminated(`no ${what} from the server`);
      if (this.requests <= 1 && this.lastResponseEmpty) await new Promise((r) => setTimeout(r, this.polling * 1000));
      await this.exchange([]);
    }
  }

  private body(rid: number, attrs: Record<string, string>, payload: Element[]): string {
    let s = `<body xmlns='${NS_HTTPBIND}' xmlns:xmpp='${NS_XBOSH}' rid='${rid}'`;
    if (this.sid) s += ` sid='${escapeAttr(this.sid)}'`;
    for (const [k, v] of Object.entries(attrs)) s += ` ${k}='${escapeAttr(v)}'`;
    if (payload.length === 0) return s + '/>';
    // Stanzas inside <body/> must name their namespace (XEP-0206 8).
    return s + '>' + payload.map((el) => (el.attrs.xmlns ? el : el.clone({ xmlns: NS_CLIENT })).toString()).join('') + '</body>';
  }

  /** Posts one request, resending it with the same rid after a transport failure. */
  private async request(rid: number, attrs: Record<string, string>, payload: Element[]): Promise<Response> {
    // The terminating request needs no persisting: the session is over.
    if (this.sid && !this.ended) this.options.onRequest?.(this.sid, rid);
    const text = this.body(rid, attrs, payload);
    for (let attempt = 0; ; attempt++) {
      let status: number;
      let reply: string;
      try {
        const res = await fetch(this.account.url, {
          method: 'POST',
          headers: { 'Content-Type': 'text/xml; charset=utf-8' },
          body: text,
          signal: AbortSignal.any([this.aborter.signal, AbortSignal.timeout((this.options.wait + 20) * 1000)]),
        });
        status = res.status;
        reply = await res.text();
      } catch (e) {
        if (this.aborter.signal.aborted) throw new BoshTerminated('detached');
        if (attempt >= MAX_RETRIES) throw new BoshTerminated(`connection manager unreachable: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 1000 * (attempt + 1)));
        continue;
      }
      // XEP-0124 17.1: older servers end a session with an HTTP error status.
      if (status === 400 || status === 403 || status === 404) throw new BoshTerminated(`HTTP ${status}`);
      if (status !== 200) {
        if (attempt >= MAX_RETRIES) throw new BoshTerminated(`HTTP ${status}`);
        await new Promise((r) => setTimeout(r, 1000 * (attempt + 1)));
        continue;
      }
      const parsed = parseResponse(reply);
      if (parsed.attrs.type === 'terminate') throw new BoshTerminated(parsed.attrs.condition ?? 'terminated by the server');
      this.lastResponseEmpty = parsed.children.length === 0;
      return parsed;
    }
  }
}
