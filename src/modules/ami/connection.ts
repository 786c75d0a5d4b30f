// One AMI link over TCP: connects, logs in, follows events, correlates actions with their
// responses by ActionID (with a timeout), collects event lists (DeviceStateList), and keeps the
// link alive: a Ping when the server has been silent, TCP keepalive, and after any failure
// (refused connection, Asterisk restart, half-open TCP, wrong secret) a new attempt after an
// exponential backoff. It never throws at its owner: failures are logged and counted.
import { connect, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { AmiDecoder, AmiMessage, UnsafeValueError, encodeAction } from './codec.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import { LogThrottle } from './throttle.js';

export interface ConnectionOptions {
  name: string;
  host: string;
  port: number;
  username: string;
  secret: string;
  /** Log every message in and out (the seed's ami_trace). */
  trace: boolean;
  /** How long an action may wait for its response, in milliseconds (the seed's request_timeout). */
  requestTimeout: number;
  connectTimeout: number;
  /** Silence after which a Ping checks the link, in milliseconds. */
  keepaliveInterval: number;
  backoff: BackoffOptions;
}

export type LinkState = 'connecting' | 'logging-in' | 'up' | 'waiting' | 'stopped';

export interface LinkStatistics {
  eventsIn: number;
  actionsOut: number;
  reconnects: number;
  failures: number;
}

/** What a link counts: an event received, an action sent, a reconnection attempt, a failure of any sort. */
export type LinkActivity = 'event' | 'action' | 'reconnect' | 'failure';

const counterOf: Record<LinkActivity, keyof LinkStatistics> = { event: 'eventsIn', action: 'actionsOut', reconnect: 'reconnects', failure: 'failures' };

/** Counts in a link's statistics, and tells the link's owner (metrics); both transports use it. */
export function countActivity(stats: LinkStatistics, handlers: { counted?(what: LinkActivity): void }, what: LinkActivity): void {
  stats[counterOf[what]]++;
  handlers.counted?.(what);
}

export interface ConnectionHandlers {
  /** Logged in; events follow. */
  up(): void;
  event(message: AmiMessage): void;
  /** The link was up and is not any more. */
  down(reason: string): void;
  /** Counted per kind by the owner (metrics): a failure of any sort, a reconnection attempt. */
  counted?(what: LinkActivity): void;
}

interface Pending {
  resolve(message: AmiMessage): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

interface ListCollector {
  each(event: AmiMessage): void;
  done(complete: boolean): void;
  idle: NodeJS.Timeout;
}

export class ActionError extends Error {}

export class AmiConnection {
  state: LinkState = 'waiting';
  readonly stats: LinkStatistics = { eventsIn: 0, actionsOut: 0, reconnects: 0, failures: 0 };
  /** Why the link is not up, for `check` and the statistics. */
  lastError: string | undefined;
  private socket: Socket | undefined;
  private readonly backoff: Backoff;
  private retryTimer: NodeJS.Timeout | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private readonly pending = new Map<string, Pending>();
  private readonly lists = new Map<string, ListCollector>();
  private nextId = 1;
  private lastHeard = 0;
  private pinging = false;
  private attempts = 0;
  private running = false;
  private readonly garbageWarnings = new LogThrottle();

  constructor(readonly options: ConnectionOptions, private readonly log: Logger, private readonly handlers: ConnectionHandlers) {
    this.backoff = new Backoff(options.backoff);
  }

  get ready(): boolean {
    return this.state === 'up';
  }

  /** Connects, and keeps connecting after failures until stop(); may start again after stop(). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.open();
  }

  stop(): void {
    this.running = false;
    this.state = 'stopped';
    clearTimeout(this.retryTimer);
    this.teardown('stopped');
  }

  /** Sends an action and resolves with its response (Response: Error included); rejects on timeout or disconnection. */
  action(action: string, fields: Record<string, string> = {}, timeout = this.options.requestTimeout, id = this.newActionId()): Promise<AmiMessage> {
    return new Promise((resolve, reject) => {
      const socket = this.socket;
      if (!socket || (this.state !== 'up' && action !== 'Login')) return reject(new ActionError(`${this.options.name} is not connected`));
      let text: string;
      try {
        text = encodeAction(action, id, fields);
      } catch (e) {
        if (e instanceof UnsafeValueError) return reject(e);
        throw e;
      }
      // Decided after this turn's I/O: when our own event loop was held up (a long task, GC,
      // an overloaded machine), timers run before the socket is read and the answer may be there.
      const timer = setTimeout(() => setImmediate(() => {
        if (!this.pending.delete(id)) return;
        this.count('failure');
        reject(new ActionError(`no response to ${action} from ${this.options.name} within ${timeout} ms`));
        // A server that stops answering may be gone without a FIN (half-open TCP): check at once.
        if (action !== 'Ping') this.checkAlive();
        // Slow but talking (events keep coming): not dead; the next silence pings again.
        else if (Date.now() - this.lastHeard >= timeout) this.fail(`no answer to Ping within ${timeout} ms: the connection is dead`);
      }), timeout);
      this.pending.set(id, { resolve, reject, timer });
      if (this.options.trace) this.log.info({ direction: 'out', action, fields: action === 'Login' ? { ...fields, Secret: '********' } : fields }, 'AMI trace');
      this.count('action');
      // Actions of one tick (a change relayed to many devices, a resync) leave in one segment.
      if (!socket.writableCorked) {
        socket.cork();
        process.nextTick(() => socket.uncork());
      }
      socket.write(text);
    });
  }

  /**
   * An action answered by a list of events (EventList: start ... EventList: Complete). `each` gets
   * every event of the list in order; resolves with whether the list completed (false: the server
   * does not know the action, or the link went down meanwhile).
   */
  async list(action: string, each: (event: AmiMessage) => void): Promise<boolean> {
    let response: AmiMessage;
    const id = this.newActionId();
    const completion = new Promise<boolean>((resolve) => {
      // Registered before the action leaves: list events may arrive in the same packet as the response.
      const collector: ListCollector = {
        each,
        done: (complete) => {
          clearTimeout(collector.idle);
          this.lists.delete(id);
          resolve(complete);
        },
        idle: setTimeout(() => collector.done(false), this.options.requestTimeout * 10),
      };
      this.lists.set(id, collector);
    });
    try {
      response = await this.action(action, {}, this.options.requestTimeout, id);
    } catch (e) {
      this.lists.get(id)?.done(false);
      throw e;
    }
    if (response.response?.toLowerCase() !== 'success') {
      this.lists.get(id)?.done(false);
      throw new ActionError(`${action} refused by ${this.options.name}: ${response.get('Message') ?? response.response}`);
    }
    return completion;
  }

  private newActionId(): string {
    return `sb-${this.nextId++}`;
  }

  private count(what: LinkActivity): void {
    countActivity(this.stats, this.handlers, what);
  }

  private open(): void {
    const { host, port, name } = this.options;
    this.state = 'connecting';
    if (this.attempts++ > 0) this.count('reconnect');
    const socket = connect({ host, port });
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    socket.setKeepAlive(true, this.options.keepaliveInterval);
    socket.setTimeout(this.options.connectTimeout, () => this.fail(`no answer from ${host}:${port} within ${this.options.connectTimeout} ms`));
    const decoder = new AmiDecoder({
      banner: (version) => {
        socket.setTimeout(0);
        this.log.debug({ version }, 'AMI banner');
        void this.login();
      },
      message: (message) => this.received(message),
      garbage: (line) => {
        this.count('failure');
        this.garbageWarnings.run((skipped) => this.log.warn({ line: line.slice(0, 200), ...(skipped > 0 ? { similarWarningsSkipped: skipped } : {}) },
          `AMI ${name} sent a line that is not "Key: Value"; skipped`));
      },
      fatal: (reason) => this.fail(reason),
    });
    socket.on('data', (chunk: string) => {
      this.lastHeard = Date.now();
      decoder.write(chunk);
    });
    socket.on('error', (e) => this.fail(`${(e as NodeJS.ErrnoException).code ?? e.message} (${host}:${port})`));
    socket.on('close', () => this.fail('connection closed by the server'));
  }

  private async login(): Promise<void> {
    this.state = 'logging-in';
    let response: AmiMessage;
    try {
      response = await this.action('Login', { Username: this.options.username, Secret: this.options.secret, Events: 'call' });
    } catch (e) {
      return this.fail(`no answer to Login: ${(e as Error).message}`);
    }
    if (response.response?.toLowerCase() !== 'success') {
      // Asterisk closes the connection itself after a refused login; we retry with backoff, as
      // the administrator may be fixing manager.conf right now.
      return this.fail(`login refused as "${this.options.username}": ${response.get('Message') ?? 'no reason given'} (check username and secret in ami.servers and manager.conf)`);
    }
    this.state = 'up';
    this.lastError = undefined;
    this.backoff.reset();
    this.lastHeard = Date.now();
    this.keepaliveTimer = setInterval(() => this.keepalive(), Math.max(50, Math.floor(this.options.keepaliveInterval / 2)));
    this.log.info({ host: this.options.host, port: this.options.port }, `AMI ${this.options.name} logged in`);
    this.handlers.up();
  }

  private received(message: AmiMessage): void {
    if (this.options.trace) this.log.info({ direction: 'in', fields: Object.fromEntries(message.fields) }, 'AMI trace');
    const id = message.actionId;
    if (message.response !== undefined && id !== undefined) {
      const pending = this.pending.get(id);
      if (pending) {
        this.pending.delete(id);
        clearTimeout(pending.timer);
        pending.resolve(message);
      }
      return;
    }
    if (message.event === undefined) return;
    this.count('event');
    const list = id !== undefined ? this.lists.get(id) : undefined;
    if (list) {
      list.idle.refresh();
      if (message.get('EventList')?.toLowerCase() === 'complete') list.done(true);
      else list.each(message);
      return;
    }
    if (this.state === 'up') this.handlers.event(message);
  }

  /** Called often; pings only when the server has been silent for keepaliveInterval. */
  private keepalive(): void {
    if (this.state !== 'up' || this.pinging || Date.now() - this.lastHeard < this.options.keepaliveInterval) return;
    this.checkAlive();
  }

  private checkAlive(): void {
    if (this.state !== 'up' || this.pinging) return;
    this.pinging = true;
    // A timeout fails the link (see action); any answer proves it alive.
    this.action('Ping').then(() => undefined, () => undefined).finally(() => { this.pinging = false; });
  }

  /** Ends the current connection for `reason` and schedules the next attempt. */
  private fail(reason: string): void {
    if (!this.running || this.state === 'waiting') return;
    const wasUp = this.state === 'up';
    this.count('failure');
    this.lastError = reason;
    this.teardown(reason);
    this.state = 'waiting';
    const delay = this.backoff.next();
    const { name, host, port } = this.options;
    this.log[wasUp ? 'warn' : 'error']({ host, port, retryInMs: delay }, `AMI ${name}: ${reason}; retrying in ${delay} ms`);
    if (wasUp) this.handlers.down(reason);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  private teardown(reason: string): void {
    clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = undefined;
    this.pinging = false;
    const socket = this.socket;
    this.socket = undefined;
    if (socket) {
      socket.removeAllListeners('close');
      socket.removeAllListeners('data');
      socket.on('error', () => undefined);
      socket.destroy();
    }
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new ActionError(`${this.options.name}: ${reason}`));
      this.pending.delete(id);
    }
    for (const list of [...this.lists.values()]) list.done(false);
  }
}
