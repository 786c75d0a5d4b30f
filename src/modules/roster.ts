// Roster management (RFC 6121 section 2) with versioning (2.6) and pushes to every resource
// that asked for the roster. Subscription states are changed by the presence module; this
// module renders and pushes whatever changed ('roster/changed').
import { z } from 'zod';
import { defineModule } from '../core/module-definition.js';
import { StanzaError } from '../core/errors.js';
import { Element, xml } from '../xml/element.js';
import { parseJid } from '../jid.js';
import type { RosterItem } from '../storage/types.js';

export const NS_ROSTER = 'jabber:iq:roster';

export function rosterItemElement(item: RosterItem, removed = false): Element {
  if (removed) return xml('item', { jid: item.jid, subscription: 'remove' });
  return xml('item', {
    jid: item.jid,
    name: item.name,
    subscription: item.subscription,
    ask: item.ask ? 'subscribe' : undefined,
    approved: item.approved ? 'true' : undefined,
  }, item.groups.map((g) => xml('group', null, g)));
}

export default defineModule({
  name: 'roster',
  description: 'Contact lists (RFC 6121), with roster versioning',
  specs: ['RFC 6121', 'XEP-0237'],
  config: z.object({
    'max-items': z.number().int().min(1).default(1000).describe('Largest roster an account may have'),
  }).strict(),
  setup(ctx) {
    ctx.postAuthFeature(xml('ver', { xmlns: 'urn:xmpp:features:rosterver' }));

    const ownRosterOnly = (from: string, to: string) => {
      if (from !== to) throw new StanzaError('forbidden', 'a roster can only be managed by its owner');
    };

    ctx.iq('account', NS_ROSTER, {
      async get({ from, to, origin, payload }) {
        ownRosterOnly(from.bare, to.bare);
        if (origin) origin.rosterRequested = true;
        const { version, items } = await ctx.storage.roster.get(from.bare);
        const ver = String(version);
        // RFC 6121 2.6.3: an up-to-date client gets an empty result; changes then arrive as pushes.
        if (payload.attrs.ver !== undefined && payload.attrs.ver === ver) return;
        return xml('query', { xmlns: NS_ROSTER, ver }, items.filter((i) => i.visible).map((i) => rosterItemElement(i)));
      },
      async set({ from, to, payload }) {
        ownRosterOnly(from.bare, to.bare);
        const items = payload.getChildren('item');
        if (items.length !== 1) throw new StanzaError('bad-request', 'a roster set carries exactly one item');
        const el = items[0]!;
        let contact: string;
        try {
          const j = parseJid(el.attrs.jid ?? '');
          contact = j.bare;
        } catch {
          throw new StanzaError('bad-request', 'invalid or missing jid');
        }
        const existing = await ctx.storage.roster.getItem(from.bare, contact);
        if (el.attrs.subscription === 'remove') {
          if (!existing || !existing.visible) throw new StanzaError('item-not-found');
          // RFC 6121 2.5.2: removing a contact cancels the subscriptions both ways.
          await removeContact(from.bare, existing);
          return;
        }
        const groups = el.getChildren('group').map((g) => g.text());
        if (groups.some((g) => g === '')) throw new StanzaError('not-acceptable', 'empty group name');
        if (new Set(groups).size !== groups.length) throw new StanzaError('bad-request', 'duplicate group');
        const name = el.attrs.name;
        if (name !== undefined && name.length > 1023) throw new StanzaError('not-acceptable', 'name too long');
        if (!existing) {
          const { items: all } = await ctx.storage.roster.get(from.bare);
          if (all.filter((i) => i.visible).length >= ctx.config['max-items']) throw new StanzaError('not-allowed', 'roster is full');
        }
        // Clients cannot set subscription state or ask here (RFC 6121 2.1.2.4 / 2.1.2.2); they keep what the server has.
        const item: RosterItem = existing
          ? { ...existing, name: name || undefined, groups, visible: true }
          : { jid: contact, name: name || undefined, groups, subscription: 'none', ask: false, pendingIn: false, approved: false, visible: true };
        await ctx.storage.roster.setItem(from.bare, item);
        await ctx.hooks.fire('roster/changed', { owner: from.bare, item, removed: false });
      },
    });

    async function removeContact(owner: string, item: RosterItem): Promise<void> {
      const send = (type: string) => ctx.router.route(xml('presence', { type, from: owner, to: item.jid }));
      await ctx.storage.roster.removeItem(owner, item.jid);
      await ctx.hooks.fire('roster/changed', { owner, item, removed: true });
      if (item.subscription === 'to' || item.subscription === 'both' || item.ask) await send('unsubscribe');
      if (item.subscription === 'from' || item.subscription === 'both' || item.pendingIn) {
        await send('unsubscribed');
        // The contact no longer sees us: it gets our resources going offline (RFC 6121 3.2.2).
        for (const s of ctx.sessions.available(owner)) await ctx.router.route(xml('presence', { type: 'unavailable', from: s.jid.full, to: item.jid }));
      }
    }

    let pushCounter = 0;
    ctx.hooks.on('roster/changed', ({ owner, item, removed }) => {
      for (const session of ctx.sessions.resources(owner)) {
        if (!session.rosterRequested) continue;
        session.send(xml('iq', { type: 'set', id: `push${++pushCounter}`, to: session.jid.full },
          xml('query', { xmlns: NS_ROSTER }, rosterItemElement(item, removed || !item.visible))));
      }
    });
  },
});
