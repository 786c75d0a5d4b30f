// Output "external": each phone is a BOSH session to another XMPP server, logged in with the
// mapping's username and password, as perl-bosh did (seed 003). Its sid, rid and presence id are
// written to the key-value store with every request (in order; a graceful stop waits for the
// writes, a crash may leave the rid one request behind), so that after a restart of Switchboard
// the bridge takes up the same session (no offline/online flap for the contacts) instead of
// logging in again; the mapping file's own RID, SID and presenceId columns are used the same way
// for a phone with nothing stored (a session perl-bosh left open). Stopping the bridge leaves the
// sessions open for that reason; the server ends them after its inactivity time.
import type { ModuleContext } from '../../core/modules.js';
import type { KeyValueStore } from '../../storage/types.js';
import { xml } from '../../xml/element.js';
import { normaliseResource } from '../../jid.js';
import type { Availability, PhoneState } from './state-machine.js';
import type { PhoneMapping } from './mapping.js';
import type { PresenceOutput } from './bridge.js';
import { BoshAuthFailed, BoshClient, type BoshAccount } from './bosh-client.js';
import { InOrder } from './in-order.js';

export interface ExternalOptions {
  url: string;
  /** Domain of usernames written without one. */
  domain: string;
  wait: number;
  /** Seconds before logging in again after a session was lost. */
  retry: number;
  resourcePrefix: string;
  availableStatus: string;
  busyShow: 'dnd' | 'away' | 'xa';
  busyStatus: string;
}

/** What is kept per phone (key-value store, owner `sip:<uri>`). */
interface StoredSession {
  url: string;
  username: string;
  sid: string;
  /** The rid of the last request sent. */
  rid: number;
  presenceId: number;
  availability: Exclude<Availability, 'offline'>;
}

const KEY = 'bosh';

interface Phone {
  mapping: PhoneMapping;
  client?: BoshClient;
  stored?: StoredSession;
  /** What the presence says now; offline once the phone went offline. */
  availability: Availability;
  retryTimer?: NodeJS.Timeout;
}

export class ExternalOutput implements PresenceOutput {
  private readonly store: KeyValueStore;
  private readonly phones = new Map<string, Phone>();
  private readonly queue = new InOrder();
  private restoredStates = new Map<string, PhoneState>();
  /** Every client not yet ended, logging in included: a stop must not wait for their held requests. */
  private readonly clients = new Set<BoshClient>();
  private stopped = false;

  /** `lost` tells the bridge a phone has no presence although it did not report offline. */
  constructor(private readonly ctx: ModuleContext, private readonly options: ExternalOptions, private readonly lost: (uri: string) => void) {
    this.store = ctx.storage.keyValue('sip-presence');
  }

  private account(mapping: PhoneMapping): BoshAccount {
    const at = mapping.username.lastIndexOf('@');
    return {
      url: this.options.url,
      domain: at > 0 ? mapping.username.slice(at + 1) : this.options.domain,
      username: at > 0 ? mapping.username.slice(0, at) : mapping.username,
      password: mapping.password,
      resource: normaliseResource(this.options.resourcePrefix + mapping.uri),
    };
  }

  /**
   * Takes up the sessions stored for mapped phones: their state is restored at once, and each
   * session is resumed (or, if gone, opened anew) in the background, so that a remote server that
   * is slow or down does not hold up the start.
   */
  async start(phones: Iterable<PhoneMapping>): Promise<void> {
    for (const mapping of phones) {
      const stored = await this.store.get<StoredSession>(`sip:${mapping.uri}`, KEY);
      if (!stored || stored.url !== this.options.url || stored.username !== mapping.username) continue;
      const phone: Phone = { mapping, stored, availability: stored.availability };
      this.phones.set(mapping.uri, phone);
      this.restoredStates.set(mapping.uri, stored.availability === 'on-the-phone' ? 'still-onthephone' : 'still-online');
      this.chain(mapping.uri, async () => {
        const client = this.client(phone);
        if (await client.resume(stored.sid, stored.rid).catch(() => false)) {
          phone.client = client;
          this.ctx.log.info({ uri: mapping.uri, sid: stored.sid }, 'BOSH session resumed after restart');
          return;
        }
        this.ctx.log.info({ uri: mapping.uri }, 'stored BOSH session is gone: logging in again');
        phone.stored = undefined;
        await this.present(phone);
      });
    }
  }

  restored(): Map<string, PhoneState> {
    return this.restoredStates;
  }

  update(mapping: PhoneMapping, availability: Availability): void {
    let phone = this.phones.get(mapping.uri);
    if (!phone) this.phones.set(mapping.uri, (phone = { mapping, availability }));
    phone.mapping = mapping;
    phone.availability = availability;
    const p = phone;
    this.chain(mapping.uri, () => (availability === 'offline' ? this.leave(p) : this.present(p)));
  }

