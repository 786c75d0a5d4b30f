// The router decides where a stanza goes (RFC 6120 section 10): a local virtual host, an
// account on it (bare or full JID), or a service registered for a domain (components such
// as pubsub). Modules claim routing steps through hooks; what no module claims gets the
// default behaviour here: delivery to a bound full JID, IQ dispatch, or the right error.
import type { Logger } from 'pino';
import { Element } from '../xml/element.js';
import { JID, JidError, parseJid } from '../jid.js';
import { StanzaError, errorReply } from './errors.js';
import type { Hooks } from './hooks.js';
import type { Routed, ServerEvents } from './events.js';
import type { SessionManager } from './sessions.js';
import type { IqRegistry, IqTarget } from './iq.js';
import type { ClientSession } from './session.js';

/** A service owning a whole domain (e.g. pubsub.example.com). */
export type DomainService = (routed: Routed) => void | Promise<void>;

/** The virtual hosts served now (core/vhosts.ts: hosts come and go at runtime). */
export interface LocalHosts {
  has(domain: string): boolean;
}

/** Takes a stanza for a domain service elsewhere (to the cluster node serving it); false: serve it here. */
export type ServiceForwarder = (routed: Routed) => boolean;

export class Router {
  private readonly services = new Map<string, DomainService>();
  private forwarder: ServiceForwarder | undefined;

  constructor(
    private readonly hosts: LocalHosts,
    private readonly hooks: Hooks<ServerEvents>,
    private readonly sessions: SessionManager,
    private readonly iq: IqRegistry,
    private readonly log: Logger,
  ) {}

  isLocalHost(domain: string): boolean {
    return this.hosts.has(domain);
  }

  /** Routes stanzas for a whole domain to a service; returns a remover. */
  addService(domain: string, service: DomainService): () => void {
    if (this.services.has(domain) || this.hosts.has(domain)) throw new Error(`domain ${domain} is already served`);
    this.services.set(domain, service);
    return () => { this.services.delete(domain); };
  }

  /**
   * In a cluster, domain services keep their state in one node's memory, so one node serves
   * them and the others hand it their stanzas (cluster/node.ts sets this).
   */
  forwardServices(forwarder: ServiceForwarder | undefined): void {
    this.forwarder = forwarder;
  }

  serviceDomains(): string[] {
    return [...this.services.keys()];
  }

  /**
   * Routes a stanza. `from` must already be trustworthy: stamped by the stream for client
   * stanzas, or set by the server itself.
   */
  async route(stanza: Element, origin?: ClientSession): Promise<void> {
    const kind = stanza.name;
    if (kind !== 'message' && kind !== 'presence' && kind !== 'iq') return;
    if (origin && (await this.hooks.fire('client/stanza', { stanza, origin }))) return;
    let from: JID;
    let to: JID;
    try {
      from = parseJid(stanza.attrs.from!);
    } catch {
      this.log.warn({ stanza: stanza.toString() }, 'dropping stanza with an invalid from');
      return;
    }
    const toAttr = stanza.attrs.to;
    if (toAttr === undefined) {
      if (kind === 'presence' && origin) {
        await this.hooks.fire('presence/broadcast', { stanza, origin });
        return;
      }
      // RFC 6120 10.3: no 'to' means the sender's own account.
      to = from.bareJid();
    } else {
      try {
        to = parseJid(toAttr);
      } catch (e) {
        this.bounce(stanza, new StanzaError('jid-malformed', e instanceof JidError ? e.message : undefined), origin);
        return;
      }
    }
    const routed: Routed = { stanza, from, to, origin };
    if (this.hosts.has(to.domain)) {
      const target = to.local === '' ? 'host' : to.resource === '' ? 'bare' : 'full';
      if (await this.hooks.fire(`${kind}/${target}`, routed)) return;
      await this.defaultRoute(kind, target, routed);
      return;
    }
    const service = this.services.get(to.domain);
    if (service) {
      if (this.forwarder?.(routed)) return;
      await service(routed);
      return;
    }
    // No server-to-server connections: another domain is unreachable.
    this.bounce(stanza, new StanzaError('remote-server-not-found', `${to.domain} is not served here`), origin);
  }

  /** Sends a stanza to one bound session if it exists; returns whether it did. */
  deliverToFull(to: JID, stanza: Element): boolean {
    const session = this.sessions.get(to.bare, to.resource);
    if (!session) return false;
    session.send(stanza);
    return true;
  }

  /** Answers a stanza with an error, unless it is itself an error (no error loops). */
  bounce(stanza: Element, error: StanzaError, origin?: ClientSession): void {
    if (stanza.attrs.type === 'error') return;
    if (stanza.name === 'iq' && stanza.attrs.type === 'result') return;
    const reply = errorReply(stanza, error);
    if (origin) {
      origin.send(reply);
      return;
    }
    if (reply.attrs.to !== undefined) void this.route(reply);
  }

  private async defaultRoute(kind: 'message' | 'presence' | 'iq', target: 'host' | 'bare' | 'full', routed: Routed): Promise<void> {
    const { stanza, to, origin } = routed;
    if (kind === 'iq') {
      const type = stanza.attrs.type;
      if (type === 'get' || type === 'set') {
        if (target === 'full') {
          if (!this.deliverToFull(to, stanza)) this.bounce(stanza, new StanzaError('service-unavailable'), origin);
          return;
        }
        await this.dispatchIq(target === 'host' ? 'host' : 'account', routed);
        return;
      }
      if (type === 'result' || type === 'error') {
        if (target === 'full') this.deliverToFull(to, stanza);
        return;
      }
      this.bounce(stanza, new StanzaError('bad-request', 'IQ type must be get, set, result or error'), origin);
      return;
    }
    if (target === 'full') {
      this.deliverToFull(to, stanza);
      return;
    }
    if (kind === 'message' && target === 'bare') {
      // Without a message module nothing can take it.
      this.bounce(stanza, new StanzaError('service-unavailable'), origin);
    }
  }

  private async dispatchIq(target: IqTarget, routed: Routed): Promise<void> {
    const { stanza, origin } = routed;
    const payloads = stanza.elements();
    const payload = payloads[0];
    if (!payload || payloads.length !== 1) {
      // RFC 6120 8.2.3: a get or set carries exactly one payload.
      this.bounce(stanza, new StanzaError('bad-request', 'an IQ get or set must have exactly one child element'), origin);
      return;
    }
    const handler = this.iq.find(target, stanza.attrs.type!, payload.attrs.xmlns);
    if (!handler) {
      this.bounce(stanza, new StanzaError('service-unavailable'), origin);
      return;
    }
    let result: Element | void;
    try {
      result = await handler({ ...routed, payload });
    } catch (e) {
      if (e instanceof StanzaError) this.bounce(stanza, e, origin);
      else {
        this.log.error({ err: e, stanza: stanza.toString() }, 'IQ handler failed');
        this.bounce(stanza, new StanzaError('internal-server-error'), origin);
      }
      return;
    }
    const reply = resultFor(stanza, result);
    if (origin) origin.send(reply);
    else void this.route(reply);
  }
}

/** The result IQ for a request: addresses swapped, `from` omitted when the request had no `to`. */
export function resultFor(iq: Element, payload?: Element | void): Element {
  const attrs: Record<string, string> = { type: 'result', id: iq.attrs.id ?? '' };
  if (iq.attrs.to !== undefined) attrs.from = iq.attrs.to;
  if (iq.attrs.from !== undefined) attrs.to = iq.attrs.from;
  const reply = new Element('iq', attrs);
  if (payload) reply.children.push(payload);
  return reply;
}
