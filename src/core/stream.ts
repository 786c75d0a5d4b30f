// One client stream (RFC 6120): header exchange, STARTTLS, SASL, resource binding, then
// stanzas handed to the router. Independent of the transport that carries the bytes:
// transports implement StreamTransport and feed bytes in.
import { randomBytes, randomUUID } from 'node:crypto';
import { Element, xml } from '../xml/element.js';
import type { ParserLimits, StreamErrorCondition as ParseErrorCondition, StreamHeader } from '../xml/parser.js';
import { JID, JidError, normaliseResource, parseJid } from '../jid.js';
import { NS_STREAMS, StanzaError, StreamError, errorReply } from './errors.js';
import type { ClientSession } from './session.js';
import type { Server } from './server.js';
import { mechanismFactories, type ChannelBinding, type SaslMechanism } from '../auth/sasl.js';
import { verifyPasswordAsync } from '../auth/credentials.js';
import { CoreStatistics, type CountedStream } from './statistics.js';
import { ClientTrafficGuard } from './client-limits.js';
import type { PingType, WatchedConnection } from './watchdog.js';

export const NS_CLIENT = 'jabber:client';
const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';
const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind';
const NS_SESSION = 'urn:ietf:params:xml:ns:xmpp-session';
const NS_IQ_AUTH = 'jabber:iq:auth';
const NS_PING = 'urn:xmpp:ping';
const NS_SASL_CB = 'urn:xmpp:sasl-cb:0';

/**
 * What a transport (TCP, WebSocket, BOSH) does for a stream. The transport owns framing both
 * ways: it parses its input and calls the stream's `streamStart`, `stanza`, `streamEnd` and
 * `parseError`, and it writes the stream header, elements and the close in its own format.
 */
export interface StreamTransport {
  readonly remoteAddress: string;
  readonly secure: boolean;
  /** STARTTLS can be offered (a certificate is available and TLS is not yet on). */
  readonly canStartTls: boolean;
  /** Writes the stream header (`<stream:stream>`, `<open/>`, a BOSH session response, ...). */
  sendHeader(attrs: Record<string, string>): void;
  /** Writes one top-level element: a stanza, features, a SASL or TLS element. */
  sendElement(el: Element): void;
  /** A new stream starts on the same connection (after SASL success or STARTTLS). */
  restartStream(): void;
  /** Upgrades the connection to TLS in place; resolves once the handshake is done. */
  startTls(): Promise<void>;
  channelBindings(): ChannelBinding[];
  /** Writes an optional stream error and the stream close, then closes the connection. */
  end(error?: StreamError): void;
  /** Sends something that carries no stanza (a space on TCP, a ping frame on WebSocket): the watchdog's whitespace ping. */
  keepalive?(): void;
  /** 'tcp', 'websocket' or 'bosh', for the statistics ('other' when absent). */
  readonly kind?: string;
  /** Output accepted but not yet written to the network, for the statistics (bytes; elements for BOSH). */
  pendingOutput?(): number;
}

type State = 'header' | 'negotiating' | 'bound' | 'closed';

const MAX_AUTH_FAILURES = 3;

export function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

export class ClientStream implements ClientSession, CountedStream, WatchedConnection {
  readonly id = randomUUID();
  jid!: JID;
  readonly directedPresence = new Set<string>();
  anonymous = false;
  private currentPresence: Element | undefined;
  private currentPriority = 0;
  private wantsRosterPushes = false;

  // The session manager hears of these changes: in a cluster the other nodes need them to
  // route to this session (cluster/directory.ts).
  get presence(): Element | undefined { return this.currentPresence; }
  set presence(value: Element | undefined) { this.currentPresence = value; this.server.sessions.updated(this); }
  get priority(): number { return this.currentPriority; }
  set priority(value: number) { this.currentPriority = value; this.server.sessions.updated(this); }
  get rosterRequested(): boolean { return this.wantsRosterPushes; }
  set rosterRequested(value: boolean) {
    if (value === this.wantsRosterPushes) return;
    this.wantsRosterPushes = value;
    this.server.sessions.updated(this);
  }

