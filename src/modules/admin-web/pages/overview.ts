// The first page after login: what the server serves at a glance, a few live charts, and the
// way to everything else (including the operator panel).
import type { AdminWebApp } from '../app.js';
import type { ChartHistory } from '../chart-history.js';
import { html } from '../html.js';
import { charts } from './stats.js';

export function overviewPage(app: AdminWebApp, history: ChartHistory, intervalSeconds: number): void {
  const { ctx } = app;
  app.on('GET', '/admin/', async (rq) => {
    const vhosts = ctx.vhosts.list();
    let registered = 0;
    for (const v of vhosts) registered += (await ctx.storage.users.list(v.domain)).length;
    const online = new Set([...ctx.sessions.all()].map((s) => s.jid.bare)).size;
    app.render(rq, 200, 'Overview', '/admin/', html`
      <ul class="cards">
        <li><a href="/admin/domains"><strong>${vhosts.filter((v) => v.enabled).length}</strong> domain(s) served</a>${vhosts.some((v) => !v.enabled) ? html` <small>(${vhosts.filter((v) => !v.enabled).length} disabled)</small>` : ''}</li>
        <li><a href="/admin/users"><strong>${registered}</strong> registered user(s)</a></li>
        <li><a href="/admin/sessions"><strong>${ctx.sessions.size}</strong> session(s) of ${online} user(s) online</a></li>
        <li><a href="/admin/pubsub"><strong>${ctx.router.serviceDomains().length}</strong> service domain(s)</a> <small>(PubSub, ...)</small></li>
      </ul>
      ${charts(history.view(), intervalSeconds, ['sessions', 'stanzas-in', 'stanzas-out', 'memory'])}
      <p><a href="/admin/stats">All statistics</a> · <a href="/panel/">Operator panel</a> (device states, mailboxes and contacts of Asterisk servers, live)</p>`);
  });
}
