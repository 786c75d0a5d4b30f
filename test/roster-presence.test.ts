// Rosters and presence subscriptions (RFC 6121) over real sockets, including the state that
// must survive a restart: accounts, roster items and pending subscription requests.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { RawClient } from './support/raw-client.js';
import type { Element } from '../src/xml/element.js';
import { backends } from './support/postgres.js';

const rosterItem = (s: Element) => s.getChild('query', 'jabber:iq:roster')?.getChild('item');
const isPush = (jid: string, subscription?: string) => (s: Element) =>
  s.name === 'iq' && s.attrs.type === 'set' && rosterItem(s)?.attrs.jid === jid && (subscription === undefined || rosterItem(s)?.attrs.subscription === subscription);

for (const backend of backends()) describe(`roster and presence (${backend.name})`, () => {
  let t: TestServer;
  const open: RawClient[] = [];
  async function login(user: string, resource = 'r', opts: { roster?: boolean; presence?: boolean } = {}): Promise<RawClient> {
    const c = await RawClient.connect(t.port);
    open.push(c);
    await c.login(user, 'secret', 'localhost', resource);
    if (opts.roster !== false) {
      c.send("<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>");
      await c.waitForName('iq', { id: 'roster' });
    }
    if (opts.presence !== false) c.send('<presence/>');
    return c;
  }
  before(async () => {
    t = await startTestServer({ storage: await backend.storage() });
    for (const u of ['romeo', 'juliet', 'nurse', 'tybalt', 'mercutio', 'benvolio']) await t.addUser(`${u}@localhost`);
  });
  after(async () => {
    for (const c of open) c.destroy();
    await t.stop(true);
    await backend.cleanup();
  });

  it('sets, versions, pushes to every interested resource, and removes roster items', async () => {
    const a = await login('romeo', 'a');
    const b = await login('romeo', 'b');
    a.send("<iq type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='Nurse@localhost' name='Nurse'><group>Verona</group></item></query></iq>");
    assert.equal((await a.waitForName('iq', { id: 's1' })).attrs.type, 'result');
    for (const c of [a, b]) {
      const push = await c.waitFor(isPush('nurse@localhost', 'none'));
      assert.equal(rosterItem(push)!.attrs.name, 'Nurse');
      assert.equal(rosterItem(push)!.getChildText('group'), 'Verona');
      c.send(`<iq type='result' id='${push.attrs.id}'/>`);
    }
    a.send("<iq type='get' id='g1'><query xmlns='jabber:iq:roster'/></iq>");
    const full = await a.waitForName('iq', { id: 'g1' });
    const ver = full.getChild('query')!.attrs.ver!;
    assert.ok(ver);
    assert.deepEqual(full.getChild('query')!.getChildren('item').map((i) => i.attrs.jid), ['nurse@localhost']);
    a.send(`<iq type='get' id='g2'><query xmlns='jabber:iq:roster' ver='${ver}'/></iq>`);
    assert.equal((await a.waitForName('iq', { id: 'g2' })).children.length, 0, 'an up-to-date roster gives an empty result');
    a.send("<iq type='set' id='s2'><query xmlns='jabber:iq:roster'><item jid='nurse@localhost' subscription='remove'/></query></iq>");
    await a.waitForName('iq', { id: 's2' });
    await b.waitFor(isPush('nurse@localhost', 'remove'));
    a.send("<iq type='set' id='s3'><query xmlns='jabber:iq:roster'><item jid='nurse@localhost'/><item jid='tybalt@localhost'/></query></iq>");
    assert.equal((await a.waitForName('iq', { id: 's3' })).getChild('error')?.attrs.code, '400');
    a.send("<iq type='get' id='s4' to='juliet@localhost'><query xmlns='jabber:iq:roster'/></iq>");
    assert.equal((await a.waitForName('iq', { id: 's4' })).getChild('error')?.attrs.code, '403', "another user's roster is forbidden");
  });

  it('runs a subscription handshake, broadcasts presence, and sends unavailable when a socket dies', async () => {
    const romeo = await login('romeo', 'hs');
    const juliet = await login('juliet', 'hs');
    romeo.send("<presence type='subscribe' to='juliet@localhost'/>");
    await romeo.waitFor((s) => isPush('juliet@localhost', 'none')(s) && rosterItem(s)!.attrs.ask === 'subscribe');
    const req = await juliet.waitForName('presence', { type: 'subscribe' });
    assert.equal(req.attrs.from, 'romeo@localhost');
    juliet.send("<presence type='subscribed' to='romeo@localhost'/>");
    await juliet.waitFor(isPush('romeo@localhost', 'from'));
    await romeo.waitFor(isPush('juliet@localhost', 'to'));
    await romeo.waitFor((s) => s.name === 'presence' && s.attrs.type === 'subscribed');
    await romeo.waitFor((s) => s.name === 'presence' && s.attrs.from === 'juliet@localhost/hs' && s.attrs.type === undefined);
    // Now the other way, so both see each other.
    juliet.send("<presence type='subscribe' to='romeo@localhost'/>");
    await romeo.waitForName('presence', { type: 'subscribe', from: 'juliet@localhost' });
    romeo.send("<presence type='subscribed' to='juliet@localhost'/>");
    await romeo.waitFor(isPush('juliet@localhost', 'both'));
    await juliet.waitFor(isPush('romeo@localhost', 'both'));
    await juliet.waitFor((s) => s.name === 'presence' && s.attrs.from === 'romeo@localhost/hs' && s.attrs.type === undefined);
    // A presence update is broadcast to the subscriber.
    romeo.send('<presence><show>away</show><status>at the balcony</status></presence>');
    const update = await juliet.waitFor((s) => s.name === 'presence' && s.getChildText('status') === 'at the balcony');
    assert.equal(update.attrs.from, 'romeo@localhost/hs');
    // Abrupt close: no </stream:stream>, just a dead socket.
    romeo.destroy();
    const gone = await juliet.waitFor((s) => s.name === 'presence' && s.attrs.type === 'unavailable' && s.attrs.from === 'romeo@localhost/hs');
    assert.ok(gone);
  });

  it('probes contacts on initial presence', async () => {
    const juliet = await login('juliet', 'probe-target');
    const romeo = await login('romeo', 'probe', { presence: false });
    romeo.send('<presence/>');
    await romeo.waitFor((s) => s.name === 'presence' && s.attrs.from === 'juliet@localhost/probe-target' && s.attrs.type === undefined);
    juliet.destroy();
  });

  it('delivers directed presence and its unavailable to a non-contact', async () => {
    const m = await login('mercutio', 'd');
    const b = await login('benvolio', 'd');
    m.send("<presence to='benvolio@localhost/d'><status>hello</status></presence>");
    assert.equal((await b.waitFor((s) => s.name === 'presence' && s.getChildText('status') === 'hello')).attrs.from, 'mercutio@localhost/d');
    m.destroy();
    await b.waitFor((s) => s.name === 'presence' && s.attrs.type === 'unavailable' && s.attrs.from === 'mercutio@localhost/d');
  });

  it('cancels both subscriptions when a contact is removed from the roster', async () => {
    const romeo = await login('romeo', 'rm');
    const juliet = await login('juliet', 'rm');
    romeo.send("<iq type='set' id='rm1'><query xmlns='jabber:iq:roster'><item jid='juliet@localhost' subscription='remove'/></query></iq>");
    await romeo.waitForName('iq', { id: 'rm1' });
    await romeo.waitFor(isPush('juliet@localhost', 'remove'));
    await juliet.waitFor(isPush('romeo@localhost', 'none'));
    await juliet.waitFor((s) => s.name === 'presence' && s.attrs.type === 'unavailable' && s.attrs.from?.startsWith('romeo@localhost/') === true);
  });

  it('keeps accounts, rosters and pending subscription requests across a restart', async () => {
    const tybalt = await login('tybalt', 'x');
    tybalt.send("<iq type='set' id='k1'><query xmlns='jabber:iq:roster'><item jid='nurse@localhost' name='The Nurse'/></query></iq>");
    await tybalt.waitForName('iq', { id: 'k1' });
    tybalt.send("<presence type='subscribe' to='nurse@localhost'/>");
    await tybalt.waitFor((s) => isPush('nurse@localhost')(s) && rosterItem(s)!.attrs.ask === 'subscribe');
    for (const c of open.splice(0)) c.destroy();
    t = await t.restart();
    const nurse = await login('nurse', 'after');
    const pending = await nurse.waitForName('presence', { type: 'subscribe' });
    assert.equal(pending.attrs.from, 'tybalt@localhost', 'the pending request is delivered after the restart');
    const again = await login('tybalt', 'after', { roster: false });
    again.send("<iq type='get' id='k2'><query xmlns='jabber:iq:roster'/></iq>");
    const item = (await again.waitForName('iq', { id: 'k2' })).getChild('query')!.getChild('item')!;
    assert.deepEqual({ jid: item.attrs.jid, name: item.attrs.name, ask: item.attrs.ask }, { jid: 'nurse@localhost', name: 'The Nurse', ask: 'subscribe' });
  });
});
