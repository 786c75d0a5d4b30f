// Entity capabilities (XEP-0115) of connected clients, for PEP notification filtering
// (XEP-0163 section 4.3, the `<node>+notify` features). A client's presence names its caps
// (node, ver, and for the legacy format ext); the features behind them are asked once by a
// disco#info query to that client, then cached for every client announcing the same caps. A
// hashed ver is verified against the answer (section 5.4) before it is cached, so one client
// cannot poison the cache for others. Written here rather than taken from a library: it is the
// protocol logic of the server side, and the client libraries only cover the publishing side.
import { createHash } from 'node:crypto';
import type { ModuleContext } from '../../core/modules.js';
import type { ClientSession } from '../../core/session.js';
import { xml, type Element } from '../../xml/element.js';

export const NS_CAPS = 'http://jabber.org/protocol/caps';
const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const NS_DATA = 'jabber:x:data';

/** Hash names of the IANA registry (as caps carry them) to Node's names. */
const HASHES = new Map([['sha-1', 'sha1'], ['sha-224', 'sha224'], ['sha-256', 'sha256'], ['sha-384', 'sha384'], ['sha-512', 'sha512'], ['md5', 'md5']]);

/** What a presence's <c/> names. */
export interface CapsReference {
  node: string;
  ver: string;
  /** Absent for the legacy format (then `ext` may name extra feature bundles). */
  hash?: string;
  ext: string[];
}

export function capsOf(presence: Element | undefined): CapsReference | undefined {
  const c = presence?.getChild('c', NS_CAPS);
  const { node, ver, hash, ext } = c?.attrs ?? {};
  if (!node || !ver) return undefined;
  return { node, ver, hash, ext: ext ? ext.split(/\s+/).filter((e) => e !== '') : [] };
}

/** The same caps (so the same features) for two presences. */
export function sameCaps(a: CapsReference | undefined, b: CapsReference | undefined): boolean {
  return a?.node === b?.node && a?.ver === b?.ver && a?.hash === b?.hash && a?.ext.join(' ') === b?.ext.join(' ');
}

/** i;octet ordering (XEP-0115 section 5.1 sorts by bytes, not by UTF-16 units). */
const byOctets = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** XEP-0115 section 5.1: the verification string of a disco#info answer, hashed and base64-encoded. */
export function capsHash(query: Element, algorithm: string): string | undefined {
  const nodeAlgorithm = HASHES.get(algorithm.toLowerCase());
  if (!nodeAlgorithm) return undefined;
  const identities = query.getChildren('identity')
    .map((i) => `${i.attrs.category ?? ''}/${i.attrs.type ?? ''}/${i.attrs['xml:lang'] ?? ''}/${i.attrs.name ?? ''}`)
    .sort(byOctets);
  const features = query.getChildren('feature').map((f) => f.attrs.var ?? '').sort(byOctets);
  let s = identities.map((i) => `${i}<`).join('') + features.map((f) => `${f}<`).join('');
  const forms = query.getChildren('x', NS_DATA).map((x) => {
    const fields = x.getChildren('field');
    const formType = fields.find((f) => f.attrs.var === 'FORM_TYPE')?.getChildText('value') ?? '';
    const rest = fields.filter((f) => f.attrs.var !== 'FORM_TYPE')
      .map((f) => ({ name: f.attrs.var ?? '', values: f.getChildren('value').map((v) => v.text()).sort(byOctets) }))
      .sort((a, b) => byOctets(a.name, b.name));
    return { formType, text: `${formType}<` + rest.map((f) => `${f.name}<` + f.values.map((v) => `${v}<`).join('')).join('') };
  }).sort((a, b) => byOctets(a.formType, b.formType));
  s += forms.map((f) => f.text).join('');
  return createHash(nodeAlgorithm).update(s, 'utf8').digest('base64');
}

interface Query {
  jid: string;
  resolve: (answer: Element | undefined) => void;
  timer: NodeJS.Timeout;
}

/** The cluster-wide notice of caps verified on one node (features by `node#ver`). */
const CAPS_VERIFIED = 'pep/caps-verified';

export class EntityCaps {
  /** Features by `node#ver` (or `node#ext` for legacy extensions): shared by every client announcing them. */
  private readonly known = new Map<string, ReadonlySet<string>>();
  /** Features of clients whose answer did not match their hash: theirs alone, by full JID. */
  private readonly unverified = new Map<string, ReadonlySet<string>>();
  private readonly inFlight = new Map<string, Promise<ReadonlySet<string> | undefined>>();
  private readonly queries = new Map<string, Query>();
  private counter = 0;

  private readonly stopSharing: () => void;