  private state: State = 'header';
  private domain = '';
  private headerSent = false;
  private authenticated = false;
  private username: string | undefined;
  private sasl: { mechanism: SaslMechanism; name: string } | undefined;
  private authFailures = 0;
  private legacyVersion = false; // pre-1.0 stream: no features, legacy auth only
  /** Stanzas to handle, in order; a refusal by a traffic limit takes its stanza's place. */
  private inbox: (Element | (() => void))[] = [];
  /** A traffic limit ends the stream once the stanzas before the one that broke it are handled. */
  private closing = false;
  private processing = false;
  private negotiationTimer: NodeJS.Timeout | undefined;
  private countedUnauthenticated = true;
  // The watchdog's clocks (core/watchdog.ts): last data from the peer, last stanza from the peer,
  // last stanza to the peer. The watchdog's own pings do not count.
  private lastReceived = Date.now();
  private lastStanzaReceived = this.lastReceived;
  private lastSent = this.lastReceived;
  private pings = 0;
  private readonly closeListeners: (() => void)[] = [];
  private readonly traffic: ClientTrafficGuard;

  constructor(private readonly server: Server, private readonly transport: StreamTransport) {
    this.negotiationTimer = setTimeout(() => this.close(new StreamError('connection-timeout', 'authentication and resource binding took too long')),
      server.config.c2s['negotiation-timeout'] * 1000);
    this.negotiationTimer.unref();
    this.traffic = new ClientTrafficGuard(server.config.c2s, this, server.log);
    server.stats.streamOpened(this);
  }

  get transportKind(): string {
    return this.transport.kind ?? 'other';
  }

  get pendingInput(): number {
    return this.inbox.length;
  }

  get pendingOutput(): number {
    return this.transport.pendingOutput?.() ?? 0;
  }

  get remoteAddress(): string {
    return this.transport.remoteAddress;
  }

  get secure(): boolean {
    return this.transport.secure;
  }

  /** Parser limits the transport applies to this stream's input. */
  get limits(): ParserLimits {
    return { maxStanzaSize: this.server.config.c2s['max-stanza-size'], maxDepth: this.server.config.c2s['max-depth'] };
  }

  /** Who is on the other end, for logs: the full JID once bound, else the address. */
  get peer(): string {
    return this.jid ? this.jid.full : this.remoteAddress;
  }

  /** The transport received `bytes` bytes from the peer, before parsing (0: a keepalive answer such as a pong). */
  received(bytes: number): void {
    if (this.state === 'closed') return;
    this.lastReceived = Date.now();
    const error = bytes > 0 ? this.traffic.bytes(bytes) : undefined;
    if (error) this.close(error);
  }

  lastTransfer(type: PingType): number {
    return type === 'xmpp' ? this.lastStanzaReceived : Math.max(this.lastReceived, this.lastSent);
  }

  /** The watchdog's ping: XEP-0199 from the server once bound; otherwise the transport's keepalive. */
  ping(type: PingType): void {
    // Nothing may precede a stream header (not even whitespace before the XML declaration).
    if (this.state === 'closed' || this.state === 'header') return;
    if (type === 'xmpp' && this.state === 'bound') {
      this.transport.sendElement(xml('iq', { type: 'get', id: `watchdog-${++this.pings}`, from: this.domain, to: this.jid.full }, xml('ping', { xmlns: NS_PING })));
    } else {
      this.transport.keepalive?.();
    }
  }

  /** The watchdog gave up on the peer: the stream ends, and with it the session (unavailable presence). */
  disconnect(idle: number): void {
    this.close(new StreamError('connection-timeout', `no traffic for ${Math.round(idle / 1000)} seconds`));
  }

