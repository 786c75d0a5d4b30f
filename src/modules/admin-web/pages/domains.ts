// Domains (seed 001 section 11.6.1): the virtual hosts with their settings; add, update and remove
// one through the VHost Manager's own commands and forms (vhost-man), so the web and XMPP
// administrators meet the same fields, checks and messages.
import { VHOST_MANAGER } from '../../adhoc/commands.js';
import type { DataForm } from '../../adhoc/forms.js';
import type { AdminRequest, AdminWebApp } from '../app.js';
import { dataForm, html, table, type Flash } from '../html.js';
import { commandForm, postedFields, runCommand, submitted } from '../run-command.js';

// The VHost Manager's command nodes (Tigase's names, as XMPP clients address them).
const ADD = 'comp-repo-item-add';
const UPDATE = 'comp-repo-item-update';
const REMOVE = 'comp-repo-item-remove';
const SECTION = '/admin/domains';

const yes = (b: boolean) => (b ? 'yes' : 'no');

export function domainPages(app: AdminWebApp): void {
  const { ctx } = app;

  const list = async (rq: AdminRequest, status = 200, flash?: Flash, addValues?: Map<string, string[]>) => {
    const rows = ctx.vhosts.list().map((v) => [
      html`<a href="/admin/users?domain=${encodeURIComponent(v.domain)}">${v.domain}</a>`,
      yes(v.enabled), yes(v['anonymous-login']), yes(v['in-band-registration']), yes(v['tls-required']),
      v['max-users'] || 'no limit', v.owner ?? '', v.administrators.join(', '),
      v.configured ? 'configuration file' : 'added at runtime',
      html`<a href="/admin/domains/edit?domain=${encodeURIComponent(v.domain)}">Update</a>
        ${v.configured ? '' : html`<form method="post" action="/admin/domains/remove" class="inline" data-confirm="Remove ${v.domain}? Its users stay stored.">
          <input type="hidden" name="_csrf" value="${rq.session.csrf}"><input type="hidden" name="domain" value="${v.domain}">
          <button type="submit" class="danger" data-remove-domain="${v.domain}">Remove</button></form>`}`,
    ]);
    const form = await commandForm(ctx, rq.admin, VHOST_MANAGER.name, ADD);
    app.render(rq, status, 'Domains', SECTION, html`
      <section>
        ${table(['Domain', 'Enabled', 'Anonymous', 'Registration', 'TLS required', 'Max users', 'Owner', 'Administrators', 'Defined in', ''], rows)}
      </section>
      <section>
        <h2>Add a domain</h2>
        ${typeof form === 'string' ? html`<p class="flash error">${form}</p>` : dataForm(form, { id: 'add-domain', action: '/admin/domains/add', csrf: rq.session.csrf, submit: 'Add domain', values: addValues })}
      </section>`, flash);
  };

  const editPage = (rq: AdminRequest, form: DataForm, status = 200, flash?: Flash, values?: Map<string, string[]>) =>
    app.render(rq, status, form.title ?? 'Update a domain', SECTION, html`
      ${dataForm(form, { id: 'update-domain', action: '/admin/domains/edit', csrf: rq.session.csrf, submit: 'Save', values })}
      <p><a href="/admin/domains">Back to the domains</a></p>`, flash);

  app.on('GET', SECTION, (rq) => list(rq));

  app.on('POST', '/admin/domains/add', async (rq) => {
    const fields = postedFields(rq.body);
    const outcome = await runCommand(ctx, rq.admin, VHOST_MANAGER.name, ADD, submitted(fields));
    if (!outcome.ok) return list(rq, outcome.status, { kind: 'error', text: outcome.message }, fields);
    app.redirect(rq, SECTION, { kind: 'ok', text: outcome.message });
  });

  app.on('GET', '/admin/domains/edit', async (rq) => {
    const domain = rq.url.searchParams.get('domain') ?? '';
    const form = await commandForm(ctx, rq.admin, VHOST_MANAGER.name, UPDATE, submitted({ domain }));
    if (typeof form === 'string') return list(rq, 404, { kind: 'error', text: form });
    editPage(rq, form);
  });

  app.on('POST', '/admin/domains/edit', async (rq) => {
    const fields = postedFields(rq.body);
    const outcome = await runCommand(ctx, rq.admin, VHOST_MANAGER.name, UPDATE, submitted(fields));
    if (outcome.ok && outcome.reply.status === 'completed') return app.redirect(rq, SECTION, { kind: 'ok', text: outcome.message });
    // Refused (or the form was incomplete): the form again, with what was typed and why.
    const domain = fields.get('domain')?.[0] ?? '';
    const form = await commandForm(ctx, rq.admin, VHOST_MANAGER.name, UPDATE, submitted({ domain }));
    const message = outcome.ok ? 'The form was incomplete; nothing was changed.' : outcome.message;
    const status = outcome.ok ? 400 : outcome.status;
    if (typeof form === 'string') return list(rq, status, { kind: 'error', text: message });
    editPage(rq, form, status, { kind: 'error', text: message }, fields);
  });

  app.on('POST', '/admin/domains/remove', async (rq) => {
    const outcome = await runCommand(ctx, rq.admin, VHOST_MANAGER.name, REMOVE, submitted({ domain: rq.body.get('domain') ?? '' }));
    if (!outcome.ok) return list(rq, outcome.status, { kind: 'error', text: outcome.message });
    app.redirect(rq, SECTION, { kind: 'ok', text: outcome.message });
  });
}
