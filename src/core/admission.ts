// Caps the connections one address may have open before authenticating, so a flood of idle
// sockets cannot exhaust the server (seed 001 "traffic throttling", RFC 6120 13.12), and
// refuses addresses banned for a while (modules/bans.ts: repeated authentication failures).
export class Admission {
  private readonly pending = new Map<string, number>();
  /** Banned address -> end of the ban (ms since the epoch). */
  private readonly banned = new Map<string, number>();

  constructor(private readonly maxPerAddress: number, private readonly now: () => number = Date.now) {}

  /** Refuses new connections from `address` until `until` (ms since the epoch). */
  ban(address: string, until: number): void {
    this.banned.set(address, Math.max(until, this.banned.get(address) ?? 0));
  }

  /** Lifts a ban; returns whether there was one. */
  unban(address: string): boolean {
    return this.banned.delete(address);
  }

  /** When the ban of `address` ends, if it is banned now. */
  bannedUntil(address: string): number | undefined {
    const until = this.banned.get(address);
    if (until === undefined) return undefined;
    if (until > this.now()) return until;
    this.banned.delete(address);
    return undefined;
  }

  /** Bans in force, by address. */
  bans(): { address: string; until: number }[] {
    return [...this.banned.keys()].flatMap((address) => {
      const until = this.bannedUntil(address);
      return until === undefined ? [] : [{ address, until }];
    });
  }

  /** Why `tryAcquire` refused `address`, for the stream error and the log. */
  refusal(address: string): string {
    const until = this.bannedUntil(address);
    return until !== undefined ? `your address is banned until ${new Date(until).toISOString()}` : 'too many unauthenticated connections from your address';
  }

  tryAcquire(address: string): boolean {
    if (this.bannedUntil(address) !== undefined) return false;
    const n = this.pending.get(address) ?? 0;
    if (n >= this.maxPerAddress) return false;
    this.pending.set(address, n + 1);
    return true;
  }

  release(address: string): void {
    const n = this.pending.get(address) ?? 0;
    if (n <= 1) this.pending.delete(address);
    else this.pending.set(address, n - 1);
  }
}
