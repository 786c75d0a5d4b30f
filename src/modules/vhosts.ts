// The VHost Manager (seed 001 section 11.6): add, update and remove virtual hosts through ad-hoc
// commands on vhost-man@<host>, with the seed's form (domain, enabled, anonymous enabled,
// in-band registration, TLS required, max users, owner, administrators, presence and message
// forward addresses, other parameters). Changes take effect at once and persist
// (core/vhosts.ts); hosts of the configuration file are always present and cannot be removed.
//
// Who may do what: server administrators everything. Any other local user may add a domain it
// will own, up to `domains-per-user-limit`, and update or remove the domains it owns; owners and
// the administrators named on a domain manage its users through the session manager.
import { z } from 'zod';
import { defineModule } from '../core/module-definition.js';
import type { ModuleContext } from '../core/modules.js';
import { StanzaError } from '../core/errors.js';
import { VhostError, defaultVhostSettings, parseDomain, type Vhost, type VhostSettings } from '../core/vhosts.js';
import { tryParseJid } from '../jid.js';
import { VHOST_MANAGER, accessRules, commandRegistry, type AdhocCommand, type CommandReply, type CommandStep } from './adhoc/commands.js';
import { badPayload, bareJidOf, fields, type DataForm, type FormField, type FormValues } from './adhoc/forms.js';

export const NODE_ADD = 'comp-repo-item-add';
export const NODE_UPDATE = 'comp-repo-item-update';
export const NODE_REMOVE = 'comp-repo-item-remove';

interface Options {
  'domains-per-user-limit': number;
}

function settingsFields(v: VhostSettings): FormField[] {
  return [
    fields.boolean('enabled', v.enabled, { label: 'Enabled' }),
    fields.boolean('anonymous-login', v['anonymous-login'], { label: 'Anonymous enabled' }),
    fields.boolean('in-band-registration', v['in-band-registration'], { label: 'In-band registration' }),
    fields.boolean('tls-required', v['tls-required'], { label: 'TLS required' }),
    fields.text('max-users', String(v['max-users']), { label: 'Max users', desc: '0 for no limit' }),
    fields.jid('owner', v.owner, { label: 'Owner' }),
    fields.text('administrators', v.administrators.join(', '), { label: 'Administrators', desc: 'Comma-separated JIDs of people who may manage the users of the domain' }),
    fields.jid('presence-forward', v['presence-forward'], { label: 'Presence forward address', desc: "Gets every presence change of the domain's users (a bot's full JID or a component)" }),
    fields.jid('message-forward', v['message-forward'], { label: 'Message forward address', desc: "Gets a copy of every message the domain's users send" }),
    fields.text('other', Object.entries(v.other).map(([k, val]) => `${k}=${val}`).join(', '), { label: 'Other parameters', desc: 'key=value pairs, comma-separated' }),
  ];
}

/** Reads the settings fields of a submitted form, with `base` for fields left out. */
function readSettings(values: FormValues, base: VhostSettings): VhostSettings {
  const forwardAddress = (name: string, label: string): string | undefined => {
    const v = values.has(name) ? values.text(name) : base[name as 'presence-forward' | 'message-forward'];
    if (v === undefined) return undefined;
    const jid = tryParseJid(v);
    if (!jid) throw badPayload(`${label}: "${v}" is not a valid JID`);
    return jid.full;
  };
  const other: Record<string, string> = {};
  if (values.has('other')) {
    for (const pair of (values.get('other') ?? '').split(/[,\n]/).map((p) => p.trim()).filter(Boolean)) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw badPayload(`Other parameters: "${pair}" is not key=value`);
      other[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
    }
  } else {
    Object.assign(other, base.other);
  }
  const owner = values.has('owner') ? values.text('owner') : base.owner;
  return {
    enabled: values.bool('enabled', base.enabled),
    'anonymous-login': values.bool('anonymous-login', base['anonymous-login']),
    'in-band-registration': values.bool('in-band-registration', base['in-band-registration']),
    'tls-required': values.bool('tls-required', base['tls-required']),
    'max-users': values.integer('max-users', base['max-users'], 'Max users'),
    owner: owner === undefined ? undefined : bareJidOf(owner, 'Owner'),
    administrators: values.has('administrators')
      ? [...new Set(values.list('administrators').map((a) => bareJidOf(a, 'Administrators')))]
      : base.administrators,
    'presence-forward': forwardAddress('presence-forward', 'Presence forward address'),
    'message-forward': forwardAddress('message-forward', 'Message forward address'),
    other,
  };
}

function vhostFailure(e: unknown): never {
  if (e instanceof VhostError) {
    if (e.reason === 'exists') throw new StanzaError('conflict', e.message);
    if (e.reason === 'not-found') throw new StanzaError('item-not-found', e.message);
    if (e.reason === 'configured') throw new StanzaError('not-allowed', e.message);
    throw badPayload(e.message);
  }
  throw e;
}

