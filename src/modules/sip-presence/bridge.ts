// The bridge between the inputs (table, HTTP) and an output (internal sessions or an external
// BOSH client): the state of each mapped phone (in memory), the seed's state machine applied to
// every report, and the expiry that turns a phone that went silent offline.
import type { Logger } from 'pino';
import { availabilityOf, isPhoneState, transition, PHONE_STATES, type Availability, type PhoneState, type Transition } from './state-machine.js';
import { normaliseSipUri, type Mapping, type PhoneMapping } from './mapping.js';

/** One report of a phone's state, from the table or the HTTP endpoint. */
export interface PhoneReport {
  /** The SIP URI, normalised. */
  uri: string;
  state: PhoneState;
  /** Seconds until the report expires (e.g. the REGISTER's Expires); the configured expiry when absent. */
  expires?: number;
}

/** Checks one raw report; returns the report or what is wrong with it. */
export function checkReport(raw: { uri?: unknown; state?: unknown; expires?: unknown }): PhoneReport | string {
  if (typeof raw.uri !== 'string') return 'uri must be a string';
  const uri = normaliseSipUri(raw.uri);
  if (!uri) return `"${raw.uri}" is not a SIP URI of a user (user@host)`;
  if (typeof raw.state !== 'string' || !isPhoneState(raw.state)) return `unknown state ${JSON.stringify(raw.state)} (one of ${PHONE_STATES.join(', ')})`;
  const report: PhoneReport = { uri, state: raw.state };
  if (raw.expires !== undefined && raw.expires !== null) {
    const n = typeof raw.expires === 'string' ? Number(raw.expires) : raw.expires;
    if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0 || n > 86400 * 7) return `expires must be a whole number of seconds between 1 and 604800, not ${JSON.stringify(raw.expires)}`;
    report.expires = n;
  }
  return report;
}

/** Where phone presence goes. Calls for one phone come in order; the output keeps that order. */
export interface PresenceOutput {
  /** The phone's presence changed (never called for a refresh). */
  update(phone: PhoneMapping, availability: Availability): void;
  /** The phone's state as the output restored it at start (external mode), if any. */
  restored?(): Map<string, PhoneState>;
  /** Waits for pending work and lets go of everything. */
  stop(): Promise<void>;
}

interface PhoneEntry {
  state: PhoneState;
  timer?: NodeJS.Timeout;
}

export class Bridge {
  private mapping: Mapping = { phones: new Map(), problems: [] };
  private readonly phones = new Map<string, PhoneEntry>();

  constructor(private readonly output: PresenceOutput, private readonly expirySeconds: number, private readonly log: Logger) {}

  /** Phones the output kept from before a restart are taken up in their state, with a fresh expiry. */
  restore(states: Map<string, PhoneState>): void {
    for (const [uri, state] of states) {
      if (!this.mapping.phones.has(uri) || state === 'offline') continue;
      const entry: PhoneEntry = { state };
      this.phones.set(uri, entry);
      this.arm(uri, entry, undefined);
    }
  }

  /**
   * Takes a new mapping as a whole. Phones no longer mapped, or mapped to another account, go
   * offline under their old mapping first.
   */
  setMapping(next: Mapping): void {
    for (const [uri, entry] of this.phones) {
      const before = this.mapping.phones.get(uri)!;
      const after = next.phones.get(uri);
      if (after && after.username === before.username && after.password === before.password) continue;
      clearTimeout(entry.timer);
      this.phones.delete(uri);
      if (entry.state !== 'offline') this.output.update(before, 'offline');
      this.log.info({ uri, line: after?.line }, after ? 'phone mapped to another account: offline under the old one' : 'phone no longer mapped: offline');
    }
    this.mapping = next;
  }

  isMapped(uri: string): boolean {
    return this.mapping.phones.has(uri);
  }

  stateOf(uri: string): PhoneState {
    return this.phones.get(uri)?.state ?? 'offline';
  }

  /** The output lost the phone's presence (its session was ended): offline, without a report. */
  lost(uri: string): void {
    const entry = this.phones.get(uri);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.phones.delete(uri);
    this.log.info({ uri, state: entry.state }, 'phone presence ended by the server: offline until its next report');
  }

  /** Applies one report; undefined when the phone is not mapped (nothing changes). */
  report(report: PhoneReport, source: string): Transition | undefined {
    const phone = this.mapping.phones.get(report.uri);
    if (!phone) {
      this.log.info({ uri: report.uri, state: report.state, source }, 'report for a SIP URI that is not in the mapping file: ignored');
      return undefined;
    }
    return this.apply(phone, report.state, report.expires, source);
  }

  private apply(phone: PhoneMapping, reported: PhoneState, expires: number | undefined, source: string): Transition {
    const entry = this.phones.get(phone.uri) ?? { state: 'offline' as PhoneState };
    const t = transition(entry.state, reported);
    // The expiry is the bridge's own decision, not a report: never an invalid transition.
    if (!t.valid && source !== 'expiry') this.log.warn({ uri: phone.uri, from: t.from, reported, applied: t.to, source }, `invalid transition ${t.from} -> ${reported}: applied as ${t.to}`);
    else this.log.debug({ uri: phone.uri, from: t.from, to: t.to, source }, 'phone state');
    entry.state = t.to;
    clearTimeout(entry.timer);
    if (t.to === 'offline') this.phones.delete(phone.uri);
    else {
      this.phones.set(phone.uri, entry);
      this.arm(phone.uri, entry, expires);
    }
    if (t.changed) this.output.update(phone, availabilityOf(t.to));
    return t;
  }

  /** Silence past the expiry means offline. */
  private arm(uri: string, entry: PhoneEntry, expires: number | undefined): void {
    const seconds = expires ?? this.expirySeconds;
    entry.timer = setTimeout(() => {
      const phone = this.mapping.phones.get(uri);
      if (!phone || this.phones.get(uri) !== entry) return;
      this.log.info({ uri, state: entry.state, seconds }, 'no report within the expiry: phone offline');
      this.apply(phone, 'offline', undefined, 'expiry');
    }, seconds * 1000);
    entry.timer.unref();
  }

  async stop(): Promise<void> {
    for (const entry of this.phones.values()) clearTimeout(entry.timer);
    this.phones.clear();
    await this.output.stop();
  }
}
