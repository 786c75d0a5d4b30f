// BOSH (XEP-0124) carrying XMPP (XEP-0206) at /http-bind/. A BOSH session is a ClientStream
// like a TCP connection: the transport below turns HTTP requests into the stream's input and
// holds requests to carry its output.
//
// Per session: request ids are checked against the window (`requests`) and processed in rid
// order, however the requests arrive; a repeated rid gets the response sent before (the last
// `requests` responses are kept); a rid outside the window, an unknown sid or a response no
// longer kept ends the session with item-not-found. Requests are held up to `wait` seconds,
// at most `hold` at once; `pause`, `terminate` and `xmpp:restart` are honoured; a session
// without requests for `inactivity` seconds (or the pause asked for) ends as if the
// connection dropped: the client's resources go unavailable.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { ClientStream, NS_CLIENT, type StreamTransport } from '../core/stream.js';
import { NS_STREAMS, StreamError } from '../core/errors.js';
import { createStreamParser, type ParserLimits } from '../xml/parser.js';
import { Element, openTag, type Attrs } from '../xml/element.js';
import type { Server } from '../core/server.js';
import type { ChannelBinding } from '../auth/sasl.js';
import type { HttpHandler, HttpRoutes } from '../http/server.js';
import { BoshForwarder } from '../cluster/bosh-forward.js';

export const NS_HTTPBIND = 'http://jabber.org/protocol/httpbind';
export const NS_XBOSH = 'urn:xmpp:xbosh';
export const BOSH_PATH = '/http-bind/';
const VERSION = '1.11';
const MAX_RID = 2 ** 53 - 1;

/** Terminal binding conditions (XEP-0124 17.2). */
type Condition = 'bad-request' | 'host-gone' | 'host-unknown' | 'improper-addressing' | 'internal-server-error' | 'item-not-found'
  | 'other-request' | 'policy-violation' | 'remote-connection-failed' | 'remote-stream-error' | 'system-shutdown' | 'undefined-condition';

// Deprecated HTTP codes for clients that sent no 'ver' (XEP-0124 17.1).
const LEGACY_STATUS: Partial<Record<Condition, number>> = { 'bad-request': 400, 'policy-violation': 403, 'item-not-found': 404 };

export interface BoshOptions {
  maxWait: number;
  maxHold: number;
  maxPause: number;
  inactivity: number;
  maxRequestSize: number;
  /** The host attribute, or undefined when switched off. */
  nodeHostname: string | undefined;
}

interface Held {
  rid: number;
  res: ServerResponse;
  timer?: NodeJS.Timeout;
  /** The session creation request: its response carries the session attributes. */
  creation?: Attrs;
  /** A pause request: answered without payloads, not cached. */
  pause?: boolean;
  /** A terminate request: answered by the end of the stream only. */
  terminate?: boolean;
}

interface Pending {
  rid: number;
  attrs: Attrs;
  payload: Element[];
  res: ServerResponse;
}

const HEADERS = { 'Content-Type': 'text/xml; charset=utf-8', 'Cache-Control': 'no-store' };