  onClose(fn: () => void): void {
    if (this.state === 'closed') fn();
    else this.closeListeners.push(fn);
  }

  /** A stanza refused by a traffic limit: the error goes back to the client, unless none is due. */
  private refuse(stanza: Element, error: StanzaError): void {
    if (stanza.attrs.type === 'error' || (stanza.name === 'iq' && stanza.attrs.type === 'result')) return;
    this.send(errorReply(stanza.clone({ from: this.jid.full }), error, this.domain));
  }

  /** The transport's input failed to parse. */
  parseError(condition: ParseErrorCondition, text: string): void {
    this.close(new StreamError(condition, text));
  }

  /** The peer closed its stream. */
  streamEnd(): void {
    this.close();
  }

  /** The transport closed underneath us (peer closed, reset, timeout). */
  transportClosed(): void {
    this.finish();
  }

  send(stanza: Element): void {
    if (this.state === 'closed') return;
    CoreStatistics.count(this.server.stats.stanzasOut, stanza.name);
    this.lastSent = Date.now();
    this.transport.sendElement(stanza);
  }

  close(error?: StreamError): void {
    if (this.state === 'closed') return;
    // RFC 6120 4.9.1.2: an error before our header still goes inside a stream.
    if (!this.headerSent) this.sendHeader(this.domain || this.server.defaultHost);
    this.finish();
    this.transport.end(error);
  }

  private finish(): void {
    if (this.state === 'closed') return;
    const wasBound = this.state === 'bound';
    this.state = 'closed';
    clearTimeout(this.negotiationTimer);
    this.server.stats.streamClosed(this);
    for (const fn of this.closeListeners.splice(0)) fn();
    if (this.countedUnauthenticated) this.server.admission.release(this.remoteAddress);
    this.countedUnauthenticated = false;
    if (wasBound && this.server.sessions.remove(this)) this.server.track(this.server.hooks.fire('session/closed', this));
  }

  private sendHeader(from: string): void {
    this.headerSent = true;
    const attrs: Record<string, string> = { id: randomUUID(), from };
    if (!this.legacyVersion) attrs.version = '1.0';
    attrs['xml:lang'] = 'en';
    this.transport.sendHeader(attrs);
  }

  /** The peer opened a stream (after connecting, SASL success or STARTTLS). */
  streamStart(h: StreamHeader): void {
    this.headerSent = false;
    if (h.local !== 'stream' || h.uri !== NS_STREAMS) return this.close(new StreamError('invalid-namespace', 'the root element must be stream in the streams namespace'));
    if (h.defaultNS !== NS_CLIENT) return this.close(new StreamError('invalid-namespace', 'the default namespace must be jabber:client'));
    const to = h.attrs.to;
    let domain: string | undefined;
    try { domain = to ? parseJid(to).domain : undefined; } catch { domain = undefined; }
    if (!domain || !this.server.isLocalHost(domain)) {
      return this.close(new StreamError('host-unknown', to ? `${to} is not served here` : 'the stream header has no to attribute'));
    }
    if (this.domain && domain !== this.domain) return this.close(new StreamError('host-unknown', 'the domain changed on stream restart'));
    this.domain = domain;
    const version = h.attrs.version;
    if (version === undefined) {
      // Pre-XMPP-1.0 client: only jabber:iq:auth can log it in.
      if (!this.server.config.c2s['legacy-auth']) return this.close(new StreamError('unsupported-version', 'XMPP 1.0 or later is required'));
      this.legacyVersion = true;
    } else if (!/^1\.\d+$/.test(version)) {
      return this.close(new StreamError('unsupported-version', 'only XMPP 1.x is supported'));
    }
    this.sendHeader(domain);
    if (!this.legacyVersion) this.transport.sendElement(this.features());
    this.state = 'negotiating';
  }

