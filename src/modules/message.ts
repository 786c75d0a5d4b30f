// Message delivery to local accounts (RFC 6121 section 8.5): to a full JID if that resource
// is online, else by the bare JID rules: the available resources with the highest
// non-negative priority, and when there is none, whatever handles undeliverable messages
// (offline storage) or the error the RFC asks for.
import { defineModule } from '../core/module-definition.js';
import type { ModuleContext } from '../core/modules.js';
import type { Routed } from '../core/events.js';
import { StanzaError } from '../core/errors.js';

export default defineModule({
  name: 'message',
  description: 'Message routing to local accounts (RFC 6121 section 8)',
  specs: ['RFC 6121'],
  setup(ctx) {
    ctx.hooks.on('message/full', (r) => {
      const session = ctx.sessions.get(r.to.bare, r.to.resource);
      if (session) {
        session.send(r.stanza);
        return true;
      }
      const type = r.stanza.attrs.type ?? 'normal';
      if (type === 'error') return true;
      if (type === 'groupchat') {
        ctx.router.bounce(r.stanza, new StanzaError('service-unavailable'), r.origin);
        return true;
      }
      // RFC 6121 8.5.3.2.1: other types to an offline resource are treated as if sent to the bare JID.
      return toBare(ctx, r).then(() => true);
    });
    ctx.hooks.on('message/bare', (r) => toBare(ctx, r).then(() => true));
    ctx.hooks.on('message/host', () => true); // messages to the server itself are not for anyone
  },
});

async function toBare(ctx: ModuleContext, r: Routed): Promise<void> {
  const { stanza, to, origin } = r;
  const type = stanza.attrs.type ?? 'normal';
  if (type === 'error') return;
  if (type === 'groupchat') {
    ctx.router.bounce(stanza, new StanzaError('service-unavailable'), origin);
    return;
  }
  const targets = ctx.sessions.bareMessageRecipients(to.bare, type);
  if (targets.length) {
    for (const s of targets) s.send(stanza);
    return;
  }
  if (!(await ctx.storage.users.exists(to.domain, to.local))) {
    if (type !== 'headline') ctx.router.bounce(stanza, new StanzaError('service-unavailable'), origin);
    return;
  }
  if (await ctx.hooks.fire('message/undeliverable', r)) return;
  // No offline storage took it: headlines are dropped, others bounced (RFC 6121 8.5.2.2.1).
  if (type !== 'headline') ctx.router.bounce(stanza, new StanzaError('service-unavailable', 'the recipient is offline'), origin);
}