function send(res: ServerResponse, body: string, status = 200): void {
  if (res.writableEnded || res.destroyed) return;
  res.writeHead(status, { ...HEADERS, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function terminateBody(condition?: Condition, children = ''): string {
  const attrs: Attrs = { type: 'terminate' };
  if (condition) attrs.condition = condition;
  attrs.xmlns = NS_HTTPBIND;
  if (children.includes('<stream:')) attrs['xmlns:stream'] = NS_STREAMS;
  return children ? openTag('body', attrs) + children + '</body>' : openTag('body', attrs).slice(0, -1) + '/>';
}

function bindingError(res: ServerResponse, condition: Condition, legacy: boolean): void {
  const status = legacy ? LEGACY_STATUS[condition] : undefined;
  send(res, terminateBody(condition), status ?? 200);
}

function intAttr(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,16}$/.test(value)) return undefined;
  const n = Number(value);
  return n <= MAX_RID ? n : undefined;
}

function olderVersion(a: string, b: string): string {
  const [am = 0, an = 0] = a.split('.').map(Number);
  const [bm = 0, bn = 0] = b.split('.').map(Number);
  return am < bm || (am === bm && an < bn) ? a : b;
}

/** Stream error conditions that have a binding condition of their own; the rest are remote-stream-error. */
function conditionFor(error: StreamError): Condition {
  switch (error.condition) {
    case 'host-unknown': return 'host-unknown';
    case 'host-gone': return 'host-gone';
    case 'improper-addressing': return 'improper-addressing';
    case 'system-shutdown': return 'system-shutdown';
    default: return 'remote-stream-error';
  }
}

class BoshSession implements StreamTransport {
  readonly canStartTls = false;
  readonly kind = 'bosh';
  stream!: ClientStream;
  private lastRid: number;
  private readonly pending = new Map<number, Pending>();
  private readonly held: Held[] = [];
  private readonly cache = new Map<number, string>();
  /** Rids whose HTTP connection closed before the answer: a resend takes their place. */
  private readonly abandoned = new Set<number>();
  private queue: Element[] = [];
  private header: Attrs = {};
  private awaitingRestart = false;
  private flushScheduled = false;
  private inactivityTimer: NodeJS.Timeout | undefined;
  private pauseSeconds: number | undefined;
  /** Once ended: the response every later request gets, until the session is forgotten. */
  private final: string | undefined;
  private lastEmptyPoll = 0;
  private streamHeader: Attrs = {};
  private lastResponseEmpty = false;

  constructor(
    private readonly manager: BoshManager,
    readonly sid: string,
    firstRid: number,
    readonly remoteAddress: string,
    readonly secure: boolean,
    readonly legacy: boolean,
    readonly wait: number,
    readonly hold: number,
  ) {
    this.lastRid = firstRid;
  }

  get requests(): number {
    return this.hold + 1;
  }

  /** Elements waiting for a request to carry them. */
  pendingOutput(): number {
    return this.queue.length;
  }

  get ended(): boolean {
    return this.final !== undefined;
  }

  // --- StreamTransport --------------------------------------------------------------------

  sendHeader(attrs: Record<string, string>): void {
    this.header = { ...attrs };
  }

  sendElement(el: Element): void {
    if (this.ended) return;
    this.queue.push(el);
    this.scheduleFlush();
  }

  restartStream(): void {
    this.awaitingRestart = true;
  }

  startTls(): Promise<void> {
    return Promise.reject(new Error('STARTTLS is not available over BOSH'));
  }

  channelBindings(): ChannelBinding[] {
    return [];
  }

  end(error?: StreamError): void {
    if (this.ended) return;
    let children = '';
    for (const el of this.queue) children += qualified(el).toString();
    this.queue = [];
    let condition: Condition | undefined;
    if (error) {
      condition = conditionFor(error);
      if (condition === 'remote-stream-error') children += error.toElement().toString();
    }
    this.final = terminateBody(condition, children);
    clearTimeout(this.inactivityTimer);
    const held = this.held.splice(0);
    if (held.length) {
      // The oldest request carries what is left and the error; the others just learn the end.
      this.respond(held[0]!, this.final);
      for (const h of held.slice(1)) this.respond(h, terminateBody(condition));
      this.forget();
    } else {
      // Kept for the client's next request, then forgotten.
      this.inactivityTimer = setTimeout(() => this.forget(), Math.min(this.manager.options.inactivity, 60) * 1000);
      this.inactivityTimer.unref();
    }
    for (const p of this.pending.values()) send(p.res, terminateBody(condition));
    this.pending.clear();
  }

  // --- HTTP side --------------------------------------------------------------------------

  private forget(): void {
    clearTimeout(this.inactivityTimer);
    this.manager.sessions.delete(this.sid);
  }

  /** Answers the session creation request with what the stream said at its start. */
  create(creation: Attrs, res: ServerResponse): void {
    this.hold_({ rid: this.lastRid, res, creation });
    this.resetInactivity();
  }

  request(rid: number, attrs: Attrs, payload: Element[], res: ServerResponse, secure: boolean): void {
    // XEP-0124 19.1: a secure session is never continued over an insecure connection.
    if (this.secure && !secure) { res.destroy(); return; }
    if (this.final !== undefined) {
      send(res, this.final);
      this.forget();
      return;
    }
    if (rid <= this.lastRid) {
      const live = this.held.find((h) => h.rid === rid);
      if (live) {
        // A resend of a request still held (its connection broke): the new one takes over.
        live.res.destroy();
        live.res = res;
        this.watch(live);
        return;
      }
      if (this.abandoned.delete(rid)) {
        this.hold_({ rid, res });
        this.flushIfData();
        return;
      }
      const cached = this.cache.get(rid);
      if (cached !== undefined) { send(res, cached); return; }
      return this.fail(res, 'item-not-found');
    }
    if (rid > this.lastRid + this.requests) return this.fail(res, 'item-not-found');
    const previous = this.pending.get(rid);
    if (previous) previous.res.destroy();
    const special = attrs.pause !== undefined || attrs.type === 'terminate';
    // XEP-0124 11: more unanswered requests than `requests` (pause and terminate may exceed by one).
    if (!special && !previous && this.held.length + this.pending.size + 1 > this.requests) return this.fail(res, 'policy-violation');
    this.pending.set(rid, { rid, attrs, payload, res });
    clearTimeout(this.inactivityTimer);
    // In rid order, whatever order the requests came in.
    let next: Pending | undefined;
    while (!this.ended && (next = this.pending.get(this.lastRid + 1))) {
      this.pending.delete(next.rid);
      this.lastRid = next.rid;
      this.process(next);
    }
    if (!this.ended && this.held.length === 0 && this.pending.size === 0) this.resetInactivity();
  }

  /** Ends the session with a binding error answered on `res`. */
  fail(res: ServerResponse, condition: Condition): void {
    bindingError(res, condition, this.legacy);
    this.terminate(condition);
  }

  /** Ends the session from the HTTP side (binding error, shutdown): the stream goes too. */
  terminate(condition: Condition): void {
    if (this.ended) return;
    const error = condition === 'system-shutdown' ? new StreamError('system-shutdown') : undefined;
    this.final = terminateBody(condition);
    clearTimeout(this.inactivityTimer);
    for (const h of this.held.splice(0)) this.respond(h, terminateBody(condition));
    for (const p of this.pending.values()) bindingError(p.res, condition, this.legacy);
    this.pending.clear();
    this.forget();
    if (error) this.stream.close(error);
    else this.stream.transportClosed();
  }

  private process(p: Pending): void {
    const { attrs, payload, res, rid } = p;
    if (attrs.pause !== undefined) {
      const seconds = intAttr(attrs.pause);
      if (seconds === undefined || seconds > this.manager.options.maxPause) return this.fail(res, 'policy-violation');
      // XEP-0124 10: answer everything held, the pause request without payloads.
      for (const h of this.held.splice(0)) this.respond(h, this.drainBody());
      this.pauseSeconds = seconds;
      this.respond({ rid, res, pause: true }, `<body xmlns='${NS_HTTPBIND}'/>`);
      return;
    }
    this.pauseSeconds = undefined;
    if (attrs.type === 'terminate') {
      this.hold_({ rid, res, terminate: true });
      for (const el of payload) this.stream.stanza(normalise(el));
      // The payload (typically unavailable presence) is handled before the stream closes.
      setImmediate(() => { if (!this.ended) this.stream.streamEnd(); });
      return;
    }
    if (attrs['xmpp:restart'] === 'true') {
      if (!this.awaitingRestart || payload.length) return this.fail(res, 'bad-request');
      this.awaitingRestart = false;
      this.hold_({ rid, res });
      this.stream.streamStart({ local: 'stream', uri: NS_STREAMS, prefix: 'stream', defaultNS: NS_CLIENT, attrs: this.streamAttrs(attrs) });
      return;
    }
    if (payload.length && this.awaitingRestart) return this.fail(res, 'bad-request');
    // XEP-0124 12: a polling session (hold 0) polling faster than `polling` with nothing to say.
    if (this.hold === 0 && payload.length === 0) {
      const now = Date.now();
      if (this.lastResponseEmpty && now - this.lastEmptyPoll < this.manager.polling * 1000) return this.fail(res, 'policy-violation');
      this.lastEmptyPoll = now;
    }
    this.hold_({ rid, res });
    for (const el of payload) this.stream.stanza(normalise(el));
  }

  /** The stream header a request stands for: the creation request's, or a restart's on top of it. */
  streamAttrs(attrs: Attrs): Attrs {
    const out: Attrs = { ...this.streamHeader };
    if (attrs.to !== undefined) out.to = attrs.to;
    if (attrs['xmpp:version'] !== undefined) out.version = attrs['xmpp:version'];
    if (attrs['xml:lang'] !== undefined) out['xml:lang'] = attrs['xml:lang'];
    this.streamHeader = out;
    return out;
  }

  /** Holds a request until there is data, its wait runs out, or a newer one needs the slot. */
  private hold_(h: Held): void {
    this.held.push(h);
    this.held.sort((a, b) => a.rid - b.rid);
    this.watch(h);
    if (!h.creation && !h.terminate) {
      h.timer = setTimeout(() => this.answer(h), this.wait * 1000);
      h.timer.unref();
    }
    // Never more than `hold` waiting: the oldest goes back now (with whatever is queued).
    let oldest: Held | undefined;
    while (this.held.length > this.hold && (oldest = this.held[0]) && !oldest.creation && !oldest.terminate) this.answer(oldest);
    this.scheduleFlush();
  }

  private watch(h: Held): void {
    const res = h.res;
    res.once('close', () => {
      if (res.writableEnded || h.res !== res) return;
      const i = this.held.indexOf(h);
      if (i < 0) return;
      this.held.splice(i, 1);
      clearTimeout(h.timer);
      this.abandoned.add(h.rid);
      if (this.held.length === 0 && !this.ended) this.resetInactivity();
    });
  }

  private answer(h: Held): void {
    const i = this.held.indexOf(h);
    if (i < 0) return;
    this.held.splice(i, 1);
    this.respond(h, this.drainBody(h.creation));
    if (this.held.length === 0 && !this.ended) this.resetInactivity();
  }

  private respond(h: Held, body: string): void {
    clearTimeout(h.timer);
    if (!h.pause) {
      this.cache.set(h.rid, body);
      for (const rid of this.cache.keys()) if (rid <= h.rid - this.requests) this.cache.delete(rid);
      for (const rid of this.abandoned) if (rid <= h.rid - this.requests) this.abandoned.delete(rid);
      this.lastResponseEmpty = !body.includes('><');
    }
    const io = this.manager.server.ioLog;
    if (io) io(this.stream.id, 'out', body);
    send(h.res, body);
  }

  /** A response body with everything queued (and the session attributes for the creation request). */
  private drainBody(creation?: Attrs): string {
    let children = '';
    for (const el of this.queue) children += qualified(el).toString();
    this.queue = [];
    const attrs: Attrs = { xmlns: NS_HTTPBIND };
    if (creation) Object.assign(attrs, this.creationAttrs(creation));
    if (children.includes('<stream:')) attrs['xmlns:stream'] = NS_STREAMS;
    return children ? openTag('body', attrs) + children + '</body>' : openTag('body', attrs).slice(0, -1) + '/>';
  }

  private creationAttrs(req: Attrs): Attrs {
    const o = this.manager.options;
    const a: Attrs = {
      'xmlns:xmpp': NS_XBOSH,
      sid: this.sid,
      wait: String(this.wait),
      requests: String(this.requests),
      hold: String(this.hold),
      polling: String(this.manager.polling),
      inactivity: String(Math.ceil(o.inactivity)),
      maxpause: String(o.maxPause),
      ver: req.ver !== undefined ? olderVersion(req.ver, VERSION) : VERSION,
    };
    if (this.header.from) a.from = this.header.from;
    if (this.header.id) a.authid = this.header.id;
    if (this.header.version) a['xmpp:version'] = this.header.version;
    a['xmpp:restartlogic'] = 'true';
    if (this.header['xml:lang']) a['xml:lang'] = this.header['xml:lang'];
    if (req.ack === '1') a.ack = req.rid!;
    if (this.secure) a.secure = 'true';
    // Seed 001 11.10.2: the node serving this session, for clients of a cluster without a balancer.
    if (o.nodeHostname) a.host = o.nodeHostname;
    return a;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Elements written in one tick (a burst of replies, features after a header) leave together.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flushIfData();
    });
  }

  private flushIfData(): void {
    if (this.ended) return;
    const first = this.held[0];
    if (!first || first.terminate) return;
    if (this.queue.length || first.creation) this.answer(first);
  }

  private resetInactivity(): void {
    clearTimeout(this.inactivityTimer);
    const seconds = this.pauseSeconds ?? this.manager.options.inactivity;
    this.inactivityTimer = setTimeout(() => {
      this.manager.server.log.info({ sid: this.sid, ip: this.remoteAddress }, 'BOSH session inactive, ending it');
      this.terminate('remote-connection-failed');
    }, seconds * 1000);
    this.inactivityTimer.unref();
  }
}

