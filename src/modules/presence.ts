// Presence (RFC 6121 sections 3 and 4): the subscription state machine, initial presence
// with probes, broadcasts to subscribers, directed presence, and unavailable presence when
// a session ends for any reason. Subscriptions to a full JID apply to the bare JID.
import { defineModule } from '../core/module-definition.js';
import type { ModuleContext } from '../core/modules.js';
import type { Routed } from '../core/events.js';
import type { ClientSession } from '../core/session.js';
import { StanzaError } from '../core/errors.js';
import { Element, xml } from '../xml/element.js';
import type { RosterItem, Subscription } from '../storage/types.js';

type SubscriptionType = 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';
const SUBSCRIPTION_TYPES = new Set(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']);

const hasTo = (s: Subscription) => s === 'to' || s === 'both';
const hasFrom = (s: Subscription) => s === 'from' || s === 'both';
const addTo = (s: Subscription): Subscription => (s === 'from' || s === 'both' ? 'both' : 'to');
const addFrom = (s: Subscription): Subscription => (s === 'to' || s === 'both' ? 'both' : 'from');
const removeTo = (s: Subscription): Subscription => (s === 'both' || s === 'from' ? 'from' : 'none');
const removeFrom = (s: Subscription): Subscription => (s === 'both' || s === 'to' ? 'to' : 'none');

function newItem(jid: string, visible: boolean): RosterItem {
  return { jid, groups: [], subscription: 'none', ask: false, pendingIn: false, approved: false, visible };
}

function parsePriority(stanza: Element): number {
  const text = stanza.getChildText('priority');
  if (text === undefined) return 0;
  const n = Number.parseInt(text, 10);
  return Number.isInteger(n) && n >= -128 && n <= 127 ? n : 0;
}

export default defineModule({
  name: 'presence',
  description: 'Presence subscriptions, broadcasts, probes and directed presence (RFC 6121)',
  specs: ['RFC 6121'],
  setup(ctx) {
    const presence = new PresenceService(ctx);
    ctx.postAuthFeature(xml('sub', { xmlns: 'urn:xmpp:features:pre-approval' }));
    ctx.hooks.on('presence/broadcast', ({ stanza, origin }) => presence.broadcastFromClient(stanza, origin).then(() => true));
    ctx.hooks.on('presence/bare', (r) => presence.addressed(r).then(() => true));
    ctx.hooks.on('presence/full', (r) => presence.addressed(r).then(() => true));
    ctx.hooks.on('presence/host', () => true); // presence to the server itself has no effect
    ctx.hooks.on('session/closed', (session) => presence.sessionEnded(session));
  },
});

class PresenceService {
  constructor(private readonly ctx: ModuleContext) {}

  private get roster() {
    return this.ctx.storage.roster;
  }

  /** Stores an item (or drops it when nothing about it is left) and pushes visible changes. */
  private async save(owner: string, item: RosterItem): Promise<void> {
    const empty = !item.visible && item.subscription === 'none' && !item.ask && !item.pendingIn && !item.approved;
    if (empty) await this.roster.removeItem(owner, item.jid);
    else await this.roster.setItem(owner, item);
    if (item.visible) await this.ctx.hooks.fire('roster/changed', { owner, item, removed: false });
  }

  /** Delivers to every available resource of a local account. */
  private toAvailable(bare: string, stanza: Element): void {
    for (const s of this.ctx.sessions.available(bare)) s.send(stanza);
  }

  /** Current presence of each available resource of `owner`, addressed to `to`. */
  private currentPresence(owner: string, to: string): Element[] {
    return this.ctx.sessions.available(owner).map((s) => s.presence!.clone({ from: s.jid.full, to }));
  }

  private route(stanza: Element): Promise<void> {
    return this.ctx.router.route(stanza);
  }

  async broadcastFromClient(stanza: Element, origin: ClientSession): Promise<void> {
    const type = stanza.attrs.type;
    if (type === undefined) return this.available(stanza, origin);
    if (type === 'unavailable') return this.unavailable(origin, stanza);
    // Subscription requests and probes need an address; errors without one mean nothing.
    if (type !== 'error') this.ctx.router.bounce(stanza, new StanzaError('bad-request', `presence of type ${type} needs a to address`), origin);
  }

  private async available(stanza: Element, origin: ClientSession): Promise<void> {
    const owner = origin.jid.bare;
    const initial = origin.presence === undefined;
    origin.presence = stanza;
    origin.priority = parsePriority(stanza);
    const { items } = await this.roster.get(owner);
    for (const item of items) {
      if (hasFrom(item.subscription)) void this.route(stanza.clone({ to: item.jid }));
    }
    // RFC 6121 4.2.2: the user's own available resources, the sender included, see it too.
    for (const s of this.ctx.sessions.available(owner)) s.send(stanza.clone({ to: s.jid.full }));
    if (!initial) return;
    for (const item of items) {
      if (hasTo(item.subscription)) await this.probe(owner, item.jid, origin);
      // RFC 6121 3.1.3: pending requests are delivered again when the user comes online.
      if (item.pendingIn) origin.send(xml('presence', { type: 'subscribe', from: item.jid, to: owner }));
    }
    await this.ctx.hooks.fire('presence/initial', origin);
  }

  /** Answers a probe from `prober` for `contact`'s presence, if `prober` is subscribed to it. */
  private async probe(prober: string, contact: string, replyTo: ClientSession | string): Promise<void> {
    if (!this.ctx.router.isLocalHost(contact.slice(contact.indexOf('@') + 1))) return;
    const item = await this.roster.getItem(contact, prober);
    if (!item || !hasFrom(item.subscription)) return;
    const to = typeof replyTo === 'string' ? replyTo : replyTo.jid.full;
    const current = this.currentPresence(contact, to);
    const out = current.length ? current : [xml('presence', { type: 'unavailable', from: contact, to })];
    for (const p of out) {
      if (typeof replyTo === 'string') void this.route(p);
      else replyTo.send(p);
    }
  }

  private async unavailable(session: ClientSession, stanza?: Element): Promise<void> {
    const owner = session.jid.bare;
    const unavailable = stanza ?? xml('presence', { type: 'unavailable', from: session.jid.full });
    const wasAvailable = session.presence !== undefined;
    session.presence = undefined;
    const targets = new Set(session.directedPresence);
    session.directedPresence.clear();
    if (targets.size > 0) this.ctx.sessions.updated(session);
    if (wasAvailable) {
      const { items } = await this.roster.get(owner);
      for (const item of items) if (hasFrom(item.subscription)) targets.add(item.jid);
      for (const s of this.ctx.sessions.available(owner)) if (s !== session) s.send(unavailable.clone({ to: s.jid.full }));
      if (stanza) session.send(unavailable.clone({ to: session.jid.full }));
    }
    for (const to of targets) void this.route(unavailable.clone({ to }));
  }

  async sessionEnded(session: ClientSession): Promise<void> {
    if (session.presence !== undefined || session.directedPresence.size > 0) await this.unavailable(session);
  }

  /** Presence with a `to` on a local account: subscription management, probes, or delivery. */
  async addressed(routed: Routed): Promise<void> {
    const { stanza, from, to, origin } = routed;
    const type = stanza.attrs.type;
    if (type !== undefined && SUBSCRIPTION_TYPES.has(type)) {
      const stamped = stanza.clone({ from: from.bare, to: to.bare });
      if (origin) await this.outbound(type as SubscriptionType, from.bare, to.bare, stamped);
      else await this.inbound(type as SubscriptionType, from.bare, to.bare, stamped);
      return;
    }
    if (type === 'probe') return this.probe(from.bare, to.bare, from.full);
    if (origin && to.bare !== from.bare) {
      const before = origin.directedPresence.size;
      if (type === undefined) origin.directedPresence.add(to.full);
      else if (type === 'unavailable') origin.directedPresence.delete(to.full);
      // Part of the session's state others may need (a cluster's directory), like its presence.
      if (origin.directedPresence.size !== before) this.ctx.sessions.updated(origin);
    }
    if (to.resource) this.ctx.router.deliverToFull(to, stanza);
    else this.toAvailable(to.bare, stanza);
  }

  /** A local user (`user`) sends a subscription stanza about `contact` (RFC 6121 3.1.2, 3.2.2, 3.3.2, 3.4). */
  private async outbound(type: SubscriptionType, user: string, contact: string, stanza: Element): Promise<void> {
    const item = await this.roster.getItem(user, contact);
    switch (type) {
      case 'subscribe': {
        const it = item ?? newItem(contact, true);
        if (!hasTo(it.subscription)) {
          it.ask = true;
          it.visible = true;
          await this.save(user, it);
        }
        return this.route(stanza);
      }
      case 'subscribed': {
        if (item?.pendingIn) {
          // RFC 6121 3.1.5: approving puts the contact in the roster if it was not there.
          item.pendingIn = false;
          item.visible = true;
          item.subscription = addFrom(item.subscription);
          await this.save(user, item);
          await this.route(stanza);
          for (const p of this.currentPresence(user, contact)) await this.route(p);
        } else if (!item || !hasFrom(item.subscription)) {
          // RFC 6121 3.4: approving before being asked is a pre-approval.
          const it = item ?? newItem(contact, false);
          it.approved = true;
          await this.save(user, it);
        }
        return;
      }
      case 'unsubscribe': {
        if (item && (hasTo(item.subscription) || item.ask)) {
          item.subscription = removeTo(item.subscription);
          item.ask = false;
          await this.save(user, item);
        }
        return this.route(stanza);
      }
      case 'unsubscribed': {
        if (item && (hasFrom(item.subscription) || item.pendingIn)) {
          item.subscription = removeFrom(item.subscription);
          item.pendingIn = false;
          item.approved = false;
          await this.save(user, item);
          await this.route(stanza);
          for (const s of this.ctx.sessions.available(user)) await this.route(xml('presence', { type: 'unavailable', from: s.jid.full, to: contact }));
        } else if (item?.approved) {
          item.approved = false;
          await this.save(user, item);
        }
        return;
      }
    }
  }

  /** A subscription stanza from `sender` reaches the local account `user` (RFC 6121 3.1.3, 3.1.5, 3.2.3, 3.3.3). */
  private async inbound(type: SubscriptionType, sender: string, user: string, stanza: Element): Promise<void> {
    const [local, domain] = [user.slice(0, user.indexOf('@')), user.slice(user.indexOf('@') + 1)];
    if (!(await this.ctx.storage.users.exists(domain, local))) {
      if (type === 'subscribe') await this.route(xml('presence', { type: 'unsubscribed', from: user, to: sender }));
      return;
    }
    const item = await this.roster.getItem(user, sender);
    switch (type) {
      case 'subscribe': {
        if (item && hasFrom(item.subscription)) {
          await this.route(xml('presence', { type: 'subscribed', from: user, to: sender }));
        } else if (item?.approved) {
          item.approved = false;
          item.subscription = addFrom(item.subscription);
          await this.save(user, item);
          await this.route(xml('presence', { type: 'subscribed', from: user, to: sender }));
          for (const p of this.currentPresence(user, sender)) await this.route(p);
        } else {
          const it = item ?? newItem(sender, false);
          it.pendingIn = true;
          await this.save(user, it);
          this.toAvailable(user, stanza);
        }
        return;
      }
      case 'subscribed': {
        if (item?.ask) {
          item.ask = false;
          item.subscription = addTo(item.subscription);
          await this.save(user, item);
          this.toAvailable(user, stanza);
        }
        return;
      }
      case 'unsubscribe': {
        if (item && (hasFrom(item.subscription) || item.pendingIn)) {
          item.subscription = removeFrom(item.subscription);
          item.pendingIn = false;
          await this.save(user, item);
          this.toAvailable(user, stanza);
          for (const s of this.ctx.sessions.available(user)) await this.route(xml('presence', { type: 'unavailable', from: s.jid.full, to: sender }));
        }
        return;
      }
      case 'unsubscribed': {
        if (item && (hasTo(item.subscription) || item.ask)) {
          item.subscription = removeTo(item.subscription);
          item.ask = false;
          await this.save(user, item);
          this.toAvailable(user, stanza);
        }
        return;
      }
    }
  }
}
