// The `pubsub` benchmark: one publisher, N subscribers (50), M Asterisk-style device state items
// (5000), first on one leaf node, then through a collection (XEP-0248) the subscribers
// subscribed to. Reports notifications delivered per second and publish-to-notify latency.
//
//   node --import tsx bench/pubsub.ts --target 127.0.0.1:5222 --domain localhost
//   node --import tsx bench/pubsub.ts --target 127.0.0.1:25222 --domain localhost --modes flat --json
//
// Accounts <prefix>1 (the publisher) to <prefix>N+1 with one password must exist (bench/setup-*.sh),
// and the target must offer SASL PLAIN on the plaintext loopback stream. The publisher keeps
// --in-flight publishes outstanding; each subscriber's k-th notification answers the k-th
// publish (a server delivers one node's events in order), which gives the latency of every
// notification without parsing XML.
import net from 'node:net';
import { parseArgs } from 'node:util';
import { parseTargets } from './options.js';

const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
const STATES = ['INUSE', 'NOT_INUSE', 'RINGING', 'BUSY', 'ONHOLD'];
/** Devices the items cycle through, as an Asterisk with that many hints publishes them. */
const DEVICES = 500;

interface Options {
  host: string;
  port: number;
  /** The nodes of a cluster: subscribers take them in turn, the publisher the first. */
  targets: { host: string; port: number }[];
  domain: string;
  service: string;
  subscribers: number;
  items: number;
  inFlight: number;
  password: string;
  prefix: string;
  modes: ('flat' | 'collection')[];
  json: boolean;
}

interface Figures {
  notifications: number;
  seconds: number;
  notificationsPerSecond: number;
  latency: { p50Ms: number; p99Ms: number };
}

/** The item a publish number carries, as Asterisk writes a device state. */
const itemFor = (n: number) => ({
  id: `SIP/${1000 + (n % DEVICES)}`,
  payload: `<state xmlns='http://asterisk.org' eid='02:00:00:00:00:01' cachable='1'>${STATES[n % STATES.length]}</state>`,
});

/**
 * A minimal client: SASL PLAIN, bind, presence, then IQ requests answered by id and a count of
 * received <message> stanzas. No XML parser: stanzas are found by their closing tags.
 */
class Client {
  private buffer = '';
  private readonly waiting = new Map<string, { resolve: (reply: string) => void; reject: (e: Error) => void }>();
  private negotiation?: { pattern: RegExp; resolve: (text: string) => void; reject: (e: Error) => void };
  private nextId = 0;
  private failure?: Error;
  onMessage: (stanza: string) => void = () => undefined;

  private constructor(private readonly socket: net.Socket, readonly username: string) {
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    socket.on('data', (chunk: string) => this.receive(chunk));
    socket.on('error', (e) => this.fail(e.message));
    socket.on('close', () => this.fail('connection closed'));
  }

