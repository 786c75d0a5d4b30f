// Last activity (XEP-0012), in the two parts of seed 001 section 11.2 and with its option names:
// the marker ('jabber:iq:last-marker') records when each user was last active, and the query
// handler ('jabber:iq:last', nested in the marker's section as in the seed because it depends on
// it) answers the queries. Both are off unless enabled.
//
// Persistence: with persistAllToRepository every update is written at once. Otherwise (default)
// updates stay in memory and are written in batches: an account's record when its last session
// ends, all records changed since the previous batch every `persist-interval` seconds, and all
// of them when the server stops. Queries always see the newest value, in memory or stored. A
// crash loses what the accounts online at the time did since the last batch (at most
// persist-interval seconds of updates) and the ends of their sessions; accounts that had gone
// offline were written when they did.
import { z } from 'zod';
import { defineModule } from '../core/module-definition.js';
import type { ModuleContext } from '../core/modules.js';
import type { Routed } from '../core/events.js';
import type { ClientSession } from '../core/session.js';
import { StanzaError } from '../core/errors.js';
import { xml, type Element } from '../xml/element.js';
import type { KeyValueStore } from '../storage/types.js';

const NS_LAST = 'jabber:iq:last';

/** What is kept per account, in the key-value store: one small record read by bare JID and removed with the account. */
interface LastActivity {
  /** Epoch milliseconds of the last activity. */
  at: number;
  /** Status text of the user's last broadcast presence (XEP-0012 3: of its unavailable presence when it logged out). */
  status?: string;
}

interface MarkerOptions {
  message: boolean;
  presence: boolean;
  persistAllToRepository: boolean;
  'persist-interval': number;
}

class LastActivityMarker {
  /** Newest record of each account online on this node, or not stored yet. */
  private readonly latest = new Map<string, LastActivity>();
  /** Accounts whose newest record is not stored yet. */
  private readonly unsaved = new Set<string>();
  private readonly store: KeyValueStore;

  constructor(private readonly ctx: ModuleContext, private readonly options: MarkerOptions) {
    this.store = ctx.storage.keyValue('last-activity');
  }

  /**
   * Records activity of an account now. A broadcast presence also sets the status text (or
   * clears it); other activity keeps the status already recorded.
   */
  async mark(account: string, broadcast?: Element): Promise<void> {
    const record: LastActivity = { at: Date.now() };
    const text = broadcast ? broadcast.getChildText('status') : this.latest.get(account)?.status;
    if (text !== undefined) record.status = text;
    this.latest.set(account, record);
    this.unsaved.add(account);
    if (this.options.persistAllToRepository) await this.write(account);
  }

  /**
   * The newest record of an account: the newer of this node's memory and storage, because in a
   * cluster the account may have been active later on another node, which stored it.
   */
  async lastActivity(account: string): Promise<LastActivity | undefined> {
    const inMemory = this.latest.get(account);
    const stored = await this.store.get<LastActivity>(account, 'last');
    return !inMemory || (stored && stored.at > inMemory.at) ? stored : inMemory;
  }

  /** Sessions of the account served by this node (in a cluster, the directory also lists other nodes'). */
  private hasLocalSessions(account: string): boolean {
    return this.ctx.sessions.resources(account).some((s) => s.node === undefined);
  }

  async sessionEnded(session: ClientSession): Promise<void> {
    const account = session.jid.bare;
    // The session ending is its unavailable presence, sent by the server on its behalf (RFC 6121 4.6).
    if (this.options.presence) await this.mark(account);
    // Written when this node's last session of the account ends, even if the account is still
    // online on another node: that node writes its own, later record when the account leaves it.
    if (this.hasLocalSessions(account)) return;
    await this.write(account);
    // Forgotten once stored (queries then read storage), so memory holds the accounts online here.
    if (!this.hasLocalSessions(account) && !this.unsaved.has(account)) this.latest.delete(account);
  }

  private async write(account: string): Promise<void> {
    const record = this.latest.get(account);
    if (!record || !this.unsaved.delete(account)) return;
    try {
      await this.store.set(account, 'last', record);
    } catch (err) {
      this.unsaved.add(account); // the next batch tries again
      this.ctx.log.error({ err, account }, 'could not store last activity');
    }
  }

  /** Writes every record changed since the previous batch. */
  async writeBatch(): Promise<void> {
    for (const account of [...this.unsaved]) await this.write(account);
  }

