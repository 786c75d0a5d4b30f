// API tokens for the HTTP management API: created by administrators (ad-hoc command or
// `switchboard token create`), presented as `Authorization: Bearer <token>`.
//
// A token is `sbt_<id>_<secret>`: the id finds the record, the secret proves possession. Only
// SHA-256 of the secret is stored: the secret is 32 random bytes, so a fast hash is enough
// (nothing to brute-force), and a stolen database gives no usable token. Every token expires.
//
// The records are one JSON document in the key-value store (namespace 'api-tokens', owner '' which
// no account can have), read on every check, so a token created or revoked by the CLI while the
// server runs takes effect at once.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Storage } from '../../storage/types.js';
import type { ApiScope } from '../../http/api-registry.js';

export interface TokenRecord {
  id: string;
  /** What the token is for, as the administrator wrote it. */
  name: string;
  /** Bare JID of the administrator the token acts for. */
  admin: string;
  scope: ApiScope;
  createdAt: string;
  expiresAt: string;
  /** SHA-256 of the secret part, hex. */
  hash: string;
}

export type TokenInfo = Omit<TokenRecord, 'hash'> & { expired: boolean };

export const TOKEN_SCOPES: readonly ApiScope[] = ['read', 'admin'];
/** Longest lifetime a token may be given, in days. */
export const MAX_TOKEN_DAYS = 3650;

const NAMESPACE = 'api-tokens';
const OWNER = '';
const KEY = 'tokens';
const TOKEN_PATTERN = /^sbt_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export class TokenError extends Error {}

/** Why a presented token is refused (all answered 401, with this text). */
export type TokenRefusal = 'malformed' | 'unknown' | 'expired';

function hashOf(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export class TokenStore {
  private writing: Promise<unknown> = Promise.resolve();

  constructor(private readonly storage: Storage, private readonly now: () => Date = () => new Date()) {}

  private async read(): Promise<Record<string, TokenRecord>> {
    return (await this.storage.keyValue(NAMESPACE).get<Record<string, TokenRecord>>(OWNER, KEY)) ?? {};
  }

  /** Read-modify-write of the document, one at a time within this process. */
  private change<T>(fn: (records: Record<string, TokenRecord>) => T): Promise<T> {
    const run = this.writing.then(async () => {
      const records = await this.read();
      const result = fn(records);
      await this.storage.keyValue(NAMESPACE).set(OWNER, KEY, records);
      return result;
    });
    this.writing = run.catch(() => undefined);
    return run;
  }

  /** Creates a token; the returned `token` is the only time the secret is seen. */
  async create(options: { admin: string; scope: ApiScope; days: number; name?: string }): Promise<{ token: string; info: TokenInfo }> {
    if (!TOKEN_SCOPES.includes(options.scope)) throw new TokenError(`scope must be one of ${TOKEN_SCOPES.join(', ')}, not "${options.scope}"`);
    if ((options.name?.length ?? 0) > 200) throw new TokenError('the name of a token is at most 200 characters');
    if (!Number.isInteger(options.days) || options.days < 1 || options.days > MAX_TOKEN_DAYS) {
      throw new TokenError(`the lifetime must be a whole number of days from 1 to ${MAX_TOKEN_DAYS}, not "${options.days}"`);
    }
    const id = randomBytes(6).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const created = this.now();
    const record: TokenRecord = {
      id,
      name: options.name?.trim() || 'API token',
      admin: options.admin,
      scope: options.scope,
      createdAt: created.toISOString(),
      expiresAt: new Date(created.getTime() + options.days * 86_400_000).toISOString(),
      hash: hashOf(secret),
    };
    await this.change((records) => { records[id] = record; });
    return { token: `sbt_${id}_${secret}`, info: this.info(record) };
  }

  async list(): Promise<TokenInfo[]> {
    return Object.values(await this.read()).map((r) => this.info(r)).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** Revokes a token by id; false when there is none. */
  revoke(id: string): Promise<boolean> {
    return this.change((records) => {
      if (!Object.hasOwn(records, id)) return false; // not 'in': 'constructor' is in every object
      delete records[id];
      return true;
    });
  }

  /** The token's record when `presented` is a valid, unexpired token; else why not. */
  async verify(presented: string): Promise<{ ok: true; record: TokenRecord } | { ok: false; reason: TokenRefusal }> {
    const m = TOKEN_PATTERN.exec(presented);
    if (!m) return { ok: false, reason: 'malformed' };
    const record = (await this.read())[m[1]!];
    if (!record) return { ok: false, reason: 'unknown' };
    const expected = Buffer.from(record.hash, 'hex');
    const actual = Buffer.from(hashOf(m[2]!), 'hex');
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return { ok: false, reason: 'unknown' };
    if (Date.parse(record.expiresAt) <= this.now().getTime()) return { ok: false, reason: 'expired' };
    return { ok: true, record };
  }

  private info({ hash: _hash, ...rest }: TokenRecord): TokenInfo {
    return { ...rest, expired: Date.parse(rest.expiresAt) <= this.now().getTime() };
  }
}
