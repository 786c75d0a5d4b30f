// Device states between Asterisk servers connected over AMI, and with the XMPP side, as the seed
// zmq-ami-broker does it (SetVar DEVICE_STATE(Custom:<device>) on the other servers) but
// without its loops and with Asterisk's aggregation for a device several sources report.
//
// Device names fall in three kinds, which decides what is relayed (README "Sharing device state
// over AMI"):
// - a real device (`SIP/100`, `PJSIP/alice`, `Queue:sales`, ...): each server reports its own;
//   every other server gets the aggregate of the other sources' reports in `Custom:<device>`,
//   which its hint `SIP/100&Custom:SIP/100` combines with the local device;
// - `Custom:<name>` with neither `/` nor `:` in the name (seed 000's `Custom:mystate`): one state
//   shared under its own name; every server holds the aggregate of all sources, its own
//   included, as Asterisk's distributed device state does with XMPP;
// - `Custom:<device>` whose name is itself a device (`Custom:SIP/100`, `Custom:Queue:sales`): a
//   mirror the relay writes; never relayed itself.
import { aggregateDeviceState, isDeviceState, type DeviceState } from '../../telephony/device-state.js';
import { isSafeFieldValue } from './codec.js';
import { Holdings } from './holdings.js';

export type DeviceKind = 'device' | 'shared' | 'mirror';

const CUSTOM = 'custom:';

export function deviceKind(device: string): DeviceKind {
  if (!device.toLowerCase().startsWith(CUSTOM)) return 'device';
  return /[/:]/.test(device.slice(CUSTOM.length)) ? 'mirror' : 'shared';
}

/** The Custom device that carries `device`'s state on the other servers. */
export function mirrorOf(device: string): string {
  return deviceKind(device) === 'shared' ? device : `Custom:${device}`;
}

/** One AMI server as the relay sees it. */
export interface RelayTarget {
  readonly name: string;
  /** The entity id its reports go under (its Asterisk EID, or one derived from its name). */
  readonly eid: string;
  /** Connected and logged in: writes can be sent. */
  readonly ready: boolean;
  setVar(variable: string, value: string): void;
}

export interface DeviceRelayEvents {
  /** A server reported a new state for a device (not an echo): shared with the XMPP side. */
  reported(device: string, state: DeviceState, target: RelayTarget): void;
  /** Something that cannot be relayed (unknown state, unsafe name): counted and logged by the owner. */
  refused(target: RelayTarget | undefined, what: string): void;
}

export class DeviceRelay {
  /** Per device, the state each source reports, by eid. */
  private readonly reports = new Map<string, Map<string, DeviceState>>();
  private readonly holdings = new Map<RelayTarget, Holdings>();
  /** Devices a server listed during its resynchronisation, until the list completes. */
  private readonly listing = new Map<RelayTarget, Set<string>>();

  constructor(private readonly targets: readonly RelayTarget[], private readonly events: DeviceRelayEvents, now: () => number = Date.now) {
    for (const t of targets) this.holdings.set(t, new Holdings(now));
  }

  /** Devices and what each source reports, for `check`, tests and statistics. */
  snapshot(): { device: string; state: DeviceState; reports: Record<string, DeviceState> }[] {
    return [...this.reports].map(([device, r]) => ({ device, state: aggregateDeviceState(r.values()), reports: Object.fromEntries(r) }));
  }

  /** A DeviceStateChange from a server, live or as part of its DeviceStateList. */
  fromServer(target: RelayTarget, device: string, stateText: string, inList = false): void {
    const state = stateText.trim().toUpperCase();
    if (!isDeviceState(state)) return this.events.refused(target, `unknown device state "${stateText}" for ${device}`);
    if (!isSafeFieldValue(device) || device === '') return this.events.refused(target, `unusable device name ${JSON.stringify(device)}`);
    // A live event while the list is under way proves the device as well as a list entry does.
    this.listing.get(target)?.add(device);
    const kind = deviceKind(device);
    if (kind === 'mirror') {
      this.holdingsOf(target).heardInList(device, state);
      return;
    }
    if (kind === 'shared') {
      const holdings = this.holdingsOf(target);
      const ours = inList ? holdings.heardInList(device, state) : holdings.heardLive(device, state);
      if (ours) return;
    }
    if (this.setReport(device, target.eid, state)) {
      this.events.reported(device, state, target);
      this.spread(device);
    }
  }

  /** A state published over XMPP under `eid` (an Asterisk with res_xmpp, or any publisher). */
  fromXmpp(eid: string, device: string, state: DeviceState): void {
    if (!isSafeFieldValue(device) || device === '' || deviceKind(device) === 'mirror') {
      return this.events.refused(undefined, `device ${JSON.stringify(device)} published over XMPP cannot be relayed to AMI`);
    }
    if (this.setReport(device, eid, state)) this.spread(device);
  }

  /** Whether `eid` is one of our servers' (their XMPP items are our own publishes). */
  ownsEid(eid: string): boolean {
    return this.targets.some((t) => t.eid.toLowerCase() === eid.toLowerCase());
  }

  /** A server is logged in again: its DeviceStateList follows. */
  listStarted(target: RelayTarget): void {
    this.listing.set(target, new Set());
  }

  /**
   * Its list is over: if it completed, what it no longer lists it no longer reports (an Asterisk
   * that restarted forgot them). Either way it gets every mirror it lacks.
   */
  listCompleted(target: RelayTarget, complete = true): void {
    const listed = this.listing.get(target);
    this.listing.delete(target);
    if (listed && complete) {
      for (const [device, reports] of this.reports) {
        if (!listed.has(device) && reports.get(target.eid) !== undefined) {
          reports.delete(target.eid);
          this.events.reported(device, 'UNKNOWN', target);
          this.spread(device);
        }
      }
    }
    for (const device of this.reports.keys()) this.write(target, device);
  }

  /** The connection ended: what it holds is unknown until it lists it again. */
  disconnected(target: RelayTarget): void {
    this.listing.delete(target);
    this.holdingsOf(target).forgetKnown();
  }

  private holdingsOf(target: RelayTarget): Holdings {
    return this.holdings.get(target)!;
  }

  /** Records a report; false when nothing changed. */
  private setReport(device: string, eid: string, state: DeviceState): boolean {
    let reports = this.reports.get(device);
    if (!reports) this.reports.set(device, (reports = new Map()));
    if (reports.get(eid) === state) return false;
    reports.set(eid, state);
    return true;
  }

  private spread(device: string): void {
    for (const target of this.targets) this.write(target, device);
  }

  /** Writes the device's mirror on one server if it holds something else than it should. */
  private write(target: RelayTarget, device: string): void {
    if (!target.ready) return;
    const reports = this.reports.get(device);
    if (!reports) return;
    const shared = deviceKind(device) === 'shared';
    const states = [...reports].filter(([eid]) => shared || eid !== target.eid).map(([, s]) => s);
    const mirror = mirrorOf(device);
    const holdings = this.holdingsOf(target);
    const held = holdings.known(mirror);
    // Nobody else reports it: a server that never heard of it needs nothing; one that holds an
    // old value gets UNKNOWN, what an Asterisk reads for a Custom device never set.
    const wanted = states.length > 0 ? aggregateDeviceState(states) : held !== undefined ? 'UNKNOWN' : undefined;
    if (wanted === undefined || wanted === held) return;
    // Only a shared name's echo can be mistaken for a report; a mirror's events are ignored.
    holdings.wrote(mirror, wanted, shared);
    target.setVar(`DEVICE_STATE(${mirror})`, wanted);
  }
}
