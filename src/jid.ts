// JIDs (RFC 7622). Normalisation is the practical subset of PRECIS that matters for routing:
// NFKC, case folding of localpart and domainpart, IDNA-style lowercase domains, and the
// characters the RFC forbids. Full PRECIS tables are not worth a dependency for a telephony
// hub whose accounts are ASCII in practice; the forbidden set still rejects what would
// break routing or escaping.

export class JidError extends Error {}

const LOCAL_FORBIDDEN = /["&'/:<>@\s\u0000-\u001f\u007f]/u;
const DOMAIN_FORBIDDEN = /[\s\u0000-\u001f\u007f@/"&'<>:[\]]/u; // ':' and brackets only valid in IPv6 literals, not served here
const RESOURCE_FORBIDDEN = /[\u0000-\u001f\u007f]/u;
const MAX_PART = 1023;

export class JID {
  readonly local: string;
  readonly domain: string;
  readonly resource: string;
  private _bare?: string;
  private _full?: string;

  /** Parts must already be normalised; use `parseJid` or `jid()` to build from user input. */
  constructor(local: string, domain: string, resource = '') {
    this.local = local;
    this.domain = domain;
    this.resource = resource;
  }

  get bare(): string {
    return (this._bare ??= this.local ? this.local + '@' + this.domain : this.domain);
  }

  get full(): string {
    return (this._full ??= this.resource ? this.bare + '/' + this.resource : this.bare);
  }

  isBare(): boolean {
    return this.resource === '';
  }

  bareJid(): JID {
    return this.resource ? new JID(this.local, this.domain) : this;
  }

  withResource(resource: string): JID {
    return new JID(this.local, this.domain, normaliseResource(resource));
  }

  equals(other: JID): boolean {
    return this.full === other.full;
  }

  toString(): string {
    return this.full;
  }
}

export function normaliseLocal(local: string): string {
  const s = local.normalize('NFKC').toLowerCase();
  if (s.length > MAX_PART) throw new JidError('localpart too long');
  if (LOCAL_FORBIDDEN.test(s)) throw new JidError('localpart contains a forbidden character');
  return s;
}

export function normaliseDomain(domain: string): string {
  let s = domain.normalize('NFKC').toLowerCase();
  if (s.endsWith('.')) s = s.slice(0, -1);
  if (s.length === 0) throw new JidError('empty domainpart');
  if (s.length > MAX_PART) throw new JidError('domainpart too long');
  if (DOMAIN_FORBIDDEN.test(s)) throw new JidError('domainpart contains a forbidden character');
  for (const label of s.split('.')) if (label.length === 0 || label.length > 63) throw new JidError('invalid domain label');
  return s;
}

export function normaliseResource(resource: string): string {
  const s = resource.normalize('NFKC');
  if (s.length === 0) throw new JidError('empty resourcepart');
  if (s.length > MAX_PART) throw new JidError('resourcepart too long');
  if (RESOURCE_FORBIDDEN.test(s)) throw new JidError('resourcepart contains a forbidden character');
  return s;
}

// Routing parses the same few JIDs over and over (every stanza's to/from); a small cache of
// already-normalised strings saves the regex and normalisation work.
const cache = new Map<string, JID>();
const CACHE_MAX = 10000;

/** Parses and normalises a JID string; throws JidError when it is invalid. */
export function parseJid(s: string): JID {
  const hit = cache.get(s);
  if (hit) return hit;
  const slash = s.indexOf('/');
  const beforeResource = slash >= 0 ? s.slice(0, slash) : s;
  const at = beforeResource.indexOf('@');
  if (slash >= 0 && slash === s.length - 1) throw new JidError('empty resourcepart');
  if (at === 0) throw new JidError('empty localpart');
  const local = at > 0 ? normaliseLocal(beforeResource.slice(0, at)) : '';
  const domain = normaliseDomain(at >= 0 ? beforeResource.slice(at + 1) : beforeResource);
  const resource = slash >= 0 ? normaliseResource(s.slice(slash + 1)) : '';
  const j = new JID(local, domain, resource);
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(s, j);
  return j;
}

/** Like parseJid but returns undefined for invalid input. */
export function tryParseJid(s: string | undefined): JID | undefined {
  if (s === undefined) return undefined;
  try {
    return parseJid(s);
  } catch {
    return undefined;
  }
}