  /** Hooks the stanzas that count as activity; returns a disposer that writes what is pending. */
  start(): () => Promise<void> {
    const { hooks } = this.ctx;
    const priority = 200; // before anything that could claim the stanza: sending it is activity either way
    if (this.options.presence) {
      hooks.on('presence/broadcast', ({ stanza, origin }) => this.mark(origin.jid.bare, stanza), priority);
    }
    for (const target of ['bare', 'full', 'host'] as const) {
      if (this.options.presence) hooks.on(`presence/${target}`, (r) => this.markSender(r), priority);
      if (this.options.message) hooks.on(`message/${target}`, (r) => this.markSender(r), priority);
    }
    hooks.on('session/closed', (session) => this.sessionEnded(session));
    // With persistAllToRepository the batch only retries writes that failed, at the stop.
    const timer = this.options.persistAllToRepository ? undefined
      : setInterval(() => { void this.writeBatch(); }, this.options['persist-interval'] * 1000).unref();
    return async () => {
      clearInterval(timer);
      await this.writeBatch();
    };
  }

  /** Stanzas a local client sent (the server's own have no origin). */
  private async markSender({ origin }: Routed): Promise<void> {
    if (origin) await this.mark(origin.jid.bare);
  }
}

/** XEP-0012 sections 3 to 5: the answers to queries, for those allowed to see the user's presence. */
function startQueries(ctx: ModuleContext, marker: LastActivityMarker): void {
  const startedAt = Date.now();
  const secondsSince = (time: number) => Math.max(0, Math.floor((Date.now() - time) / 1000));

  // Section 7: only those who may see the user's presence (a subscription, or the user itself).
  const allowed = async (requester: string, account: string) => {
    if (requester === account) return true;
    const item = await ctx.storage.roster.getItem(account, requester);
    return item?.subscription === 'from' || item?.subscription === 'both';
  };
  const forbidden = () => new StanzaError('forbidden', 'only contacts subscribed to this user\'s presence may know its last activity');

  ctx.feature(NS_LAST);
  // Section 5: a server's uptime.
  ctx.iq('host', NS_LAST, { get: () => xml('query', { xmlns: NS_LAST, seconds: secondsSince(startedAt) }) });
  // Section 3: answered by the server on the user's behalf; 0 while the user has an available resource.
  ctx.iq('account', NS_LAST, {
    async get({ from, to }) {
      if (!(await allowed(from.bare, to.bare))) throw forbidden();
      if (ctx.sessions.available(to.bare).length > 0) return xml('query', { xmlns: NS_LAST, seconds: 0 });
      const last = await marker.lastActivity(to.bare);
      if (!last) throw new StanzaError('item-not-found', 'no activity of this user is known');
      return xml('query', { xmlns: NS_LAST, seconds: secondsSince(last.at) }, last.status);
    },
  });
  // Section 4: a full JID is the client's to answer (the router delivers it), but the server
  // still must not let others learn whether the user is online.
  ctx.hooks.on('iq/full', async (r) => {
    const { stanza, from, to, origin } = r;
    if (stanza.attrs.type !== 'get' || !stanza.getChild('query', NS_LAST) || (await allowed(from.bare, to.bare))) return false;
    ctx.router.bounce(stanza, forbidden(), origin);
    return true;
  }, 100);
}

export default defineModule({
  name: 'last-activity',
  description: "Last activity (XEP-0012): the marker ('jabber:iq:last-marker') and the query handler ('jabber:iq:last') of Tigase, both off unless enabled",
  specs: ['XEP-0012'],
  config: z.object({
    'jabber:iq:last-marker': z.object({
      active: z.boolean().default(false).describe('Record when each user was last active'),
      message: z.boolean().default(false).describe('Messages the user sends count as activity'),
      presence: z.boolean().default(true).describe('Presence the user sends counts as activity, and so does its session ending'),
      persistAllToRepository: z.boolean().default(false)
        .describe('Write every update to storage at once; otherwise an account is written when it goes offline and changes are written in batches every persist-interval seconds'),
      'persist-interval': z.number().int().min(1).default(60)
        .describe('Seconds between batched writes when persistAllToRepository is false (a Switchboard option): a crash loses at most this much activity of users online at the time'),
      'jabber:iq:last': z.object({
        active: z.boolean().default(false).describe('Answer last activity queries; needs the marker active'),
      }).strict().prefault({}).describe("The query handler: Tigase's 'jabber:iq:last' (active: true) {}, nested in the marker's block as in the seed because it depends on it"),
    }).strict().prefault({}).superRefine((marker, check) => {
      if (marker['jabber:iq:last'].active && !marker.active) {
        check.addIssue({ code: 'custom', path: ['jabber:iq:last', 'active'], message: 'jabber:iq:last needs jabber:iq:last-marker active: true' });
      }
    }).describe("The marker: Tigase's 'jabber:iq:last-marker' (active: true) { ... } block, which records activity"),
  }).strict(),
  setup(ctx) {
    const options = ctx.config['jabber:iq:last-marker'];
    if (!options.active) return;
    const marker = new LastActivityMarker(ctx, options);
    const stop = marker.start();
    if (options['jabber:iq:last'].active) startQueries(ctx, marker);
    return stop;
  },
});
