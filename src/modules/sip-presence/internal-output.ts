// Output "internal": each phone is a resource of its mapped local account, held by a
// server-side session that has no connection. Its presence goes through the normal presence
// path (the 'client/stanza' and 'presence/broadcast' steps of the router, as if a client had
// sent it), so contacts subscribed to the account see it, probes are answered with it, and the
// session/* events reach every module like any other session's.
//
// On the phone is `<show>dnd</show>` by default: the user is at the phone and busy, which is what
// "do not disturb" says to contacts; `away` would say the user is not there. Its priority is
// negative so that messages to the bare JID never go to a phone (RFC 6121 8.5.2.1.1).
import { randomUUID } from 'node:crypto';
import type { ModuleContext } from '../../core/modules.js';
import type { ClientSession } from '../../core/session.js';
import { StanzaError, StreamError } from '../../core/errors.js';
import { JID, parseJid } from '../../jid.js';
import { xml, type Element } from '../../xml/element.js';
import type { Availability } from './state-machine.js';
import type { PhoneMapping } from './mapping.js';
import type { PresenceOutput } from './bridge.js';
import { InOrder } from './in-order.js';

export interface InternalOptions {
  /** Domain of usernames written without one. */
  domain: string;
  resourcePrefix: string;
  availableStatus: string;
  busyShow: 'dnd' | 'away' | 'xa';
  busyStatus: string;
}

/** The session of one phone: a bound resource without a stream. */
class PhoneSession implements ClientSession {
  readonly id = randomUUID();
  readonly remoteAddress = 'sip-presence';
  readonly secure = true;
  readonly anonymous = false;
  presence: Element | undefined;
  priority = -1;
  rosterRequested = false;
  readonly directedPresence = new Set<string>();

  constructor(readonly jid: JID, private readonly ctx: ModuleContext, private readonly onClose: (s: PhoneSession) => void) {}

  /** What reaches the phone's resource: requests are refused, the rest (contacts' presence) is of no use. */
  send(stanza: Element): void {
    const type = stanza.attrs.type;
    const request = stanza.name === 'iq' ? type === 'get' || type === 'set' : stanza.name === 'message' && type !== 'error' && type !== 'headline' && type !== 'groupchat';
    if (request) this.ctx.router.bounce(stanza, new StanzaError('service-unavailable', 'this resource is a SIP phone\'s presence'));
  }

  /** Ended by the server (shutdown, an administrator, a conflicting login): offline like a dropped connection. */
  close(_error?: StreamError): void {
    this.onClose(this);
  }
}

export class InternalOutput implements PresenceOutput {
  private readonly sessions = new Map<string, PhoneSession>();
  /** Updates of one phone run in order. */
  private readonly queue = new InOrder();
  /** Sessions the server ended, whose session/closed handling is under way. */
  private readonly closing = new Set<Promise<void>>();

  /** `lost` tells the bridge a phone has no presence any more although it did not report offline. */
  constructor(private readonly ctx: ModuleContext, private readonly options: InternalOptions, private readonly lost: (uri: string) => void) {}

  update(phone: PhoneMapping, availability: Availability): void {
    this.queue.run(phone.uri, () => this.apply(phone, availability), (err: unknown) => {
      this.ctx.log.error({ err, uri: phone.uri }, 'could not update the phone\'s presence');
    });
  }

  private jidOf(phone: PhoneMapping): JID | undefined {
    try {
      const bare = parseJid(phone.username.includes('@') ? phone.username : `${phone.username}@${this.options.domain}`);
      if (bare.resource || !bare.local) return undefined;
      return bare.withResource(this.options.resourcePrefix + phone.uri);
    } catch {
      return undefined;
    }
  }

  private async apply(phone: PhoneMapping, availability: Availability): Promise<void> {
    const current = this.sessions.get(phone.uri);
    if (availability === 'offline') {
      if (current) await this.end(current, phone.uri);
      return;
    }
    let session = current;
    if (!session) {
      const jid = this.jidOf(phone);
      if (!jid) {
        this.ctx.log.warn({ uri: phone.uri, line: phone.line, username: phone.username }, 'mapping names no valid XMPP account: phone ignored');
        this.lost(phone.uri);
        return;
      }
      if (!this.ctx.router.isLocalHost(jid.domain) || !(await this.ctx.storage.users.exists(jid.domain, jid.local))) {
        this.ctx.log.warn({ uri: phone.uri, line: phone.line, account: jid.bare }, 'mapped account does not exist here: phone ignored');
        this.lost(phone.uri);
        return;
      }
      session = new PhoneSession(jid, this.ctx, (s) => {
        const p = this.closed(s, phone.uri).catch((err: unknown) => this.ctx.log.error({ err, uri: phone.uri }, 'could not end the phone\'s session'));
        this.closing.add(p);
        void p.then(() => this.closing.delete(p));
        // At shutdown the unavailable presence must go out before the node leaves the cluster.
        this.ctx.track(p);
      });
      const replaced = this.ctx.sessions.add(session);
      this.sessions.set(phone.uri, session);
      // RFC 6120 7.7.2.2, as for any new session of a full JID: the one it replaces ends with conflict.
      if (replaced) {
        replaced.close(new StreamError('conflict', 'replaced by the presence of a SIP phone'));
        await this.ctx.hooks.fire('session/closed', replaced);
      }
      await this.ctx.hooks.fire('session/bound', session);
    }
    const busy = availability === 'on-the-phone';
    const status = busy ? this.options.busyStatus : this.options.availableStatus;
    const presence = xml('presence', { from: session.jid.full },
      busy ? xml('show', null, this.options.busyShow) : undefined,
      status ? xml('status', null, status) : undefined,
      xml('priority', null, String(session.priority)));
    await this.ctx.router.route(presence, session);
  }

  /** Unavailable presence, then the session ends. */
  private async end(session: PhoneSession, uri: string): Promise<void> {
    this.sessions.delete(uri);
    await this.ctx.router.route(xml('presence', { type: 'unavailable', from: session.jid.full }), session);
    if (this.ctx.sessions.remove(session)) await this.ctx.hooks.fire('session/closed', session);
  }

  /** The server ended the session: the presence module sends its unavailable on session/closed. */
  private async closed(session: PhoneSession, uri: string): Promise<void> {
    if (this.sessions.get(uri) === session) {
      this.sessions.delete(uri);
      this.lost(uri);
    }
    if (this.ctx.sessions.remove(session)) await this.ctx.hooks.fire('session/closed', session);
  }

  async stop(): Promise<void> {
    await Promise.all([this.queue.allDone(), ...this.closing]);
    for (const [uri, session] of [...this.sessions]) await this.end(session, uri);
  }
}
