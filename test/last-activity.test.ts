// Last activity (XEP-0012, seed 001 section 11.2) over real sockets: queries to a bare JID (offline
// with status text, online), to the server (uptime) and to a full JID (routed to the client), the
// subscription check, what counts as activity, the persistence modes, and both parts being off
// unless enabled.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, startTestServer, type TestServer } from './support/server.js';
import { loadConfig } from '../src/config/load.js';
import { RawClient } from './support/raw-client.js';
import { backends } from './support/postgres.js';
import type { Element } from '../src/xml/element.js';
import type { RosterItem } from '../src/storage/types.js';

const NS_LAST = 'jabber:iq:last';
const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

const enabled = (marker: Record<string, unknown> = {}) => ({
  'last-activity': { 'jabber:iq:last-marker': { active: true, 'jabber:iq:last': { active: true }, ...marker } },
});

function item(jid: string, subscription: RosterItem['subscription']): RosterItem {
  return { jid, groups: [], subscription, ask: false, pendingIn: false, approved: false, visible: true };
}

const conditionOf = (iq: Element) => iq.getChild('error')?.elements().find((c) => c.attrs.xmlns === NS_STANZAS && c.name !== 'text')?.name;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `check` returns something other than undefined. */
async function eventually<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A server and its clients for one suite. */
function harness(overrides: () => Promise<Record<string, unknown>>, users: string[]) {
  const h = {
    t: undefined as unknown as TestServer,
    open: [] as RawClient[],
    queries: 0,
    async login(user: string, resource = 'r', presence = '<presence/>'): Promise<RawClient> {
      const c = await RawClient.connect(h.t.port);
      h.open.push(c);
      await c.login(user, 'secret', 'localhost', resource);
      c.send("<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>");
      await c.waitForName('iq', { id: 'roster' });
      if (presence) c.send(presence);
      await h.query(c, 'localhost', 'urn:xmpp:ping', 'ping'); // handled once everything before it is
      return c;
    },
    async query(c: RawClient, to: string, ns = NS_LAST, name = 'query'): Promise<Element> {
      const id = `q${++h.queries}`;
      c.send(`<iq type='get' id='${id}' to='${to}'><${name} xmlns='${ns}'/></iq>`);
      return c.waitForName('iq', { id });
    },
    /** Ends the stream and waits until the server has closed the session. */
    async leave(c: RawClient): Promise<void> {
      c.end();
      await c.closed;
      while (h.t.server.sessions.size > h.open.filter((o) => !o.ended).length) await sleep(10);
    },
    stored(account: string): Promise<{ at: number; status?: string } | undefined> {
      return h.t.server.storage.keyValue('last-activity').get(account, 'last');
    },
  };
  before(async () => {
    h.t = await startTestServer(await overrides());
    for (const u of users) await h.t.addUser(`${u}@localhost`);
  });
  afterEach(async () => {
    for (const c of h.open.splice(0)) c.destroy();
    while (h.t.server.sessions.size > 0) await sleep(10);
  });
  after(async () => {
    await h.t.stop(true);
  });
  return h;
}

