// Ad-hoc commands for server administrators on the session manager (sess-man@<host>): create,
// list and revoke API tokens of the HTTP management API. A created token is shown once.
import { StanzaError } from '../../core/errors.js';
import { SESSION_MANAGER, oneForm, type AdhocCommand } from '../adhoc/commands.js';
import { badPayload, fields } from '../adhoc/forms.js';
import { MAX_TOKEN_DAYS, TOKEN_SCOPES, TokenError, type TokenStore } from './tokens.js';
import type { ApiScope } from '../../http/api-registry.js';

export const NODE_CREATE = 'api-token-create';
export const NODE_LIST = 'api-token-list';
export const NODE_REVOKE = 'api-token-revoke';

export function tokenCommands(options: { tokens: TokenStore; isAdmin(bare: string): boolean; lifetime(): number }): AdhocCommand[] {
  const { tokens } = options;
  const allowed = (bare: string) => options.isAdmin(bare);
  const scopeChoices = TOKEN_SCOPES.map((s) => ({ value: s, label: s === 'admin' ? 'admin: read and change' : 'read: GET requests only' }));
  return [
    {
      node: NODE_CREATE, name: 'Create an API token', component: SESSION_MANAGER.name, allowed,
      run: oneForm(
        () => ({
          type: 'form', title: 'Create an API token',
          instructions: ['The token lets HTTP clients use the management API in your name (Authorization: Bearer <token>). It is shown only once.'],
          fields: [
            fields.text('name', undefined, { label: 'What the token is for' }),
            fields.list('scope', 'admin', scopeChoices, { label: 'Scope', required: true }),
            fields.text('days', String(options.lifetime()), { label: 'Valid for (days)', desc: `1 to ${MAX_TOKEN_DAYS}` }),
          ],
        }),
        async (step) => {
          const scope = (step.values.text('scope') ?? 'admin') as ApiScope;
          const days = step.values.integer('days', options.lifetime(), 'Valid for (days)');
          let created;
          try {
            created = await tokens.create({ admin: step.requester.bare, scope, days, name: step.values.text('name') });
          } catch (e) {
            if (e instanceof TokenError) throw badPayload(e.message);
            throw e;
          }
          return {
            status: 'completed',
            notes: [{ type: 'info', text: `Token ${created.info.id} created; it expires at ${created.info.expiresAt}. Copy it now: it is not shown again.` }],
            form: {
              type: 'result', title: 'API token',
              fields: [
                fields.text('id', created.info.id, { label: 'Token id' }),
                fields.text('token', created.token, { label: 'Token' }),
                fields.text('scope', created.info.scope, { label: 'Scope' }),
                fields.text('expires', created.info.expiresAt, { label: 'Expires' }),
              ],
            },
          };
        }),
    },
    {
      node: NODE_LIST, name: 'List API tokens', component: SESSION_MANAGER.name, allowed,
      async run() {
        const list = await tokens.list();
        const columns = [
          { var: 'id', label: 'Id' }, { var: 'name', label: 'Name' }, { var: 'admin', label: 'Acts for' },
          { var: 'scope', label: 'Scope' }, { var: 'expires', label: 'Expires' }, { var: 'expired', label: 'Expired' },
        ];
        return {
          status: 'completed',
          form: {
            type: 'result', title: 'API tokens', fields: [], reported: columns,
            items: list.map((t) => [
              { var: 'id', values: [t.id] }, { var: 'name', values: [t.name] }, { var: 'admin', values: [t.admin] },
              { var: 'scope', values: [t.scope] }, { var: 'expires', values: [t.expiresAt] }, { var: 'expired', values: [t.expired ? '1' : '0'] },
            ]),
          },
        };
      },
    },
    {
      node: NODE_REVOKE, name: 'Revoke an API token', component: SESSION_MANAGER.name, allowed,
      run: oneForm(
        async () => {
          const list = await tokens.list();
          if (list.length === 0) throw new StanzaError('item-not-found', 'there is no API token to revoke');
          return {
            type: 'form', title: 'Revoke an API token', instructions: ['Choose the token to revoke; clients using it are refused at once.'],
            fields: [fields.list('id', list[0]!.id, list.map((t) => ({ value: t.id, label: `${t.id} ${t.name} (${t.admin}, ${t.scope})` })), { label: 'Token', required: true })],
          };
        },
        async (step) => {
          const id = step.values.required('id', 'Token');
          if (!(await tokens.revoke(id))) throw new StanzaError('item-not-found', `there is no API token ${id}`);
          return { status: 'completed', notes: [{ type: 'info', text: `Token ${id} revoked.` }] };
        }),
    },
  ];
}
