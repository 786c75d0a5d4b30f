// Entity Time (XEP-0202).
import { defineModule } from '../core/module-definition.js';
import { xml } from '../xml/element.js';

const NS_TIME = 'urn:xmpp:time';

export default defineModule({
  name: 'time',
  description: 'Entity time (XEP-0202)',
  specs: ['XEP-0202'],
  features: [NS_TIME],
  setup(ctx) {
    ctx.iq('host', NS_TIME, {
      get: () => xml('time', { xmlns: NS_TIME }, xml('tzo', null, '+00:00'), xml('utc', null, new Date().toISOString().replace(/\.\d+Z$/, 'Z'))),
    });
  },
});
