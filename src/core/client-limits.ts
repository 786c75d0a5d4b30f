// The traffic limits of one client connection, whatever its transport: `c2s.traffic-throttling`
// (stanzas and bytes per minute and per lifetime, seed 11.12) and `c2s.max-stanzas-per-second`
// (a token bucket). Bytes are counted from the first byte; stanzas once a resource is bound
// (before that, max-stanza-size, negotiation-timeout and max-unauthenticated-per-ip apply).
// Over a `disc` limit the stream ends with policy-violation (after the stanzas received before
// the one that broke it); over a `drop` limit the stanza is dropped, answered with a
// policy-violation error unless it is itself an error or a result.
// Every breach is logged with the peer and the limit (once per minute and limit for drops).
import type { Logger } from 'pino';
import type { CoreConfig } from '../config/schema.js';
import { StanzaError, StreamError } from './errors.js';
import { TokenBucket } from './rate-limit.js';
import { TrafficLimiter, formatTrafficRule, parseTrafficThrottling, type TrafficBreach } from './traffic-limits.js';

/** How a refused stanza is answered: the stream ends, or the stanza gets an error. */
export type Refusal = { stream: StreamError } | { stanza: StanzaError };

/** Who the guard speaks of in its log lines. */
export interface GuardedPeer {
  /** The full JID once bound, else the remote address. */
  readonly peer: string;
  readonly remoteAddress: string;
}

export class ClientTrafficGuard {
  private readonly limiter: TrafficLimiter | undefined;
  private readonly bucket: TokenBucket | undefined;
  private readonly rateAction: 'drop' | 'disc';
  private rateReported = -Infinity;

  constructor(config: CoreConfig['c2s'], private readonly client: GuardedPeer, private readonly log: Logger, private readonly now: () => number = Date.now) {
    const limiter = new TrafficLimiter(parseTrafficThrottling(config['traffic-throttling']), now);
    this.limiter = limiter.active ? limiter : undefined;
    const rate = config['max-stanzas-per-second'];
    if (rate > 0) this.bucket = new TokenBucket(rate, config['stanza-burst'] ?? Math.max(1, Math.ceil(rate * 2)), now);
    this.rateAction = config['stanza-rate-action'];
  }

  /** Counts bytes received; the stream error to end the stream with, if they broke a `disc` limit. */
  bytes(n: number): StreamError | undefined {
    const breach = this.limiter?.countBytes(n);
    return breach?.rule.action === 'disc' ? this.disconnect(breach) : undefined;
  }

  /** Counts a stanza of a bound session; how to refuse it, if it must not be handled. */
  admit(): Refusal | undefined {
    const breach = this.limiter?.countStanza();
    if (breach) {
      if (breach.rule.action === 'disc') return { stream: this.disconnect(breach) };
      if (breach.first) this.logBreach(breach.description, formatTrafficRule(breach.rule), 'drop');
      return { stanza: new StanzaError('policy-violation', `traffic limit: ${breach.description}`, breach.scope === 'minute' ? 'wait' : 'cancel') };
    }
    if (!this.bucket || this.bucket.take()) return undefined;
    const description = `more than ${this.bucket.rate} stanzas per second`;
    const limit = `max-stanzas-per-second ${this.bucket.rate}`;
    if (this.rateAction === 'disc') {
      this.logBreach(description, limit, 'disc');
      return { stream: new StreamError('policy-violation', `stanza rate limit: ${description}`) };
    }
    // One log line a minute at most for a client that keeps hitting the cap.
    const now = this.now();
    if (now - this.rateReported >= 60_000) {
      this.rateReported = now;
      this.logBreach(description, limit, 'drop');
    }
    return { stanza: new StanzaError('policy-violation', `stanza rate limit: ${description}; slow down`, 'wait') };
  }

  private disconnect(breach: TrafficBreach): StreamError {
    this.logBreach(breach.description, formatTrafficRule(breach.rule), 'disc');
    return new StreamError('policy-violation', `traffic limit: ${breach.description}`);
  }

  private logBreach(description: string, limit: string, action: 'drop' | 'disc'): void {
    this.log.warn({ peer: this.client.peer, ip: this.client.remoteAddress, limit, action }, `client traffic limit exceeded: ${description}`);
  }
}