  static async login(options: Options, username: string, target: { host: string; port: number } = options): Promise<Client> {
    const client = new Client(net.connect(target.port, target.host), username);
    const open = () => client.send(`<?xml version='1.0'?><stream:stream to='${options.domain}' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`);
    open();
    const features = await client.expect(/<\/stream:features>/);
    if (!features.includes('>PLAIN<')) throw new Error(`${username}: the server offers no SASL PLAIN on this stream; the pubsub benchmark needs it (loopback, no TLS)`);
    client.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${username}\0${options.password}`).toString('base64')}</auth>`);
    const outcome = await client.expect(/<success[^>]*\/>|<\/success>|<\/failure>/);
    if (!outcome.includes('<success')) throw new Error(`${username}: authentication failed; does the account exist? See bench/setup-*.sh`);
    open();
    const bound = await client.expect(/<\/stream:features>/);
    client.startStanzas();
    await client.request(`<iq type='set' id='%ID%'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`);
    if (/<session [^>]*xmpp-session['"]\s*\/>/.test(bound)) await client.request(`<iq type='set' id='%ID%'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>`);
    client.send('<presence/>');
    return client;
  }

  send(text: string): void {
    this.socket.write(text);
  }

  /** Sends an IQ (its id written as %ID%) and resolves with the result; an error reply rejects. */
  request(iq: string): Promise<string> {
    const id = `b${++this.nextId}`;
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.waiting.set(id, { resolve, reject });
      this.send(iq.replace('%ID%', id));
    });
  }

  /** An IQ to the PubSub service. */
  pubsub(options: Options, type: 'get' | 'set', body: string, ns = NS_PUBSUB): Promise<string> {
    return this.request(`<iq type='${type}' to='${options.service}' id='%ID%'><pubsub xmlns='${ns}'>${body}</pubsub></iq>`);
  }

  close(): void {
    this.failure ??= new Error('closed');
    this.socket.end('</stream:stream>');
  }

  private expect(pattern: RegExp): Promise<string> {
    return new Promise((resolve, reject) => {
      this.negotiation = { pattern, resolve, reject };
      this.receive('');
    });
  }

  private startStanzas(): void {
    this.negotiation = undefined;
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    if (this.negotiation) {
      const match = this.negotiation.pattern.exec(this.buffer);
      if (!match) return;
      const end = match.index + match[0].length;
      const text = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end);
      this.negotiation.resolve(text);
      return;
    }
    for (;;) {
      const start = this.buffer.indexOf('<');
      if (start < 0) return;
      const tagEnd = this.buffer.indexOf('>', start);
      if (tagEnd < 0) return;
      const name = /^<([\w:]+)/.exec(this.buffer.slice(start, tagEnd))?.[1] ?? '';
      const end = this.buffer[tagEnd - 1] === '/' ? tagEnd + 1 : this.endOf(name, tagEnd);
      if (end < 0) return;
      const stanza = this.buffer.slice(start, end);
      this.buffer = this.buffer.slice(end);
      this.dispatch(name, stanza);
    }
  }

  private endOf(name: string, from: number): number {
    const close = this.buffer.indexOf(`</${name}>`, from);
    return close < 0 ? -1 : close + name.length + 3;
  }

  private dispatch(name: string, stanza: string): void {
    if (name === 'message') {
      if (/^<message[^>]*type=['"]error['"]/.test(stanza)) this.fail(`a notification bounced: ${stanza.slice(0, 300)}`);
      else this.onMessage(stanza);
    } else if (name === 'iq') {
      const id = /\sid=['"]([^'"]+)['"]/.exec(stanza)?.[1] ?? '';
      const waiter = this.waiting.get(id);
      if (!waiter) return;
      this.waiting.delete(id);
      if (/^<iq[^>]*type=['"]result['"]/.test(stanza)) waiter.resolve(stanza);
      else waiter.reject(new Error(`${this.username}: request failed: ${stanza.slice(0, 500)}`));
    } else if (name === 'stream:error') {
      this.fail(`stream error: ${stanza}`);
    }
  }

  private fail(reason: string): void {
    if (this.failure) return;
    this.failure = new Error(`${this.username}: ${reason}`);
    this.negotiation?.reject(this.failure);
    for (const w of this.waiting.values()) w.reject(this.failure);
    this.waiting.clear();
  }
}

const nodeConfigForm = (fields: Record<string, string>) => "<x xmlns='jabber:x:data' type='submit'>"
  + `<field var='FORM_TYPE' type='hidden'><value>${NS_PUBSUB}#node_config</value></field>`
  + Object.entries(fields).map(([name, value]) => `<field var='${name}'><value>${value}</value></field>`).join('') + '</x>';

const subscribeOptionsForm = "<options><x xmlns='jabber:x:data' type='submit'>"
  + `<field var='FORM_TYPE' type='hidden'><value>${NS_PUBSUB}#subscribe_options</value></field>`
  + "<field var='pubsub#subscription_type'><value>items</value></field><field var='pubsub#subscription_depth'><value>all</value></field></x></options>";

/** Creates the node(s) of a mode; returns the node published to and the node subscribed to. */
async function prepareNodes(options: Options, publisher: Client, mode: 'flat' | 'collection', run: string) {
  const leaf = `bench-${run}-${mode}`;
  const common = { 'pubsub#max_items': '1000', 'pubsub#send_last_published_item': 'never', 'pubsub#notification_type': 'headline' };
  if (mode === 'flat') {
    await publisher.pubsub(options, 'set', `<create node='${leaf}'/><configure>${nodeConfigForm(common)}</configure>`);
    return { leaf, subscribed: leaf, created: [leaf] };
  }
  const collection = `${leaf}-collection`;
  await publisher.pubsub(options, 'set', `<create node='${collection}'/><configure>${nodeConfigForm({ 'pubsub#node_type': 'collection' })}</configure>`);
  await publisher.pubsub(options, 'set', `<create node='${leaf}'/><configure>${nodeConfigForm({ ...common, 'pubsub#collection': collection })}</configure>`);
  return { leaf, subscribed: collection, created: [leaf, collection] };
}

/** Publishes `count` items numbered from `first`, at most `inFlight` unanswered; `sentAt[n]` records each send. */
async function publishAll(options: Options, publisher: Client, leaf: string, first: number, count: number, sentAt: number[]): Promise<void> {
  let next = first;
  const worker = async () => {
    while (next < first + count) {
      const n = next++;
      const item = itemFor(n);
      sentAt[n] = performance.now();
      await publisher.pubsub(options, 'set', `<publish node='${leaf}'><item id='${item.id}'>${item.payload}</item></publish>`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.inFlight, count) }, worker));
}

function percentiles(samples: number[]): { p50Ms: number; p99Ms: number } {
  const sorted = Float64Array.from(samples).sort();
  const at = (p: number) => Math.round(sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]! * 100) / 100;
  return { p50Ms: at(0.5), p99Ms: at(0.99) };
}

async function runMode(options: Options, publisher: Client, subscribers: Client[], mode: 'flat' | 'collection'): Promise<Figures> {
  const { leaf, subscribed, created } = await prepareNodes(options, publisher, mode, Date.now().toString(36));
  const subscribeOptions = mode === 'collection' ? subscribeOptionsForm : '';
  await Promise.all(subscribers.map((s) => s.pubsub(options, 'set', `<subscribe node='${subscribed}' jid='${s.username}@${options.domain}'/>${subscribeOptions}`)));
  // A few items first, so that the figures do not include the server's first-use costs.
  const warmUp = 20;
  const expected = options.items * subscribers.length;
  const sentAt: number[] = [];
  const latencies: number[] = [];
  let lastDelivery = 0;
  let failure: Error | undefined;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => { finish = resolve; });
  for (const subscriber of subscribers) {
    let received = 0;
    subscriber.onMessage = (stanza) => {
      const n = received++;
      // The k-th notification must carry the k-th item: the latency relies on that order.
      const id = itemFor(n).id;
      if (!stanza.includes(`id='${id}'`) && !stanza.includes(`id="${id}"`)) {
        failure ??= new Error(`${subscriber.username}: notification ${n} is not item ${id}: ${stanza.slice(0, 300)}`);
        finish();
      }
      if (n < warmUp) return;
      lastDelivery = performance.now();
      latencies.push(lastDelivery - sentAt[n]!);
      if (latencies.length === expected) finish();
    };
  }
  await publishAll(options, publisher, leaf, 0, warmUp, sentAt);
  const started = performance.now();
  await publishAll(options, publisher, leaf, warmUp, options.items, sentAt);
  const timeout = setTimeout(finish, 60_000);
  await finished;
  clearTimeout(timeout);
  if (failure) throw failure;
  if (latencies.length < expected) throw new Error(`only ${latencies.length} of ${expected} notifications arrived within 60 s of the last publish`);
  for (const node of created) await publisher.pubsub(options, 'set', `<delete node='${node}'/>`, `${NS_PUBSUB}#owner`);
  const seconds = (lastDelivery - started) / 1000;
  return { notifications: expected, seconds: Math.round(seconds * 100) / 100, notificationsPerSecond: Math.round(expected / seconds), latency: percentiles(latencies) };
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      target: { type: 'string', default: '127.0.0.1:5222' },
      domain: { type: 'string', default: 'localhost' },
      service: { type: 'string' },
      subscribers: { type: 'string', default: '50' },
      items: { type: 'string', default: '5000' },
      'in-flight': { type: 'string', default: '50' },
      password: { type: 'string', default: 'bench' },
      prefix: { type: 'string', default: 'bench' },
      modes: { type: 'string', default: 'flat,collection' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log('usage: node --import tsx bench/pubsub.ts [--target host:port[,host:port...]] [--domain D] [--service pubsub.D] [--subscribers 50] [--items 5000] '
      + '[--in-flight 50] [--password bench] [--prefix bench] [--modes flat,collection] [--json]');
    process.exit(0);
  }
  const targets = parseTargets(values.target!);
  const { host, port } = targets[0]!;
  const modes = values.modes!.split(',').map((m) => m.trim());
  if (modes.some((m) => m !== 'flat' && m !== 'collection')) throw new Error('--modes takes flat, collection or both');
  return {
    host, port, targets, domain: values.domain!, service: values.service ?? `pubsub.${values.domain}`,
    subscribers: Number(values.subscribers), items: Number(values.items), inFlight: Number(values['in-flight']),
    password: values.password!, prefix: values.prefix!, modes: modes as Options['modes'], json: values.json!,
  };
}

