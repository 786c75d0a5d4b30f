// res_zmq_manager's transport (the seed's `cmd_port` / `evt_port`): AMI events as JSON objects
// on a PUB socket, actions as JSON objects on a REP socket answered by a JSON array (the
// response, then the events of a list). ZeroMQ has no login and hides reconnections, so the
// link counts as up once CoreStatus is answered; an unanswered one (request timeout) takes it
// down, both sockets made anew after the backoff as the seed does with its REQ socket; and a
// changed CoreStartupTime means the Asterisk restarted behind a reconnection ZeroMQ made
// silently (events published meanwhile are lost): the relay resynchronises. Needs the optional
// `zeromq` package, loaded only when a server uses this transport.
import type { Logger } from 'pino';
import { AmiMessage } from './codec.js';
import { Backoff } from './backoff.js';
import { ActionError, countActivity, type LinkActivity, type LinkState, type LinkStatistics } from './connection.js';
import type { AmiConfig, AmiServerConfig } from './config.js';
import type { Transport, TransportFactory, TransportHandlers } from './link.js';

type ZeroMq = typeof import('zeromq');

let loading: Promise<ZeroMq> | undefined;

function loadZeroMq(): Promise<ZeroMq> {
  loading ??= import('zeromq');
  return loading;
}

/** A JSON object of res_zmq_manager as an AMI message (values are strings there, but be lenient). */
function messageOf(value: unknown): AmiMessage | undefined {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  return new AmiMessage(Object.entries(value).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)] as const));
}

export class ZmqConnection implements Transport {
  state: LinkState = 'waiting';
  readonly stats: LinkStatistics = { eventsIn: 0, actionsOut: 0, reconnects: 0, failures: 0 };
  lastError: string | undefined;
  private subscriber: import('zeromq').Subscriber | undefined;
  private request: import('zeromq').Request | undefined;
  /** REQ sockets take one request at a time: actions wait their turn. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly backoff: Backoff;
  private retryTimer: NodeJS.Timeout | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private generation = 0;
  private attempts = 0;
  private nextId = 1;
  private running = false;
  /** CoreStartupDate and CoreStartupTime as last seen: a change is a restart. */
  private startup: string | undefined;

  constructor(private readonly server: AmiServerConfig, private readonly config: AmiConfig, private readonly log: Logger,
    private readonly handlers: TransportHandlers) {
    this.backoff = new Backoff({ initial: config['reconnect-initial'], max: config['reconnect-max'] });
  }

  get ready(): boolean {
    return this.state === 'up';
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.open();
  }

  stop(): void {
    this.running = false;
    this.state = 'stopped';
    clearTimeout(this.retryTimer);
    this.close();
  }

  action(action: string, fields: Record<string, string> = {}): Promise<AmiMessage> {
    return this.exchange(action, fields).then((reply) => reply[0] ?? new AmiMessage([['Response', 'Error'], ['Message', 'empty reply']]));
  }

  async list(action: string, each: (event: AmiMessage) => void): Promise<boolean> {
    const [response, ...events] = await this.exchange(action, {});
    if (response?.response?.toLowerCase() !== 'success') {
      throw new ActionError(`${action} refused by ${this.server.name}: ${response?.get('Message') ?? response?.response ?? 'no response'}`);
    }
    let complete = false;
    for (const event of events) {
      this.count('event');
      if (event.get('EventList')?.toLowerCase() === 'complete') complete = true;
      else each(event);
    }
    return complete;
  }

  private count(what: LinkActivity): void {
    countActivity(this.stats, this.handlers, what);
  }

