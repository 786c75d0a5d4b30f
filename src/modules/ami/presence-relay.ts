// Presence states (PresenceStateChange) between Asterisk servers over AMI, as the seed's broker
// relays them (SetVar PRESENCE_STATE(...) on the other servers), without its three-second
// guess at what is an echo. Presence has no aggregation in Asterisk: the latest change wins.
// Names as for devices: `CustomPresence:<name>` is shared under its own name; a presentity of a
// channel driver (`SIP/100`) is mirrored as `CustomPresence:SIP/100`, and such mirrors (a `/` or
// `:` after the prefix) are never relayed themselves. XMPP has no place for these (res_xmpp
// distributes device states and mailboxes only), so they stay between AMI servers.
import { isSafeFieldValue } from './codec.js';
import type { RelayTarget } from './device-relay.js';
import { Holdings } from './holdings.js';

/** ast_presence_state_val's names. */
export const PRESENCE_STATES = ['not_set', 'unavailable', 'available', 'away', 'xa', 'chat', 'dnd'] as const;

export interface Presence {
  status: string;
  subtype: string;
  message: string;
}

const PREFIX = 'custompresence:';

export function presenceKind(presentity: string): 'shared' | 'mirror' | 'presentity' {
  if (!presentity.toLowerCase().startsWith(PREFIX)) return 'presentity';
  return /[/:]/.test(presentity.slice(PREFIX.length)) ? 'mirror' : 'shared';
}

export function presenceMirrorOf(presentity: string): string {
  return presenceKind(presentity) === 'shared' ? presentity : `CustomPresence:${presentity}`;
}

/**
 * The value PRESENCE_STATE() is written with: `status,subtype,message`; with the `e` option the
 * subtype and message are base64, which keeps commas and any text intact.
 */
export function presenceValue({ status, subtype, message }: Presence): string {
  if (subtype === '' && message === '') return status;
  const plain = /^[\x20-\x7e]*$/;
  if (!subtype.includes(',') && !message.includes(',') && plain.test(subtype) && plain.test(message)) return `${status},${subtype},${message}`;
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  return `${status},${b64(subtype)},${b64(message)},e`;
}

/** What a change is compared by, to recognise echoes whatever the encoding. */
const identity = (p: Presence) => `${p.status}\u0000${p.subtype}\u0000${p.message}`;

export interface PresenceRelayEvents {
  refused(target: RelayTarget, what: string): void;
}

export class PresenceRelay {
  /** The latest state of each presentity and the server it came from. */
  private readonly latest = new Map<string, { presence: Presence; from: RelayTarget }>();
  private readonly holdings = new Map<RelayTarget, Holdings>();

  constructor(private readonly targets: readonly RelayTarget[], private readonly events: PresenceRelayEvents, now: () => number = Date.now) {
    for (const t of targets) this.holdings.set(t, new Holdings(now));
  }

  snapshot(): { presentity: string; status: string; subtype: string; message: string; from: string }[] {
    return [...this.latest].map(([presentity, { presence, from }]) => ({ presentity, ...presence, from: from.name }));
  }

  fromServer(target: RelayTarget, presentity: string, presence: Presence, inList = false): void {
    const status = presence.status.trim().toLowerCase();
    if (!(PRESENCE_STATES as readonly string[]).includes(status)) return this.events.refused(target, `unknown presence state "${presence.status}" for ${presentity}`);
    if (presentity === '' || ![presentity, presence.subtype, presence.message].every(isSafeFieldValue)) {
      return this.events.refused(target, `unusable presence of ${JSON.stringify(presentity)}`);
    }
    const normalised = { ...presence, status };
    const kind = presenceKind(presentity);
    const holdings = this.holdings.get(target)!;
    if (kind === 'mirror') {
      holdings.heardInList(presentity, identity(normalised));
      return;
    }
    if (kind === 'shared') {
      const key = identity(normalised);
      if (inList ? holdings.heardInList(presentity, key) : holdings.heardLive(presentity, key)) return;
    }
    const previous = this.latest.get(presentity);
    if (previous && previous.from === target && identity(previous.presence) === identity(normalised)) return;
    this.latest.set(presentity, { presence: normalised, from: target });
    for (const other of this.targets) this.write(other, presentity);
  }

  /** A server is logged in again and listed its presence states: it gets what it lacks. */
  listCompleted(target: RelayTarget): void {
    for (const presentity of this.latest.keys()) this.write(target, presentity);
  }

  disconnected(target: RelayTarget): void {
    this.holdings.get(target)!.forgetKnown();
  }

  private write(target: RelayTarget, presentity: string): void {
    const latest = this.latest.get(presentity);
    if (!target.ready || !latest) return;
    const shared = presenceKind(presentity) === 'shared';
    // A server's own presentity is its own; for a shared one it already holds its own change.
    if (latest.from === target) return;
    const mirror = shared ? presentity : presenceMirrorOf(presentity);
    const holdings = this.holdings.get(target)!;
    const key = identity(latest.presence);
    if (holdings.known(mirror) === key) return;
    holdings.wrote(mirror, key, shared);
    target.setVar(`PRESENCE_STATE(${mirror})`, presenceValue(latest.presence));
  }
}