  /** Runs the updates of one phone in order. */
  private chain(uri: string, work: () => Promise<void>): void {
    this.queue.run(uri, work, (err: unknown) => {
      if (!this.stopped) this.ctx.log.error({ err, uri }, 'could not send the phone\'s presence');
    });
  }

  private client(phone: Phone): BoshClient {
    const uri = phone.mapping.uri;
    const client: BoshClient = new BoshClient(this.account(phone.mapping), {
      wait: this.options.wait,
      log: this.ctx.log,
      onRequest: (sid, rid) => {
        const base = phone.stored ?? { url: this.options.url, username: phone.mapping.username, presenceId: Number(phone.mapping.presenceId ?? 0) || 0, availability: 'available' as const };
        phone.stored = { ...base, sid, rid };
        this.persist(phone);
      },
      onEnded: () => {
        this.clients.delete(client);
        if (phone.client !== client) return;
        phone.client = undefined;
        this.scheduleRetry(phone);
      },
    });
    this.clients.add(client);
    return client;
  }

  /** A lost session of a phone that is not offline is opened again after `retry` seconds. */
  private scheduleRetry(phone: Phone): void {
    if (this.stopped || phone.availability === 'offline' || phone.retryTimer) return;
    phone.retryTimer = setTimeout(() => {
      phone.retryTimer = undefined;
      if (!phone.client && phone.availability !== 'offline') this.chain(phone.mapping.uri, () => this.present(phone));
    }, this.options.retry * 1000);
    phone.retryTimer.unref();
  }

  /** A session for the phone: the one open, a stored one resumed, or a new login. */
  private async session(phone: Phone): Promise<BoshClient | undefined> {
    if (phone.client?.active) return phone.client;
    const { mapping } = phone;
    const resumable = phone.stored?.sid ? phone.stored : mapping.sid ? { sid: mapping.sid, rid: mapping.rid } : undefined;
    if (resumable) {
      const client = this.client(phone);
      if (await client.resume(resumable.sid, resumable.rid).catch(() => false)) return (phone.client = client);
      phone.stored = undefined;
    }
    const client = this.client(phone);
    try {
      await client.login();
    } catch (e) {
      client.detach();
      this.clients.delete(client);
      // Wrong credentials stay wrong: the next report (or a corrected mapping file) tries again.
      if (e instanceof BoshAuthFailed) {
        this.ctx.log.error({ uri: mapping.uri, line: mapping.line, user: mapping.username, error: e.message }, 'BOSH login refused: check the username and password in the mapping file');
        phone.availability = 'offline';
        this.phones.delete(mapping.uri);
        this.lost(mapping.uri);
        return undefined;
      }
      this.scheduleRetry(phone);
      throw e;
    }
    this.ctx.log.info({ uri: mapping.uri, user: mapping.username, sid: client.sid }, 'BOSH session opened');
    return (phone.client = client);
  }

  private async present(phone: Phone): Promise<void> {
    const availability = phone.availability;
    if (availability === 'offline' || this.stopped) return;
    const client = await this.session(phone);
    if (!client) return;
    const presenceId = (phone.stored?.presenceId ?? (Number(phone.mapping.presenceId ?? 0) || 0)) + 1;
    const busy = availability === 'on-the-phone';
    const status = busy ? this.options.busyStatus : this.options.availableStatus;
    phone.stored = { ...phone.stored!, presenceId, availability };
    // Not awaited: the request carrying it is answered only when the server has something to
    // say or its wait is over; a failure ends the session and the retry sends it again.
    client.send(xml('presence', { id: String(presenceId) },
      busy ? xml('show', null, this.options.busyShow) : undefined,
      status ? xml('status', null, status) : undefined,
      xml('priority', null, '-1'))).catch(() => {});
    this.persist(phone);
  }

  /**
   * Writes the phone's newest session record. Writes of one phone run in order and each writes
   * the record as it is by then, so the stored rid never goes back.
   */
  private persist(phone: Phone): void {
    this.chain(`${phone.mapping.uri} store`, async () => {
      if (phone.stored) await this.store.set(`sip:${phone.mapping.uri}`, KEY, phone.stored);
    });
  }

  /** Offline: unavailable presence in the request that ends the session; nothing is kept. */
  private async leave(phone: Phone): Promise<void> {
    clearTimeout(phone.retryTimer);
    phone.retryTimer = undefined;
    const client = phone.client;
    phone.client = undefined;
    phone.stored = undefined;
    this.phones.delete(phone.mapping.uri);
    await this.queue.done(`${phone.mapping.uri} store`);
    await this.store.delete(`sip:${phone.mapping.uri}`, KEY);
    if (client?.active) await client.terminate(xml('presence', { type: 'unavailable' }));
    if (client) this.clients.delete(client);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const phone of this.phones.values()) clearTimeout(phone.retryTimer);
    for (const client of this.clients) client.detach();
    this.clients.clear();
    await this.queue.allDone();
  }
}
