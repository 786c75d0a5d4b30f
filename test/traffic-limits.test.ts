// Client traffic limits over real sockets: `c2s.traffic-throttling` in the seed's
// cm-ht-traffic-throttling format (section 11.12) with `disc` and `drop`, counted in stanzas
// and in bytes, and the `c2s.max-stanzas-per-second` cap. Every breach is logged with the
// peer and the limit. Configuration errors name the option. The parser and the counters are
// unit-tested in src/core/traffic-limits.test.ts.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { buildConfig, freePorts } from './support/server.js';
import { RawClient } from './support/raw-client.js';
import { BoshClient } from './support/bosh-client.js';
import { wsLogin } from './support/ws-login.js';
import { startServer, type Server } from '../src/core/server.js';
import { deriveCredentials } from '../src/auth/credentials.js';
import { ConfigError, loadConfig } from '../src/config/load.js';
import type { Element } from '../src/xml/element.js';

interface Running {
  server: Server;
  port: number;
  /** Every log line, parsed. */
  logs: Record<string, unknown>[];
}

const pings = (count: number, prefix = 'p') => Array.from({ length: count }, (_, i) => `<iq type='get' id='${prefix}${i}'><ping xmlns='urn:xmpp:ping'/></iq>`).join('');
const reply = (id: string) => (s: Element) => s.name === 'iq' && s.attrs.id === id;
const limitLogs = (r: Running) => r.logs.filter((l) => String(l.msg).startsWith('client traffic limit exceeded'));