  constructor(private readonly ctx: ModuleContext, private readonly timeoutMs = 10_000, private readonly maxEntries = 10_000) {
    // In a cluster a contact's session may be on another node, whose presence this node never
    // handled: features verified against their hash anywhere are worth knowing everywhere.
    this.stopSharing = ctx.cluster.handle(CAPS_VERIFIED, (payload, from) => {
      const { key, features } = (payload ?? {}) as { key?: unknown; features?: unknown };
      if (from.node === ctx.cluster.nodeName || typeof key !== 'string' || !Array.isArray(features) || this.known.has(key)) return undefined;
      this.remember(key, new Set(features.filter((f): f is string => typeof f === 'string')));
      return undefined;
    });
  }

  /** The features a session's current presence announces, if already known (no query). */
  knownFeatures(session: ClientSession): ReadonlySet<string> | undefined {
    const caps = capsOf(session.presence);
    if (!caps) return undefined;
    const unverified = this.unverified.get(session.jid.full);
    if (unverified) return unverified;
    const parts = this.keys(caps).map((k) => this.known.get(k));
    if (parts.some((p) => p === undefined)) return undefined;
    return union(parts as ReadonlySet<string>[]);
  }

  /** The features the caps of `presence` (sent by `session`) stand for, asking the client when they are new. */
  async resolve(session: ClientSession, presence: Element): Promise<ReadonlySet<string> | undefined> {
    const caps = capsOf(presence);
    if (!caps) return undefined;
    this.unverified.delete(session.jid.full);
    const parts = await Promise.all(this.keys(caps).map((key) => this.featuresOf(key, caps, session)));
    const found = parts.filter((p): p is ReadonlySet<string> => p !== undefined);
    return found.length === 0 ? undefined : union(found);
  }

  /** An IQ result or error to the server: the answer to one of our queries, if it is one (and from whom we asked). */
  answer(stanza: Element, from: string): boolean {
    const id = stanza.attrs.id;
    const query = id === undefined ? undefined : this.queries.get(id);
    if (!query || query.jid !== from) return false;
    this.queries.delete(id!);
    clearTimeout(query.timer);
    query.resolve(stanza.attrs.type === 'result' ? stanza.getChild('query', NS_DISCO_INFO) : undefined);
    return true;
  }

  /** A session ended: its own (unverified) features go. */
  forget(full: string): void {
    this.unverified.delete(full);
  }

  dispose(): void {
    this.stopSharing();
    for (const q of this.queries.values()) clearTimeout(q.timer);
    this.queries.clear();
  }

  private keys(caps: CapsReference): string[] {
    return [`${caps.node}#${caps.ver}`, ...(caps.hash ? [] : caps.ext.map((e) => `${caps.node}#${e}`))];
  }

  private featuresOf(key: string, caps: CapsReference, session: ClientSession): Promise<ReadonlySet<string> | undefined> {
    const cached = this.known.get(key);
    if (cached) return Promise.resolve(cached);
    const running = this.inFlight.get(key);
    if (running) return running;
    const work = this.ask(session, key).then((query) => {
      if (!query) return undefined;
      const features = new Set(query.getChildren('feature').map((f) => f.attrs.var).filter((v): v is string => v !== undefined));
      const verifiable = caps.hash !== undefined && key === `${caps.node}#${caps.ver}`;
      if (verifiable && capsHash(query, caps.hash!) !== caps.ver) {
        this.ctx.log.debug({ jid: session.jid.full, node: key }, 'entity caps answer does not match its hash; not cached');
        this.unverified.set(session.jid.full, features);
        return features;
      }
      this.remember(key, features);
      if (verifiable && this.ctx.cluster.enabled) {
        void this.ctx.cluster.request(CAPS_VERIFIED, { key, features: [...features] })
          .catch((err: unknown) => this.ctx.log.warn({ err, node: key }, 'could not share verified entity caps with the cluster'));
      }
      return features;
    }).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, work);
    return work;
  }

  private remember(key: string, features: ReadonlySet<string>): void {
    this.known.set(key, features);
    // Clients choose their caps: keep the cache bounded, forgetting the oldest entries first.
    for (const oldest of this.known.keys()) {
      if (this.known.size <= this.maxEntries) break;
      this.known.delete(oldest);
    }
  }

  /** disco#info to the client (XEP-0115 section 6.2), from its server's domain. */
  private ask(session: ClientSession, node: string): Promise<Element | undefined> {
    const id = `caps-${++this.counter}`;
    const jid = session.jid.full;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.queries.delete(id);
        resolve(undefined);
      }, this.timeoutMs);
      timer.unref();
      this.queries.set(id, { jid, resolve, timer });
      session.send(xml('iq', { type: 'get', from: session.jid.domain, to: jid, id }, xml('query', { xmlns: NS_DISCO_INFO, node })));
    });
  }
}

function union(sets: ReadonlySet<string>[]): ReadonlySet<string> {
  if (sets.length === 1) return sets[0]!;
  const all = new Set<string>();
  for (const s of sets) for (const f of s) all.add(f);
  return all;
}