  private features(): Element {
    const f = xml('stream:features');
    if (!this.authenticated) {
      if (this.transport.canStartTls && !this.transport.secure) f.append(xml('starttls', { xmlns: NS_TLS }));
      const mechanisms = this.offeredMechanisms();
      if (mechanisms.length) f.append(xml('mechanisms', { xmlns: NS_SASL }, mechanisms.map((m) => xml('mechanism', null, m))));
      const bindings = this.transport.channelBindings();
      if (bindings.length) f.append(xml('sasl-channel-binding', { xmlns: NS_SASL_CB }, bindings.map((b) => xml('channel-binding', { type: b.type }))));
      if (this.server.config.c2s['legacy-auth']) f.append(xml('auth', { xmlns: 'http://jabber.org/features/iq-auth' }));
      for (const extra of this.server.preAuthFeatures(this.domain)) f.append(extra);
    } else {
      f.append(xml('bind', { xmlns: NS_BIND }, xml('required')));
      f.append(xml('session', { xmlns: NS_SESSION }, xml('optional')));
      for (const extra of this.server.postAuthFeatures) f.append(extra);
    }
    return f;
  }

  private plaintextPasswordAllowed(): boolean {
    if (this.transport.secure) return true;
    const policy = this.server.config.c2s['plaintext-auth'];
    return policy === 'always' || (policy === 'loopback' && isLoopback(this.remoteAddress));
  }

  private encryptionRequired(): boolean {
    const required = this.server.config.c2s['require-encryption'] || this.server.vhostOption(this.domain, 'tls-required');
    return required && !this.transport.secure && !isLoopback(this.remoteAddress);
  }

  /** Asks the modules whether an authenticated account may log in; returns the refusal text, if refused. */
  private async loginRefusal(username: string, anonymous: boolean): Promise<string | undefined> {
    const check = { domain: this.domain, username, anonymous, refusal: undefined as string | undefined };
    if (!(await this.server.hooks.fire('account/authenticating', check))) return undefined;
    return check.refusal ?? 'this account may not log in';
  }

  private offeredMechanisms(): string[] {
    if (this.encryptionRequired()) return [];
    const bindings = this.transport.channelBindings();
    const out: string[] = [];
    for (const m of mechanismFactories) {
      if (m.plus && bindings.length === 0) continue;
      if (m.name === 'PLAIN' && !this.plaintextPasswordAllowed()) continue;
      if (m.name === 'ANONYMOUS' && !this.server.vhostOption(this.domain, 'anonymous-login')) continue;
      out.push(m.name);
    }
    return out;
  }

  // Stanzas of one stream are handled strictly in order, one at a time, even when a handler
  // waits for storage: clients such as Asterisk pipeline requests that depend on each other.
  stanza(el: Element): void {
    if (this.state === 'closed' || this.closing) return;
    this.lastStanzaReceived = Date.now();
    const refusal = this.state === 'bound' ? this.traffic.admit() : undefined;
    if (refusal && 'stream' in refusal) this.closing = true;
    this.inbox.push(refusal ? () => ('stream' in refusal ? this.close(refusal.stream) : this.refuse(el, refusal.stanza)) : el);
    if (!this.processing) {
      this.processing = true;
      this.server.track(this.drain());
    }
  }

  private async drain(): Promise<void> {
    try {
      while (this.inbox.length && this.state !== 'closed') {
        const el = this.inbox.shift()!;
        if (typeof el === 'function') {
          el();
          continue;
        }
        try {
          const r = this.handle(el);
          if (r) await r;
        } catch (e) {
          this.server.log.error({ err: e, stanza: el.toString() }, 'stanza handling failed');
          if (e instanceof StreamError) this.close(e);
          else this.close(new StreamError('internal-server-error'));
        }
      }
    } finally {
      this.processing = false;
    }
  }

