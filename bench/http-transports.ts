// The messaging scenario of bench/run.ts over BOSH and over WebSocket: pairs of clients bounce
// chat messages for --duration seconds, --in-flight per pair, and every delivery gives a
// one-way latency. Like bench/xmpp-client.ts the clients have no XML parser (they scan for the
// tags they expect), so the server is what limits the figures.
//
//   node --import tsx bench/http-transports.ts --target 127.0.0.1:5280 --users 200
//   node --import tsx bench/http-transports.ts --transport websocket --target 127.0.0.1:5290 --json
//
// --target is any Switchboard HTTP listener (every one serves /http-bind/ and /xmpp-websocket);
// --bosh-url and --ws-url point elsewhere (another server). Accounts <prefix>1..N with one
// password must exist (bench/setup-switchboard.sh); login uses SASL PLAIN (loopback).
import { Agent, request } from 'node:http';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { LOAD_OPTIONS, positiveInteger } from './options.js';

const USAGE = `node --import tsx bench/http-transports.ts [options]
  --transport bosh|websocket|both   default both
  --target host:port                a Switchboard HTTP listener (default 127.0.0.1:5280)
  --bosh-url URL                    default http://<target>/http-bind/
  --ws-url URL                      default ws://<target>/xmpp-websocket
  --domain D                        default localhost
  --users N                         accounts <prefix>1..N; N/2 pairs (default 200)
  --password P                      default bench
  --user-prefix S                   default bench
  --duration SECONDS                default 10
  --in-flight K                     messages in flight per pair (default 10)
  --concurrency C                   logins at once (default 50)
  --json                            print the results as JSON`;

interface Options {
  domain: string;
  users: number;
  password: string;
  prefix: string;
  duration: number;
  inFlight: number;
  concurrency: number;
}

interface Client {
  jid: string;
  /** Called with each chat body received once logged in. */
  onBody: (body: string) => void;
  onFailure: (error: Error) => void;
  send(stanza: string): void;
  close(): Promise<void>;
}

const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const BODY = /<message[^>]*>.*?<body>([^<]*)<\/body>.*?<\/message>/gs;
const plain = (user: string, password: string) => Buffer.from(`\0${user}\0${password}`).toString('base64');
const bindIq = `<iq type='set' id='bind' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`;

function bodies(text: string, onBody: (body: string) => void): void {
  for (const m of text.matchAll(BODY)) onBody(m[1]!);
}

// --- WebSocket (RFC 7395) -------------------------------------------------------------------

async function webSocketClient(url: string, domain: string, user: string, password: string): Promise<Client> {
  const ws = new WebSocket(url, 'xmpp', { perMessageDeflate: false });
  let pending: { pattern: RegExp; resolve: (t: string) => void; reject: (e: Error) => void } | undefined;
  let failed: Error | undefined;
  let closing = false;
  const client: Client = {
    jid: '',
    onBody: () => {},
    onFailure: () => {},
    send: (stanza) => ws.send(stanza),
    close: async () => {
      closing = true;
      if (ws.readyState === ws.OPEN) ws.send(`<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>`);
      await new Promise<void>((r) => { if (ws.readyState === ws.CLOSED) r(); else { ws.once('close', () => r()); setTimeout(() => { ws.terminate(); r(); }, 2000).unref(); } });
    },
  };
  let online = false;
  ws.on('message', (data) => {
    const text = data.toString();
    if (online) return bodies(text, client.onBody);
    if (pending && pending.pattern.test(text)) { const p = pending; pending = undefined; p.resolve(text); }
  });
  const fail = (e: Error) => {
    if (failed || closing) return;
    failed = e;
    pending?.reject(e);
    if (online) client.onFailure(e);
  };
  ws.on('error', (e) => fail(e));
  ws.on('close', () => fail(new Error(`${user}: WebSocket closed by the server`)));
  const expect = (pattern: RegExp, send?: string) => new Promise<string>((resolve, reject) => {
    if (failed) return reject(failed);
    pending = { pattern, resolve, reject };
    if (send) ws.send(send);
  });
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  const open = `<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='${domain}' version='1.0'/>`;
  ws.send(open);
  await expect(/<stream:features/);
  const sasl = await expect(/<(success|failure)/, `<auth xmlns='${NS_SASL}' mechanism='PLAIN'>${plain(user, password)}</auth>`);
  if (!sasl.startsWith('<success')) throw new Error(`${user}: authentication failed: ${sasl}`);
  ws.send(open);
  await expect(/<stream:features/);
  const bound = await expect(/<iq[^>]*id='bind'/, bindIq);
  client.jid = /<jid>([^<]+)<\/jid>/.exec(bound)?.[1] ?? '';
  await expect(/<presence/, `<presence xmlns='jabber:client'/>`);
  online = true;
  return client;
}