describe('client traffic limits', () => {
  const running: Running[] = [];
  const clients: RawClient[] = [];
  const cleanupsWs: (() => void)[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    for (const c of cleanupsWs.splice(0)) c();
    for (const r of running.splice(0)) {
      await r.server.stop();
      rmSync(r.server.config['data-dir'], { recursive: true, force: true });
    }
  });

  async function start(c2s: Record<string, unknown>): Promise<Running & { boshPort: number; wsPort: number }> {
    const [port, boshPort, wsPort] = await freePorts(3);
    const config = buildConfig({
      c2s: { host: '127.0.0.1', port, 'tls-port': 0, ...c2s },
      http: { host: '127.0.0.1', port: 0 }, bosh: { port: boshPort }, websocket: { port: wsPort, 'tls-port': 0 },
    });
    const logs: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => { logs.push(JSON.parse(line) as Record<string, unknown>); } });
    const server = await startServer(config, { log });
    await server.storage.users.create('localhost', 'romeo', deriveCredentials('secret'));
    const r = { server, port: port!, boshPort: boshPort!, wsPort: wsPort!, logs };
    running.push(r);
    return r;
  }

  async function login(r: Running): Promise<RawClient> {
    const c = await RawClient.connect(r.port);
    clients.push(c);
    await c.login('romeo', 'secret', 'localhost', 'garden');
    return c;
  }

  it('disc: the stanza past the per-minute limit ends the stream with policy-violation', async () => {
    const r = await start({ 'traffic-throttling': 'xmpp:5:0:disc' });
    const c = await login(r);
    c.send(pings(6));
    for (let i = 0; i < 5; i++) assert.equal((await c.waitFor(reply(`p${i}`))).attrs.type, 'result');
    assert.equal(await c.waitForClose(), 'policy-violation');
    const error = c.stanzas.find((s) => s.name === 'error')!;
    assert.match(error.getChildText('text') ?? '', /traffic limit: more than 5 stanzas per minute/);
    assert.equal(c.stanzas.some(reply('p5')), false, 'the sixth was not handled');
    const [line] = limitLogs(r);
    assert.equal(line?.peer, 'romeo@localhost/garden');
    assert.equal(line?.limit, 'xmpp:5:0:disc');
    assert.equal(line?.action, 'disc');
    assert.equal(line?.ip, '127.0.0.1');
  });

  it('drop: stanzas past the limit get a policy-violation error, the connection stays, one log line', async () => {
    const r = await start({ 'traffic-throttling': 'xmpp:3:0:drop' });
    const c = await login(r);
    c.send(pings(6));
    for (let i = 0; i < 3; i++) assert.equal((await c.waitFor(reply(`p${i}`))).attrs.type, 'result');
    for (let i = 3; i < 6; i++) {
      const refused = await c.waitFor(reply(`p${i}`));
      assert.equal(refused.attrs.type, 'error');
      const error = refused.getChild('error')!;
      assert.equal(error.attrs.type, 'wait');
      assert.equal(error.attrs.code, '406');
      assert.ok(error.getChild('policy-violation'), `policy-violation: ${refused}`);
      assert.match(error.getChildText('text') ?? '', /more than 3 stanzas per minute/);
      assert.equal(refused.attrs.to, 'romeo@localhost/garden');
    }
    // A refused error or result is not answered (no error loops).
    c.send("<iq type='result' id='x1' to='localhost'/>");
    c.send(pings(1, 'after'));
    await c.waitFor(reply('after0'));
    assert.equal(c.stanzas.some(reply('x1')), false);
    assert.equal(c.ended, false);
    const lines = limitLogs(r);
    assert.equal(lines.length, 1, 'logged once for the minute');
    assert.deepEqual([lines[0]!.peer, lines[0]!.limit, lines[0]!.action], ['romeo@localhost/garden', 'xmpp:3:0:drop', 'drop']);
  });

  it('bin disc: bytes past the limit end the stream, counted from the first byte', async () => {
    const r = await start({ 'traffic-throttling': 'bin:3k:0:disc' });
    const c = await login(r);
    c.send(pings(1));
    await c.waitFor(reply('p0'));
    c.send(`<message to='romeo@localhost'><body>${'x'.repeat(3000)}</body></message>`);
    assert.equal(await c.waitForClose(), 'policy-violation');
    assert.match(c.stanzas.find((s) => s.name === 'error')!.getChildText('text') ?? '', /more than 3000 bytes per minute/);
    assert.equal(limitLogs(r)[0]?.limit, 'bin:3000:0:disc');
  });

  it('caps stanzas per second: a burst beyond the bucket is refused with a clear error (drop)', async () => {
    const r = await start({ 'max-stanzas-per-second': 2, 'stanza-burst': 5 });
    const c = await login(r);
    c.send(pings(20)); // one write: all counted at once
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => c.waitFor(reply(`p${i}`))));
    const results = replies.filter((s) => s.attrs.type === 'result').length;
    assert.ok(results >= 5 && results <= 7, `the burst of 5 passes (and what refills meanwhile), got ${results}`);
    const refused = replies.filter((s) => s.attrs.type === 'error');
    assert.equal(refused.length, 20 - results);
    const error = refused[0]!.getChild('error')!;
    assert.ok(error.getChild('policy-violation'));
    assert.equal(error.attrs.type, 'wait');
    assert.match(error.getChildText('text') ?? '', /stanza rate limit: more than 2 stanzas per second; slow down/);
    assert.equal(c.ended, false);
    assert.equal(limitLogs(r).length, 1);
    assert.equal(limitLogs(r)[0]!.limit, 'max-stanzas-per-second 2');
  });

  it('caps stanzas per second: with stanza-rate-action disc, the stream ends with policy-violation', async () => {
    const r = await start({ 'max-stanzas-per-second': 1, 'stanza-burst': 2, 'stanza-rate-action': 'disc' });
    const c = await login(r);
    c.send(pings(10));
    assert.equal(await c.waitForClose(), 'policy-violation');
    assert.match(c.stanzas.find((s) => s.name === 'error')!.getChildText('text') ?? '', /stanza rate limit: more than 1 stanzas per second/);
    assert.equal(limitLogs(r)[0]?.action, 'disc');
  });

  it('applies to BOSH and WebSocket clients too: stanzas dropped, bytes over a disc limit end the session', async () => {
    const r = await start({ 'traffic-throttling': 'xmpp:2:0:drop,bin:20k:0:disc' });
    const bosh = new BoshClient(r.boshPort);
    await bosh.login('romeo', 'secret', 'bosh');
    await bosh.send(pings(3, 'b').replaceAll("<iq ", "<iq xmlns='jabber:client' "));
    const answers = await Promise.all([0, 1, 2].map((i) => bosh.waitFor(reply(`b${i}`), `reply b${i}`)));
    assert.deepEqual(answers.map((a) => a.attrs.type), ['result', 'result', 'error']);
    assert.ok(answers[2]!.getChild('error')?.getChild('policy-violation'));
    const cut = await bosh.send(`<message xmlns='jabber:client' to='romeo@localhost'><body>${'x'.repeat(25_000)}</body></message>`);
    assert.equal(cut.attrs.type, 'terminate');
    assert.equal(cut.attrs.condition, 'remote-stream-error');
    assert.match(cut.text, /policy-violation.*more than 20000 bytes per minute/);

    const ws = await wsLogin(r.wsPort, 'romeo', { resource: 'ws' });
    cleanupsWs.push(() => ws.ws.terminate());
    ws.ws.send(`<iq xmlns='jabber:client' type='get' id='w0'><ping xmlns='urn:xmpp:ping'/></iq>`);
    ws.ws.send(`<iq xmlns='jabber:client' type='get' id='w1'><ping xmlns='urn:xmpp:ping'/></iq>`);
    ws.ws.send(`<iq xmlns='jabber:client' type='get' id='w2'><ping xmlns='urn:xmpp:ping'/></iq>`);
    assert.match(await ws.next(/id='w2'/), /type='error'.*policy-violation/);
    ws.ws.send(`<message xmlns='jabber:client' to='romeo@localhost'><body>${'x'.repeat(25_000)}</body></message>`);
    await ws.closed;
    assert.match(ws.messages.join(''), /<policy-violation[^>]*\/><text[^>]*>traffic limit: more than 20000 bytes per minute/);
    const peers = limitLogs(r).map((l) => `${String(l.peer)} ${String(l.limit)} ${String(l.action)}`);
    assert.deepEqual(peers, [
      'romeo@localhost/bosh xmpp:2:0:drop drop', 'romeo@localhost/bosh bin:20000:0:disc disc',
      'romeo@localhost/ws xmpp:2:0:drop drop', 'romeo@localhost/ws bin:20000:0:disc disc',
    ]);
  });

  it('refuses bad limits and watchdog settings at start, naming the option', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-limits-'));
    try {
      const file = join(dir, 'switchboard.yaml');
      const problems = async (yaml: string) => {
        writeFileSync(file, yaml);
        const error = await loadConfig({ file }).then(() => undefined, (e: unknown) => e);
        assert.ok(error instanceof ConfigError, String(error));
        return error.problems.join('\n');
      };
      const text = await problems("c2s:\n  traffic-throttling: 'xmpp:25k:0:kick'\nwebsocket:\n  watchdog-ping-type: icmp\n");
      assert.match(text, /c2s\.traffic-throttling: "xmpp:25k:0:kick": the action must be disc \(disconnect\) or drop, not "kick"/);
      assert.match(text, /websocket\.watchdog-ping-type/);
      assert.match(await problems("c2s:\n  traffic-throttling: 'bin:20x:0:disc'\n"), /c2s\.traffic-throttling: "bin:20x:0:disc": the per-minute amount must be a whole number/);
      assert.match(await problems("c2s:\n  traffic-throttling: 'xmpp:1k'\n"), /c2s\.traffic-throttling: "xmpp:1k" must have four parts/);
      assert.match(await problems('c2s:\n  max-stanzas-per-second: -1\n'), /c2s\.max-stanzas-per-second/);
      // Seed 11.8: max-inactivity-time must be longer than the (effective) watchdog-timeout.
      assert.match(await problems('c2s:\n  watchdog-timeout: 120\n  max-inactivity-time: 120\n'),
        /c2s\.max-inactivity-time: must be longer than the watchdog timeout \(120 s\)/);
      assert.match(await problems('watchdog-timeout: 90000\n'), /websocket\.max-inactivity-time: must be longer than the watchdog timeout \(90000 s\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
