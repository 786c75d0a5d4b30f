// An Asterisk as its manager interface shows it, for the AMI relay's tests and bench: the banner,
// Login (a wrong secret gets "Authentication failed" and the connection closed, as Asterisk
// does), Ping, SetVar of DEVICE_STATE(Custom:...) and PRESENCE_STATE(CustomPresence:...) (the
// write is reported back as DeviceStateChange / PresenceStateChange, like Asterisk does),
// DeviceStateList and PresenceStateList (EventList start ... Complete), the Events class mask,
// and faults on demand: a restart, a connection cut in the middle of a message, garbage lines,
// a frozen connection (half-open TCP). Written apart from the relay's codec, so that a bug
// there is not mirrored here.
import { createServer, type Server, type Socket } from 'node:net';

export interface SimulatorOptions {
  username?: string;
  secret?: string;
  /** Asterisk before 13 has no DeviceStateList / PresenceStateList. */
  lists?: boolean;
}

interface Session {
  /** Sends one message to the peer (TCP: as text; ZeroMQ: into the reply being built). */
  send(fields: Record<string, string>): void;
  socket?: Socket;
  buffer: string;
  loggedIn: boolean;
  /** Event classes asked for at login ('on' or a list); DeviceStateChange is class call. */
  events: Set<string>;
  frozen: boolean;
}

export interface SetVarRecord {
  variable: string;
  value: string;
  at: bigint;
}

export class AmiSimulator {
  port = 0;
  /** The device state cache: every device, Custom ones included. */
  readonly devices = new Map<string, string>();
  readonly presence = new Map<string, { status: string; subtype: string; message: string }>();
  readonly setVars: SetVarRecord[] = [];
  loginAttempts = 0;
  /** When this Asterisk (re)started, as CoreStatus tells. */
  startedAt = new Date();
  failedLogins = 0;
  actions: string[] = [];
  private server: Server | undefined;
  private zmq: { reply: import('zeromq').Reply; publisher: import('zeromq').Publisher; frozen: boolean; sending: Promise<unknown> } | undefined;
  zmqPorts: { cmd: number; evt: number } | undefined;
  private readonly sessions = new Set<Session>();
  private waiters: (() => void)[] = [];

  constructor(readonly name: string, private readonly options: SimulatorOptions = {}) {}

  get username(): string {
    return this.options.username ?? 'relay';
  }

  get secret(): string {
    return this.options.secret ?? 'amipw';
  }

  /** This Asterisk as an entry of the relay's `ami.servers` (AMI over TCP). */
  serverConfig(): { name: string; host: string; port: number; username: string; secret: string } {
    return { name: this.name, host: '127.0.0.1', port: this.port, username: this.username, secret: this.secret };
  }

  /** Listens on 127.0.0.1 (the same port again after a restart). */
  async start(port = this.port): Promise<number> {
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.startedAt = new Date();
    const address = server.address();
    this.port = typeof address === 'object' && address ? address.port : port;
    return this.port;
  }

