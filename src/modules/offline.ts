// Offline messages (XEP-0160) with Tigase's limits and rules (seed 001 section 11.1): which
// messages are kept for an account that has no resource to take them, how many per sender, and
// their delivery when the account next sends initial presence. As in Tigase, where the AMP
// processor carries msgoffline, this is not a module of its own: the AMP module (amp.ts) creates
// it unless `amp.msgoffline.active` is false, and gives it its options.
import type { ModuleContext } from '../core/modules.js';
import type { Routed } from '../core/events.js';
import type { ClientSession } from '../core/session.js';
import type { IqHandlers } from '../core/iq.js';
import type { KeyValueStore } from '../storage/types.js';
import { StanzaError } from '../core/errors.js';
import { Element, xml } from '../xml/element.js';
import { createStreamParser } from '../xml/parser.js';

export const NS_MSGOFFLINE = 'msgoffline';
const NS_DELAY = 'urn:xmpp:delay';
const NS_HINTS = 'urn:xmpp:hints';
const NS_CLIENT = 'jabber:client';

/**
 * A `msg-store-offline-paths` entry (seed 11.1.2): an optional `-` (do not store) or `+`, a path
 * of element names from the message down, and optionally the namespace the last one must have:
 * `/message/received[urn:xmpp:receipts]`, `-/message/plain`.
 */
export const MATCHER_SYNTAX = /^[-+]?\/message(?:\/[^/[\]\s]+)*(?:\[[^[\]\s]+\])?$/;

interface Matcher {
  /** What a message the matcher finds gets: stored or not. */
  store: boolean;
  /** Element names from the stanza down, starting with 'message'. */
  path: string[];
  xmlns?: string;
}

function parseMatcher(text: string): Matcher {
  const store = !text.startsWith('-');
  const bracket = text.indexOf('[');
  const path = (bracket < 0 ? text : text.slice(0, bracket)).replace(/^[-+]/, '').split('/').slice(1);
  return bracket < 0 ? { store, path } : { store, path, xmlns: text.slice(bracket + 1, -1) };
}

/** Whether some element along `path` below `el` exists (with the namespace, if the matcher names one). */
function matchesPath(el: Element, path: string[], xmlns: string | undefined, inherited: string): boolean {
  const ns = el.attrs.xmlns ?? inherited;
  if (el.name !== path[0]) return false;
  if (path.length === 1) return xmlns === undefined || ns === xmlns;
  return el.getChildren(path[1]!).some((child) => matchesPath(child, path.slice(1), xmlns, ns));
}

export interface OfflineOptions {
  /** Messages kept per sender-recipient pair of bare JIDs, unless the recipient set its own limit. */
  storeLimit: number;
  userStoreLimitEnable: boolean;
  quotaExceeded: 'error' | 'drop';
  /** The `msg-store-offline-paths` entries, in order. */
  paths: string[];
}

/**
 * Called before a stored message is written to the recipient; returning true consumes the message
 * (it is removed without being delivered). AMP uses it for expire-at (XEP-0079 3.7.2).
 */
export type BeforeDelivery = (stanza: Element, session: ClientSession) => Promise<boolean>;

/** Cluster request naming an account a node stored a message for while it was not online there. */
const STORED_NOTICE = 'offline/stored';

/** Tasks that must not interleave for one account (its flushes and stores), run in the order queued. */
class PerAccountQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(account: string, task: () => Promise<T>): Promise<T> {
    const result = (this.tails.get(account) ?? Promise.resolve()).then(task);
    const tail = result.catch(() => undefined);
    this.tails.set(account, tail);
    void tail.then(() => { if (this.tails.get(account) === tail) this.tails.delete(account); });
    return result;
  }
}

export class OfflineMessages {
  private readonly matchers: Matcher[];
  /** Where a user's own limit is kept: Tigase's `offline-msgs` subnode, key `store-limit` (seed 11.1.1). */
  private readonly userSettings: KeyValueStore;
  private readonly queue = new PerAccountQueue();
  /** Per account, the flushes queued or running and the messages held behind them. */
  private readonly pendingFlushes = new Map<string, number>();
  private readonly counted;

  constructor(private readonly ctx: ModuleContext, private readonly options: OfflineOptions, private readonly beforeDelivery: BeforeDelivery) {
    this.matchers = options.paths.map(parseMatcher);
    this.userSettings = ctx.storage.keyValue('offline-msgs');
    this.counted = {
      stored: ctx.metrics.counter({ name: 'offline_messages_stored_total', help: 'Messages stored for offline recipients' }),
      overQuota: ctx.metrics.counter({ name: 'offline_messages_over_quota_total', help: 'Messages for offline recipients not stored because of the store limit' }),
      delivered: ctx.metrics.counter({ name: 'offline_messages_delivered_total', help: 'Stored messages delivered when their recipient came online' }),
    };
  }

