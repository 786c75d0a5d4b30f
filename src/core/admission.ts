// Caps the connections one address may have open before authenticating, so a flood of idle
// sockets cannot exhaust the server (seed 001 "traffic throttling", RFC 6120 13.12).
export class Admission {
  private readonly pending = new Map<string, number>();

  constructor(private readonly maxPerAddress: number) {}

  tryAcquire(address: string): boolean {
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
