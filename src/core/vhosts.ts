// The virtual hosts this server serves, and their settings (seed 001 section 11.6). Hosts listed
// in `virtual-hosts` of the configuration file are always present and cannot be removed; more
// can be added, updated and removed at runtime (the VHost Manager's ad-hoc commands), and those
// changes are kept in storage, so they survive a restart. The router, the streams (host-unknown),
// `vhostOption` and the certificates all ask this registry.
//
// Persistence: one JSON document in the key-value store (namespace 'vhosts', owner '' which no
// account can have, key 'hosts'): a record per runtime host, and the settings of configured hosts
// an administrator changed at runtime (those override `vhost-options` of the file).
import type { Logger } from 'pino';
import type { CoreConfig } from '../config/schema.js';
import type { KeyValueStore, Storage } from '../storage/types.js';
import { JidError, normaliseDomain } from '../jid.js';

/** What an administrator can set on a virtual host: the fields of the seed's VHost form. */
export interface VhostSettings {
  /** Whether the host is served; a disabled host is unknown to streams and routing. */
  enabled: boolean;
  /** SASL ANONYMOUS allowed (seed 11.13). */
  'anonymous-login': boolean;
  /** In-band registration (XEP-0077) allowed. */
  'in-band-registration': boolean;
  /** Clients must negotiate TLS before authenticating (loopback excepted, as c2s.require-encryption). */
  'tls-required': boolean;
  /** Most accounts the host may have; 0 for no limit. */
  'max-users': number;
  /** Bare JID of the local user who controls the host (may update or remove it and manage its users). */
  owner?: string;
  /** Bare JIDs who may manage the host's users. */
  administrators: string[];
  /** Address that gets a copy of every presence broadcast by the host's users (seed 11.7). */
  'presence-forward'?: string;
  /** Address that gets a copy of every message sent by the host's users. */
  'message-forward'?: string;
  /** Free-form `key=value` parameters ("Other parameters" of the seed's form). */
  other: Record<string, string>;
}

export interface Vhost extends VhostSettings {
  domain: string;
  /** Listed in `virtual-hosts` of the configuration file: always present, cannot be removed at runtime. */
  configured: boolean;
  /** Added or changed at runtime: its settings come from storage. */
  stored: boolean;
}

export type VhostChange = { kind: 'added' | 'updated' | 'removed'; vhost: Vhost; previous?: Vhost };

/** A refused change, with a message for the administrator. */
export class VhostError extends Error {
  constructor(readonly reason: 'exists' | 'not-found' | 'configured' | 'invalid', message: string) {
    super(message);
  }
}

export function defaultVhostSettings(): VhostSettings {
  return {
    enabled: true,
    'anonymous-login': false,
    'in-band-registration': false,
    'tls-required': false,
    'max-users': 0,
    administrators: [],
    other: {},
  };
}

const STORE_NAMESPACE = 'vhosts';
const STORE_OWNER = '';
const STORE_KEY = 'hosts';

type StoredHosts = Record<string, VhostSettings>;

/** Reads the hosts added or changed at runtime, as stored (for `switchboard check`). */
export async function readStoredVhosts(storage: Storage): Promise<StoredHosts> {
  return (await storage.keyValue(STORE_NAMESPACE).get<StoredHosts>(STORE_OWNER, STORE_KEY)) ?? {};
}

/** Normalises a domain typed by an administrator; throws VhostError when it is not one. */
export function parseDomain(input: string): string {
  try {
    return normaliseDomain(input.trim());
  } catch (e) {
    throw new VhostError('invalid', `"${input}" is not a valid domain name${e instanceof JidError ? `: ${e.message}` : ''}`);
  }
}

/** A host added at runtime, as stored. */
function fromStorage(domain: string, settings: VhostSettings): Vhost {
  return { ...defaultVhostSettings(), ...settings, domain, configured: false, stored: true };
}

export class VhostRegistry {
  private readonly hosts = new Map<string, Vhost>();
  private readonly configured: ReadonlySet<string>;
  private readonly listeners: ((change: VhostChange) => void | Promise<void>)[] = [];
  private readonly store: KeyValueStore;
  private readonly storage: Storage;
  /** Writes are serialised: each change rewrites the stored document. */
  private writing: Promise<void> = Promise.resolve();

  private constructor(private readonly config: CoreConfig, storage: Storage, private readonly log: Logger) {
    this.store = storage.keyValue(STORE_NAMESPACE);
    this.storage = storage;
    this.configured = new Set(config['virtual-hosts']);
  }

  /**
   * Reads the stored hosts again and applies what changed, as if made here (listeners hear of
   * each change): another cluster node changed them in the shared storage.
   */
  async reload(): Promise<void> {
    await this.writing;
    const stored = await readStoredVhosts(this.storage);
    const changes: VhostChange[] = [];
    const same = (a: Vhost, b: Vhost) => JSON.stringify(a) === JSON.stringify(b);
    for (const domain of this.config['virtual-hosts']) {
      const previous = this.hosts.get(domain)!;
      const vhost = this.fromConfig(domain, stored[domain]);
      if (!same(previous, vhost)) changes.push({ kind: 'updated', vhost, previous });
    }
    for (const [domain, settings] of Object.entries(stored)) {
      if (this.configured.has(domain)) continue;
      const previous = this.hosts.get(domain);
      const vhost = fromStorage(domain, settings);
      if (!previous) changes.push({ kind: 'added', vhost });
      else if (!same(previous, vhost)) changes.push({ kind: 'updated', vhost, previous });
    }
    for (const [domain, previous] of this.hosts) {
      if (!previous.configured && !(domain in stored)) changes.push({ kind: 'removed', vhost: previous, previous });
    }
    for (const change of changes) {
      if (change.kind === 'removed') this.hosts.delete(change.vhost.domain);
      else this.hosts.set(change.vhost.domain, change.vhost);
      this.log.info({ domain: change.vhost.domain, change: change.kind }, 'virtual host changed elsewhere');
      await this.notify({ ...change, vhost: clone(change.vhost), previous: change.previous && clone(change.previous) });
    }
  }

