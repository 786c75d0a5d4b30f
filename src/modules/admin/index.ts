// Service administration (XEP-0133) on the session manager (sess-man@<host>, and the virtual
// host's own JID): add, delete, disable and re-enable users, change a password, end sessions,
// count and list online and registered users, announce to online users, user statistics.
//
// Who may run them (seed 001 section 11.6.2): server administrators (`admins`) on every virtual
// host; the owner and the administrators of a virtual host for that host's users. Commands about
// given accounts are shown to anyone who manages at least one host, and check each account's
// domain when run ("you have no rights on example.com"); commands about the addressed host (counts,
// lists, announce) are shown to those who manage that host. Everyone else sees none of them.
import { defineModule } from '../../core/module-definition.js';
import type { ModuleContext } from '../../core/modules.js';
import { StanzaError, StreamError } from '../../core/errors.js';
import { JidError, parseJid, type JID } from '../../jid.js';
import { xml } from '../../xml/element.js';
import { PasswordError, deriveCredentials } from '../../auth/credentials.js';
import type { Credentials } from '../../storage/types.js';
import { NS_ADMIN, SESSION_MANAGER, accessRules, commandRegistry, oneForm, type AdhocCommand, type CommandReply, type CommandStep } from '../adhoc/commands.js';
import { badPayload, bareJidOf, fields, type DataForm, type FormField } from '../adhoc/forms.js';

const FORM_TYPE = () => fields.hidden('FORM_TYPE', NS_ADMIN);
const MAX_ITEMS_CHOICES = ['25', '50', '75', '100', '150', '200', 'none'].map((v) => ({ label: v === 'none' ? 'None' : v, value: v }));

/** Per-account administrative state, in the key-value store (removed with the account). */
const ADMIN_NAMESPACE = 'admin';
/** Account details given when an administrator added it (email, given name, surname). */
const PROFILE_KEY = 'profile';
const DISABLED_KEY = 'disabled';

function form(title: string, instructions: string, ...extra: FormField[]): DataForm {
  return { type: 'form', title, instructions: [instructions], fields: [FORM_TYPE(), ...extra] };
}

function result(title: string | undefined, ...extra: FormField[]): DataForm {
  return { type: 'result', title, fields: [FORM_TYPE(), ...extra] };
}

function done(text: string, form?: DataForm): CommandReply {
  return { status: 'completed', notes: [{ type: 'info', text }], form };
}

function splitBare(bare: string): { local: string; domain: string } {
  const at = bare.indexOf('@');
  return { local: bare.slice(0, at), domain: bare.slice(at + 1) };
}