  private handle(el: Element): Promise<void> | void {
    if (this.state === 'bound') return this.handleStanza(el);
    const ns = el.attrs.xmlns;
    if (ns === NS_TLS && el.name === 'starttls') return this.startTls();
    if (ns === NS_SASL) return this.handleSasl(el);
    if (ns === undefined && el.name === 'iq') return this.handleNegotiationIq(el);
    if (ns !== undefined && ns !== NS_CLIENT) throw new StreamError('invalid-namespace', `unexpected ${el.name} in ${ns}`);
    throw new StreamError('not-authorized', 'authenticate and bind a resource first');
  }

  private async startTls(): Promise<void> {
    if (!this.transport.canStartTls || this.transport.secure || this.authenticated) {
      this.transport.sendElement(xml('failure', { xmlns: NS_TLS }));
      this.finish();
      this.transport.end();
      return;
    }
    this.transport.sendElement(xml('proceed', { xmlns: NS_TLS }));
    this.state = 'header';
    try {
      await this.transport.startTls();
    } catch (e) {
      this.server.log.debug({ err: e, ip: this.remoteAddress }, 'TLS handshake failed');
      this.finish();
    }
  }

  private async handleSasl(el: Element): Promise<void> {
    if (this.authenticated) throw new StreamError('policy-violation', 'already authenticated');
    if (el.name === 'auth') {
      if (this.sasl) return this.saslFailure('malformed-request', 'an authentication exchange is already in progress');
      const name = el.attrs.mechanism ?? '';
      const factory = mechanismFactories.find((m) => m.name === name);
      if (!factory || !this.offeredMechanisms().includes(name)) {
        if (name === 'PLAIN' && !this.plaintextPasswordAllowed()) return this.saslFailure('encryption-required', 'PLAIN needs an encrypted connection here');
        return this.saslFailure('invalid-mechanism', `${name || 'no mechanism'} is not offered`);
      }
      const mechanism = factory.create({
        domain: this.domain,
        secure: this.transport.secure,
        channelBindings: this.transport.channelBindings(),
        lookup: (username) => this.server.storage.users.get(this.domain, username),
      });
      this.sasl = { mechanism, name };
      const text = el.text();
      return this.saslStep(text === '' ? undefined : text === '=' ? Buffer.alloc(0) : decodeBase64(text));
    }
    if (el.name === 'response') {
      if (!this.sasl) return this.saslFailure('malformed-request', 'no authentication exchange in progress');
      const text = el.text();
      return this.saslStep(text === '' || text === '=' ? Buffer.alloc(0) : decodeBase64(text));
    }
    if (el.name === 'abort') {
      this.sasl = undefined;
      return this.saslFailure('aborted');
    }
    throw new StreamError('unsupported-stanza-type', `unexpected ${el.name}`);
  }

  private async saslStep(response: Buffer | undefined | null): Promise<void> {
    const sasl = this.sasl!;
    if (response === null) {
      this.sasl = undefined;
      return this.saslFailure('incorrect-encoding');
    }
    const step = await sasl.mechanism.step(response);
    if (step.kind === 'challenge') {
      this.transport.sendElement(xml('challenge', { xmlns: NS_SASL }, step.data.length ? step.data.toString('base64') : '='));
      return;
    }
    this.sasl = undefined;
    if (step.kind === 'failure') {
      if (step.condition === 'not-authorized') this.server.stats.authFailed(sasl.name);
      return this.saslFailure(step.condition, step.text);
    }
    const username = step.username ?? randomBytes(8).toString('hex');
    const refusal = await this.loginRefusal(username, step.username === undefined);
    if (refusal !== undefined) {
      this.server.stats.authFailed(sasl.name);
      return this.saslFailure('account-disabled', refusal);
    }
    this.anonymous = step.username === undefined;
    this.authSucceeded(username);
    this.transport.sendElement(xml('success', { xmlns: NS_SASL }, step.additionalData?.toString('base64')));
    this.server.log.info({ user: `${username}@${this.domain}`, mechanism: sasl.name, ip: this.remoteAddress }, 'authenticated');
    this.state = 'header';
    this.transport.restartStream();
  }