  /**
   * Whether a message of this kind is kept for an offline recipient. The matchers come first, in
   * order, and the first that finds its element decides (seed 11.1.2); then the XEP-0334 hints;
   * then the XEP-0160 rules: normal and chat messages with a body. `no-permanent-store` does not
   * prevent offline storage: XEP-0334 4.1 is about archives, 4.2 (`no-store`) about storage for
   * later delivery, and a stored message is removed once delivered.
   */
  private isStorable(stanza: Element): boolean {
    for (const m of this.matchers) {
      if (matchesPath(stanza, m.path, m.xmlns, NS_CLIENT)) return m.store;
    }
    if (stanza.getChild('no-store', NS_HINTS)) return false;
    if (stanza.getChild('store', NS_HINTS)) return true;
    // The message module never hands over error or groupchat messages; headlines are not kept.
    if (stanza.attrs.type === 'headline') return false;
    const body = stanza.getChild('body');
    return body !== undefined && (body.attrs.xmlns ?? NS_CLIENT) === NS_CLIENT && body.text() !== '';
  }

  /** The limit for messages from one sender to `recipient`: its own, if allowed and set, else store-limit. */
  private async limitFor(recipient: string): Promise<number> {
    if (this.options.userStoreLimitEnable) {
      const own = await this.userSettings.get<number>(recipient, 'store-limit');
      if (own !== undefined) return own;
    }
    return this.options.storeLimit;
  }

  /** Whether `store` would keep this message now (XEP-0079 deliver='stored' rather than 'none'). */
  async wouldStore({ stanza, from, to }: Routed): Promise<boolean> {
    if (!this.isStorable(stanza)) return false;
    return (await this.ctx.storage.offline.count(to.bare, from.bare)) < (await this.limitFor(to.bare));
  }

  /**
   * Takes a message the recipient's account has no resource for: stores it, or applies
   * `quota-exceeded` when the sender reached the limit. Returns false for a message that is not
   * kept, which the message module then bounces (or, a headline, drops) as RFC 6121 8.5.2 says.
   */
  async store(routed: Routed): Promise<boolean> {
    if (!this.isStorable(routed.stanza)) return false;
    return this.keep(routed, await this.limitFor(routed.to.bare));
  }

  /**
   * A message that would go to an account's bare JID while its stored messages are still being
   * written out would overtake them: it joins the end of the stored queue instead, without a
   * limit since the recipient is online, and is written right after them. True when it did.
   */
  async holdBehindFlush(routed: Routed): Promise<boolean> {
    const { stanza, to } = routed;
    const type = stanza.attrs.type;
    if (!this.pendingFlushes.has(to.bare) || type === 'error' || type === 'groupchat' || !this.isStorable(stanza)) return false;
    // A full JID of a bound resource is that resource's alone (RFC 6121 8.5.3.1).
    if (to.resource && this.ctx.sessions.get(to.bare, to.resource)) return false;
    // Counted as pending until the flush that writes it is done, so that no later message finds
    // the account without a flush in between and overtakes this one.
    this.changePending(to.bare, +1);
    try {
      return await this.keep(routed, undefined);
    } finally {
      this.changePending(to.bare, -1);
    }
  }

  private changePending(account: string, by: number): void {
    const count = (this.pendingFlushes.get(account) ?? 0) + by;
    if (count === 0) this.pendingFlushes.delete(account);
    else this.pendingFlushes.set(account, count);
  }

  /** Appends a message within `limit`, then writes it out at once if the recipient is online by now. */
  private async keep({ stanza, from, to, origin }: Routed, limit: number | undefined): Promise<true> {
    const recipient = to.bare;
    const message = { sender: from.bare, stamp: new Date(), stanza: stanza.toString() };
    let id: number | undefined;
    try {
      id = await this.queue.run(recipient, () => this.ctx.storage.offline.append(recipient, message, limit));
    } catch (err) {
      // The sender learns the message was not kept; its stream stays up.
      this.ctx.log.error({ err, recipient }, 'could not store an offline message');
      this.ctx.router.bounce(stanza, new StanzaError('internal-server-error', 'the message could not be stored for the offline recipient'), origin);
      return true;
    }
    if (id === undefined) {
      this.counted.overQuota.inc();
      if (this.options.quotaExceeded === 'error') {
        this.ctx.router.bounce(stanza, new StanzaError('service-unavailable',
          `offline message quota exceeded: ${recipient} keeps at most ${limit} messages from ${from.bare} while offline`), origin);
      }
      return true;
    }
    this.counted.stored.inc();
    // Online by now (it came online while this was stored, after its flush had read the queue,
    // or the message was held behind that flush): written out now, not at the next login.
    const online = this.flushTarget(recipient);
    if (online) await this.deliver(online);
    // In a cluster the recipient may have come online on another node, which this node learns a
    // moment later (or has learnt, but that node flushes it): that node writes it out.
    else if (this.ctx.cluster.enabled) {
      void this.ctx.cluster.request(STORED_NOTICE, recipient)
        .catch((err: unknown) => this.ctx.log.warn({ err, recipient }, 'could not tell the cluster of a stored offline message'));
    }
    return true;
  }

