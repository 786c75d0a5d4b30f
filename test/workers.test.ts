// `workers: 2` through the real command: `switchboard start` forks two worker processes behind
// the same ports. Two @xmpp/client users on different workers subscribe to each other's
// presence, chat, and a PubSub publication reaches a subscriber on the other worker; a worker
// killed with SIGKILL is restarted, and its user's contact sees the user go unavailable at once.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { get } from 'node:http';
import { xml } from '@xmpp/client';
import { WorkersProcess, writeWorkersConfig } from './support/workers-process.js';
import { startClient, type LiveClient } from './support/xmpp-client.js';
import { BoshClient } from './support/bosh-client.js';
import { loadConfig } from '../src/config/load.js';
import { openStorage } from '../src/storage/index.js';
import { deriveCredentials } from '../src/auth/credentials.js';

describe('workers: 2 behind one set of ports', () => {
  let dir: string;
  let primary: WorkersProcess;
  let port: number;
  let httpPort: number;
  const clients: LiveClient[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'switchboard-workers-'));
    const { file: configFile, ports } = await writeWorkersConfig(dir, {
      'data-dir': join(dir, 'data'),
      admins: ['alice@localhost'],
      log: { level: 'info' },
    });
    port = ports.c2s;
    httpPort = ports.http;
    // The accounts, in the SQLite database the workers will share.
    const { config } = await loadConfig({ file: configFile });
    const storage = await openStorage(config.storage, config['data-dir']);
    for (const user of ['alice', 'bob', 'carol']) await storage.users.create('localhost', user, deriveCredentials('secret'));
    await storage.close();
    primary = await WorkersProcess.start(configFile, dir);
  });

  after(async () => {
    if (process.env.DEBUG_WORKERS && primary) for (const l of primary.lines) console.error(JSON.stringify(l));
    for (const c of clients) await c.xmpp.stop().catch(() => {});
    primary?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Logs `user` in and tells which worker took the connection (from the worker's log line). */
  async function login(user: string, resource: string): Promise<{ client: LiveClient; worker: number }> {
    const from = primary.lines.length;
    const client = await startClient(port, user, { resource });
    clients.push(client);
    const line = await primary.logged((l) => l.msg === 'authenticated' && l.user === `${user}@localhost`, `authenticated ${user}`, from);
    return { client, worker: line.worker! };
  }

  /** GET /metrics on a connection of its own, so that node:cluster may give it to either worker. */
  function scrape(): Promise<string> {
    return new Promise((resolve, reject) => {
      get({ host: '127.0.0.1', port: httpPort, path: '/metrics', agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => { body += c; }).on('end', () => {
          if (res.statusCode === 200) resolve(body); else reject(new Error(`GET /metrics: ${res.statusCode} ${body}`));
        });
      }).on('error', reject);
    });
  }
  const sample = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);

  const presenceFrom = (who: string, type?: string) => (s: { name: string; attrs: Record<string, string> }) =>
    s.name === 'presence' && s.attrs.from?.startsWith(`${who}@localhost/`) && s.attrs.type === type;

  it('serves users on different workers as one server, and restarts a killed worker', async () => {
    const started = primary.lines.find((l) => l.msg === 'started')!;
    assert.deepEqual(Object.keys(started.workers as object).sort(), ['1', '2']);

    // alice asks for bob's presence while he is offline: the request waits in the shared database.
    const alice = await login('alice', 'desk');
    await alice.client.xmpp.iqCaller.get(xml('query', { xmlns: 'jabber:iq:roster' }));
    await alice.client.xmpp.send(xml('presence'));
    await alice.client.xmpp.send(xml('presence', { to: 'bob@localhost', type: 'subscribe' }));
    // Stanzas of a stream are handled in order: once the ping is answered, the request is stored.
    await alice.client.xmpp.iqCaller.get(xml('ping', { xmlns: 'urn:xmpp:ping' }));

    // Connections go to the workers in turn; a few tries land bob on the other one.
    let bob = await login('bob', 'phone');
    for (let tries = 0; bob.worker === alice.worker; tries++) {
      assert.ok(tries < 8, 'bob never landed on the other worker');
      await bob.client.xmpp.stop();
      bob = await login('bob', 'phone');
    }

    // Presence subscription both ways, across the workers (roster pushes, probes, broadcasts).
    await bob.client.xmpp.iqCaller.get(xml('query', { xmlns: 'jabber:iq:roster' }));
    await bob.client.xmpp.send(xml('presence'));
    await bob.client.waitFor((s) => s.is('presence') && s.attrs.type === 'subscribe' && s.attrs.from === 'alice@localhost', 'subscribe from alice', 15_000);
    await bob.client.xmpp.send(xml('presence', { to: 'alice@localhost', type: 'subscribed' }));
    await bob.client.xmpp.send(xml('presence', { to: 'alice@localhost', type: 'subscribe' }));
    await alice.client.waitFor((s) => s.is('presence') && s.attrs.type === 'subscribe' && s.attrs.from === 'bob@localhost', 'subscribe from bob', 15_000);
    await alice.client.xmpp.send(xml('presence', { to: 'bob@localhost', type: 'subscribed' }));
    await alice.client.waitFor(presenceFrom('bob'), 'bob available', 15_000);
    await bob.client.waitFor(presenceFrom('alice'), 'alice available', 15_000);

    // GET /metrics shows the node, whichever worker answers: one session on each worker makes 2.
    // (bob's tries on alice's worker may take a moment to end: wait for the figure, then ask again.)
    for (let tries = 0; sample(await scrape(), 'switchboard_sessions') !== 2; tries++) {
      assert.ok(tries < 50, 'the sessions gauge never showed both workers');
      await new Promise((r) => setTimeout(r, 200));
    }
    for (let i = 0; i < 6; i++) {
      const text = await scrape();
      assert.equal(sample(text, 'switchboard_sessions'), 2, `scrape ${i}: sessions of both workers`);
      assert.equal(sample(text, 'switchboard_workers_reporting'), 2, `scrape ${i}: both workers reported`);
      assert.ok(sample(text, 'switchboard_logins_total') >= 2, `scrape ${i}: logins of both workers`);
      assert.equal((text.match(/^process_resident_memory_bytes /gm) ?? []).length, 1, 'one line per metric, summed over the workers');
    }
    // So does the administrators' "Get statistics" command, run by alice's worker.
    const stats = await alice.client.xmpp.iqCaller.request(xml('iq', { type: 'set', to: 'localhost' }, xml('command', { xmlns: 'http://jabber.org/protocol/commands', node: 'stats', action: 'execute' })), 15_000);
    const fields = stats.getChild('command')!.getChild('x', 'jabber:x:data')!.getChildren('field');
    assert.equal(fields.find((f) => f.attrs.var === 'switchboard_sessions')?.getChildText('value'), '2');

    // Chat both ways.
    await alice.client.xmpp.send(xml('message', { to: 'bob@localhost', type: 'chat', id: 'm1' }, xml('body', {}, 'hello from worker ' + alice.worker)));
    const m1 = await bob.client.waitFor((s) => s.is('message') && s.attrs.id === 'm1', 'message from alice', 15_000);
    assert.equal(m1.getChildText('body'), `hello from worker ${alice.worker}`);
    assert.equal(m1.attrs.from, alice.client.jid);
    await bob.client.xmpp.send(xml('message', { to: alice.client.jid, type: 'chat', id: 'm2' }, xml('body', {}, 'hi back')));
    assert.equal((await alice.client.waitFor((s) => s.is('message') && s.attrs.id === 'm2', 'reply from bob', 15_000)).getChildText('body'), 'hi back');

    // BOSH: each request on its own connection, so they reach both workers; those for the other
    // worker's session are passed to it. carol logs in, and chats with alice.
    const carol = new BoshClient(httpPort);
    const carolJid = await carol.login('carol', 'secret', 'web');
    assert.match(carol.sid, /^[12]w[0-9a-f]{32}$/, 'the session id names its worker');
    // carol speaks first: her worker announced her session before it relayed her message, so
    // alice's worker knows where carol is once the message has arrived (no directory race).
    await carol.send(`<message xmlns='jabber:client' to='${alice.client.jid}' type='chat' id='b2'><body>hi from BOSH</body></message>`);
    assert.equal((await alice.client.waitFor((s) => s.is('message') && s.attrs.id === 'b2', 'message from BOSH', 15_000)).getChildText('body'), 'hi from BOSH');
    await alice.client.xmpp.send(xml('message', { to: carolJid, type: 'chat', id: 'b1' }, xml('body', {}, 'hello BOSH')));
    assert.equal((await carol.waitFor((e) => e.name === 'message' && e.attrs.id === 'b1', 'message over BOSH', 15_000)).getChildText('body'), 'hello BOSH');
    const served = new Set(primary.lines.filter((l) => l.msg === 'authenticated' && l.user === 'carol@localhost').map((l) => l.worker));
    assert.equal(served.size, 1, 'one worker holds the BOSH stream');

    // PubSub: alice creates and publishes, bob (on the other worker) is notified.
    const node = `workers-${Date.now()}`;
    const pubsub = (...children: ReturnType<typeof xml>[]) => xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub' }, ...children);
    const create = await alice.client.xmpp.iqCaller.set(pubsub(xml('create', { node })), 'pubsub.localhost');
    assert.ok(create === undefined || create.name === 'pubsub');
    await bob.client.xmpp.iqCaller.set(pubsub(xml('subscribe', { node, jid: 'bob@localhost' })), 'pubsub.localhost');
    await alice.client.xmpp.iqCaller.set(pubsub(xml('publish', { node }, xml('item', { id: 'SIP/1000' }, xml('state', { xmlns: 'http://asterisk.org' }, 'busy')))), 'pubsub.localhost');
    const event = await bob.client.waitFor((s) => s.is('message') && s.attrs.from === 'pubsub.localhost' && s.getChild('event', 'http://jabber.org/protocol/pubsub#event') !== undefined, 'PubSub notification', 15_000);
    const item = event.getChild('event')!.getChild('items')!.getChild('item')!;
    assert.equal(item.attrs.id, 'SIP/1000');
    assert.equal(item.getChild('state')!.text(), 'busy');

    // Kill bob's worker: alice's worker tells her at once (no heartbeat timeout: 180 s by default).
    const ready = [...primary.lines].reverse().find((l) => l.msg === 'worker ready' && l.worker === bob.worker)!;
    const killedPid = ready.pid as number;
    const before = primary.lines.length;
    process.kill(killedPid, 'SIGKILL');
    await alice.client.waitFor(presenceFrom('bob', 'unavailable'), 'bob unavailable after his worker died', 15_000);
    const died = await primary.logged((l) => l.msg === 'worker died; restarting it', 'worker died', before);
    assert.equal(died.worker, bob.worker);
    const back = await primary.logged((l) => l.msg === 'worker ready' && l.worker === bob.worker, 'worker restarted', before);
    assert.notEqual(back.pid, killedPid);

    // Bob logs in again (on either worker) and is back for alice; messages flow again.
    const bobAgain = await login('bob', 'phone');
    await bobAgain.client.xmpp.iqCaller.get(xml('query', { xmlns: 'jabber:iq:roster' }));
    await bobAgain.client.xmpp.send(xml('presence'));
    await alice.client.waitFor(presenceFrom('bob'), 'bob available again', 15_000);
    await alice.client.xmpp.send(xml('message', { to: bobAgain.client.jid, type: 'chat', id: 'm3' }, xml('body', {}, 'welcome back')));
    assert.equal((await bobAgain.client.waitFor((s) => s.is('message') && s.attrs.id === 'm3', 'message after the restart', 15_000)).getChildText('body'), 'welcome back');
  });

  it('stops gracefully on SIGTERM: every worker ends, then the primary', async () => {
    for (const c of clients.splice(0)) await c.xmpp.stop().catch(() => {});
    const pids = primary.lines.filter((l) => l.msg === 'worker ready').map((l) => l.pid as number);
    primary.child.kill('SIGTERM');
    assert.equal(await primary.exited, 0);
    const stopped = primary.lines.filter((l) => l.msg === 'worker stopped').map((l) => l.worker).sort();
    assert.deepEqual(stopped, [1, 2]);
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), 'no worker is left running');
  });
});
