// Failed admin logins counted per key (a client address, an account) over a sliding window: at
// `attempts` failures within `windowMs` the key is refused until the oldest of them leaves the
// window. In memory: a restart forgets the counts. Our own rather than a rate-limiting library
// because what is counted is failures only (checked before the password is even looked at), and
// the clock must be injectable for tests.

export interface LoginLimiterOptions {
  attempts: number;
  windowMs: number;
  now?: () => number;
  /** Keys kept at most; beyond, the ones whose failures all expired are dropped first, then the oldest. */
  maxKeys?: number;
}

export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();
  private readonly now: () => number;
  private readonly maxKeys: number;

  constructor(private readonly options: LoginLimiterOptions) {
    this.now = options.now ?? Date.now;
    this.maxKeys = options.maxKeys ?? 10_000;
  }

  private recent(key: string): number[] {
    const cutoff = this.now() - this.options.windowMs;
    const list = (this.failures.get(key) ?? []).filter((t) => t > cutoff);
    if (list.length) this.failures.set(key, list);
    else this.failures.delete(key);
    return list;
  }

  /** Seconds until `key` may try again; 0 when it may now. */
  retryAfter(key: string): number {
    const list = this.recent(key);
    if (list.length < this.options.attempts) return 0;
    const oldest = list[list.length - this.options.attempts]!;
    return Math.max(1, Math.ceil((oldest + this.options.windowMs - this.now()) / 1000));
  }

  fail(key: string): void {
    const list = this.recent(key);
    list.push(this.now());
    this.failures.delete(key);
    this.failures.set(key, list);
    if (this.failures.size > this.maxKeys) this.prune();
  }

  reset(key: string): void {
    this.failures.delete(key);
  }

  private prune(): void {
    for (const key of [...this.failures.keys()]) if (this.recent(key).length === 0) this.failures.delete(key);
    // Still too many: the keys failed longest ago go first (Map order is insertion order, refreshed by fail()).
    for (const key of this.failures.keys()) {
      if (this.failures.size <= this.maxKeys) break;
      this.failures.delete(key);
    }
  }
}
