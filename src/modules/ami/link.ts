// One configured Asterisk server: its transport (AMI over TCP, or res_zmq_manager's ZeroMQ
// sockets) seen by the relay as a RelayTarget, with its resynchronisation after each login.
import type { Logger } from 'pino';
import type { AmiMessage } from './codec.js';
import { eidOf, type AmiConfig, type AmiServerConfig } from './config.js';
import { AmiConnection, type ConnectionHandlers, type LinkState, type LinkStatistics } from './connection.js';
import type { DeviceRelay, RelayTarget } from './device-relay.js';
import type { PresenceRelay } from './presence-relay.js';
import { LogThrottle } from './throttle.js';

/** What the relay needs of a transport; AmiConnection (TCP) and ZmqConnection provide it. */
export interface Transport {
  readonly state: LinkState;
  readonly ready: boolean;
  readonly stats: LinkStatistics;
  readonly lastError: string | undefined;
  start(): void;
  stop(): void;
  action(action: string, fields?: Record<string, string>): Promise<AmiMessage>;
  list(action: string, each: (event: AmiMessage) => void): Promise<boolean>;
}

/** What a transport tells its link: the TCP connection's handlers, which the ZeroMQ one shares. */
export type TransportHandlers = ConnectionHandlers;

export type TransportFactory = (server: AmiServerConfig, config: AmiConfig, log: Logger, handlers: TransportHandlers) => Transport;

export const tcpTransport: TransportFactory = (server, config, log, handlers) => new AmiConnection({
  name: server.name,
  host: server.host,
  port: server.port,
  username: server.username ?? '',
  secret: server.secret ?? '',
  trace: server['ami-trace'],
  requestTimeout: config['request-timeout'],
  connectTimeout: config['connect-timeout'],
  keepaliveInterval: config['keepalive-interval'],
  backoff: { initial: config['reconnect-initial'], max: config['reconnect-max'] },
}, log, handlers);

export class AmiLink implements RelayTarget {
  readonly name: string;
  readonly eid: string;
  readonly transport: Transport;
  devices: DeviceRelay | undefined;
  presence: PresenceRelay | undefined;
  private readonly setVarWarnings = new LogThrottle();
  private readonly countFailure: (() => void) | undefined;

  constructor(readonly server: AmiServerConfig, config: AmiConfig, private readonly log: Logger, factory: TransportFactory,
    counted?: TransportHandlers['counted']) {
    this.name = server.name;
    this.countFailure = counted && (() => counted('failure'));
    this.eid = eidOf(server);
    this.transport = factory(server, config, log, {
      up: () => void this.resynchronise().catch((e: Error) => this.log.error({ err: e }, `resynchronising ${this.name} failed`)),
      event: (message) => this.event(message),
      down: () => {
        this.devices?.disconnected(this);
        this.presence?.disconnected(this);
      },
      counted,
    });
  }

  get ready(): boolean {
    return this.transport.ready;
  }

  setVar(variable: string, value: string): void {
    const warn = (text: string, message?: string) => this.setVarWarnings.run((skipped) => this.log.warn(
      { variable, value, message, ...(skipped > 0 ? { similarWarningsSkipped: skipped } : {}) }, text));
    this.transport.action('SetVar', { Variable: variable, Value: value }).then((response) => {
      if (response.response?.toLowerCase() !== 'success') {
        this.countFailure?.();
        warn(`AMI ${this.name} refused SetVar ${variable} (does its manager.conf user have write = call?)`, response.get('Message'));
      }
    }, (e: Error) => warn(`SetVar ${variable} on ${this.name} failed: ${e.message}`));
  }

  private event(message: AmiMessage): void {
    const name = message.event?.toLowerCase();
    if (name === 'devicestatechange' && this.devices) {
      const device = message.get('Device');
      const state = message.get('State');
      if (device === undefined || state === undefined) return this.log.warn({ event: message.toString() }, 'DeviceStateChange without Device or State; ignored');
      this.devices.fromServer(this, device, state);
    } else if (name === 'presencestatechange' && this.presence) {
      this.presenceEvent(message, false);
    }
  }

  private presenceEvent(message: AmiMessage, inList: boolean): void {
    const presentity = message.get('Presentity');
    const status = message.get('Status');
    if (presentity === undefined || status === undefined) {
      this.log.warn({ event: message.toString() }, 'PresenceStateChange without Presentity or Status; ignored');
      return;
    }
    this.presence!.fromServer(this, presentity, { status, subtype: message.get('Subtype') ?? '', message: message.get('Message') ?? '' }, inList);
  }

  /**
   * After each login: the current states (DeviceStateList, PresenceStateList) as if they had just
   * changed, then every mirror the server lacks. An Asterisk without those actions (before 13) only
   * gets the mirrors.
   */
  private async resynchronise(): Promise<void> {
    if (this.devices) {
      const devices = this.devices;
      devices.listStarted(this);
      let complete = false;
      try {
        complete = await this.transport.list('DeviceStateList', (event) => {
          const device = event.get('Device');
          const state = event.get('State');
          if (event.event?.toLowerCase() === 'devicestatechange' && device !== undefined && state !== undefined) devices.fromServer(this, device, state, true);
        });
      } catch (e) {
        this.log.warn(`cannot resynchronise device states of ${this.name}: ${(e as Error).message}`);
      }
      if (!this.ready) return;
      devices.listCompleted(this, complete);
    }
    if (this.presence) {
      try {
        await this.transport.list('PresenceStateList', (event) => {
          if (event.event?.toLowerCase() === 'presencestatechange') this.presenceEvent(event, true);
        });
      } catch (e) {
        this.log.warn(`cannot resynchronise presence states of ${this.name}: ${(e as Error).message}`);
      }
      if (this.ready) this.presence.listCompleted(this);
    }
  }
}
