// Users of a domain: the registered accounts with their online resources; add one, change a
// password, delete one, each through the session manager's XEP-0133 commands (add-user,
// change-user-password, delete-user), so the rights and checks are those of the XMPP side.
import { NS_ADMIN, SESSION_MANAGER } from '../../adhoc/commands.js';
import type { AdminRequest, AdminWebApp } from '../app.js';
import { dataForm, html, table, type Flash } from '../html.js';
import { commandForm, postedFields, runCommand, submitted } from '../run-command.js';

const SECTION = '/admin/users';
/** Rows shown at once; a filter narrows a long list. */
const MAX_ROWS = 200;

export function userPages(app: AdminWebApp): void {
  const { ctx } = app;

  const chosenDomain = (rq: AdminRequest, fallback?: string): string => {
    const asked = rq.url.searchParams.get('domain') ?? fallback;
    const known = ctx.vhosts.list().map((v) => v.domain);
    return asked !== undefined && known.includes(asked) ? asked : known.includes(rq.admin.domain) ? rq.admin.domain : known[0] ?? '';
  };

  const usersUrl = (domain: string) => `${SECTION}?domain=${encodeURIComponent(domain)}`;

  /** The domain part of the account a form was about, for the page to go back to. */
  const domainOf = (account: string | undefined) => {
    const at = account?.lastIndexOf('@') ?? -1;
    return at < 0 ? undefined : account!.slice(at + 1).trim().toLowerCase();
  };

  const list = async (rq: AdminRequest, status = 200, flash?: Flash, addValues?: Map<string, string[]>, domainHint?: string) => {
    const domain = chosenDomain(rq, domainHint);
    const filter = (rq.url.searchParams.get('q') ?? '').trim().toLowerCase();
    const all = domain ? await ctx.storage.users.list(domain) : [];
    const matching = all.filter((u) => u.includes(filter)).sort();
    const csrf = rq.session.csrf;
    const rows = matching.slice(0, MAX_ROWS).map((user) => {
      const jid = `${user}@${domain}`;
      const resources = ctx.sessions.resources(jid);
      return [
        jid,
        resources.length ? `${resources.length} online` : 'offline',
        html`<form method="post" action="/admin/users/password" class="inline">
          <input type="hidden" name="_csrf" value="${csrf}"><input type="hidden" name="accountjid" value="${jid}">
          <input type="password" name="password" aria-label="New password for ${jid}" autocomplete="new-password" required>
          <button type="submit">Change password</button></form>`,
        html`<form method="post" action="/admin/users/delete" class="inline" data-confirm="Delete ${jid} with its roster and data?">
          <input type="hidden" name="_csrf" value="${csrf}"><input type="hidden" name="accountjids" value="${jid}">
          <button type="submit" class="danger" data-delete-user="${jid}">Delete</button></form>`,
      ];
    });
    const form = await commandForm(ctx, rq.admin, SESSION_MANAGER.name, `${NS_ADMIN}#add-user`);
    const domains = ctx.vhosts.list().map((v) => v.domain);
    app.render(rq, status, 'Users', SECTION, html`
      <form method="get" action="${SECTION}" class="filter">
        <label for="domain">Domain</label>
        <select id="domain" name="domain">${domains.map((d) => html`<option${d === domain ? html` selected` : ''}>${d}</option>`)}</select>
        <label for="q">Name contains</label><input id="q" name="q" value="${filter}">
        <button type="submit">Show</button>
      </form>
      <p class="count">${all.length} registered on ${domain}${matching.length > MAX_ROWS ? `; the first ${MAX_ROWS} of ${matching.length} matching are shown` : ''}.</p>
      ${table(['User', 'Status', 'Password', ''], rows, 'No users.')}
      <section>
        <h2>Add a user</h2>
        ${typeof form === 'string' ? html`<p class="flash error">${form}</p>` : dataForm(form, { id: 'add-user', action: '/admin/users/add', csrf, submit: 'Add user', values: addValues })}
      </section>`, flash);
  };

  app.on('GET', SECTION, (rq) => list(rq));

  /** Runs a session manager command with the posted form; back to the account's domain's list. */
  const change = (path: string, node: string, accountField: string) => app.on('POST', path, async (rq) => {
    const fields = postedFields(rq.body);
    const domain = domainOf(fields.get(accountField)?.[0]);
    const outcome = await runCommand(ctx, rq.admin, SESSION_MANAGER.name, `${NS_ADMIN}#${node}`, submitted(fields));
    if (!outcome.ok) {
      fields.delete('password');
      fields.delete('password-verify');
      return list(rq, outcome.status, { kind: 'error', text: outcome.message }, node === 'add-user' ? fields : undefined, domain);
    }
    app.redirect(rq, domain && ctx.vhosts.get(domain) ? usersUrl(domain) : SECTION, { kind: 'ok', text: outcome.message });
  });

  change('/admin/users/add', 'add-user', 'accountjid');
  change('/admin/users/password', 'change-user-password', 'accountjid');
  change('/admin/users/delete', 'delete-user', 'accountjids');
}
