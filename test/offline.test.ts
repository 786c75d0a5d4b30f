// Offline messages (XEP-0160) with Tigase's limits and rules (seed 001 section 11.1), over real
// sockets: what is stored, delivery in order with delay stamps on initial presence, exactly once
// across restarts and crashes, the per-pair limits in both quota modes, the user's own limit,
// the seed's matcher examples, XEP-0334 hints, and switching storage off without AMP.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts, startTestServer, type TestServer } from './support/server.js';
import type { ServerProcessSpec } from './support/server-process.js';
import { RawClient } from './support/raw-client.js';
import { backends } from './support/postgres.js';
import type { Element } from '../src/xml/element.js';
import { loadConfig } from '../src/config/load.js';

const NS_DELAY = 'urn:xmpp:delay';

function errorOf(stanza: Element): { condition: string | undefined; code: string | undefined; text: string | undefined } {
  const e = stanza.getChild('error');
  const condition = e?.elements().find((c) => c.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas' && c.name !== 'text')?.name;
  return { condition, code: e?.attrs.code, text: e?.getChildText('text') };
}

/** Clients of one test file, closed at the end. */
class Clients {
  private readonly open: RawClient[] = [];
  private syncs = 0;

  constructor(private readonly server: () => TestServer) {}

  /** Logs in, asks for the roster and, unless told otherwise, sends initial presence. */
  async login(user: string, resource = 'r', presence: string | false = '<presence/>'): Promise<RawClient> {
    const c = await RawClient.connect(this.server().port);
    this.open.push(c);
    await c.login(user, 'secret', 'localhost', resource);
    c.send("<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>");
    await c.waitForName('iq', { id: 'roster' });
    if (presence !== false) c.send(presence);
    await this.sync(c);
    return c;
  }

  /**
   * Waits until the server has handled everything the client sent so far: a stream's stanzas are
   * handled in order, storage included, so the answer to a ping comes after all of it.
   */
  async sync(c: RawClient): Promise<void> {
    const id = `sync${++this.syncs}`;
    c.send(`<iq type='get' id='${id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await c.waitForName('iq', { id });
  }

  /** Makes the resource unavailable (RFC 6121 4.5), so that messages to the account are stored again. */
  async unavailable(c: RawClient): Promise<void> {
    c.send("<presence type='unavailable'/>");
    await this.sync(c);
  }

  closeAll(): void {
    for (const c of this.open.splice(0)) c.destroy();
  }
}

const chat = (to: string, id: string, body: string, extra = '') => `<message type='chat' to='${to}' id='${id}'><body>${body}</body>${extra}</message>`;
/** The messages a client received, in order, taken out of its buffer. */
const messagesOf = (c: RawClient) => c.stanzas.splice(0).filter((s) => s.name === 'message');
const idsOf = (c: RawClient) => messagesOf(c).map((m) => m.attrs.id);

const LIMIT = 150;

for (const backend of backends()) describe(`offline messages (${backend.name})`, () => {
  let t: TestServer;
  const clients = new Clients(() => t);
  before(async () => {
    t = await startTestServer({ storage: await backend.storage(), amp: { 'store-limit': LIMIT } });
    for (const u of ['romeo', 'juliet', 'nurse', 'tybalt', 'benvolio', 'paris', 'friar']) await t.addUser(`${u}@localhost`);
  });
  after(async () => {
    clients.closeAll();
    await t.stop(true);
    await backend.cleanup();
  });

  it('delivers stored messages on initial presence after the roster exchange, in order, once, each with a delay stamp', async () => {
    const romeo = await clients.login('romeo');
    const nurse = await clients.login('nurse');
    const before = Date.now();
    // Interleaved senders, a message without a type (normal), and one to an offline full JID
    // (RFC 6121 8.5.3.2.1: handled as if sent to the bare JID).
    const sends: [RawClient, string][] = [
      [romeo, chat('juliet@localhost', 'o1', 'first')],
      [nurse, chat('juliet@localhost', 'o2', 'second')],
      [romeo, "<message to='juliet@localhost' id='o3'><body>third, type normal</body></message>"],
      [romeo, chat('juliet@localhost/balcony', 'o4', 'fourth, to a resource that is not online')],
      [nurse, chat('juliet@localhost', 'o5', 'fifth &amp; &lt;last&gt;')],
    ];
    for (const [sender, xml] of sends) {
      sender.send(xml);
      await clients.sync(sender);
    }
    const after = Date.now();
    await romeo.expectNothing((s) => s.name === 'message', 100); // stored, not bounced

    const juliet = await clients.login('juliet', 'balcony', false);
    assert.deepEqual(messagesOf(juliet), [], 'nothing before initial presence');
    juliet.send('<presence/>');
    await clients.sync(juliet);
    const delivered = messagesOf(juliet);
    assert.deepEqual(delivered.map((m) => m.attrs.id), ['o1', 'o2', 'o3', 'o4', 'o5']);
    assert.equal(delivered[4]!.getChildText('body'), 'fifth & <last>');
    assert.deepEqual(delivered.map((m) => m.attrs.from), ['romeo@localhost/r', 'nurse@localhost/r', 'romeo@localhost/r', 'romeo@localhost/r', 'nurse@localhost/r']);
    let previous = 0;
    for (const m of delivered) {
      const delay = m.getChild('delay', NS_DELAY);
      assert.equal(delay?.attrs.from, 'localhost');
      const stamp = Date.parse(delay!.attrs.stamp!);
      assert.match(delay!.attrs.stamp!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      assert.ok(stamp >= before - 1000 && stamp <= after + 1000 && stamp >= previous, `stamp ${delay!.attrs.stamp} in order and in the window`);
      previous = stamp;
    }

    // Delivered means removed: another resource logging in gets nothing.
    const again = await clients.login('juliet', 'again');
    assert.deepEqual(idsOf(again), []);
  });

  it('keeps messages for a resource with negative priority until a resource that can take them comes online', async () => {
    const romeo = await clients.login('romeo', 'neg');
    romeo.send(chat('tybalt@localhost', 'n1', 'wait for me'));
    await clients.sync(romeo);
    const hidden = await clients.login('tybalt', 'hidden', '<presence><priority>-1</priority></presence>');
    assert.deepEqual(idsOf(hidden), []);
    const visible = await clients.login('tybalt', 'visible');
    assert.deepEqual(idsOf(visible), ['n1']);
  });

  it('limits messages per sender-recipient pair (store-limit), answering service-unavailable over the quota', async () => {
    const romeo = await clients.login('romeo', 'limit');
    const nurse = await clients.login('nurse', 'limit');
    for (let n = 1; n <= LIMIT + 1; n++) romeo.send(chat('benvolio@localhost', `l${n}`, `message ${n}`));
    await clients.sync(romeo);
    const [refused, ...others] = messagesOf(romeo);
    assert.equal(others.length, 0, 'only the one over the limit is refused');
    assert.deepEqual([refused!.attrs.id, refused!.attrs.type, refused!.attrs.from], [`l${LIMIT + 1}`, 'error', 'benvolio@localhost']);
    const error = errorOf(refused!);
    assert.deepEqual([error.condition, error.code], ['service-unavailable', '503']);
    assert.match(error.text!, /quota/);
    assert.equal(refused!.getChildText('body'), `message ${LIMIT + 1}`, 'the error echoes the message');
    // The limit is per pair: another sender still gets through.
    nurse.send(chat('benvolio@localhost', 'from-nurse', 'from the nurse'));
    await clients.sync(nurse);
    assert.deepEqual(idsOf(nurse), []);
    const benvolio = await clients.login('benvolio');
    assert.deepEqual(idsOf(benvolio), [...Array.from({ length: LIMIT }, (_, i) => `l${i + 1}`), 'from-nurse']);
  });

  it('delivers a message sent while stored ones are being written out after them, not in between', async () => {
    const romeo = await clients.login('romeo', 'live');
    for (let n = 1; n <= 120; n++) romeo.send(chat('friar@localhost', `s${n}`, `stored ${n}`));
    await clients.sync(romeo);
    const friar = await clients.login('friar', 'cell', false);
    friar.send('<presence/>');
    await friar.waitForName('message', { id: 's1' }); // the flush is under way
    romeo.send(chat('friar@localhost', 'live', 'sent while the stored ones are written'));
    await clients.sync(romeo);
    await clients.sync(friar);
    const ids = ['s1', ...idsOf(friar)];
    assert.equal(ids.length, 121);
    assert.equal(ids.at(-1), 'live', `live came at position ${ids.indexOf('live') + 1}`);
    assert.deepEqual(idsOf(romeo), []);
  });

  it('keeps stored messages across a restart and delivers them exactly once', async () => {
    const romeo = await clients.login('romeo', 'restart');
    romeo.send(chat('paris@localhost', 'r1', 'before the restart'));
    romeo.send(chat('paris@localhost', 'r2', 'also before'));
    await clients.sync(romeo);
    clients.closeAll();
    t = await t.restart();
    const paris = await clients.login('paris');
    assert.deepEqual(idsOf(paris), ['r1', 'r2']);
    clients.closeAll();
    t = await t.restart();
    const again = await clients.login('paris', 'again');
    assert.deepEqual(idsOf(again), [], 'delivered messages do not come back after a restart');
  });

  it('loses nothing in a crash between storing and delivery, and delivers nothing twice after a crash that follows delivery', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'switchboard-crash-'));
    const [port, tlsPort] = (await freePorts(2)) as [number, number];
    const spec: ServerProcessSpec = {
      overrides: { storage: await backend.storage() }, dataDir, port, tlsPort,
      users: ['mercutio@localhost', 'rosaline@localhost'],
    };
    const crashed = new Clients(() => ({ port: spec.port }) as TestServer);
    let child = await startServerProcess(spec);
    try {
      const mercutio = await crashed.login('mercutio');
      for (const n of [1, 2, 3]) mercutio.send(chat('rosaline@localhost', `c${n}`, `stored before the crash ${n}`));
      await crashed.sync(mercutio); // stored: the server answered the ping after handling them
      await killServerProcess(child);
      crashed.closeAll();

      child = await startServerProcess({ ...spec, users: [] });
      const rosaline = await crashed.login('rosaline');
      assert.deepEqual(idsOf(rosaline), ['c1', 'c2', 'c3'], 'nothing stored was lost');
      // The initial presence was answered after its flush: every message was written and removed.
      await killServerProcess(child);
      crashed.closeAll();

      child = await startServerProcess({ ...spec, users: [] });
      const again = await crashed.login('rosaline', 'again');
      assert.deepEqual(idsOf(again), [], 'nothing delivered is delivered again');
    } finally {
      crashed.closeAll();
      await killServerProcess(child);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

function startServerProcess(spec: ServerProcessSpec): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'support', 'server-process.ts'), JSON.stringify(spec)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('ready\n')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`the server process exited (${code}) before it was ready`)));
  });
}

/** SIGKILL: no graceful stop, nothing flushed or closed: a crash. */
async function killServerProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

describe('offline messages: quota-exceeded drop, the user\'s own limit', () => {
  let t: TestServer;
  const clients = new Clients(() => t);
  before(async () => {
    t = await startTestServer({ amp: { 'store-limit': 2, 'quota-exceeded': 'drop', 'user-store-limit-enable': true } });
    for (const u of ['romeo', 'juliet', 'nurse', 'tybalt']) await t.addUser(`${u}@localhost`);
  });
  after(async () => {
    clients.closeAll();
    await t.stop(true);
  });

  it('drops messages over the limit silently with quota-exceeded: drop', async () => {
    const romeo = await clients.login('romeo', 'drop');
    for (const n of [1, 2, 3]) romeo.send(chat('nurse@localhost', `d${n}`, `message ${n}`));
    await clients.sync(romeo);
    await romeo.expectNothing((s) => s.name === 'message', 200);
    const nurse = await clients.login('nurse');
    assert.deepEqual(idsOf(nurse), ['d1', 'd2']);
  });

  it('lets a user set its own limit, persisted in its settings, and limit=false go back to store-limit', async () => {
    const juliet = await clients.login('juliet', 'settings');
    juliet.send("<iq type='get' id='g0'><msgoffline xmlns='msgoffline'/></iq>");
    assert.equal((await juliet.waitForName('iq', { id: 'g0' })).getChild('msgoffline', 'msgoffline')?.attrs.limit, 'false', 'no limit of its own yet');
    // The seed's example, byte for byte.
    juliet.send('<iq type="set" id="aabba">\n  <msgoffline xmlns="msgoffline" limit="10"/>\n</iq>');
    const set = await juliet.waitForName('iq', { id: 'aabba' });
    assert.equal(set.attrs.type, 'result');
    assert.equal(set.getChild('msgoffline', 'msgoffline')?.attrs.limit, '10');
    assert.equal(await t.server.storage.keyValue('offline-msgs').get('juliet@localhost', 'store-limit'), 10);
    juliet.send("<iq type='set' id='one'><msgoffline xmlns='msgoffline' limit='1'/></iq>");
    await juliet.waitForName('iq', { id: 'one', type: 'result' });
    await clients.unavailable(juliet);

    const romeo = await clients.login('romeo', 'own');
    romeo.send(chat('juliet@localhost', 'u1', 'within her limit'));
    romeo.send(chat('juliet@localhost', 'u2', 'over her limit of 1, below store-limit 2'));
    await clients.sync(romeo);
    const back = await clients.login('juliet', 'back');
    assert.deepEqual(idsOf(back), ['u1']);

    back.send('<iq type="set" id="aabbb">\n  <msgoffline xmlns="msgoffline" limit="false"/>\n</iq>');
    const unset = await back.waitForName('iq', { id: 'aabbb' });
    assert.equal(unset.attrs.type, 'result');
    assert.equal(unset.getChild('msgoffline', 'msgoffline')?.attrs.limit, 'false');
    assert.equal(await t.server.storage.keyValue('offline-msgs').get('juliet@localhost', 'store-limit'), undefined);
    await clients.unavailable(back);
    for (const n of [3, 4, 5]) romeo.send(chat('juliet@localhost', `u${n}`, `message ${n}`));
    await clients.sync(romeo);
    assert.deepEqual(idsOf(await clients.login('juliet', 'store-limit-again')), ['u3', 'u4'], 'store-limit (2) applies again');
  });

  it('takes limit 0 as storing nothing, and refuses bad values and other accounts', async () => {
    const tybalt = await clients.login('tybalt', 'zero');
    tybalt.send("<iq type='set' id='z'><msgoffline xmlns='msgoffline' limit='0'/></iq>");
    await tybalt.waitForName('iq', { id: 'z', type: 'result' });
    for (const [id, limit] of [['bad1', 'ten'], ['bad2', '-1'], ['bad3', '']]) {
      tybalt.send(`<iq type='set' id='${id}'><msgoffline xmlns='msgoffline' limit='${limit}'/></iq>`);
      assert.deepEqual(errorOf(await tybalt.waitForName('iq', { id: id! })).condition, 'bad-request');
    }
    tybalt.send("<iq type='set' id='other' to='juliet@localhost'><msgoffline xmlns='msgoffline' limit='5'/></iq>");
    assert.equal(errorOf(await tybalt.waitForName('iq', { id: 'other' })).condition, 'forbidden');
    await clients.unavailable(tybalt);
    const romeo = await clients.login('romeo', 'zero');
    romeo.send(chat('tybalt@localhost', 'z1', 'nothing is kept'));
    await clients.sync(romeo);
    await romeo.expectNothing((s) => s.name === 'message', 100); // quota-exceeded is drop here
    assert.deepEqual(idsOf(await clients.login('tybalt', 'zero-back')), []);
  });
});

describe('offline messages: which messages are stored', () => {
  let t: TestServer;
  const clients = new Clients(() => t);
  before(async () => {
    t = await startTestServer();
    for (const u of ['romeo', 'juliet', 'nurse', 'friar']) await t.addUser(`${u}@localhost`);
  });
  after(async () => {
    clients.closeAll();
    await t.stop(true);
  });

  it('stores normal and chat messages with a body, bounces others, drops headlines, honours XEP-0334 hints', async () => {
    const romeo = await clients.login('romeo', 'kinds');
    const sent = [
      chat('juliet@localhost', 'k1', 'stored'),
      "<message type='chat' to='juliet@localhost' id='k2'><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
      "<message type='chat' to='juliet@localhost' id='k3'><body/></message>",
      "<message type='headline' to='juliet@localhost' id='k4'><body>news</body></message>",
      "<message type='groupchat' to='juliet@localhost' id='k5'><body>not for offline storage</body></message>",
      chat('juliet@localhost', 'k6', 'no-store', "<no-store xmlns='urn:xmpp:hints'/>"),
      "<message type='chat' to='juliet@localhost' id='k7'><store xmlns='urn:xmpp:hints'/><x xmlns='urn:example'/></message>",
      // XEP-0334 4.1: no-permanent-store is about archives; offline storage is removed on delivery.
      chat('juliet@localhost', 'k8', 'not archived, still delivered', "<no-permanent-store xmlns='urn:xmpp:hints'/>"),
      "<message type='chat' to='juliet@localhost' id='k9'><no-permanent-store xmlns='urn:xmpp:hints'/></message>",
      "<message type='headline' to='juliet@localhost' id='k10'><store xmlns='urn:xmpp:hints'/><body>kept on request</body></message>",
    ];
    for (const s of sent) romeo.send(s);
    await clients.sync(romeo);
    const bounced = messagesOf(romeo);
    assert.deepEqual(bounced.map((m) => [m.attrs.id, errorOf(m).condition]),
      [['k2', 'service-unavailable'], ['k3', 'service-unavailable'], ['k5', 'service-unavailable'], ['k6', 'service-unavailable'], ['k9', 'service-unavailable']]);
    const juliet = await clients.login('juliet');
    assert.deepEqual(idsOf(juliet), ['k1', 'k7', 'k8', 'k10']);
  });

  it('keeps 100 messages per pair by default', async () => {
    const romeo = await clients.login('romeo', 'hundred');
    for (let n = 1; n <= 101; n++) romeo.send(chat('friar@localhost', `h${n}`, `message ${n}`));
    await clients.sync(romeo);
    assert.deepEqual(messagesOf(romeo).map((m) => [m.attrs.id, errorOf(m).condition]), [['h101', 'service-unavailable']]);
    assert.equal((await clients.login('friar')).stanzas.filter((m) => m.name === 'message').length, 100);
  });

  it('advertises msgoffline and AMP in disco', async () => {
    const nurse = await clients.login('nurse', 'disco');
    nurse.send("<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    const vars = (await nurse.waitForName('iq', { id: 'd' })).getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
    assert.ok(vars.includes('msgoffline') && vars.includes('http://jabber.org/protocol/amp'), vars.join(' '));
  });
});

/** One server per msg-store-offline-paths setting of the seed (11.1.2). */
function matcherSuite(title: string, paths: string[], cases: { send: string; stored: boolean; why: string }[]): void {
  describe(`msg-store-offline-paths ${title}`, () => {
    let t: TestServer;
    const clients = new Clients(() => t);
    before(async () => {
      t = await startTestServer({ amp: { 'msg-store-offline-paths': paths } });
      for (const u of ['romeo', 'juliet']) await t.addUser(`${u}@localhost`);
    });
    after(async () => {
      clients.closeAll();
      await t.stop(true);
    });

    it(`${JSON.stringify(paths)}: ${cases.map((c) => c.why).join('; ')}`, async () => {
      const romeo = await clients.login('romeo');
      cases.forEach((c, i) => romeo.send(`<message type='chat' to='juliet@localhost' id='m${i}'>${c.send}</message>`));
      await clients.sync(romeo);
      const bounced = new Set(messagesOf(romeo).map((m) => m.attrs.id));
      const delivered = new Set(idsOf(await clients.login('juliet')));
      cases.forEach((c, i) => {
        assert.equal(delivered.has(`m${i}`), c.stored, `${c.why}: ${c.send}`);
        assert.equal(bounced.has(`m${i}`), !c.stored, `bounced when not stored: ${c.send}`);
      });
    });
  });
}

matcherSuite('(receipts in their namespace, store-offline in any)', ['/message/received[urn:xmpp:receipts]', '/message/store-offline'], [
  { send: "<received xmlns='urn:xmpp:receipts' id='x'/>", stored: true, why: 'a receipt is stored' },
  { send: "<received xmlns='urn:example:other'/>", stored: false, why: 'received in another namespace is not' },
  { send: "<store-offline xmlns='urn:example:any'/>", stored: true, why: 'store-offline is stored whatever its namespace' },
  { send: '<store-offline/>', stored: true, why: 'also in the default namespace' },
  { send: '<body>with a body</body>', stored: true, why: 'messages with a body still are' },
]);

matcherSuite('(store-offline, and -do-not-store)', ['/message/store-offline', '-/message/do-not-store'], [
  { send: "<store-offline xmlns='urn:example'/>", stored: true, why: 'store-offline is stored without checking its namespace' },
  { send: "<body>hello</body><do-not-store xmlns='urn:example'/>", stored: false, why: 'do-not-store is not stored, body or not' },
]);

// The seed's "THE ABOVE STATEMENT WILL NOT WORK": it stores every message with <received>.
matcherSuite('(the example that will not work)', ['/message/received', '-/message/plain'], [
  { send: '<received/><plain/>', stored: true, why: 'received and plain: stored, the first matcher decides' },
  { send: '<body>hi</body><plain/>', stored: false, why: 'plain alone: not stored' },
]);

// The seed's corrected order: plain is checked first. As written there both entries are negative,
// so a receipt alone is not stored either; left to right, the first match decides.
matcherSuite('(the corrected example)', ['-/message/plain', '-/message/received'], [
  { send: '<received/><plain/><body>hi</body>', stored: false, why: 'received and plain: not stored' },
  { send: '<received/><body>hi</body>', stored: false, why: 'received: not stored' },
  { send: '<body>neither</body>', stored: true, why: 'neither: the default rules store it' },
]);

describe('offline storage switched off (amp.msgoffline.active: false)', () => {
  let t: TestServer;
  const clients = new Clients(() => t);
  before(async () => {
    t = await startTestServer({ amp: { msgoffline: { active: false } } });
    for (const u of ['romeo', 'juliet']) await t.addUser(`${u}@localhost`);
    // Juliet lets Romeo see her presence, so he may ask for AMP replies about her (XEP-0079 9).
    await t.server.storage.roster.setItem('juliet@localhost', { jid: 'romeo@localhost', groups: [], subscription: 'from', ask: false, pendingIn: false, approved: false, visible: true });
  });
  after(async () => {
    clients.closeAll();
    await t.stop(true);
  });

  it('bounces messages to offline users, keeps AMP, and advertises no msgoffline', async () => {
    const romeo = await clients.login('romeo');
    romeo.send(chat('juliet@localhost', 'off1', 'not stored'));
    assert.equal(errorOf(await romeo.waitForName('message', { id: 'off1' })).condition, 'service-unavailable');
    romeo.send(chat('juliet@localhost', 'off2', 'with a rule', "<amp xmlns='http://jabber.org/protocol/amp'><rule condition='deliver' action='notify' value='none'/></amp>"));
    const notify = await romeo.waitFor((s) => s.attrs.id === 'off2' && s.attrs.type !== 'error');
    assert.equal(notify.getChild('amp', 'http://jabber.org/protocol/amp')?.attrs.status, 'notify');
    assert.equal(errorOf(await romeo.waitFor((s) => s.attrs.id === 'off2' && s.attrs.type === 'error')).condition, 'service-unavailable');
    romeo.send("<iq type='get' id='msgoffline'><msgoffline xmlns='msgoffline' limit='5'/></iq>");
    assert.equal(errorOf(await romeo.waitForName('iq', { id: 'msgoffline' })).condition, 'service-unavailable');
    romeo.send("<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    const vars = (await romeo.waitForName('iq', { id: 'd' })).getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
    assert.ok(!vars.includes('msgoffline') && vars.includes('http://jabber.org/protocol/amp'), vars.join(' '));
    assert.deepEqual(idsOf(await clients.login('juliet')), []);
  });
});

describe('the seed\'s offline message settings in a configuration file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const load = (yaml: string) => {
    const file = join(dir, 'switchboard.yaml');
    writeFileSync(file, yaml);
    return loadConfig({ file, env: {} });
  };

  it("reads 'sess-man' { amp () { ... msgoffline (active: false) {} } } as the amp section", async () => {
    const { config } = await load([
      'amp:',
      '  store-limit: 200',
      '  user-store-limit-enable: true',
      '  quota-exceeded: drop',
      "  msg-store-offline-paths: ['/message/received[urn:xmpp:receipts]', '/message/store-offline', '-/message/do-not-store']",
      '  msgoffline:',
      '    active: false',
    ].join('\n'));
    assert.deepEqual(config.amp, {
      'store-limit': 200,
      'user-store-limit-enable': true,
      'quota-exceeded': 'drop',
      'msg-store-offline-paths': ['/message/received[urn:xmpp:receipts]', '/message/store-offline', '-/message/do-not-store'],
      msgoffline: { active: false },
    });
    assert.deepEqual((await load('')).config.amp, {
      'store-limit': 100, 'user-store-limit-enable': false, 'quota-exceeded': 'error', 'msg-store-offline-paths': [], msgoffline: { active: true },
    });
  });

  it('names a malformed matcher and the syntax expected', async () => {
    await assert.rejects(load("amp:\n  msg-store-offline-paths: ['/message/ok', 'message/received', '/presence/x']\n"), (error: Error) => {
      assert.match(error.message, /amp\.msg-store-offline-paths\[1\]: a matcher is/);
      assert.match(error.message, /amp\.msg-store-offline-paths\[2\]/);
      assert.doesNotMatch(error.message, /\[0\]/);
      return true;
    });
  });
});