  private authSucceeded(username: string): void {
    this.server.stats.loggedIn();
    this.authenticated = true;
    this.username = username;
    if (this.countedUnauthenticated) this.server.admission.release(this.remoteAddress);
    this.countedUnauthenticated = false;
  }

  /** Wrong credentials: modules may act on the address (attacker bans). */
  private authFailed(): void {
    this.server.track(this.server.hooks.fire('auth/failed', { address: this.remoteAddress, domain: this.domain }));
  }

  private saslFailure(condition: string, text?: string): void {
    this.transport.sendElement(xml('failure', { xmlns: NS_SASL }, xml(condition), text ? xml('text', { 'xml:lang': 'en' }, text) : undefined));
    if (condition === 'not-authorized') this.authFailed();
    if (condition === 'not-authorized' && ++this.authFailures >= MAX_AUTH_FAILURES) {
      this.server.log.warn({ ip: this.remoteAddress, domain: this.domain }, 'too many failed authentication attempts');
      this.close(new StreamError('policy-violation', 'too many failed authentication attempts'));
    }
  }

  private async handleNegotiationIq(iq: Element): Promise<void> {
    const payload = iq.firstElement();
    const ns = payload?.attrs.xmlns;
    if (this.authenticated && payload?.name === 'bind' && ns === NS_BIND && iq.attrs.type === 'set') return this.bind(iq, payload.getChildText('resource'));
    if (!this.authenticated && ns === NS_IQ_AUTH && this.server.config.c2s['legacy-auth']) return this.legacyAuth(iq, payload!);
    if (!this.authenticated && ns !== undefined) {
      const handler = this.server.preAuthIq.get(ns);
      if (handler) {
        try {
          const result = await handler({ iq, payload: payload!, domain: this.domain, secure: this.transport.secure || isLoopback(this.remoteAddress) });
          this.sendNegotiation(iq, result);
        } catch (e) {
          if (!(e instanceof StanzaError)) throw e;
          this.transport.sendElement(errorReply(iq, e, this.domain));
        }
        return;
      }
    }
    if (this.authenticated) {
      this.transport.sendElement(errorReply(iq, new StanzaError('not-allowed', 'bind a resource first'), this.domain));
      return;
    }
    throw new StreamError('not-authorized', 'authenticate first');
  }

  private sendNegotiation(iq: Element, payload?: Element | void): void {
    this.transport.sendElement(xml('iq', { type: 'result', id: iq.attrs.id }, payload ?? undefined));
  }

  private async bind(iq: Element, requested: string | undefined): Promise<void> {
    let resource: string;
    try {
      resource = requested && requested.trim() !== '' ? normaliseResource(requested) : randomUUID();
    } catch (e) {
      this.transport.sendElement(errorReply(iq, new StanzaError('bad-request', e instanceof JidError ? e.message : 'invalid resource'), this.domain));
      return;
    }
    this.completeBinding(new JID(this.username!, this.domain, resource));
    this.transport.sendElement(xml('iq', { type: 'result', id: iq.attrs.id }, xml('bind', { xmlns: NS_BIND }, xml('jid', null, this.jid.full))));
    await this.server.hooks.fire('session/bound', this);
  }

  private completeBinding(jid: JID): void {
    this.jid = jid;
    this.state = 'bound';
    clearTimeout(this.negotiationTimer);
    // RFC 6120 7.7.2.2: a new session for the same full JID takes over; the old one ends with conflict.
    const previous = this.server.sessions.add(this);
    if (previous) {
      previous.close(new StreamError('conflict', 'replaced by a new connection for the same resource'));
      this.server.track(this.server.hooks.fire('session/closed', previous));
    }
  }