// --- BOSH (XEP-0124, XEP-0206) --------------------------------------------------------------

async function boshClient(url: string, domain: string, user: string, password: string): Promise<Client> {
  const target = new URL(url);
  // Two connections: one request held by the server, one to send on (requests='2').
  const agent = new Agent({ keepAlive: true, maxSockets: 2 });
  let rid = 1 + Math.floor(Math.random() * 2 ** 40);
  let sid = '';
  const post = (attrs: string, payload = '') => new Promise<string>((resolve, reject) => {
    const body = `<body xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' rid='${rid++}'${sid ? ` sid='${sid}'` : ''} ${attrs}${payload ? `>${payload}</body>` : '/>'}`;
    const req = request({ host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent,
      headers: { 'Content-Type': 'text/xml; charset=utf-8', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${user}: HTTP ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
  const terminated = (text: string) => /^<body[^>]*type='terminate'/.test(text);
  // Negotiation: one request at a time, empty polls until the expected element shows up.
  const until = async (pattern: RegExp, first: Promise<string>) => {
    let text = await first;
    for (;;) {
      if (pattern.test(text)) return text;
      if (terminated(text)) throw new Error(`${user}: session terminated: ${text}`);
      text = await post('');
    }
  };
  const created = await post(`to='${domain}' wait='60' hold='1' ver='1.6' xml:lang='en' xmpp:version='1.0'`);
  sid = /sid='([^']+)'/.exec(created)?.[1] ?? '';
  if (!sid) throw new Error(`${user}: no session: ${created}`);
  await until(/<stream:features/, Promise.resolve(created));
  const sasl = await until(/<(success|failure)/, post('', `<auth xmlns='${NS_SASL}' mechanism='PLAIN'>${plain(user, password)}</auth>`));
  if (!/<success/.test(sasl)) throw new Error(`${user}: authentication failed: ${sasl}`);
  await until(/<stream:features/, post(`to='${domain}' xml:lang='en' xmpp:restart='true'`));
  const bound = await until(/<iq[^>]*id='bind'/, post('', bindIq));
  const jid = /<jid>([^<]+)<\/jid>/.exec(bound)?.[1] ?? '';
  const presence = await until(/<presence/, post('', `<presence xmlns='jabber:client'/>`));
  void presence;

  // Online: always one request held; stanzas to send go out at once on the second connection,
  // or with the next request when both are out.
  let outstanding = 0;
  let queue: string[] = [];
  let closing = false;
  let failed = false;
  const client: Client = {
    jid,
    onBody: () => {},
    onFailure: () => {},
    send(stanza) {
      queue.push(stanza);
      pump();
    },
    async close() {
      closing = true;
      await post(`type='terminate'`, `<presence xmlns='jabber:client' type='unavailable'/>`).catch(() => '');
      agent.destroy();
    },
  };
  const pump = () => {
    while (!closing && !failed && outstanding < 2 && (queue.length > 0 || outstanding === 0)) {
      const payload = queue.join('');
      queue = [];
      outstanding++;
      post('', payload).then((text) => {
        outstanding--;
        if (closing) return;
        if (terminated(text)) { failed = true; client.onFailure(new Error(`${user}: session terminated: ${text}`)); return; }
        bodies(text, client.onBody);
        pump();
      }, (e: Error) => {
        outstanding--;
        if (!closing && !failed) { failed = true; client.onFailure(e); }
      });
    }
  };
  pump();
  return client;
}

// --- The scenario ---------------------------------------------------------------------------

function percentile(sorted: Float64Array, p: number): number {
  return Math.round(sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]! * 100) / 100;
}

async function messaging(transport: string, connect: (user: string) => Promise<Client>, o: Options) {
  const pairs = Math.floor(o.users / 2);
  if (pairs < 1) throw new Error('messaging needs --users 2 or more');
  const clients: Client[] = [];
  let failure: Error | undefined;
  let next = 0;
  const loginLatencies: number[] = [];
  const loginStarted = performance.now();
  await Promise.all(Array.from({ length: Math.min(o.concurrency, pairs * 2) }, async () => {
    while (next < pairs * 2 && !failure) {
      const user = `${o.prefix}${++next}`;
      const started = performance.now();
      try {
        const c = await connect(user);
        loginLatencies.push(performance.now() - started);
        c.onFailure = (e) => { failure ??= e; };
        clients.push(c);
      } catch (e) {
        failure ??= e as Error;
      }
    }
  }));
  const loginSeconds = (performance.now() - loginStarted) / 1000;
  const closeAll = () => Promise.all(clients.map((c) => c.close().catch(() => {})));
  if (failure) { await closeAll(); throw failure; }
  const latencies: number[] = [];
  let inFlight = 0;
  const runTag = `${process.pid}.${Date.now()}/`;
  const sendTo = (from: Client, to: Client) => {
    from.send(`<message xmlns='jabber:client' to='${to.jid}' type='chat'><body>${runTag}${performance.now()}</body></message>`);
    inFlight++;
  };
  const deadline = performance.now() + o.duration * 1000;
  try {
    for (let i = 0; i + 1 < clients.length; i += 2) {
      const [a, b] = [clients[i]!, clients[i + 1]!];
      for (const [self, peer] of [[a, b], [b, a]] as const) {
        self.onBody = (body) => {
          if (!body.startsWith(runTag)) return;
          const now = performance.now();
          inFlight--;
          if (now > deadline) return;
          latencies.push(now - Number(body.slice(runTag.length)));
          sendTo(self, peer);
        };
      }
      for (let k = 0; k < o.inFlight; k++) sendTo(a, b);
    }
    while (performance.now() < deadline) {
      await sleep(Math.min(100, deadline - performance.now()));
      if (failure) throw failure;
    }
    for (let waited = 0; inFlight > 0 && waited < 5000; waited += 50) await sleep(50);
    if (failure) throw failure;
  } finally {
    await closeAll();
  }
  const sorted = Float64Array.from(latencies).sort();
  const logins = Float64Array.from(loginLatencies).sort();
  return {
    transport,
    pairs,
    inFlightPerPair: o.inFlight,
    seconds: o.duration,
    messages: latencies.length,
    messagesPerSecond: Math.round(latencies.length / o.duration),
    latency: { p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99) },
    login: { sessions: pairs * 2, seconds: Math.round(loginSeconds * 1000) / 1000, p50Ms: percentile(logins, 0.5), p99Ms: percentile(logins, 0.99) },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      transport: { type: 'string', default: 'both' },
      target: { type: 'string', default: '127.0.0.1:5280' },
      'bosh-url': { type: 'string' },
      'ws-url': { type: 'string' },
      ...LOAD_OPTIONS,
    },
  });
  if (values.help) { console.log(USAGE); return; }
  const o: Options = {
    domain: values.domain, users: positiveInteger('users', values.users), password: values.password, prefix: values['user-prefix'],
    duration: positiveInteger('duration', values.duration), inFlight: positiveInteger('in-flight', values['in-flight']), concurrency: positiveInteger('concurrency', values.concurrency),
  };
  const transports = values.transport === 'both' ? ['bosh', 'websocket'] : [values.transport];
  if (!transports.every((t) => t === 'bosh' || t === 'websocket')) throw new Error(`unknown --transport "${values.transport}"\n${USAGE}`);
  const boshUrl = values['bosh-url'] ?? `http://${values.target}/http-bind/`;
  const wsUrl = values['ws-url'] ?? `ws://${values.target}/xmpp-websocket`;
  const results = [];
  for (const [i, transport] of transports.entries()) {
    if (i > 0) await sleep(1000);
    const connect = transport === 'bosh'
      ? (user: string) => boshClient(boshUrl, o.domain, user, o.password)
      : (user: string) => webSocketClient(wsUrl, o.domain, user, o.password);
    const r = await messaging(transport, connect, o);
    results.push(r);
    if (!values.json) {
      console.log(`${transport.padEnd(9)}  ${r.pairs} pairs x ${r.inFlightPerPair} in flight for ${r.seconds} s: ${r.messagesPerSecond} msgs/s, ` +
        `latency p50 ${r.latency.p50Ms} ms, p99 ${r.latency.p99Ms} ms (${r.login.sessions} logins in ${r.login.seconds} s)`);
    }
  }
  if (values.json) console.log(JSON.stringify(results, null, 2));
}

main().catch((error: unknown) => {
  console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
