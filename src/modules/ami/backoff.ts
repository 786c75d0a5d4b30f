// Exponential backoff between reconnection attempts: a restarting Asterisk is not hammered, and
// a link comes back within `max` of the server's return.

export interface BackoffOptions {
  /** First delay, in milliseconds. */
  initial: number;
  /** Ceiling of the delay, in milliseconds. */
  max: number;
}

export class Backoff {
  private attempt = 0;

  /** `random` is injectable so tests see exact delays. */
  constructor(private readonly options: BackoffOptions, private readonly random: () => number = Math.random) {}

  /**
   * The delay before the next attempt: doubling from `initial` up to `max`, less up to a fifth at
   * random so that links to servers that went down together do not retry in lockstep.
   */
  next(): number {
    const base = Math.min(this.options.max, this.options.initial * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.max(1, Math.round(base * (1 - 0.2 * this.random())));
  }

  /** A connection succeeded: the next failure starts again from `initial`. */
  reset(): void {
    this.attempt = 0;
  }

  get failures(): number {
    return this.attempt;
  }
}
