// Presence and message forwarding (seed 001 section 11.7). When a user of a virtual host changes
// its presence, the presence is processed as usual and a copy goes to the host's presence forward
// address (a bot's full JID, an account or a component); a session that ends without saying so
// forwards an unavailable presence. Messages the host's users send go as usual, and a copy goes
// to the message forward address, wrapped in a XEP-0297 <forwarded/> (with a XEP-0203 delay
// stamp) so that the original sender and recipient stay visible.
//
// Addresses are set per virtual host (VHost Manager: "Presence forward address", "Message
// forward address"), else globally with this module's options; a host's own setting wins.
import { z } from 'zod';
import { defineModule } from '../core/module-definition.js';
import type { ModuleContext } from '../core/modules.js';
import type { ClientSession } from '../core/session.js';
import { parseJid, tryParseJid } from '../jid.js';
import { Element, xml } from '../xml/element.js';

const NS_FORWARD = 'urn:xmpp:forward:0';
const NS_DELAY = 'urn:xmpp:delay';

const address = z.string().refine((v) => tryParseJid(v) !== undefined, { message: 'must be a JID' }).optional();

interface Options {
  'presence-forward'?: string;
  'message-forward'?: string;
}

class Forwarder {
  constructor(private readonly ctx: ModuleContext<Options>) {}

  private addressFor(domain: string, kind: 'presence-forward' | 'message-forward'): string | undefined {
    const own = this.ctx.vhosts.get(domain)?.[kind];
    const a = own ?? this.ctx.config[kind];
    return a === undefined || a === '' ? undefined : parseJid(a).full;
  }

  /** A presence broadcast of a local user (available, update or unavailable). */
  presence(stanza: Element, origin: ClientSession): void {
    const type = stanza.attrs.type;
    if (type !== undefined && type !== 'unavailable') return;
    this.forwardPresence(origin, stanza);
  }

  /** A session ends while available: its unavailable presence is forwarded too. */
  sessionEnded(session: ClientSession): void {
    if (session.presence === undefined) return;
    this.forwardPresence(session, xml('presence', { type: 'unavailable' }));
  }

  private forwardPresence(origin: ClientSession, stanza: Element): void {
    const to = this.addressFor(origin.jid.domain, 'presence-forward');
    if (!to || parseJid(to).bare === origin.jid.bare) return;
    void this.ctx.router.route(stanza.clone({ from: origin.jid.full, to })).catch((e: unknown) => this.ctx.log.warn({ err: e, to }, 'presence forwarding failed'));
  }

  /** A message a local user sent, wherever it goes. */
  message(stanza: Element, origin: ClientSession): void {
    if (stanza.name !== 'message' || stanza.attrs.type === 'error') return;
    const forwardTo = this.addressFor(origin.jid.domain, 'message-forward');
    if (!forwardTo) return;
    const target = parseJid(forwardTo);
    const to = tryParseJid(stanza.attrs.to ?? origin.jid.bare);
    // The forward address's own messages, and messages to it, need no copy.
    if (target.bare === origin.jid.bare || target.bare === to?.bare) return;
    const original = stanza.clone({ xmlns: 'jabber:client' });
    const copy = xml('message', { from: origin.jid.domain, to: forwardTo, type: 'normal' },
      xml('forwarded', { xmlns: NS_FORWARD }, xml('delay', { xmlns: NS_DELAY, stamp: new Date().toISOString() }), original));
    void this.ctx.router.route(copy).catch((e: unknown) => this.ctx.log.warn({ err: e, to: forwardTo }, 'message forwarding failed'));
  }
}

export default defineModule({
  name: 'forwarding',
  description: "Presence and message forwarding (seed 001 section 11.7): global forward addresses (Tigase's --vhost-presence-forward-jid and --vhost-message-forward-jid); each virtual host may set its own in the VHost Manager",
  config: z.object({
    'presence-forward': address.describe("Address that gets every presence change of every user (a bot's full JID, an account or a component), unless the user's virtual host sets its own"),
    'message-forward': address.describe("Address that gets a copy (in a XEP-0297 <forwarded/>) of every message users send, unless the user's virtual host sets its own"),
  }).strict(),
  setup(ctx) {
    const forwarder = new Forwarder(ctx);
    const offs = [
      ctx.hooks.on('presence/broadcast', ({ stanza, origin }) => { forwarder.presence(stanza, origin); }, 500),
      // Before the presence module, which forgets the session's presence when it ends.
      ctx.hooks.on('session/closed', (session) => { forwarder.sessionEnded(session); }, 500),
      // Every message a client sends, before routing: to local users, services and other servers alike.
      ctx.hooks.on('client/stanza', ({ stanza, origin }) => { forwarder.message(stanza, origin); }, 500),
    ];
    return () => { for (const off of offs) off(); };
  },
});
