// Traffic limits per connection (seed 001 section 11.12, "Traffic Control"): the
// `cm-ht-traffic-throttling` format `{type}:{per-minute}:{lifetime}:{action}[,...]`, e.g.
// `xmpp:25k:0:disc,bin:200m:0:disc`. `xmpp` counts stanzas, `bin` counts bytes, both as
// received from the peer; `0` means no limit; `disc` ends the stream, `drop` drops the stanzas
// over the limit. Amounts take the suffixes k, m and g (decimal: 25k = 25,000).
//
// The format is the seed's and small, so it is parsed here rather than with a library. The
// limiter is transport-neutral: client streams use it now, cluster links can use it as is.

export type TrafficType = 'xmpp' | 'bin';
export type TrafficAction = 'disc' | 'drop';

export interface TrafficRule {
  type: TrafficType;
  /** Most stanzas (xmpp) or bytes (bin) in one minute; 0 = no per-minute limit. */
  perMinute: number;
  /** Most over the connection's lifetime; 0 = no lifetime limit. */
  lifetime: number;
  action: TrafficAction;
}

export class TrafficFormatError extends Error {}

const FORMAT = '{type}:{per-minute}:{lifetime}:{action}, e.g. xmpp:25k:0:disc';
const MULTIPLIERS: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9 };

/** Parses a throttling specification; an empty one means no limits. Throws TrafficFormatError. */
export function parseTrafficThrottling(spec: string): TrafficRule[] {
  if (spec.trim() === '') return [];
  const rules: TrafficRule[] = [];
  for (const raw of spec.split(',')) {
    const entry = raw.trim();
    if (entry === '') throw new TrafficFormatError(`empty entry in "${spec}" (expected ${FORMAT})`);
    const parts = entry.split(':').map((p) => p.trim());
    if (parts.length !== 4) throw new TrafficFormatError(`"${entry}" must have four parts: ${FORMAT}`);
    const [type, perMinute, lifetime, action] = parts as [string, string, string, string];
    const t = type.toLowerCase();
    if (t !== 'xmpp' && t !== 'bin') throw new TrafficFormatError(`"${entry}": the type must be xmpp (stanzas) or bin (bytes), not "${type}"`);
    const a = action.toLowerCase();
    if (a !== 'disc' && a !== 'drop') throw new TrafficFormatError(`"${entry}": the action must be disc (disconnect) or drop, not "${action}"`);
    if (rules.some((r) => r.type === t)) throw new TrafficFormatError(`"${entry}": ${t} is limited twice`);
    rules.push({ type: t, perMinute: amount(perMinute, entry, 'per-minute'), lifetime: amount(lifetime, entry, 'lifetime'), action: a });
  }
  return rules;
}

function amount(text: string, entry: string, what: string): number {
  const m = /^(\d+)([kmg]?)$/i.exec(text);
  const value = m ? Number(m[1]) * MULTIPLIERS[m[2]!.toLowerCase()]! : NaN;
  if (!Number.isSafeInteger(value)) throw new TrafficFormatError(`"${entry}": the ${what} amount must be a whole number with an optional k, m or g suffix, not "${text}"`);
  return value;
}

/** Writes rules back in the seed's format (logs, dump). */
export function formatTrafficRule(rule: TrafficRule): string {
  return `${rule.type}:${rule.perMinute}:${rule.lifetime}:${rule.action}`;
}

/** A limit a connection went over. */
export interface TrafficBreach {
  rule: TrafficRule;
  scope: 'minute' | 'lifetime';
  limit: number;
  /** The first breach of this limit in the current minute (or ever, for lifetime): worth a log line. */
  first: boolean;
  /** e.g. "more than 25000 stanzas per minute". */
  description: string;
}

interface Counter {
  rule: TrafficRule;
  windowStart: number;
  inWindow: number;
  total: number;
  reportedWindow: number | undefined;
  reportedLifetime: boolean;
}

const MINUTE = 60_000;

/**
 * Counts what one connection receives against its rules. `countBytes` and `countStanza`
 * return the limit broken, if any: the caller disconnects on `disc`, and on `drop` drops the
 * stanza. A `bin` rule with `drop` breaks at the bytes but drops the stanzas that follow, until
 * its minute is over.
 */
export class TrafficLimiter {
  private readonly counters: Partial<Record<TrafficType, Counter>> = {};

  constructor(rules: readonly TrafficRule[], private readonly now: () => number = Date.now) {
    const start = now();
    for (const rule of rules) {
      if (rule.perMinute > 0 || rule.lifetime > 0) {
        this.counters[rule.type] = { rule, windowStart: start, inWindow: 0, total: 0, reportedWindow: undefined, reportedLifetime: false };
      }
    }
  }

  get active(): boolean {
    return Object.keys(this.counters).length > 0;
  }

  countBytes(bytes: number): TrafficBreach | undefined {
    const counter = this.counters.bin;
    if (!counter) return undefined;
    return this.add(counter, bytes);
  }

  countStanza(): TrafficBreach | undefined {
    const xmpp = this.counters.xmpp;
    const breach = xmpp ? this.add(xmpp, 1) : undefined;
    if (breach) return breach;
    const bin = this.counters.bin;
    if (bin?.rule.action !== 'drop') return undefined;
    // Bytes over a drop limit: the stanzas they carry are dropped.
    this.roll(bin);
    return this.check(bin);
  }

  private add(counter: Counter, n: number): TrafficBreach | undefined {
    this.roll(counter);
    counter.inWindow += n;
    counter.total += n;
    return this.check(counter);
  }

  private roll(counter: Counter): void {
    const now = this.now();
    if (now - counter.windowStart >= MINUTE) {
      counter.windowStart = now;
      counter.inWindow = 0;
    }
  }

  /** The limit the counter is over, if any; its window must be current (`roll`). */
  private check(counter: Counter): TrafficBreach | undefined {
    const { rule } = counter;
    const unit = rule.type === 'xmpp' ? 'stanzas' : 'bytes';
    if (rule.lifetime > 0 && counter.total > rule.lifetime) {
      const first = !counter.reportedLifetime;
      counter.reportedLifetime = true;
      return { rule, scope: 'lifetime', limit: rule.lifetime, first, description: `more than ${rule.lifetime} ${unit} over the connection's lifetime` };
    }
    if (rule.perMinute > 0 && counter.inWindow > rule.perMinute) {
      const first = counter.reportedWindow !== counter.windowStart;
      counter.reportedWindow = counter.windowStart;
      return { rule, scope: 'minute', limit: rule.perMinute, first, description: `more than ${rule.perMinute} ${unit} per minute` };
    }
    return undefined;
  }
}