/** Stanzas go out in jabber:client, declared on each (the body's default namespace is httpbind). */
function qualified(el: Element): Element {
  return el.attrs.xmlns === undefined && !el.name.startsWith('stream:') ? el.clone({ xmlns: NS_CLIENT }) : el;
}

/** Top-level payload in jabber:client (declared or inherited from the body) becomes the stream's default namespace. */
function normalise(el: Element): Element {
  if (el.attrs.xmlns === NS_CLIENT) delete el.attrs.xmlns;
  return el;
}

interface ParsedBody {
  attrs: Attrs;
  payload: Element[];
}

/** Parses one `<body/>` wrapper with the stream parser's limits and restricted-XML rules. */
function parseBody(text: Buffer, limits: ParserLimits): ParsedBody | { error: Condition; text: string } {
  let attrs: Attrs | undefined;
  let wrong: string | undefined;
  const payload: Element[] = [];
  let done = false;
  let failure: { condition: string; text: string } | undefined;
  const parser = createStreamParser({
    streamStart: (h) => {
      if (h.local !== 'body' || h.uri !== NS_HTTPBIND) wrong = `the root element must be body in ${NS_HTTPBIND}`;
      attrs = h.attrs;
    },
    stanza: (el) => payload.push(el),
    streamEnd: () => { done = true; },
    error: (condition, t) => { failure = { condition, text: t }; },
  }, limits);
  parser.write(text);
  if (failure) return { error: failure.condition === 'policy-violation' ? 'policy-violation' : 'bad-request', text: failure.text };
  if (wrong) return { error: 'bad-request', text: wrong };
  if (!attrs || !done) return { error: 'bad-request', text: 'incomplete body element' };
  return { attrs, payload };
}

