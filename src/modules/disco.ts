// Service discovery (XEP-0030): what each virtual host is and supports, the services beside
// it (pubsub.<host>, ...), and the identity of accounts.
import { defineModule } from '../core/module-definition.js';
import { StanzaError } from '../core/errors.js';
import { xml, type Element } from '../xml/element.js';

export const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
export const NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';

export default defineModule({
  name: 'disco',
  description: 'Service discovery (XEP-0030)',
  specs: ['XEP-0030'],
  setup(ctx) {
    ctx.identity('server', 'im', 'Switchboard');
    ctx.iq('host', NS_DISCO_INFO, {
      async get({ payload, from, to }) {
        if (payload.attrs.node !== undefined) throw new StanzaError('item-not-found');
        // Extended information (XEP-0128) other modules give, e.g. where server information is published.
        const extra = { from, to, forms: [] as Element[] };
        await ctx.hooks.fire('disco/host-info', extra);
        return xml('query', { xmlns: NS_DISCO_INFO },
          ctx.identities().map((i) => xml('identity', { category: i.category, type: i.type, name: i.name })),
          ctx.features().map((f) => xml('feature', { var: f })), extra.forms);
      },
    });
    ctx.iq('host', NS_DISCO_ITEMS, {
      async get({ payload, from, to }) {
        if (payload.attrs.node !== undefined) throw new StanzaError('item-not-found');
        // Services named under this host (pubsub.example.com for example.com).
        const services = ctx.router.serviceDomains().filter((d) => d.endsWith('.' + to.domain));
        // Items other modules show to this requester (e.g. admin components, to administrators).
        const extra = { from, to, items: [] as Element[] };
        await ctx.hooks.fire('disco/host-items', extra);
        return xml('query', { xmlns: NS_DISCO_ITEMS }, services.map((jid) => xml('item', { jid })), extra.items);
      },
    });
    ctx.iq('account', NS_DISCO_INFO, {
      async get({ from, to, payload }) {
        if (payload.attrs.node !== undefined) throw new StanzaError('item-not-found');
        if (!(await ctx.storage.users.exists(to.domain, to.local))) throw new StanzaError('service-unavailable');
        // What other modules make of the account (PEP: a pubsub/pep identity and its features).
        const extra = { from, to, identities: [] as Element[], features: [] as string[] };
        await ctx.hooks.fire('disco/account-info', extra);
        return xml('query', { xmlns: NS_DISCO_INFO },
          xml('identity', { category: 'account', type: 'registered' }), extra.identities,
          [...new Set([NS_DISCO_INFO, ...extra.features])].map((f) => xml('feature', { var: f })));
      },
    });
    ctx.iq('account', NS_DISCO_ITEMS, {
      async get({ from, to }) {
        if (!(await ctx.storage.users.exists(to.domain, to.local))) throw new StanzaError('service-unavailable');
        const extra = { from, to, items: [] as Element[] };
        await ctx.hooks.fire('disco/account-items', extra);
        return xml('query', { xmlns: NS_DISCO_ITEMS }, extra.items);
      },
    });
  },
});
