// Shared attacker bans (seed 004: "detect and share the IP of a hacker with the other nodes"):
// repeated authentication failures from one address ban it for a while on every node of the
// cluster, and administrators ban and unban addresses with ad-hoc commands. Bans travel as
// cluster-wide requests, so alone the same code bans on the one server. A node joining asks the
// others for the bans in force. Bans live in memory: a ban is short-lived by nature, and a
// restarted cluster starts without them.
import { isIP } from 'node:net';
import { z } from 'zod';
import { defineModule } from '../core/module-definition.js';
import { StanzaError } from '../core/errors.js';
import { commandRegistry, oneForm, SESSION_MANAGER, type CommandReply } from './adhoc/commands.js';
import { fields } from './adhoc/forms.js';

const NS_BANS = 'urn:switchboard:bans';
const BAN = 'bans/ban';
const UNBAN = 'bans/unban';
const LIST = 'bans/list';

interface Ban {
  address: string;
  /** End of the ban, ms since the epoch. */
  until: number;
  reason?: string;
}

function isBan(value: unknown): value is Ban {
  const b = value as Ban;
  return !!b && typeof b.address === 'string' && isIP(b.address) !== 0 && typeof b.until === 'number' && Number.isFinite(b.until);
}

function completed(text: string): CommandReply {
  return { status: 'completed', notes: [{ type: 'info', text }] };
}

export default defineModule({
  name: 'bans',
  description: 'Attacker bans shared by every cluster node: repeated authentication failures from an address, or an administrator, ban it for a while',
  config: z.object({
    'auth-failures': z.number().int().min(0).default(0)
      .describe('Failed authentications from one address within auth-failure-window that ban it on every node; 0: no automatic bans'),
    'auth-failure-window': z.number().min(1).default(60).describe('Seconds over which an address\'s failed authentications are counted'),
    'ban-time': z.number().min(1).default(600).describe('Seconds a ban lasts (automatic bans, and administrators\' bans without a duration)'),
    exempt: z.array(z.string().refine((a) => isIP(a) !== 0, { message: 'must be an IP address' })).prefault([])
      .describe('Addresses never banned automatically (e.g. a trusted proxy)'),
  }).strict(),
  async setup(ctx) {
    const { admission, cluster, log } = ctx;
    const options = ctx.config;
    const apply = (ban: Ban) => {
      if (admission.bannedUntil(ban.address) === undefined) log.warn({ ip: ban.address, until: new Date(ban.until).toISOString(), reason: ban.reason }, 'address banned');
      admission.ban(ban.address, ban.until);
    };
    const offs = [
      cluster.handle(BAN, (payload) => {
        if (!isBan(payload)) throw new Error('a ban needs an IP address and an end time');
        apply(payload);
        return true;
      }),
      cluster.handle(UNBAN, (payload) => {
        const address = (payload as { address?: unknown } | null)?.address;
        if (typeof address !== 'string') throw new Error('an unban needs an address');
        const lifted = admission.unban(address);
        if (lifted) log.info({ ip: address }, 'address ban lifted');
        return lifted;
      }),
      cluster.handle(LIST, () => admission.bans()),
    ];

    // Bans decided before this node joined.
    for (const reply of await cluster.request<Ban[]>(LIST)) {
      for (const ban of Array.isArray(reply.value) ? reply.value : []) if (isBan(ban)) admission.ban(ban.address, ban.until);
    }

    const banEverywhere = (ban: Ban) => {
      apply(ban);
      return cluster.request<boolean>(BAN, ban);
    };

    // Failed attempts per address within the window (timestamps, oldest first).
    const failures = new Map<string, number[]>();
    const threshold = options['auth-failures'];
    if (threshold > 0) {
      const exempt = new Set(options.exempt);
      offs.push(ctx.hooks.on('auth/failed', async ({ address, domain }) => {
        if (exempt.has(address) || admission.bannedUntil(address) !== undefined) return;
        const now = Date.now();
        const recent = (failures.get(address) ?? []).filter((t) => t > now - options['auth-failure-window'] * 1000);
        recent.push(now);
        if (recent.length < threshold) {
          failures.set(address, recent);
          return;
        }
        failures.delete(address);
        await banEverywhere({ address, until: now + options['ban-time'] * 1000, reason: `${recent.length} failed authentications on ${domain} via ${cluster.nodeName}` });
      }));
      // The counts of addresses that stopped trying are forgotten.
      const sweep = setInterval(() => {
        const cutoff = Date.now() - options['auth-failure-window'] * 1000;
        for (const [address, times] of failures) if (times[times.length - 1]! <= cutoff) failures.delete(address);
      }, 60_000);
      sweep.unref();
      offs.push(() => clearInterval(sweep));
    }

    const registry = commandRegistry(ctx);
    const adminOnly = (bare: string) => ctx.isAdmin(bare);
    const addressField = (step: { values: { text(name: string): string | undefined } }) => {
      const address = step.values.text('address')?.trim();
      if (!address || isIP(address) === 0) throw new StanzaError('bad-request', 'address must be an IPv4 or IPv6 address');
      return address;
    };
    offs.push(
      registry.add({
        node: `${NS_BANS}#ban`, name: 'Ban an address', component: SESSION_MANAGER.name, allowed: adminOnly,
        run: oneForm(
          () => ({ type: 'form', title: 'Ban an address', instructions: ['New connections from the address are refused on every node until the ban ends.'],
            fields: [fields.text('address', undefined, { label: 'IP address', required: true }),
              fields.text('seconds', String(options['ban-time']), { label: 'Duration in seconds' })] }),
          async (step) => {
            const address = addressField(step);
            const seconds = step.values.text('seconds')?.trim() || String(options['ban-time']);
            if (!/^\d+$/.test(seconds) || Number(seconds) < 1) throw new StanzaError('bad-request', 'the duration must be a whole number of seconds, at least 1');
            const until = Date.now() + Number(seconds) * 1000;
            const replies = await banEverywhere({ address, until, reason: `banned by ${step.requester.bare}` });
            return completed(`${address} is banned until ${new Date(until).toISOString()} on ${replies.filter((r) => r.value === true).length} node(s).`);
          }),
      }),
      registry.add({
        node: `${NS_BANS}#unban`, name: 'Lift an address ban', component: SESSION_MANAGER.name, allowed: adminOnly,
        run: oneForm(
          () => ({ type: 'form', title: 'Lift an address ban', fields: [fields.text('address', undefined, { label: 'IP address', required: true })] }),
          async (step) => {
            const address = addressField(step);
            const replies = await cluster.request<boolean>(UNBAN, { address });
            const lifted = replies.filter((r) => r.value === true).length;
            return completed(lifted ? `The ban of ${address} is lifted on ${lifted} node(s).` : `${address} was not banned.`);
          }),
      }),
      registry.add({
        node: `${NS_BANS}#list`, name: 'List address bans', component: SESSION_MANAGER.name, allowed: adminOnly,
        run: () => {
          const bans = admission.bans().sort((a, b) => a.address.localeCompare(b.address));
          return { status: 'completed', notes: [{ type: 'info', text: `${bans.length} address(es) banned.` }],
            form: { type: 'result', title: 'Address bans', fields: [fields.textMulti('bans', bans.map((b) => `${b.address} until ${new Date(b.until).toISOString()}`), { label: 'Bans' })] } };
        },
      }),
    );
    return () => { for (const off of offs) off(); };
  },
});
