// In-band registration (XEP-0077): account creation before login where a virtual host allows
// it (`vhost-options.<host>.in-band-registration`), and password change and account removal
// for logged-in users.
import { defineModule } from '../core/module-definition.js';
import { StanzaError, StreamError } from '../core/errors.js';
import { xml, type Element } from '../xml/element.js';
import { JidError, normaliseLocal } from '../jid.js';
import { PasswordError, deriveCredentials } from '../auth/credentials.js';

const NS_REGISTER = 'jabber:iq:register';

export default defineModule({
  name: 'register',
  description: 'In-band registration, password change and account removal (XEP-0077)',
  specs: ['XEP-0077'],
  features: [NS_REGISTER],
  setup(ctx) {
    const form = (registered?: string) => xml('query', { xmlns: NS_REGISTER },
      registered !== undefined ? xml('registered') : xml('instructions', null, 'Choose a username and password.'),
      xml('username', null, registered ?? ''), xml('password'));

    const credentialsFor = (password: string) => {
      try {
        return deriveCredentials(password);
      } catch (e) {
        if (e instanceof PasswordError) throw new StanzaError('not-acceptable', e.message);
        throw e;
      }
    };

    const fields = (query: Element) => {
      const username = query.getChildText('username');
      const password = query.getChildText('password');
      if (!username || !password) throw new StanzaError('not-acceptable', 'username and password are required');
      try {
        return { username: normaliseLocal(username), password };
      } catch (e) {
        throw new StanzaError('not-acceptable', e instanceof JidError ? e.message : 'invalid username');
      }
    };

    ctx.preAuth(NS_REGISTER, async ({ iq, payload, domain, secure }) => {
      if (!ctx.vhostOption(domain, 'in-band-registration')) throw new StanzaError('service-unavailable', 'registration is not enabled on this host');
      if (iq.attrs.type === 'get') return form();
      if (iq.attrs.type !== 'set') throw new StanzaError('bad-request');
      if (payload.getChild('remove')) throw new StanzaError('registration-required', 'log in to remove an account');
      if (!secure) throw new StanzaError('not-acceptable', 'registration needs an encrypted connection');
      const { username, password } = fields(payload);
      // "Max users" of the virtual host (VHost Manager); 0 for no limit.
      const maxUsers = ctx.vhosts.get(domain)?.['max-users'] ?? 0;
      if (maxUsers > 0 && (await ctx.storage.users.list(domain)).length >= maxUsers) throw new StanzaError('not-allowed', `${domain} has reached its maximum number of users`);
      if (!(await ctx.storage.users.create(domain, username, credentialsFor(password)))) throw new StanzaError('conflict', 'the username is taken');
      ctx.log.info({ user: `${username}@${domain}` }, 'account registered in-band');
    }, (domain) => (ctx.vhostOption(domain, 'in-band-registration') ? xml('register', { xmlns: 'http://jabber.org/features/iq-register' }) : undefined));

    ctx.iq('account', NS_REGISTER, {
      get({ from, to }) {
        if (from.bare !== to.bare) throw new StanzaError('forbidden');
        return form(from.local);
      },
      async set({ from, to, payload }) {
        if (from.bare !== to.bare) throw new StanzaError('forbidden');
        if (payload.getChild('remove')) {
          if (!ctx.vhostOption(from.domain, 'in-band-registration')) throw new StanzaError('not-allowed', 'account removal is not enabled on this host');
          await ctx.storage.users.delete(from.domain, from.local);
          await ctx.hooks.fire('account/deleted', { domain: from.domain, username: from.local });
          ctx.log.info({ user: from.bare }, 'account removed in-band');
          // XEP-0077 3.2: the result goes out first, then every session of the account ends.
          setImmediate(() => { for (const s of ctx.sessions.resources(from.bare)) s.close(new StreamError('not-authorized', 'account removed')); });
          return;
        }
        const { username, password } = fields(payload);
        if (username !== from.local) throw new StanzaError('not-allowed', 'only your own password can be changed');
        await ctx.storage.users.setCredentials(from.domain, from.local, credentialsFor(password));
        ctx.log.info({ user: from.bare }, 'password changed in-band');
      },
    });
  },
});