  static async open(config: CoreConfig, storage: Storage, log: Logger): Promise<VhostRegistry> {
    const registry = new VhostRegistry(config, storage, log);
    const stored = await readStoredVhosts(storage);
    for (const domain of config['virtual-hosts']) {
      registry.hosts.set(domain, registry.fromConfig(domain, stored[domain]));
    }
    for (const [domain, settings] of Object.entries(stored)) {
      if (registry.hosts.has(domain)) continue;
      registry.hosts.set(domain, fromStorage(domain, settings));
    }
    return registry;
  }

  private fromConfig(domain: string, stored?: VhostSettings): Vhost {
    const options = this.config['vhost-options'][domain];
    const base: VhostSettings = { ...defaultVhostSettings(), ...(options ?? {}) };
    return stored ? { ...base, ...stored, domain, configured: true, stored: true } : { ...base, domain, configured: true, stored: false };
  }

  /** Whether the host is served now: known and enabled. */
  has(domain: string): boolean {
    return this.hosts.get(domain)?.enabled === true;
  }

  /** A known host, enabled or not. */
  get(domain: string): Vhost | undefined {
    const v = this.hosts.get(domain);
    return v && clone(v);
  }

  /** Every known host: configured ones first in file order, then runtime ones by name. */
  list(): Vhost[] {
    const all = [...this.hosts.values()];
    const configured = this.config['virtual-hosts'].map((d) => this.hosts.get(d)!);
    const runtime = all.filter((v) => !v.configured).sort((a, b) => a.domain.localeCompare(b.domain));
    return [...configured, ...runtime].map(clone);
  }

  /** Domains served now. */
  served(): string[] {
    return this.list().filter((v) => v.enabled).map((v) => v.domain);
  }

  isConfigured(domain: string): boolean {
    return this.configured.has(domain);
  }

  /** A boolean setting of a served host (false for unknown hosts). */
  option(domain: string, option: 'anonymous-login' | 'in-band-registration' | 'tls-required'): boolean {
    return this.hosts.get(domain)?.[option] ?? false;
  }

  /** Hosts whose owner is `bare`, or where it is one of the administrators. */
  managedBy(bare: string): Vhost[] {
    return this.list().filter((v) => v.owner === bare || v.administrators.includes(bare));
  }

  /** Hosts owned by `bare`. */
  ownedBy(bare: string): Vhost[] {
    return this.list().filter((v) => v.owner === bare);
  }

  onChange(listener: (change: VhostChange) => void | Promise<void>): () => void {
    this.listeners.push(listener);
    return () => { const i = this.listeners.indexOf(listener); if (i >= 0) this.listeners.splice(i, 1); };
  }

  async add(domain: string, settings: Partial<VhostSettings>): Promise<Vhost> {
    domain = parseDomain(domain);
    if (this.hosts.has(domain)) throw new VhostError('exists', `the domain ${domain} already exists`);
    const vhost: Vhost = { ...defaultVhostSettings(), ...definedOnly(settings), domain, configured: false, stored: true };
    this.hosts.set(domain, vhost);
    await this.persist();
    this.log.info({ domain, owner: vhost.owner }, 'virtual host added');
    await this.notify({ kind: 'added', vhost: clone(vhost) });
    return clone(vhost);
  }

  /** Replaces every setting of a host (what is absent from `settings` is cleared). */
  async update(domain: string, settings: VhostSettings): Promise<Vhost> {
    const previous = this.hosts.get(domain);
    if (!previous) throw new VhostError('not-found', `the domain ${domain} does not exist`);
    const vhost: Vhost = { ...defaultVhostSettings(), ...definedOnly(settings), domain, configured: previous.configured, stored: true };
    this.hosts.set(domain, vhost);
    await this.persist();
    this.log.info({ domain }, 'virtual host updated');
    await this.notify({ kind: 'updated', vhost: clone(vhost), previous: clone(previous) });
    return clone(vhost);
  }

  async remove(domain: string): Promise<Vhost> {
    const previous = this.hosts.get(domain);
    if (!previous) throw new VhostError('not-found', `the domain ${domain} does not exist`);
    if (previous.configured) throw new VhostError('configured', `the domain ${domain} is listed in the configuration file (virtual-hosts) and cannot be removed at runtime`);
    this.hosts.delete(domain);
    await this.persist();
    this.log.info({ domain }, 'virtual host removed');
    await this.notify({ kind: 'removed', vhost: clone(previous), previous: clone(previous) });
    return clone(previous);
  }

  private persist(): Promise<void> {
    const document: StoredHosts = {};
    for (const v of this.hosts.values()) {
      if (!v.stored) continue;
      const { domain, configured: _configured, stored: _stored, ...settings } = v;
      document[domain] = settings;
    }
    const write = this.writing.then(() => this.store.set(STORE_OWNER, STORE_KEY, document));
    this.writing = write.catch(() => undefined);
    return write;
  }

  private async notify(change: VhostChange): Promise<void> {
    for (const l of this.listeners.slice()) {
      try {
        await l(change);
      } catch (e) {
        this.log.error({ err: e, domain: change.vhost.domain }, 'virtual host change listener failed');
      }
    }
  }
}

function clone(v: Vhost): Vhost {
  return { ...v, administrators: [...v.administrators], other: { ...v.other } };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
