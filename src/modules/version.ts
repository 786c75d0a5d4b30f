// Software version (XEP-0092).
import { z } from 'zod';
import { platform, release } from 'node:os';
import { defineModule } from '../core/module-definition.js';
import { xml } from '../xml/element.js';
import { VERSION } from '../version.js';

const NS_VERSION = 'jabber:iq:version';

export { VERSION };

export default defineModule({
  name: 'version',
  description: 'Software version (XEP-0092)',
  specs: ['XEP-0092'],
  features: [NS_VERSION],
  config: z.object({
    'show-os': z.boolean().default(false).describe('Include the operating system in the reply (off: it helps attackers more than admins)'),
  }).strict(),
  setup(ctx) {
    ctx.iq('host', NS_VERSION, {
      get: () => xml('query', { xmlns: NS_VERSION },
        xml('name', null, 'Switchboard'),
        xml('version', null, VERSION),
        ctx.config['show-os'] ? xml('os', null, `${platform()} ${release()}; Node.js ${process.version}`) : undefined),
    });
  },
});