for (const backend of backends()) describe(`last activity queries (${backend.name})`, () => {
  const h = harness(async () => ({ storage: await backend.storage(), ...enabled() }), ['romeo', 'juliet', 'mallory', 'friar']);
  before(async () => {
    const roster = h.t.server.storage.roster;
    // Juliet's and the friar's presence is visible to Romeo; Mallory sees nobody's.
    await roster.setItem('juliet@localhost', item('romeo@localhost', 'from'));
    await roster.setItem('friar@localhost', item('romeo@localhost', 'both'));
  });
  after(() => backend.cleanup());

  it('advertises jabber:iq:last and answers the server\'s uptime', async () => {
    const romeo = await h.login('romeo', 'uptime');
    const features = (await h.query(romeo, 'localhost', 'http://jabber.org/protocol/disco#info')).getChild('query')!.getChildren('feature');
    assert.ok(features.some((f) => f.attrs.var === NS_LAST));
    const first = Number((await h.query(romeo, 'localhost')).getChild('query', NS_LAST)!.attrs.seconds);
    await sleep(1100);
    const uptime = (await h.query(romeo, 'localhost')).getChild('query', NS_LAST)!;
    assert.ok(Number.isInteger(Number(uptime.attrs.seconds)) && Number(uptime.attrs.seconds) >= first + 1, `uptime ${uptime.attrs.seconds} after ${first}`);
    assert.equal(uptime.text(), '', 'no text for a server');
  });

  it('answers 0 for an online user, and for an offline one the seconds since its last activity with its status text', async () => {
    const romeo = await h.login('romeo', 'orchard');
    const juliet = await h.login('juliet', 'balcony');
    const online = (await h.query(romeo, 'juliet@localhost')).getChild('query', NS_LAST)!;
    assert.deepEqual([online.attrs.seconds, online.text()], ['0', '']);
    assert.equal((await h.query(juliet, 'juliet@localhost')).getChild('query', NS_LAST)!.attrs.seconds, '0', 'a user may ask about itself');

    juliet.send("<presence type='unavailable'><status>Heading Home</status></presence>");
    await h.leave(juliet);
    await sleep(1100);
    const offline = (await h.query(romeo, 'juliet@localhost')).getChild('query', NS_LAST)!;
    assert.ok(Number(offline.attrs.seconds) >= 1 && Number(offline.attrs.seconds) < 5, `seconds ${offline.attrs.seconds}`);
    assert.equal(offline.text(), 'Heading Home');

    // Stored when her last session ended, so a restart keeps it.
    h.t = await h.t.restart();
    const after = await h.login('romeo', 'after-restart');
    const kept = (await h.query(after, 'juliet@localhost')).getChild('query', NS_LAST)!;
    assert.ok(Number(kept.attrs.seconds) >= 1, `seconds ${kept.attrs.seconds}`);
    assert.equal(kept.text(), 'Heading Home');
  });

  it('answers item-not-found for a user never seen active', async () => {
    const romeo = await h.login('romeo', 'friar');
    assert.equal(conditionOf(await h.query(romeo, 'friar@localhost')), 'item-not-found');
  });

  it('forbids others than contacts allowed to see the presence, for bare and full JIDs, existing or not', async () => {
    const juliet = await h.login('juliet', 'hidden');
    const mallory = await h.login('mallory', 'snoop');
    for (const to of ['juliet@localhost', 'juliet@localhost/hidden', 'juliet@localhost/elsewhere', 'nobody@localhost', 'romeo@localhost']) {
      const reply = await h.query(mallory, to);
      assert.equal(conditionOf(reply), 'forbidden', to);
      assert.equal(reply.getChild('error')!.attrs.code, '403');
    }
    await juliet.expectNothing((s) => s.name === 'iq' && s.attrs.type === 'get', 100);
  });

  it('routes a query to a full JID to that client, and its answer back', async () => {
    const romeo = await h.login('romeo', 'asker');
    const juliet = await h.login('juliet', 'idle');
    romeo.send("<iq type='get' id='idle1' to='juliet@localhost/idle'><query xmlns='jabber:iq:last'/></iq>");
    const request = await juliet.waitForName('iq', { id: 'idle1' });
    assert.equal(request.attrs.from, 'romeo@localhost/asker');
    juliet.send("<iq type='result' id='idle1' to='romeo@localhost/asker'><query xmlns='jabber:iq:last' seconds='123'/></iq>");
    const answer = await romeo.waitForName('iq', { id: 'idle1' });
    assert.deepEqual([answer.attrs.from, answer.getChild('query', NS_LAST)?.attrs.seconds], ['juliet@localhost/idle', '123']);
    assert.equal(conditionOf(await h.query(romeo, 'juliet@localhost/gone')), 'service-unavailable', 'RFC 6121 rules for a resource that is not there');
  });
});