  /** Answers the other nodes' STORED_NOTICE: writes the messages out if the account is online here. */
  listen(): () => void {
    return this.ctx.cluster.handle(STORED_NOTICE, (account) => {
      const online = typeof account === 'string' ? this.flushTarget(account) : undefined;
      if (online) void this.deliver(online);
      return undefined; // silent: the storing node waits for nothing
    });
  }

  /**
   * The resource of this node that bare-JID messages go to now (RFC 6121 8.5.2.1.1), if any.
   * Only this node's own: a session of another node is written to by that node (STORED_NOTICE),
   * so that two nodes never write out one queue at the same time.
   */
  private flushTarget(account: string): ClientSession | undefined {
    const eligible = this.ctx.sessions.available(account).filter((s) => s.node === undefined && s.priority >= 0);
    return eligible.sort((a, b) => b.priority - a.priority)[0];
  }

  /**
   * Writes the messages waiting for the session's account to it, oldest first, each with an
   * XEP-0203 delay stamp, and removes each once written: a crash before the removal delivers it
   * again at the next login, never loses it. Stops, keeping the rest, when the session goes
   * away or storage fails.
   */
  deliver(session: ClientSession): Promise<void> {
    const account = session.jid.bare;
    this.changePending(account, +1);
    return this.queue.run(account, async () => {
      try {
        for (const message of await this.ctx.storage.offline.list(account)) {
          if (this.ctx.sessions.get(account, session.jid.resource) !== session || !session.presence) return;
          const stanza = parseStanza(message.stanza);
          if (!stanza) {
            this.ctx.log.error({ account, stanza: message.stanza }, 'dropping an offline message that cannot be parsed');
          } else if (!(await this.beforeDelivery(stanza, session))) {
            stanza.children.push(xml('delay', { xmlns: NS_DELAY, from: session.jid.domain, stamp: message.stamp.toISOString() }, 'Offline Storage'));
            session.send(stanza);
            this.counted.delivered.inc();
          }
          await this.ctx.storage.offline.delete(account, message.id);
        }
      } catch (err) {
        this.ctx.log.error({ err, account }, 'could not deliver offline messages; the rest wait for the next login');
      }
    }).finally(() => this.changePending(account, -1));
  }

  /**
   * The user's own limit (seed 11.1.1), for `user-store-limit-enable`: a set with limit='N' keeps
   * N, limit='false' removes the user's limit so store-limit applies again (as Tigase does); the
   * result carries the same element. A get answers the current value, 'false' when none is set.
   */
  limitIq(): IqHandlers {
    const ownAccountOnly = (from: string, to: string) => {
      if (from !== to) throw new StanzaError('forbidden', 'only the account itself manages its offline message limit');
    };
    const reply = (limit: string) => xml('msgoffline', { xmlns: NS_MSGOFFLINE, limit });
    return {
      get: async ({ from, to }) => {
        ownAccountOnly(from.bare, to.bare);
        const own = await this.userSettings.get<number>(to.bare, 'store-limit');
        return reply(own === undefined ? 'false' : String(own));
      },
      set: async ({ from, to, payload }) => {
        ownAccountOnly(from.bare, to.bare);
        const value = payload.attrs.limit;
        if (value === 'false') {
          await this.userSettings.delete(to.bare, 'store-limit');
          return reply('false');
        }
        const limit = value !== undefined && /^\d+$/.test(value) ? Number(value) : NaN;
        if (!Number.isSafeInteger(limit)) throw new StanzaError('bad-request', "limit must be a whole number of messages, or 'false'");
        await this.userSettings.set(to.bare, 'store-limit', limit);
        return reply(String(limit));
      },
    };
  }
}

/** A stored stanza back as an element (stored as this server serialised it, in jabber:client). */
function parseStanza(text: string): Element | undefined {
  let stanza: Element | undefined;
  const parser = createStreamParser({
    streamStart: () => undefined,
    stanza: (el) => { stanza = el; },
    streamEnd: () => undefined,
    error: () => { stanza = undefined; },
  }, { maxStanzaSize: Number.MAX_SAFE_INTEGER, maxDepth: Number.MAX_SAFE_INTEGER });
  parser.write(`<stream:stream xmlns='${NS_CLIENT}' xmlns:stream='http://etherx.jabber.org/streams'>${text}`);
  return stanza;
}
