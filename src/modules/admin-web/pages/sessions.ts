// Online sessions: every bound resource with its address and presence; ending one runs the
// session manager's end-user-session command (XEP-0133) with its full JID.
import { NS_ADMIN, SESSION_MANAGER } from '../../adhoc/commands.js';
import type { AdminRequest, AdminWebApp } from '../app.js';
import { html, table, type Flash } from '../html.js';
import { runCommand, submitted } from '../run-command.js';

const SECTION = '/admin/sessions';

export function sessionPages(app: AdminWebApp): void {
  const { ctx } = app;

  const list = (rq: AdminRequest, status = 200, flash?: Flash) => {
    const sessions = [...ctx.sessions.all()].sort((a, b) => a.jid.full.localeCompare(b.jid.full));
    const rows = sessions.map((s) => {
      const presence = s.presence;
      const shown = presence ? [presence.getChildText('show') ?? 'available', presence.getChildText('status')].filter(Boolean).join(': ') : 'unavailable';
      return [
        s.jid.full, s.remoteAddress, s.secure ? 'yes' : 'no', s.anonymous ? 'yes' : 'no', shown,
        html`<form method="post" action="${SECTION}/end" class="inline" data-confirm="End the session of ${s.jid.full}?">
          <input type="hidden" name="_csrf" value="${rq.session.csrf}"><input type="hidden" name="accountjids" value="${s.jid.full}">
          <button type="submit" class="danger" data-end-session="${s.jid.full}">End</button></form>`,
      ];
    });
    app.render(rq, status, 'Online sessions', SECTION, html`
      <p class="count">${sessions.length} session(s) online.</p>
      ${table(['Resource', 'Address', 'Encrypted', 'Anonymous', 'Presence', ''], rows, 'Nobody is online.')}`, flash);
  };

  app.on('GET', SECTION, (rq) => list(rq));

  app.on('POST', `${SECTION}/end`, async (rq) => {
    const outcome = await runCommand(ctx, rq.admin, SESSION_MANAGER.name, `${NS_ADMIN}#end-user-session`, submitted({ accountjids: rq.body.get('accountjids') ?? '' }));
    if (!outcome.ok) return list(rq, outcome.status, { kind: 'error', text: outcome.message });
    app.redirect(rq, SECTION, { kind: 'ok', text: outcome.message });
  });
}