  /** One request and its reply on the REQ socket, in turn; a timeout fails the link. */
  private exchange(action: string, fields: Record<string, string>, allowBeforeUp = false): Promise<AmiMessage[]> {
    const generation = this.generation;
    const run = this.queue.then(async () => {
      const socket = this.request;
      if (!socket || generation !== this.generation || (!allowBeforeUp && this.state !== 'up')) throw new ActionError(`${this.server.name} is not connected`);
      const body = { Action: action, ActionID: `sb-${this.nextId++}`, ...fields };
      if (this.server['ami-trace']) this.log.info({ direction: 'out', body }, 'AMI trace');
      this.count('action');
      try {
        await socket.send(JSON.stringify(body));
        const [reply] = await socket.receive();
        const parsed: unknown = JSON.parse(reply!.toString('utf8'));
        if (this.server['ami-trace']) this.log.info({ direction: 'in', reply: parsed }, 'AMI trace');
        const list = Array.isArray(parsed) ? parsed : [parsed];
        return list.map(messageOf).filter((m): m is AmiMessage => m !== undefined);
      } catch (e) {
        const reason = (e as { code?: string }).code === 'EAGAIN'
          ? `no answer to ${action} within ${this.config['request-timeout']} ms`
          : `${action} failed: ${(e as Error).message}`;
        this.fail(reason, generation);
        throw new ActionError(`${this.server.name}: ${reason}`);
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async open(): Promise<void> {
    let zmq: ZeroMq;
    try {
      zmq = await loadZeroMq();
    } catch {
      this.lastError = 'the zmq transport needs the zeromq package (npm install zeromq)';
      this.log.error(`AMI ${this.server.name}: ${this.lastError}`);
      return;
    }
    if (!this.running) return;
    const generation = ++this.generation;
    this.state = 'connecting';
    if (this.attempts++ > 0) this.count('reconnect');
    const { host } = this.server;
    try {
      this.request = new zmq.Request({ receiveTimeout: this.config['request-timeout'], sendTimeout: this.config['request-timeout'], linger: 0 });
      this.request.connect(`tcp://${host}:${this.server['cmd-port']}`);
      this.subscriber = new zmq.Subscriber({ linger: 0 });
      this.subscriber.connect(`tcp://${host}:${this.server['evt-port']}`);
      this.subscriber.subscribe('{');
    } catch (e) {
      // connect() throws at once on an endpoint ZeroMQ refuses; without this the start()'s
      // `void this.open()` would turn it into an unhandled rejection.
      this.fail(`cannot open the ZeroMQ sockets: ${(e as Error).message}`, generation);
      return;
    }
    void this.readEvents(this.subscriber, generation);
    try {
      this.startup = startupOf(await this.exchange('CoreStatus', {}, true));
    } catch {
      return;
    }
    if (generation !== this.generation || !this.running) return;
    this.state = 'up';
    this.lastError = undefined;
    this.backoff.reset();
    this.log.info(`AMI ${this.server.name} reached over ZeroMQ`);
    this.keepaliveTimer = setInterval(() => void this.keepalive(), this.config['keepalive-interval']);
    this.handlers.up();
  }

  private async keepalive(): Promise<void> {
    let startup: string | undefined;
    try {
      startup = startupOf(await this.exchange('CoreStatus', {}));
    } catch {
      return; // the exchange failed the link
    }
    if (startup === undefined || this.startup === undefined || startup === this.startup || this.state !== 'up') return;
    this.startup = startup;
    this.log.warn(`AMI ${this.server.name} restarted (CoreStartupTime ${startup}): resynchronising`);
    this.count('reconnect');
    this.handlers.down('restarted');
    this.handlers.up();
  }

  private async readEvents(socket: import('zeromq').Subscriber, generation: number): Promise<void> {
    try {
      for await (const [frame] of socket) {
        if (generation !== this.generation) return;
        let message: AmiMessage | undefined;
        try {
          message = messageOf(JSON.parse(frame!.toString('utf8')));
        } catch {
          message = undefined;
        }
        if (!message) {
          this.count('failure');
          this.log.warn({ frame: frame!.toString('utf8').slice(0, 200) }, `AMI ${this.server.name} published something that is not a JSON object; skipped`);
          continue;
        }
        if (this.server['ami-trace']) this.log.info({ direction: 'in', fields: Object.fromEntries(message.fields) }, 'AMI trace');
        this.count('event');
        if (this.state === 'up') this.handlers.event(message);
      }
    } catch {
      // Closed by close(): the next connection reads on.
    }
  }

  private fail(reason: string, generation: number): void {
    if (!this.running || generation !== this.generation || this.state === 'waiting') return;
    const wasUp = this.state === 'up';
    this.count('failure');
    this.lastError = reason;
    this.close();
    this.state = 'waiting';
    const delay = this.backoff.next();
    this.log[wasUp ? 'warn' : 'error']({ retryInMs: delay }, `AMI ${this.server.name}: ${reason}; retrying in ${delay} ms`);
    if (wasUp) this.handlers.down(reason);
    this.retryTimer = setTimeout(() => void this.open(), delay);
  }

  private close(): void {
    this.generation++;
    clearInterval(this.keepaliveTimer);
    this.request?.close();
    this.subscriber?.close();
    this.request = undefined;
    this.subscriber = undefined;
  }
}

/** When the Asterisk started, from a CoreStatus reply; undefined if it does not say (no permission). */
function startupOf(reply: AmiMessage[]): string | undefined {
  const response = reply[0];
  if (response?.response?.toLowerCase() !== 'success') return undefined;
  const date = response.get('CoreStartupDate');
  const time = response.get('CoreStartupTime');
  return date && time ? `${date} ${time}` : undefined;
}

export const zmqTransport: TransportFactory = (server, config, log, handlers) => new ZmqConnection(server, config, log, handlers);