export function createVhostCommands(ctx: ModuleContext<Options>): AdhocCommand[] {
  const access = accessRules(ctx);
  const limit = ctx.config['domains-per-user-limit'];

  /** Domains `bare` may update or remove: all for administrators, owned ones otherwise. */
  const changeable = (bare: string): Vhost[] => (ctx.isAdmin(bare) ? ctx.vhosts.list() : ctx.vhosts.ownedBy(bare));

  const chooseDomain = (step: CommandStep, title: string, instructions: string, removable = false): CommandReply => {
    const domains = changeable(step.requester.bare).filter((v) => !removable || !v.configured).map((v) => v.domain);
    if (domains.length === 0) throw new StanzaError('item-not-found', removable ? 'there is no domain added at runtime to remove' : 'you have no domain to change');
    return {
      status: 'executing',
      actions: ['next'],
      form: { type: 'form', title, instructions: [instructions], fields: [fields.list('domain', domains[0], domains, { label: 'Domain name', required: true })] },
    };
  };

  /** The chosen domain, which `requester` must be allowed to change. */
  const chosen = (step: CommandStep): Vhost => {
    const domain = (() => { try { return parseDomain(step.values.required('domain', 'Domain name')); } catch (e) { return vhostFailure(e); } })();
    const vhost = ctx.vhosts.get(domain);
    if (!vhost) throw new StanzaError('item-not-found', `the domain ${domain} does not exist`);
    if (!access.ownsDomain(step.requester.bare, domain)) throw new StanzaError('forbidden', `you are not the owner of the domain ${domain}`);
    return vhost;
  };

  /** A non-administrator keeps itself as the owner. */
  const checkOwner = (step: CommandStep, settings: VhostSettings) => {
    const bare = step.requester.bare;
    if (ctx.isAdmin(bare)) return;
    if (settings.owner === undefined) settings.owner = bare;
    if (settings.owner !== bare) throw new StanzaError('forbidden', 'only server administrators may make someone else the owner of a domain');
  };

  const addForm = (step: CommandStep): DataForm => ({
    type: 'form',
    title: 'Add a domain (VHost)',
    instructions: ['Fill in the domain name and its settings. Owner is the JID that controls the domain; administrators may manage its users.'],
    fields: [
      fields.text('domain', undefined, { label: 'Domain name', required: true }),
      ...settingsFields({ ...defaultVhostSettings(), owner: step.requester.bare }),
    ],
  });

  return [
    {
      node: NODE_ADD,
      name: 'Add a domain (VHost)',
      component: VHOST_MANAGER.name,
      allowed: (bare) => ctx.isAdmin(bare) || limit > 0,
      async run(step) {
        if (!step.values.submitted) return { status: 'executing', actions: ['complete'], form: addForm(step) };
        const bare = step.requester.bare;
        let domain: string;
        try { domain = parseDomain(step.values.required('domain', 'Domain name')); } catch (e) { return vhostFailure(e); }
        if (ctx.vhosts.get(domain)) throw new StanzaError('conflict', `the domain ${domain} already exists`);
        if (ctx.router.serviceDomains().includes(domain)) throw new StanzaError('conflict', `${domain} is the address of a service of this server`);
        const settings = readSettings(step.values, defaultVhostSettings());
        checkOwner(step, settings);
        if (!ctx.isAdmin(bare) && ctx.vhosts.ownedBy(bare).length >= limit) {
          throw new StanzaError('not-allowed', `you already own ${limit} domains, the most a user may add`);
        }
        try { await ctx.vhosts.add(domain, settings); } catch (e) { return vhostFailure(e); }
        return { status: 'completed', notes: [{ type: 'info', text: `Operation successful: the domain ${domain} has been added.` }] };
      },
    },
    {
      node: NODE_UPDATE,
      name: 'Update a domain (VHost)',
      component: VHOST_MANAGER.name,
      allowed: (bare) => changeable(bare).length > 0,
      async run(step) {
        if (step.stage === 0 && !step.values.has('domain')) return chooseDomain(step, 'Update a domain (VHost)', 'Choose the domain to update.');
        const vhost = chosen(step);
        // The domain chosen, without its settings: show them.
        if (!step.values.has('enabled')) {
          const { domain: _d, configured: _c, stored: _s, ...current } = vhost;
          return {
            status: 'executing',
            actions: ['complete'],
            form: {
              type: 'form',
              title: `Update ${vhost.domain}`,
              instructions: [`Change the settings of ${vhost.domain}${vhost.configured ? ' (listed in the configuration file: these settings override its vhost-options)' : ''}.`],
              fields: [fields.hidden('domain', vhost.domain), fields.fixed(`Domain name: ${vhost.domain}`), ...settingsFields(current)],
            },
          };
        }
        const settings = readSettings(step.values, vhost);
        checkOwner(step, settings);
        try { await ctx.vhosts.update(vhost.domain, settings); } catch (e) { return vhostFailure(e); }
        return { status: 'completed', notes: [{ type: 'info', text: `Operation successful: the domain ${vhost.domain} has been updated.` }] };
      },
    },
    {
      node: NODE_REMOVE,
      name: 'Remove a domain (VHost)',
      component: VHOST_MANAGER.name,
      allowed: (bare) => ctx.isAdmin(bare) || changeable(bare).some((v) => !v.configured),
      async run(step) {
        if (!step.values.has('domain')) return chooseDomain(step, 'Remove a domain (VHost)', 'Choose the domain to remove. Its users are kept in storage, and come back if the domain is added again.', true);
        const vhost = chosen(step);
        try { await ctx.vhosts.remove(vhost.domain); } catch (e) { return vhostFailure(e); }
        return { status: 'completed', notes: [{ type: 'info', text: `Operation successful: the domain ${vhost.domain} has been removed.` }] };
      },
    },
  ];
}

export default defineModule({
  name: 'vhost-man',
  description: "VHost Manager (seed 001 section 11.6): add, update and remove virtual hosts at runtime through ad-hoc commands on vhost-man@<host>; Tigase's 'vhost-man' settings",
  config: z.object({
    'domains-per-user-limit': z.number().int().min(0).default(25)
      .describe('Domains a user who is not a server administrator may add (and own); 0 lets only administrators add domains'),
  }).strict(),
  setup(ctx) {
    const registry = commandRegistry(ctx);
    const removers = createVhostCommands(ctx).map((c) => registry.add(c));
    return () => { for (const r of removers) r(); };
  },
});
