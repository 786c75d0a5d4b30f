// XMPP Ping (XEP-0199): the server answers pings to itself and to a user's own account.
import { defineModule } from '../core/module-definition.js';
import { StanzaError } from '../core/errors.js';

const NS_PING = 'urn:xmpp:ping';

export default defineModule({
  name: 'ping',
  description: 'XMPP Ping (XEP-0199)',
  specs: ['XEP-0199'],
  features: [NS_PING],
  setup(ctx) {
    ctx.iq('host', NS_PING, { get: () => undefined });
    ctx.iq('account', NS_PING, {
      get({ from, to }) {
        // Another user's account does not answer for them (they may not even exist).
        if (from.bare !== to.bare) throw new StanzaError('service-unavailable');
      },
    });
  },
});