  /** Stops listening and drops every connection, as a stopping Asterisk does. */
  async stop(): Promise<void> {
    for (const s of this.sessions) s.socket?.destroy();
    this.sessions.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  /** An Asterisk restart: connections dropped; local device states kept (as devices re-register). */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  get connectedSessions(): number {
    return [...this.sessions].filter((s) => s.loggedIn && !s.frozen).length;
  }

  /** A device changes state on this server (a phone goes off-hook, dialplan sets a Custom state). */
  changeDevice(device: string, state: string): void {
    this.devices.set(device, state);
    this.broadcast('call', { Event: 'DeviceStateChange', Device: device, State: state });
  }

  changePresence(presentity: string, status: string, subtype = '', message = ''): void {
    this.presence.set(presentity, { status, subtype, message });
    this.broadcast('call', { Event: 'PresenceStateChange', Presentity: presentity, Status: status, Subtype: subtype, Message: message });
  }

  /** Sends raw text to every logged-in connection (garbage, partial messages). */
  sendRaw(text: string): void {
    for (const s of this.sessions) if (s.loggedIn && !s.frozen) s.socket?.write(text);
  }

  /**
   * res_zmq_manager's face of this Asterisk: actions as JSON on a REP socket, answered by a JSON
   * array (the response, then a list's events); every event published as JSON on a PUB socket.
   * There is no login. Binds the same ports again after stopZmq().
   */
  async startZmq(): Promise<{ cmd: number; evt: number }> {
    const zmq = await import('zeromq');
    this.startedAt = new Date();
    const reply = new zmq.Reply({ linger: 0 });
    const publisher = new zmq.Publisher({ linger: 0 });
    await bindAgain(reply, `tcp://127.0.0.1:${this.zmqPorts?.cmd ?? '*'}`);
    await bindAgain(publisher, `tcp://127.0.0.1:${this.zmqPorts?.evt ?? '*'}`);
    const port = (endpoint: string | null) => Number(endpoint?.split(':').pop());
    this.zmqPorts = { cmd: port(reply.lastEndpoint), evt: port(publisher.lastEndpoint) };
    const state = { reply, publisher, frozen: false, sending: Promise.resolve() as Promise<unknown> };
    this.zmq = state;
    void (async () => {
      try {
        for await (const [request] of reply) {
          const collected: Record<string, string>[] = [];
          const session: Session = { send: (f) => collected.push(f), buffer: '', loggedIn: true, events: new Set(['on']), frozen: false };
          const body = JSON.parse(request!.toString('utf8')) as Record<string, string>;
          this.action(session, new Map(Object.entries(body).map(([k, v]) => [k.toLowerCase(), String(v)])));
          // Hung: the request stays unanswered, and a REP socket then takes no other.
          if (state.frozen) return;
          await reply.send(JSON.stringify(collected));
        }
      } catch {
        // closed by stopZmq
      }
    })();
    return this.zmqPorts;
  }

  async stopZmq(): Promise<void> {
    this.zmq?.reply.close();
    this.zmq?.publisher.close();
    this.zmq = undefined;
  }

  /** The REP socket takes requests but answers none: a hung res_zmq_manager. */
  freezeZmq(): void {
    if (this.zmq) this.zmq.frozen = true;
  }

  /** Cuts every connection halfway through an event. */
  cutMidMessage(): void {
    for (const s of this.sessions) {
      s.socket?.write('Event: DeviceStateChange\r\nDevice: SIP/cut\r\nSta');
      s.socket?.destroy();
    }
    this.sessions.clear();
  }

  /** Existing connections stop answering without closing: what a peer sees of half-open TCP. */
  freeze(): void {
    for (const s of this.sessions) s.frozen = true;
  }

  /** Resolves when `check` holds, re-checked whenever something arrives; fails after `ms`. */
  async waitFor(check: () => boolean, what: string, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name}: timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  /** Values written by SetVar to one variable, in order. */
  writesTo(variable: string): string[] {
    return this.setVars.filter((s) => s.variable === variable).map((s) => s.value);
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private accept(socket: Socket): void {
    const session: Session = {
      socket, buffer: '', loggedIn: false, events: new Set(['on']), frozen: false,
      send: (fields) => {
        let text = '';
        for (const [k, v] of Object.entries(fields)) text += `${k}: ${v}\r\n`;
        socket.write(text + '\r\n');
      },
    };
    this.sessions.add(session);
    socket.setEncoding('utf8');
    socket.on('error', () => undefined);
    socket.on('close', () => { this.sessions.delete(session); this.notify(); });
    socket.write('Asterisk Call Manager/7.0.3\r\n');
    socket.on('data', (chunk: string) => {
      if (session.frozen) return;
      session.buffer += chunk;
      let end: number;
      while ((end = session.buffer.indexOf('\r\n\r\n')) >= 0) {
        const text = session.buffer.slice(0, end);
        session.buffer = session.buffer.slice(end + 4);
        const fields = new Map<string, string>();
        for (const line of text.split('\r\n')) {
          const colon = line.indexOf(':');
          if (colon > 0) fields.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
        }
        this.action(session, fields);
      }
    });
  }

  private write(session: Session, fields: Record<string, string | undefined>): void {
    if (session.frozen || session.socket?.destroyed) return;
    session.send(Object.fromEntries(Object.entries(fields).filter((e): e is [string, string] => e[1] !== undefined)));
  }

  private broadcast(eventClass: string, fields: Record<string, string>): void {
    for (const s of this.sessions) {
      if (s.loggedIn && (s.events.has('on') || s.events.has(eventClass))) this.write(s, { ...fields, Privilege: `${eventClass},all` });
    }
    const zmq = this.zmq;
    // A ZeroMQ socket takes one send at a time.
    if (zmq) zmq.sending = zmq.sending.then(() => zmq.publisher.send(JSON.stringify({ ...fields, Privilege: `${eventClass},all` }))).catch(() => undefined);
  }

  private action(session: Session, fields: Map<string, string>): void {
    const action = (fields.get('action') ?? '').toLowerCase();
    const id = fields.get('actionid');
    this.actions.push(action);
    const reply = (extra: Record<string, string | undefined>) => this.write(session, { Response: 'Success', ActionID: id, ...extra });
    const error = (message: string) => this.write(session, { Response: 'Error', ActionID: id, Message: message });
    if (action === 'login') {
      this.loginAttempts++;
      if (fields.get('username') !== this.username || fields.get('secret') !== this.secret) {
        this.failedLogins++;
        error('Authentication failed');
        session.socket?.end();
        this.notify();
        return;
      }
      session.loggedIn = true;
      const mask = (fields.get('events') ?? 'on').toLowerCase();
      session.events = new Set(mask === 'on' ? ['on'] : mask.split(',').map((c) => c.trim()));
      reply({ Message: 'Authentication accepted' });
      if (session.events.has('on') || session.events.has('system')) this.write(session, { Event: 'FullyBooted', Privilege: 'system,all', Status: 'Fully Booted' });
      this.notify();
      return;
    }
    if (!session.loggedIn) return error('Permission denied');
    switch (action) {
      case 'ping':
        return reply({ Ping: 'Pong', Timestamp: (Date.now() / 1000).toFixed(6) });
      case 'corestatus': {
        const [date, time] = this.startedAt.toISOString().split('T') as [string, string];
        return reply({ CoreStartupDate: date, CoreStartupTime: time.slice(0, 12), CoreReloadDate: date, CoreReloadTime: time.slice(0, 12), CoreCurrentCalls: '0' });
      }
      case 'setvar':
        return this.setVar(fields, reply, error);
      case 'devicestatelist':
        if (this.options.lists === false) return error(`Invalid/unknown command: ${fields.get('action')}. Use Action: ListCommands to show available commands.`);
        reply({ EventList: 'start', Message: 'Device State Changes will follow' });
        for (const [device, state] of this.devices) this.write(session, { Event: 'DeviceStateChange', ActionID: id, Device: device, State: state });
        return this.write(session, { Event: 'DeviceStateListComplete', ActionID: id, EventList: 'Complete', ListItems: String(this.devices.size) });
      case 'presencestatelist':
        if (this.options.lists === false) return error(`Invalid/unknown command: ${fields.get('action')}. Use Action: ListCommands to show available commands.`);
        reply({ EventList: 'start', Message: 'Presence State Changes will follow' });
        for (const [presentity, p] of this.presence) {
          this.write(session, { Event: 'PresenceStateChange', ActionID: id, Presentity: presentity, Status: p.status, Subtype: p.subtype, Message: p.message });
        }
        return this.write(session, { Event: 'PresenceStateListComplete', ActionID: id, EventList: 'Complete', ListItems: String(this.presence.size) });
      default:
        return error(`Invalid/unknown command: ${fields.get('action')}. Use Action: ListCommands to show available commands.`);
    }
  }

  private setVar(fields: Map<string, string>, reply: (f: Record<string, string>) => void, error: (m: string) => void): void {
    const variable = fields.get('variable') ?? '';
    const value = fields.get('value') ?? '';
    this.setVars.push({ variable, value, at: process.hrtime.bigint() });
    const device = /^DEVICE_STATE\((Custom:[^)]+)\)$/i.exec(variable);
    const presence = /^PRESENCE_STATE\((CustomPresence:[^)]+)\)$/i.exec(variable);
    if (device) {
      reply({ Message: 'Variable Set' });
      this.changeDevice(device[1]!, value.toUpperCase());
    } else if (presence) {
      const [status = '', subtype = '', message = '', options = ''] = value.split(',');
      const decode = (s: string) => (options.includes('e') ? Buffer.from(s, 'base64').toString('utf8') : s);
      reply({ Message: 'Variable Set' });
      this.changePresence(presence[1]!, status, decode(subtype), decode(message));
    } else if (/^(DEVICE_STATE|PRESENCE_STATE)\(/i.test(variable)) {
      // func_devstate and func_presencestate write Custom devices only.
      error('Failed to set variable');
    } else {
      reply({ Message: 'Variable Set' });
    }
    this.notify();
  }
}

/**
 * Binds, retrying for a while when the port is still held: ZeroMQ closes sockets on its own I/O
 * thread, so the port of a socket closed by stopZmq() may not be free yet when a restart binds it.
 */
async function bindAgain(socket: { bind(endpoint: string): Promise<void> }, endpoint: string): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      await socket.bind(endpoint);
      return;
    } catch (e) {
      if (!/address already in use/i.test((e as Error).message) || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
