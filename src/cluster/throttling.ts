// cm-ht-traffic-throttling for what a node sends to the other nodes (seed 001 section 11.12):
// stanzas (xmpp) and bytes (bin) per minute and per lifetime, counted by core/traffic-limits.ts.
// Over a limit a stanza is dropped whatever the action says: "disc" would mean cutting this
// node's NATS link, which would make the others take it for dead.
import type { Logger } from 'pino';
import { parseTrafficThrottling, TrafficLimiter } from '../core/traffic-limits.js';

/** A gate for one outgoing stanza of `bytes`, or undefined when the specification sets no limit. */
export function outgoingTrafficGate(spec: string, log: Logger, now?: () => number): ((bytes: number) => boolean) | undefined {
  const limiter = new TrafficLimiter(parseTrafficThrottling(spec), now);
  if (!limiter.active) return undefined;
  return (bytes) => {
    const breach = limiter.countBytes(bytes) ?? limiter.countStanza();
    if (breach?.first) log.warn({ limit: breach.description }, 'cluster: cm-ht-traffic-throttling limit reached; stanzas to other nodes are dropped');
    return breach === undefined;
  };
}