describe('last activity persistence', () => {
  describe('batched (default): written when the last session ends, and every persist-interval seconds', () => {
    const h = harness(async () => enabled({ 'persist-interval': 1 }), ['nurse', 'tybalt']);

    it('writes an account when its last session ends, not on each update', async () => {
      const nurse = await h.login('nurse', 'one');
      const second = await h.login('nurse', 'two');
      assert.equal(await h.stored('nurse@localhost'), undefined, 'not written on presence');
      await h.leave(nurse);
      assert.equal(await h.stored('nurse@localhost'), undefined, 'another session is still there');
      second.send("<presence type='unavailable'><status>Gone to the market</status></presence>");
      await h.leave(second);
      const record = await eventually(() => h.stored('nurse@localhost'), 'the record of the nurse');
      assert.equal(record.status, 'Gone to the market');
      assert.ok(Date.now() - record.at < 5000);
    });

    it('writes the records of users still online in batches', async () => {
      await h.login('tybalt', 'online');
      const record = await eventually(() => h.stored('tybalt@localhost'), 'the batch with tybalt', 3000);
      assert.ok(Date.now() - record.at < 5000);
    });
  });

  describe('persistAllToRepository: every update is written at once; presence counts, messages do not by default', () => {
    const h = harness(async () => enabled({ persistAllToRepository: true }), ['nurse', 'paris']);

    it('writes on presence and session end, not on messages', async () => {
      const nurse = await h.login('nurse', 'all', '<presence><status>At the gate</status></presence>');
      const onPresence = await h.stored('nurse@localhost');
      assert.equal(onPresence?.status, 'At the gate', 'written with the presence');
      await sleep(20);
      nurse.send("<message type='chat' to='paris@localhost' id='m1'><body>not activity by default</body></message>");
      await h.query(nurse, 'localhost', 'urn:xmpp:ping', 'ping');
      assert.deepEqual(await h.stored('nurse@localhost'), onPresence);
      await h.leave(nurse);
      const onClose = await eventually(async () => {
        const r = await h.stored('nurse@localhost');
        return r && r.at > onPresence!.at ? r : undefined;
      }, 'the session end');
      assert.equal(onClose.status, 'At the gate', 'the status of the last presence stays');
    });
  });

  describe('message: true, presence: false', () => {
    const h = harness(async () => enabled({ persistAllToRepository: true, message: true, presence: false }), ['nurse', 'paris']);

    it('counts only messages', async () => {
      const nurse = await h.login('nurse', 'messages', '<presence><status>ignored</status></presence>');
      assert.equal(await h.stored('nurse@localhost'), undefined, 'presence is not activity here');
      nurse.send("<message type='chat' to='paris@localhost' id='m1'><body>activity</body></message>");
      await h.query(nurse, 'localhost', 'urn:xmpp:ping', 'ping');
      const record = await h.stored('nurse@localhost');
      assert.ok(record && Date.now() - record.at < 5000);
      assert.equal(record.status, undefined);
      await h.leave(nurse);
      await sleep(50);
      assert.deepEqual(await h.stored('nurse@localhost'), record, 'nor is the session ending');
    });
  });
});

describe('last activity switched off', () => {
  describe('both parts (the default)', () => {
    const h = harness(async () => ({}), ['romeo', 'juliet']);
    before(() => h.t.server.storage.roster.setItem('juliet@localhost', item('romeo@localhost', 'both')));

    it('answers no queries, advertises nothing and records nothing', async () => {
      const juliet = await h.login('juliet');
      const romeo = await h.login('romeo');
      assert.equal(conditionOf(await h.query(romeo, 'juliet@localhost')), 'service-unavailable');
      assert.equal(conditionOf(await h.query(romeo, 'localhost')), 'service-unavailable');
      const features = (await h.query(romeo, 'localhost', 'http://jabber.org/protocol/disco#info')).getChild('query')!.getChildren('feature');
      assert.ok(!features.some((f) => f.attrs.var === NS_LAST));
      await h.leave(juliet);
      await sleep(50);
      assert.equal(await h.stored('juliet@localhost'), undefined);
    });
  });

  describe('the marker alone', () => {
    const h = harness(async () => ({ 'last-activity': { 'jabber:iq:last-marker': { active: true } } }), ['romeo', 'juliet']);
    before(() => h.t.server.storage.roster.setItem('juliet@localhost', item('romeo@localhost', 'both')));

    it('records activity with the marker alone, and answers no queries', async () => {
      const romeo = await h.login('romeo');
      const juliet = await h.login('juliet');
      assert.equal(conditionOf(await h.query(romeo, 'juliet@localhost')), 'service-unavailable');
      await h.leave(juliet);
      await eventually(() => h.stored('juliet@localhost'), 'the marker\'s record');
    });
  });

  it("reads the seed's 'jabber:iq:last-marker' (active: true) { 'jabber:iq:last' (active: true) {} } from YAML", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-config-'));
    try {
      const file = join(dir, 'switchboard.yaml');
      writeFileSync(file, [
        'last-activity:',
        '  jabber:iq:last-marker:',
        '    active: true',
        '    message: true',
        '    presence: true',
        '    persistAllToRepository: true',
        '    jabber:iq:last:',
        '      active: true',
      ].join('\n'));
      const { config } = await loadConfig({ file, env: {} });
      assert.deepEqual(config['last-activity'], {
        'jabber:iq:last-marker': { active: true, message: true, presence: true, persistAllToRepository: true, 'persist-interval': 60, 'jabber:iq:last': { active: true } },
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses jabber:iq:last without the marker it depends on', () => {
    assert.throws(() => buildConfig({ 'last-activity': { 'jabber:iq:last-marker': { 'jabber:iq:last': { active: true } } } }),
      /jabber:iq:last needs jabber:iq:last-marker active: true/);
  });
});