export function createAdminCommands(ctx: ModuleContext): AdhocCommand[] {
  const access = accessRules(ctx);
  const registry = commandRegistry(ctx);
  const store = ctx.storage.keyValue(ADMIN_NAMESPACE);

  /** Refuses unless `requester` manages the domain of every account, and the domain is served here. */
  const checkRights = (step: CommandStep, accounts: string[]) => {
    for (const account of accounts) {
      const { domain } = splitBare(account);
      if (!ctx.vhosts.get(domain)) throw new StanzaError('item-not-found', `the domain ${domain} is not hosted on this server`);
      if (!access.managesDomain(step.requester.bare, domain)) throw new StanzaError('forbidden', `you have no rights on the domain ${domain}`);
    }
  };

  /** Bare JIDs of a jid-multi field, normalised; at least one. */
  const accountList = (step: CommandStep, name = 'accountjids'): string[] => {
    const list = step.values.list(name).map((v) => bareJidOf(v, 'The Jabber ID(s)'));
    if (list.length === 0) throw badPayload('at least one Jabber ID is required');
    return [...new Set(list)];
  };

  const credentialsFor = (password: string): Credentials => {
    try {
      return deriveCredentials(password);
    } catch (e) {
      if (e instanceof PasswordError) throw new StanzaError('not-acceptable', e.message);
      throw e;
    }
  };

  const endSessions = (bare: string, why: string, resource?: string) => {
    let ended = 0;
    for (const s of ctx.sessions.resources(bare)) {
      if (resource !== undefined && s.jid.resource !== resource) continue;
      s.close(new StreamError('not-authorized', why));
      ended++;
    }
    return ended;
  };

  const maxItems = (step: CommandStep): number => {
    const v = step.values.text('max_items');
    if (v === undefined || v === 'none') return Infinity;
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw badPayload('max_items must be a positive number or none');
    return n;
  };

  /** Bare JIDs of the accounts of `domain` with at least one bound resource. */
  const onlineUsers = (domain: string): string[] => {
    const out = new Set<string>();
    for (const s of ctx.sessions.all()) if (s.jid.domain === domain) out.add(s.jid.bare);
    return [...out].sort();
  };

  // Shown to anyone managing a host; each account's domain is checked when run.
  const aboutAccounts = (bare: string) => access.managesAnyDomain(bare);
  // About the addressed host.
  const aboutHost = (bare: string, domain: string) => access.managesDomain(bare, domain);

  const cmd = (id: string, name: string, allowed: AdhocCommand['allowed'], run: AdhocCommand['run']): AdhocCommand =>
    ({ node: `${NS_ADMIN}#${id}`, name, component: SESSION_MANAGER.name, allowed, run });

  return [
    cmd('add-user', 'Add a User', aboutAccounts, oneForm(
      (step) => form('Adding a User', `Fill out this form to add a user (to ${step.domain} or another domain you manage).`,
        fields.jid('accountjid', undefined, { label: 'The Jabber ID for the account to be added', required: true }),
        fields.password('password', undefined, { label: 'The password for this account', required: true }),
        fields.password('password-verify', undefined, { label: 'Retype password', required: true }),
        fields.text('email', undefined, { label: 'Email address' }),
        fields.text('given_name', undefined, { label: 'Given name' }),
        fields.text('surname', undefined, { label: 'Family name' })),
      async (step) => {
        const account = step.values.bareJid('accountjid', 'The Jabber ID for the account to be added');
        checkRights(step, [account]);
        const { local, domain } = splitBare(account);
        if (registry.component(local)) throw new StanzaError('conflict', `${local} is the name of a server component and cannot be a user`);
        const password = step.values.get('password') ?? '';
        if (password === '') throw badPayload('The password is required');
        const verify = step.values.get('password-verify');
        if (verify !== undefined && verify !== password) throw badPayload('The passwords do not match');
        const max = ctx.vhosts.get(domain)!['max-users'];
        if (max > 0 && (await ctx.storage.users.list(domain)).length >= max) {
          throw new StanzaError('not-allowed', `the domain ${domain} already has its maximum of ${max} users`);
        }
        if (!(await ctx.storage.users.create(domain, local, credentialsFor(password)))) {
          throw new StanzaError('conflict', `the user ${account} already exists`);
        }
        const profile: Record<string, string> = {};
        for (const k of ['email', 'given_name', 'surname']) { const v = step.values.text(k); if (v) profile[k] = v; }
        if (Object.keys(profile).length) await store.set(account, PROFILE_KEY, profile);
        ctx.log.info({ user: account, by: step.requester.bare }, 'account added by an administrator');
        return done(`The user ${account} has been added.`);
      })),

    cmd('delete-user', 'Delete a User', aboutAccounts, oneForm(
      () => form('Deleting a User', 'Fill out this form to delete a user.',
        fields.jids('accountjids', undefined, { label: 'The Jabber ID(s) to delete', required: true })),
      async (step) => {
        const accounts = accountList(step);
        checkRights(step, accounts);
        const deleted: string[] = [];
        const missing: string[] = [];
        for (const account of accounts) {
          const { local, domain } = splitBare(account);
          if (!(await ctx.storage.users.delete(domain, local))) { missing.push(account); continue; }
          deleted.push(account);
          await ctx.hooks.fire('account/deleted', { domain, username: local });
          endSessions(account, 'account deleted by an administrator');
          ctx.log.info({ user: account, by: step.requester.bare }, 'account deleted by an administrator');
        }
        if (deleted.length === 0) throw new StanzaError('item-not-found', `no such user: ${missing.join(', ')}`);
        return done(`Deleted: ${deleted.join(', ')}.${missing.length ? ` Not found: ${missing.join(', ')}.` : ''}`);
      })),

    cmd('disable-user', 'Disable a User', aboutAccounts, oneForm(
      () => form('Disabling a User', 'Fill out this form to disable a user: it is logged out and cannot log in until re-enabled.',
        fields.jids('accountjids', undefined, { label: 'The Jabber ID(s) to disable', required: true })),
      async (step) => {
        const accounts = accountList(step);
        checkRights(step, accounts);
        for (const account of accounts) {
          const { local, domain } = splitBare(account);
          if (!(await ctx.storage.users.exists(domain, local))) throw new StanzaError('item-not-found', `no such user: ${account}`);
        }
        for (const account of accounts) {
          await store.set(account, DISABLED_KEY, true);
          endSessions(account, 'account disabled by an administrator');
          ctx.log.info({ user: account, by: step.requester.bare }, 'account disabled');
        }
        return done(`Disabled: ${accounts.join(', ')}.`);
      })),

    cmd('reenable-user', 'Re-Enable a User', aboutAccounts, oneForm(
      () => form('Re-Enabling a User', 'Fill out this form to re-enable a user.',
        fields.jids('accountjids', undefined, { label: 'The Jabber ID(s) to re-enable', required: true })),
      async (step) => {
        const accounts = accountList(step);
        checkRights(step, accounts);
        for (const account of accounts) await store.delete(account, DISABLED_KEY);
        return done(`Re-enabled: ${accounts.join(', ')}.`);
      })),

    cmd('change-user-password', 'Change User Password', aboutAccounts, oneForm(
      () => form('Changing a User Password', "Fill out this form to change a user's password.",
        fields.jid('accountjid', undefined, { label: 'The Jabber ID for this account', required: true }),
        fields.password('password', undefined, { label: 'The password for this account', required: true })),
      async (step) => {
        const account = step.values.bareJid('accountjid', 'The Jabber ID for this account');
        checkRights(step, [account]);
        const password = step.values.get('password') ?? '';
        if (password === '') throw badPayload('The password is required');
        const { local, domain } = splitBare(account);
        if (!(await ctx.storage.users.setCredentials(domain, local, credentialsFor(password)))) throw new StanzaError('item-not-found', `no such user: ${account}`);
        ctx.log.info({ user: account, by: step.requester.bare }, 'password changed by an administrator');
        return done(`The password of ${account} has been changed.`);
      })),

    cmd('end-user-session', 'End User Session', aboutAccounts, oneForm(
      () => form('Ending a User Session', "Fill out this form to end a user's session: user@host ends all of them, user@host/resource only that one.",
        fields.jids('accountjids', undefined, { label: 'The Jabber ID(s) for which to end sessions', required: true })),
      async (step) => {
        const targets: JID[] = [];
        for (const v of step.values.list('accountjids')) {
          let jid: JID;
          try { jid = parseJid(v); } catch (e) { throw badPayload(`"${v}" is not a Jabber ID${e instanceof JidError ? `: ${e.message}` : ''}`); }
          if (!jid.local) throw badPayload(`"${v}" is not a user's Jabber ID`);
          targets.push(jid);
        }
        if (targets.length === 0) throw badPayload('at least one Jabber ID is required');
        checkRights(step, targets.map((j) => j.bare));
        let ended = 0;
        for (const j of targets) ended += endSessions(j.bare, 'session ended by an administrator', j.resource || undefined);
        return done(`${ended} session(s) ended.`);
      })),

    cmd('get-online-users-num', 'Get Number of Online Users', aboutHost, (step) =>
      ({ status: 'completed', form: result(undefined, { var: 'onlineusersnum', label: `The number of online users of ${step.domain}`, values: [String(onlineUsers(step.domain).length)] }) })),

    cmd('get-online-users-list', 'Get List of Online Users', aboutHost, oneForm(
      (step) => form('Requesting List of Online Users', `Fill out this form to request the online users of ${step.domain}.`,
        fields.list('max_items', '100', MAX_ITEMS_CHOICES, { label: 'Maximum number of items to show' })),
      (step) => {
        const users = onlineUsers(step.domain).slice(0, maxItems(step));
        return { status: 'completed', form: result('Online users', fields.jids('onlineuserjids', users, { label: `The list of online users of ${step.domain}` })) };
      })),

    cmd('get-registered-users-num', 'Get Number of Registered Users', aboutHost, async (step) =>
      ({ status: 'completed', form: result(undefined, { var: 'registeredusersnum', label: `The number of registered users of ${step.domain}`, values: [String((await ctx.storage.users.list(step.domain)).length)] }) })),

    cmd('get-registered-users-list', 'Get List of Registered Users', aboutHost, oneForm(
      (step) => form('Requesting List of Registered Users', `Fill out this form to request the registered users of ${step.domain}.`,
        fields.list('max_items', '100', MAX_ITEMS_CHOICES, { label: 'Maximum number of items to show' })),
      async (step) => {
        const users = (await ctx.storage.users.list(step.domain)).slice(0, maxItems(step)).map((u) => `${u}@${step.domain}`);
        return { status: 'completed', form: result('Registered users', fields.jids('registereduserjids', users, { label: `The list of registered users of ${step.domain}` })) };
      })),

    cmd('announce', 'Send Announcement to Online Users', aboutHost, oneForm(
      (step) => form('Making an Announcement', `Fill out this form to make an announcement to all online users of ${step.domain}.`,
        fields.text('subject', undefined, { label: 'Subject' }),
        fields.textMulti('announcement', undefined, { label: 'Announcement', required: true })),
      (step) => {
        const lines = step.values.all('announcement');
        if (lines.join('').trim() === '') throw badPayload('The announcement is required');
        const subject = step.values.text('subject');
        let sent = 0;
        for (const s of ctx.sessions.all()) {
          if (s.jid.domain !== step.domain || !s.presence) continue;
          s.send(xml('message', { from: step.domain, to: s.jid.full, type: 'headline' },
            subject !== undefined ? xml('subject', null, subject) : undefined, xml('body', null, lines.join('\n'))));
          sent++;
        }
        return done(`The announcement was sent to ${sent} online resource(s).`);
      })),

    cmd('user-stats', 'Get User Statistics', aboutAccounts, oneForm(
      () => form('Get User Statistics', 'Fill out this form to gather user statistics.',
        fields.jid('accountjid', undefined, { label: 'The Jabber ID for statistics', required: true })),
      async (step) => {
        const account = step.values.bareJid('accountjid', 'The Jabber ID for statistics');
        checkRights(step, [account]);
        const { local, domain } = splitBare(account);
        if (!(await ctx.storage.users.exists(domain, local))) throw new StanzaError('item-not-found', `no such user: ${account}`);
        const sessions = ctx.sessions.resources(account);
        const roster = await ctx.storage.roster.get(account);
        const disabled = (await store.get<boolean>(account, DISABLED_KEY)) === true;
        return {
          status: 'completed',
          form: result(`Statistics of ${account}`,
            fields.jid('accountjid', account, { label: 'The Jabber ID' }),
            { var: 'rostersize', label: 'Number of roster items', values: [String(roster.items.filter((i) => i.visible).length)] },
            { var: 'onlineresources', type: 'text-multi', label: 'Online resources', values: sessions.map((s) => s.jid.resource) },
            { var: 'ipaddresses', type: 'text-multi', label: 'IP addresses of the online resources', values: [...new Set(sessions.map((s) => s.remoteAddress))] },
            fields.boolean('disabled', disabled, { label: 'Disabled' })),
        };
      })),
  ];
}

export default defineModule({
  name: 'admin',
  description: 'Service administration (XEP-0133) on the session manager: users, sessions, counts and lists, announcements, statistics',
  specs: ['XEP-0133'],
  features: [NS_ADMIN],
  setup(ctx) {
    const registry = commandRegistry(ctx);
    const removers = createAdminCommands(ctx).map((c) => registry.add(c));
    const store = ctx.storage.keyValue(ADMIN_NAMESPACE);
    // Disabled accounts cannot log in (XEP-0133 4.3).
    const offAuth = ctx.hooks.on('account/authenticating', async (check) => {
      if (check.anonymous) return false;
      if ((await store.get<boolean>(`${check.username}@${check.domain}`, DISABLED_KEY)) !== true) return false;
      check.refusal = 'this account is disabled';
      return true;
    });
    return () => { offAuth(); for (const r of removers) r(); };
  },
});