/** Reads up to `limit` bytes; when larger, returns the first bytes only (to find the session). */
function readLimited(req: IncomingMessage, limit: number): Promise<{ body?: Buffer; head: Buffer }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const declared = Number(req.headers['content-length']);
    const tooLarge = () => {
      settled = true;
      const head = Buffer.concat(chunks).subarray(0, 4096);
      req.resume();
      resolve({ head });
    };
    req.on('data', (c: Buffer) => {
      if (settled) return;
      chunks.push(c);
      size += c.length;
      if (size > limit || (Number.isFinite(declared) && declared > limit)) tooLarge();
    });
    req.on('end', () => { if (!settled) { settled = true; const body = Buffer.concat(chunks); resolve({ body, head: body }); } });
    req.on('error', (e) => { if (!settled) { settled = true; reject(e); } });
  });
}

export class BoshManager {
  readonly sessions = new Map<string, BoshSession>();
  /** Under `workers`: requests for another worker's sessions go to it (cluster/bosh-forward.ts). */
  forwarder: BoshForwarder | undefined;
  readonly options: BoshOptions;
  /** Shortest polling interval advertised (seconds), enforced for polling sessions. */
  readonly polling = 2;

  constructor(readonly server: Server) {
    const c = server.config.bosh;
    this.options = {
      maxWait: c['max-wait'],
      maxHold: c['max-hold'],
      maxPause: c['max-pause'],
      inactivity: c['max-inactivity-time'],
      maxRequestSize: c['max-request-size'],
      // Seed 11.10.2: the node serving the session, so that a client can come back to it.
      nodeHostname: c['send-node-hostname'] ? (c['node-hostname'] ?? server.config.cluster['node-name'] ?? hostname()) : undefined,
    };
  }

