// SIP presence bridge (seed 003), output "external": one Switchboard runs the bridge and logs
// each phone in to another XMPP server over BOSH, as perl-bosh did; the other server is a second
// Switchboard (its /http-bind/), where a contact subscribed to the mapped account watches. The
// session's sid, rid and presence id survive a restart of the bridge, which resumes the session
// without the contact seeing the phone go offline, and a session perl-bosh left open (its SID
// and RID in the mapping file) is taken up the same way.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Element as XmppElement } from '@xmpp/xml';
import { startTestServer, type TestServer } from './support/server.js';
import { BoshClient } from './support/bosh-client.js';
import { startLoggedServer, startWatcher, writeMapping, sqliteTable, type LoggedServer, type ProxyTable } from './support/sip-presence.js';
import type { LiveClient } from './support/xmpp-client.js';
import type { RosterItem } from '../src/storage/types.js';
import { buildConfig } from './support/server.js';
import sipPresence from '../src/modules/sip-presence/index.js';

const PHONE = 'alice@localhost/phone/100@pbx.example.com';

interface Stored { sid: string; rid: number; presenceId: number; availability: string }

describe('SIP presence bridge, external output over BOSH', () => {
  let dir: string;
  let mapping: string;
  let target: TestServer;
  let bridge: LoggedServer;
  let table: ProxyTable;
  let bob: LiveClient;
  const stored = () => bridge.server.storage.keyValue('sip-presence').get<Stored>('sip:100@pbx.example.com', 'bosh');

  before(async () => {
    target = await startTestServer();
    for (const u of ['alice', 'bob']) await target.addUser(`${u}@localhost`, 'secret');
    const item = (jid: string, subscription: RosterItem['subscription']): RosterItem => ({ jid, groups: [], subscription, ask: false, pendingIn: false, approved: false, visible: true });
    await target.server.storage.roster.setItem('alice@localhost', item('bob@localhost', 'from'));
    await target.server.storage.roster.setItem('bob@localhost', item('alice@localhost', 'to'));
    bob = await startWatcher(target.port, 'bob');

    dir = mkdtempSync(join(tmpdir(), 'switchboard-sip-ext-'));
    mapping = writeMapping(dir, ['sip:100@pbx.example.com,alice,secret,123456']);
    table = sqliteTable(join(dir, 'proxy.db'));
    bridge = await startLoggedServer({
      'sip-presence': {
        enabled: true, mapping, 'reload-interval': 1, output: 'external', domain: 'localhost',
        external: { url: `http://127.0.0.1:${target.httpPort}/http-bind/`, wait: 10, retry: 1 },
        table: { enabled: true, driver: 'sqlite', path: join(dir, 'proxy.db'), interval: 0.1 },
      },
    });
  });
  after(async () => {
    await bob?.xmpp.stop();
    await bridge?.stop();
    await target?.stop(true);
    await table?.close();
  });

  it('logs the phone in over BOSH and sends its presence, with increasing presence ids', async () => {
    await table.insert('sip:100@pbx.example.com', 'online');
    const available = await bob.waitFor(fromPhone(PHONE), 'available presence', 15_000);
    assert.equal(available.attrs.type, undefined);
    assert.equal(available.attrs.id, '1');
    await table.insert('sip:100@pbx.example.com', 'still-online');
    await table.insert('sip:100@pbx.example.com', 'onthephone');
    const busy = await bob.waitFor(fromPhone(PHONE), 'busy presence', 15_000);
    assert.equal(busy.getChildText('show'), 'dnd');
    assert.equal(busy.getChildText('status'), 'On the phone');
    assert.equal(busy.attrs.id, '2', 'still-online sent nothing');
    const s = await stored();
    assert.ok(s, 'the session is stored');
    assert.match(s.sid, /^[0-9a-f]{32}$/);
    assert.equal(s.presenceId, 2);
    assert.equal(s.availability, 'on-the-phone');
  });

  it('resumes the same session after a restart of the bridge: the contact sees no offline', async () => {
    const before = (await stored())!;
    bridge = await bridge.restart();
    const resumed = await bridge.waitForLog((l) => l.msg === 'BOSH session resumed after restart', 'the resumed session', 15_000);
    assert.equal(resumed.sid, before.sid);
    // The restored state is still-onthephone: a keep-alive is a valid transition, the hang-up too.
    await table.insert('sip:100@pbx.example.com', 'still-onthephone');
    await table.insert('sip:100@pbx.example.com', 'still-online');
    const available = await bob.waitFor(fromPhone(PHONE), 'available presence after the restart', 15_000);
    assert.equal(available.attrs.type, undefined, `no unavailable in between: ${available.toString()}`);
    assert.equal(available.getChildText('show'), null);
    assert.equal(available.attrs.id, '3');
    assert.equal((await stored())!.sid, before.sid, 'the same BOSH session');
    assert.equal(bridge.logs.filter((l) => /invalid transition/.test(l.msg)).length, 0);
  });

  it('after a restart of both servers, logs in again and sends the stored presence without a new report', async () => {
    const before = (await stored())!;
    await bob.xmpp.stop();
    bridge = await bridge.restart(async () => { target = await target.restart(); });
    bob = await startWatcher(target.port, 'bob');
    await bridge.waitForLog((l) => l.msg === 'stored BOSH session is gone: logging in again', 'the new login', 15_000);
    const available = await bob.waitFor(fromPhone(PHONE), 'the phone presence after the new login', 15_000);
    assert.equal(available.attrs.type, undefined);
    assert.equal(available.getChildText('show'), null, 'still-online, as stored');
    await bridge.waitForLog((l) => l.msg === 'BOSH session opened', 'the new session', 15_000);
    assert.notEqual((await stored())!.sid, before.sid);
  });

  it('logs in again when the server ends the session', async () => {
    const before = (await stored())!;
    const session = target.server.sessions.get('alice@localhost', 'phone/100@pbx.example.com');
    assert.ok(session, 'the phone is a session of the target server');
    session.close();
    const gone = await bob.waitFor(fromPhone(PHONE), 'unavailable when the session ends', 15_000);
    assert.equal(gone.attrs.type, 'unavailable');
    const back = await bob.waitFor(fromPhone(PHONE), 'available again after the new login', 15_000);
    assert.equal(back.attrs.type, undefined);
    await bridge.waitForLog((l) => l.msg === 'BOSH session opened' && l.sid !== before.sid, 'the new session');
  });

  it('ends the session with unavailable presence when the phone goes offline, and forgets it', async () => {
    await table.insert('sip:100@pbx.example.com', 'offline');
    const gone = await bob.waitFor(fromPhone(PHONE), 'unavailable presence', 15_000);
    assert.equal(gone.attrs.type, 'unavailable');
    for (let i = 0; i < 100 && (await stored()); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(await stored(), undefined);
  });

  it('takes up a session perl-bosh left open, from the SID and RID of the mapping file', async () => {
    const perl = new BoshClient(target.httpPort);
    const jid = await perl.login('alice', 'secret', 'sip-101');
    await perl.send("<presence xmlns='jabber:client' id='7'/>");
    await bob.waitFor(fromPhone(jid), 'the perl-bosh session\'s presence');
    const loads = () => bridge.logs.filter((l) => l.msg === 'SIP presence mapping loaded').length;
    const before = loads();
    writeMapping(dir, ['sip:100@pbx.example.com,alice,secret,123456', `sip:101@pbx.example.com,alice,secret,${perl.rid},${perl.sid},7`]);
    await bridge.waitForLog(() => loads() > before, 'the new mapping', 15_000);
    await table.insert('sip:101@pbx.example.com', 'onthephone');
    const busy = await bob.waitFor(fromPhone(jid), 'busy presence in the resumed session', 15_000);
    assert.equal(busy.getChildText('show'), 'dnd');
    assert.equal(busy.attrs.id, '8', 'the presence id goes on from the file\'s');
    await table.insert('sip:101@pbx.example.com', 'offline');
    const gone = await bob.waitFor(fromPhone(jid), 'unavailable presence', 15_000);
    assert.equal(gone.attrs.type, 'unavailable');
  });

  it('tells `switchboard check` that the BOSH server answers', async () => {
    const options = buildConfig({ 'sip-presence': { enabled: true, mapping, output: 'external', domain: 'localhost', http: { enabled: true, allow: ['127.0.0.1'] },
      external: { url: `http://127.0.0.1:${target.httpPort}/http-bind/` } } })['sip-presence'] as never;
    const result = (await sipPresence.check!(options))!;
    assert.deepEqual(result.problems, []);
    assert.ok(result.lines.includes(`BOSH http://127.0.0.1:${target.httpPort}/http-bind/: answers`), result.lines.join('\n'));
  });

  it('logs a refused login with the mapping line, and tries again only at the next report', async () => {
    const loads = () => bridge.logs.filter((l) => l.msg === 'SIP presence mapping loaded').length;
    const before = loads();
    writeMapping(dir, ['sip:100@pbx.example.com,alice,secret,123456', 'sip:102@pbx.example.com,alice,wrong-password,123456']);
    await bridge.waitForLog(() => loads() > before, 'the new mapping', 15_000);
    await table.insert('sip:102@pbx.example.com', 'online');
    const refused = await bridge.waitForLog((l) => /BOSH login refused/.test(l.msg), 'the refused login', 15_000);
    assert.equal(refused.line, 2);
    assert.equal(refused.uri, '102@pbx.example.com');
    assert.match(String(refused.error), /authentication failed \(not-authorized\)/);
    // The phone counts as offline again, so the next refresh is a new sign-on (and a new attempt).
    await table.insert('sip:102@pbx.example.com', 'still-online');
    await bridge.waitForLog((l) => l.msg === 'invalid transition offline -> still-online: applied as online' && l.uri === '102@pbx.example.com', 'the new attempt', 15_000);
    await bridge.waitForLog((l) => /BOSH login refused/.test(l.msg) && bridge.logs.filter((m) => /BOSH login refused/.test(m.msg)).length === 2, 'the second refusal', 15_000);
  });
});

describe('SIP presence bridge, external output to a server that holds no request (hold 0)', () => {
  const TOKEN = 'sip-presence-external-token-0123';
  let target: TestServer;
  let bridge: LoggedServer;
  let bob: LiveClient;

  before(async () => {
    target = await startTestServer({ bosh: { 'max-hold': 0 } });
    for (const u of ['alice', 'bob']) await target.addUser(`${u}@localhost`, 'secret');
    const item = (jid: string, subscription: RosterItem['subscription']): RosterItem => ({ jid, groups: [], subscription, ask: false, pendingIn: false, approved: false, visible: true });
    await target.server.storage.roster.setItem('alice@localhost', item('bob@localhost', 'from'));
    await target.server.storage.roster.setItem('bob@localhost', item('alice@localhost', 'to'));
    bob = await startWatcher(target.port, 'bob');
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-sip-ext-'));
    bridge = await startLoggedServer({
      'sip-presence': {
        enabled: true, mapping: writeMapping(dir, ['sip:100@pbx.example.com,alice,secret,123456']), output: 'external', domain: 'localhost',
        external: { url: `http://127.0.0.1:${target.httpPort}/http-bind/`, wait: 10 }, http: { enabled: true, token: TOKEN },
      },
    });
  });
  after(async () => {
    await bob?.xmpp.stop();
    await bridge?.stop();
    await target?.stop(true);
  });

  const post = (state: string) => fetch(`http://127.0.0.1:${bridge.httpPort}/sip-presence/events`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ uri: 'sip:100@pbx.example.com', state }),
  });

  it('polls no faster than the server asks, so the session lasts', async () => {
    assert.equal((await post('online')).status, 200);
    await bob.waitFor(fromPhone(PHONE), 'available presence', 15_000);
    const stored = () => bridge.server.storage.keyValue('sip-presence').get<Stored>('sip:100@pbx.example.com', 'bosh');
    const first = (await stored())!;
    // Three more empty polls; polling faster than the server's 2 s would have ended the session (policy-violation).
    for (let i = 0; i < 200 && (await stored())!.rid < first.rid + 3; i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok((await stored())!.rid >= first.rid + 3, 'the client kept polling');
    assert.equal(bridge.logs.filter((l) => l.msg === 'BOSH session lost').length, 0);
    assert.equal((await post('onthephone')).status, 200);
    const busy = await bob.waitFor(fromPhone(PHONE), 'busy presence', 15_000);
    assert.equal(busy.getChildText('show'), 'dnd');
    assert.equal((await stored())!.sid, first.sid);
  });
});

function fromPhone(jid: string) {
  return (s: XmppElement) => s.is('presence') && s.attrs.from === jid;
}