  // XEP-0078, for clients such as Asterisk configured with usesasl=no. Only the plaintext
  // password method: digest would need the password stored in a recoverable form.
  private async legacyAuth(iq: Element, query: Element): Promise<void> {
    const type = iq.attrs.type;
    if (type === 'get') {
      this.sendNegotiation(iq, xml('query', { xmlns: NS_IQ_AUTH }, xml('username', null, query.getChildText('username') ?? ''), xml('password'), xml('resource')));
      return;
    }
    if (type !== 'set') throw new StreamError('not-authorized', 'authenticate first');
    const reply = (err: StanzaError) => this.transport.sendElement(errorReply(iq, err, this.domain));
    const username = query.getChildText('username');
    const password = query.getChildText('password');
    const resource = query.getChildText('resource');
    if (!username || password === undefined || !resource) return reply(new StanzaError('not-acceptable', 'username, password and resource are required'));
    if (!this.plaintextPasswordAllowed() || this.encryptionRequired()) return reply(new StanzaError('not-allowed', 'plaintext passwords need an encrypted connection here'));
    let jid: JID;
    try {
      jid = parseJid(`${username}@${this.domain}/${resource}`);
    } catch (e) {
      return reply(new StanzaError('not-acceptable', e instanceof JidError ? e.message : 'invalid username or resource'));
    }
    const credentials = await this.server.storage.users.get(this.domain, jid.local);
    if (!credentials || !(await verifyPasswordAsync(credentials, password))) {
      this.server.stats.authFailed('jabber:iq:auth');
      this.authFailed();
      if (++this.authFailures >= MAX_AUTH_FAILURES) return this.close(new StreamError('policy-violation', 'too many failed authentication attempts'));
      return reply(new StanzaError('not-authorized'));
    }
    const refusal = await this.loginRefusal(jid.local, false);
    if (refusal !== undefined) {
      this.server.stats.authFailed('jabber:iq:auth');
      return reply(new StanzaError('not-authorized', refusal));
    }
    this.authSucceeded(jid.local);
    this.completeBinding(jid);
    this.sendNegotiation(iq);
    await this.server.hooks.fire('session/bound', this);
  }

  private handleStanza(el: Element): Promise<void> | void {
    const ns = el.attrs.xmlns;
    if (ns !== undefined && ns !== NS_CLIENT) {
      if (ns === NS_SASL || ns === NS_TLS) throw new StreamError('policy-violation', 'stream negotiation is over');
      throw new StreamError('invalid-namespace', `unexpected ${el.name} in ${ns}`);
    }
    const name = el.name;
    if (name !== 'message' && name !== 'presence' && name !== 'iq') throw new StreamError('unsupported-stanza-type', `${name} is not a stanza`);
    this.server.stats.stanzasIn[name]++;
    if (ns !== undefined) delete el.attrs.xmlns;
    // RFC 6120 8.1.2.1: the server stamps `from`; a client may only name itself.
    const from = el.attrs.from;
    if (from !== undefined && from !== this.jid.full && from !== this.jid.bare) {
      let ok = false;
      try { const j = parseJid(from); ok = j.bare === this.jid.bare && (j.resource === '' || j.resource === this.jid.resource); } catch { ok = false; }
      if (!ok) throw new StreamError('invalid-from', `${from} is not this session's address`);
    }
    el.attrs.from = this.jid.full;
    if (name === 'iq' && el.attrs.to === undefined) {
      // Session establishment (RFC 3921) is a no-op kept for older clients such as Asterisk.
      const payload = el.firstElement();
      if (payload?.name === 'session' && payload.attrs.xmlns === NS_SESSION) {
        this.send(xml('iq', { type: 'result', id: el.attrs.id, to: this.jid.full }));
        return;
      }
    }
    return this.server.router.route(el, this);
  }
}

/** Strict base64 (RFC 6120 6.4.2): anything else is incorrect-encoding (null). */
function decodeBase64(text: string): Buffer | null {
  const t = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t) || t.length % 4 !== 0) return null;
  return Buffer.from(t, 'base64');
}
