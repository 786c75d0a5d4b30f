// "Get statistics" for server administrators (command node `stats`, as Tigase names its
// statistics command), on the session manager, so that it is listed where XEP-0133 clients look
// (the virtual host's JID): every counter and gauge of the server and the process, the same
// figures as GET /metrics, as a result form with one field per value. The admin web UI runs the
// same command through the registry (`CommandRegistry.execute('sess-man', 'stats', ...)`).
import { defineModule } from '../core/module-definition.js';
import { formatSample } from '../core/metrics.js';
import { SESSION_MANAGER, commandRegistry } from './adhoc/commands.js';
import { fields, type FormField } from './adhoc/forms.js';

export const NODE_STATISTICS = 'stats';

export default defineModule({
  name: 'statistics',
  description: 'The "Get statistics" ad-hoc command for server administrators (node stats on the session manager)',
  setup(ctx) {
    const registry = commandRegistry(ctx);
    return registry.add({
      node: NODE_STATISTICS,
      name: 'Get statistics',
      component: SESSION_MANAGER.name,
      // Server-wide figures: for server administrators only, not for a virtual host's owner.
      allowed: (requester) => ctx.isAdmin(requester),
      async run() {
        const samples = await ctx.metrics.snapshot();
        const valueFields: FormField[] = samples.map((s) => {
          const line = formatSample(s);
          return fields.text(line.slice(0, line.lastIndexOf(' ')), String(s.value), { label: s.help });
        });
        return {
          status: 'completed',
          form: {
            type: 'result',
            title: 'Statistics',
            instructions: [`${samples.length} values, taken ${new Date().toISOString()}; the same as GET /metrics`],
            fields: valueFields,
          },
        };
      },
    });
  },
});