  private get limits(): ParserLimits {
    return { maxStanzaSize: this.server.config.c2s['max-stanza-size'], maxDepth: this.server.config.c2s['max-depth'] };
  }

  handler(http: HttpRoutes): HttpHandler {
    return async (req, res) => {
      if (http.cors(req, res, 'GET, POST, OPTIONS')) return;
      if (req.method === 'GET' || req.method === 'HEAD') {
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end(req.method === 'GET' ? 'Switchboard BOSH endpoint (XEP-0124, XEP-0206): POST <body/> elements here.\n' : undefined);
        return;
      }
      if (req.method !== 'POST') {
        res.writeHead(405, { Allow: 'GET, POST, OPTIONS' }).end();
        return;
      }
      const secure = (req.socket as TLSSocket).encrypted === true || this.forwarder?.forwardedSecure(req) === true;
      const { body, head } = await readLimited(req, this.options.maxRequestSize);
      if (!body) {
        // Too large to read: the session it names (if any) ends with policy-violation.
        res.setHeader('Connection', 'close');
        const sid = /\ssid\s*=\s*(['"])([^'"]+)\1/.exec(head.toString('latin1'))?.[2];
        const session = sid ? this.sessions.get(sid) : undefined;
        if (session) session.fail(res, 'policy-violation');
        else bindingError(res, 'policy-violation', false);
        return;
      }
      const parsed = parseBody(body, this.limits);
      if ('error' in parsed) {
        const sid = /\ssid\s*=\s*(['"])([^'"]+)\1/.exec(body.subarray(0, 4096).toString('latin1'))?.[2];
        const session = sid ? this.sessions.get(sid) : undefined;
        this.server.log.debug({ error: parsed.text, sid }, 'bad BOSH request');
        if (session) session.fail(res, parsed.error);
        else bindingError(res, parsed.error, false);
        return;
      }
      const { attrs, payload } = parsed;
      const rid = intAttr(attrs.rid);
      const sid = attrs.sid;
      const io = this.server.ioLog;
      if (io) io(sid === undefined ? 'new BOSH session' : this.sessions.get(sid)?.stream.id ?? `BOSH ${sid}`, 'in', body);
      if (sid === undefined) {
        if (rid === undefined) return bindingError(res, 'bad-request', attrs.ver === undefined);
        return this.create(attrs, rid, req, res, secure);
      }
      const session = this.sessions.get(sid);
      if (!session) {
        if (this.forwarder?.forward(sid, req, res, body, secure, () => bindingError(res, 'item-not-found', false))) return;
        return bindingError(res, 'item-not-found', false);
      }
      if (rid === undefined) return session.fail(res, 'bad-request');
      session.stream.received(body.length);
      session.request(rid, attrs, payload, res, secure);
    };
  }

  private create(attrs: Attrs, rid: number, req: IncomingMessage, res: ServerResponse, secure: boolean): void {
    const legacy = attrs.ver === undefined;
    if (!attrs.to) return bindingError(res, 'improper-addressing', legacy);
    const address = req.socket.remoteAddress ?? 'unknown';
    if (!this.server.admission.tryAcquire(address)) {
      this.server.log.warn({ ip: address }, 'too many unauthenticated connections from one address');
      return bindingError(res, 'policy-violation', legacy);
    }
    const o = this.options;
    const wait = Math.min(intAttr(attrs.wait) ?? o.maxWait, o.maxWait);
    const hold = Math.min(intAttr(attrs.hold) ?? 1, o.maxHold);
    let sid: string;
    do sid = (this.forwarder?.sidPrefix ?? '') + randomBytes(16).toString('hex'); while (this.sessions.has(sid));
    const session = new BoshSession(this, sid, rid, address, secure, legacy, wait, hold);
    this.sessions.set(sid, session);
    session.stream = new ClientStream(this.server, session);
    session.create(attrs, res);
    session.stream.streamStart({ local: 'stream', uri: NS_STREAMS, prefix: 'stream', defaultNS: NS_CLIENT, attrs: session.streamAttrs(attrs) });
  }

  /** Server stop: every session ends with system-shutdown. */
  closeAll(): void {
    for (const s of [...this.sessions.values()]) s.terminate('system-shutdown');
  }
}

/** Registers BOSH at /http-bind/ on the HTTP service. */
export function registerBosh(server: Server, http: HttpRoutes & { onClose(fn: () => void): void }): BoshManager {
  const manager = new BoshManager(server);
  const handler = manager.handler(http);
  manager.forwarder = BoshForwarder.start((req, res) => {
    Promise.resolve(handler(req, res, new URL(req.url ?? '/', 'http://worker'))).catch((e: unknown) => {
      server.log.error({ err: e }, 'forwarded BOSH request failed');
      if (!res.headersSent) res.writeHead(500).end();
    });
  }, server.log);
  http.route(BOSH_PATH, handler, { documentedIn: 'XEP-0124 and XEP-0206 (an XMPP transport, not a scripted API)' });
  http.onClose(() => { manager.closeAll(); manager.forwarder?.close(); });
  return manager;
}
