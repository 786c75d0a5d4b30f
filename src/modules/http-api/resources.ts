// The management API's own resources: users, sessions, virtual hosts, locate, statistics and
// configuration reload. Changes run the registered ad-hoc commands (XEP-0133 on sess-man, the
// VHost Manager on vhost-man) in the token's administrator's name, so that the rules (max users,
// reserved names, configured hosts that cannot be removed, the account/deleted cleanup) are the
// very ones of the XMPP side; reads go to the registries directly.
import { z } from 'zod';
import type { ModuleContext } from '../../core/modules.js';
import { ApiError, type ApiRegistry, type ApiRequest, type ApiRoute } from '../../http/api-registry.js';
import { JidError, parseJid, type JID } from '../../jid.js';
import { parseDomain, type Vhost } from '../../core/vhosts.js';
import { ReloadUnavailable } from '../../core/reload.js';
import { NS_ADMIN, SESSION_MANAGER, VHOST_MANAGER, commandRegistry } from '../adhoc/commands.js';
import { FormValues, type FormField } from '../adhoc/forms.js';

const VHOST_ADD = 'comp-repo-item-add';
const VHOST_UPDATE = 'comp-repo-item-update';
const VHOST_REMOVE = 'comp-repo-item-remove';

/** Validates a JSON body with a zod schema; 422 naming the first problem's field. */
function bodyOf<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  if (body === undefined) throw new ApiError(422, 'unprocessable-entity', 'a JSON body is required');
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const where = issue.path.length ? `${issue.path.join('.')}: ` : '';
  throw new ApiError(422, 'unprocessable-entity', `${where}${issue.message}`);
}

function bareJidParam(value: string): JID {
  let jid: JID;
  try {
    jid = parseJid(value);
  } catch (e) {
    throw new ApiError(422, 'unprocessable-entity', `"${value}" is not a valid JID${e instanceof JidError ? `: ${e.message}` : ''}`);
  }
  if (!jid.local || !jid.isBare()) throw new ApiError(422, 'unprocessable-entity', `"${value}" is not an account: expected user@domain`);
  return jid;
}

const vhostSettingsSchema = z.object({
  enabled: z.boolean(),
  'anonymous-login': z.boolean(),
  'in-band-registration': z.boolean(),
  'tls-required': z.boolean(),
  'max-users': z.number().int().min(0),
  owner: z.string().nullable(),
  administrators: z.array(z.string()),
  'presence-forward': z.string().nullable(),
  'message-forward': z.string().nullable(),
  other: z.record(z.string().regex(/^[^,=\n]+$/, 'keys of other cannot contain , = or a line break'),
    z.string().regex(/^[^,\n]*$/, 'values of other cannot contain , or a line break')),
}).partial().strict();

type VhostSettingsBody = z.infer<typeof vhostSettingsSchema>;

/** The VHost Manager form's fields for the settings given in a body. */
function settingsFields(settings: VhostSettingsBody): FormField[] {
  const out: FormField[] = [];
  for (const [name, value] of Object.entries(settings)) {
    let values: string[];
    if (typeof value === 'boolean') values = [value ? '1' : '0'];
    else if (typeof value === 'number') values = [String(value)];
    else if (value === null) values = [''];
    else if (Array.isArray(value)) values = value;
    else if (typeof value === 'object') values = [Object.entries(value).map(([k, v]) => `${k}=${v}`).join(', ')];
    else values = [value];
    out.push({ var: name, values });
  }
  return out;
}

function vhostJson(v: Vhost) {
  return {
    domain: v.domain, configured: v.configured, enabled: v.enabled, 'anonymous-login': v['anonymous-login'],
    'in-band-registration': v['in-band-registration'], 'tls-required': v['tls-required'], 'max-users': v['max-users'],
    owner: v.owner ?? null, administrators: v.administrators, 'presence-forward': v['presence-forward'] ?? null,
    'message-forward': v['message-forward'] ?? null, other: v.other,
  };
}

