// A warning that may repeat thousands of times a second (a server refusing every SetVar, a peer
// sending garbage) is logged once per interval, with how many were left out meanwhile.

export class LogThrottle {
  private last = -Infinity;
  private skipped = 0;

  constructor(private readonly intervalMs = 10_000, private readonly now: () => number = Date.now) {}

  /** Calls `log` with the number left out since the last call it let through, or counts this one. */
  run(log: (skipped: number) => void): void {
    const now = this.now();
    if (now - this.last < this.intervalMs) {
      this.skipped++;
      return;
    }
    this.last = now;
    const skipped = this.skipped;
    this.skipped = 0;
    log(skipped);
  }
}