async function main(): Promise<void> {
  const options = parseOptions();
  const publisher = await Client.login(options, `${options.prefix}1`);
  const subscribers: Client[] = [];
  for (let i = 2; i <= options.subscribers + 1; i += 10) {
    const batch = Array.from({ length: Math.min(10, options.subscribers + 2 - i) }, (_, k) => Client.login(options, `${options.prefix}${i + k}`, options.targets[(i + k - 2) % options.targets.length]));
    subscribers.push(...(await Promise.all(batch)));
  }
  const results: Record<string, unknown> = { target: options.targets.map((t) => `${t.host}:${t.port}`).join(','), service: options.service, subscribers: options.subscribers, items: options.items, inFlight: options.inFlight };
  for (const mode of options.modes) {
    const figures = await runMode(options, publisher, subscribers, mode);
    results[mode] = figures;
    if (!options.json) {
      console.log(`${mode.padEnd(10)} ${figures.notifications} notifications in ${figures.seconds} s: ${figures.notificationsPerSecond} notifications/s, `
        + `publish-to-notify p50 ${figures.latency.p50Ms} ms, p99 ${figures.latency.p99Ms} ms`);
    }
  }
  if (options.json) console.log(JSON.stringify(results, null, 2));
  for (const client of [publisher, ...subscribers]) client.close();
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