export function coreRoutes(ctx: ModuleContext, registry: ApiRegistry): ApiRoute[] {
  const commands = commandRegistry(ctx);
  const defaultHost = () => ctx.core['virtual-hosts'][0]!;

  /** Runs a command's submission in the caller's name; the reply must be "completed". */
  const run = async (request: ApiRequest, component: string, node: string, domain: string, fields: FormField[]) => {
    const reply = await commands.execute(component, node, {
      requester: parseJid(request.caller.admin),
      domain: ctx.vhosts.has(domain) ? domain : defaultHost(),
      values: new FormValues({ type: 'submit', fields }),
    });
    if (reply.status !== 'completed') throw new ApiError(422, 'unprocessable-entity', reply.form?.instructions?.join(' ') || 'the request is incomplete');
    return reply;
  };

  const knownHost = (domain: string): Vhost => {
    let normalised: string;
    try { normalised = parseDomain(domain); } catch (e) { throw new ApiError(422, 'unprocessable-entity', (e as Error).message); }
    const vhost = ctx.vhosts.get(normalised);
    if (!vhost) throw new ApiError(404, 'not-found', `the virtual host ${normalised} does not exist`);
    return vhost;
  };

  /** The domains a `domain` query parameter names: that one (which must exist) or all served. */
  const domainsOf = (request: ApiRequest): string[] => {
    const domain = request.query.get('domain');
    return domain ? [knownHost(domain).domain] : ctx.vhosts.served();
  };

  const sessionJson = (s: { jid: JID; remoteAddress: string; secure: boolean; presence: unknown; priority: number; anonymous: boolean; node?: string }) => ({
    jid: s.jid.full, address: s.remoteAddress, secure: s.secure, available: s.presence !== undefined, priority: s.priority, anonymous: s.anonymous,
    node: s.node ?? ctx.cluster.nodeName,
  });

  return [
    {
      method: 'GET', path: '/users', scope: 'read', summary: 'List the accounts of a virtual host, or of all served hosts',
      async handle(request) {
        const users: string[] = [];
        for (const domain of domainsOf(request)) for (const u of await ctx.storage.users.list(domain)) users.push(`${u}@${domain}`);
        return { body: { users } };
      },
    },
    {
      method: 'POST', path: '/users', scope: 'admin', summary: 'Create an account',
      async handle(request) {
        const body = bodyOf(z.object({ jid: z.string(), password: z.string().min(1, 'must not be empty') }).strict(), request.body);
        const jid = bareJidParam(body.jid);
        await run(request, SESSION_MANAGER.name, `${NS_ADMIN}#add-user`, jid.domain, [
          { var: 'accountjid', values: [jid.bare] }, { var: 'password', values: [body.password] }, { var: 'password-verify', values: [body.password] },
        ]);
        return { status: 201, body: { jid: jid.bare } };
      },
    },
    {
      method: 'DELETE', path: '/users/{jid}', scope: 'admin', summary: 'Delete an account and everything stored for it; its sessions end',
      async handle(request) {
        const jid = bareJidParam(request.params.jid!);
        await run(request, SESSION_MANAGER.name, `${NS_ADMIN}#delete-user`, jid.domain, [{ var: 'accountjids', values: [jid.bare] }]);
        return { status: 204 };
      },
    },
    {
      method: 'GET', path: '/users/{jid}/locate', scope: 'read', summary: 'Where a user is connected: resources, addresses, since when',
      async handle(request) {
        const jid = bareJidParam(request.params.jid!);
        const resources = await registry.locate(jid.bare);
        if (resources.length === 0 && !(await ctx.storage.users.exists(jid.domain, jid.local!))) {
          throw new ApiError(404, 'not-found', `there is no user ${jid.bare}`);
        }
        return { body: { jid: jid.bare, online: resources.length > 0, resources } };
      },
    },
    {
      method: 'GET', path: '/sessions', scope: 'read', summary: 'List the sessions (in a cluster, those of every node)',
      handle(request) {
        const domains = new Set(domainsOf(request));
        const sessions = [...ctx.sessions.all()].filter((s) => domains.has(s.jid.domain)).map(sessionJson)
          .sort((a, b) => a.jid.localeCompare(b.jid));
        return { body: { sessions } };
      },
    },
    {
      method: 'DELETE', path: '/sessions/{jid}', scope: 'admin', summary: 'End a session (a full JID), or all sessions of an account (a bare JID)',
      async handle(request) {
        let jid: JID;
        try { jid = parseJid(request.params.jid!); } catch (e) { throw new ApiError(422, 'unprocessable-entity', `"${request.params.jid}" is not a valid JID: ${(e as Error).message}`); }
        if (!jid.local) throw new ApiError(422, 'unprocessable-entity', `"${jid.full}" is not a user's JID`);
        const targets = ctx.sessions.resources(jid.bare).filter((s) => !jid.resource || s.jid.resource === jid.resource);
        if (targets.length === 0) throw new ApiError(404, 'not-found', `there is no session of ${jid.full}`);
        await run(request, SESSION_MANAGER.name, `${NS_ADMIN}#end-user-session`, jid.domain, [{ var: 'accountjids', values: [jid.full] }]);
        return { status: 204 };
      },
    },
    {
      method: 'GET', path: '/vhosts', scope: 'read', summary: 'List the virtual hosts, configured and added at runtime',
      handle: () => ({ body: { vhosts: ctx.vhosts.list().map(vhostJson) } }),
    },
    {
      method: 'GET', path: '/vhosts/{domain}', scope: 'read', summary: 'One virtual host and its settings',
      handle: (request) => ({ body: vhostJson(knownHost(request.params.domain!)) }),
    },
    {
      method: 'POST', path: '/vhosts', scope: 'admin', summary: 'Add a virtual host (as the VHost Manager does)',
      async handle(request) {
        const body = bodyOf(vhostSettingsSchema.extend({ domain: z.string() }), request.body);
        const { domain, ...settings } = body;
        let normalised: string;
        try { normalised = parseDomain(domain); } catch (e) { throw new ApiError(422, 'unprocessable-entity', (e as Error).message); }
        await run(request, VHOST_MANAGER.name, VHOST_ADD, defaultHost(), [{ var: 'domain', values: [normalised] }, ...settingsFields(settings)]);
        return { status: 201, body: vhostJson(ctx.vhosts.get(normalised)!) };
      },
    },
    {
      method: 'PATCH', path: '/vhosts/{domain}', scope: 'admin', summary: 'Change settings of a virtual host; settings left out keep their value',
      async handle(request) {
        const vhost = knownHost(request.params.domain!);
        const settings = bodyOf(vhostSettingsSchema, request.body);
        // The VHost Manager applies a submission that carries `enabled`; absent fields keep their value.
        await run(request, VHOST_MANAGER.name, VHOST_UPDATE, defaultHost(),
          [{ var: 'domain', values: [vhost.domain] }, ...settingsFields({ enabled: vhost.enabled, ...settings })]);
        return { body: vhostJson(ctx.vhosts.get(vhost.domain)!) };
      },
    },
    {
      method: 'DELETE', path: '/vhosts/{domain}', scope: 'admin', summary: 'Remove a virtual host added at runtime (its users stay stored)',
      async handle(request) {
        const vhost = knownHost(request.params.domain!);
        await run(request, VHOST_MANAGER.name, VHOST_REMOVE, defaultHost(), [{ var: 'domain', values: [vhost.domain] }]);
        return { status: 204 };
      },
    },
    {
      method: 'GET', path: '/statistics', scope: 'read', summary: "This node's counters and gauges (the metrics snapshot) and a summary",
      async handle() {
        const hosts = ctx.vhosts.served();
        const users: Record<string, number> = {};
        for (const host of hosts) users[host] = (await ctx.storage.users.list(host)).length;
        return {
          body: {
            node: ctx.cluster.nodeName,
            uptimeSeconds: Math.round(process.uptime()),
            sessions: ctx.sessions.size,
            registeredUsers: users,
            metrics: await ctx.metrics.snapshot(),
          },
        };
      },
    },
    {
      method: 'POST', path: '/config/reload', scope: 'admin', summary: 'Read the configuration file again and apply what can change at runtime',
      async handle() {
        try {
          return { body: await ctx.reloadConfig() };
        } catch (e) {
          if (e instanceof ReloadUnavailable) throw new ApiError(409, 'conflict', e.message);
          throw e;
        }
      },
    },
  ];
}
