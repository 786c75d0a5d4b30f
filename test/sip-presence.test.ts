// SIP presence bridge (seed 003), output "internal": registrations and calls written to the
// proxy's table (SQLite; PostgreSQL too when SWITCHBOARD_TEST_PG_URL is set) or posted to the
// HTTP endpoint become the presence of a resource of the mapped account, watched by a contact
// subscribed to it over a real XMPP connection. Bad input: a malformed mapping line, an unknown
// state, an invalid transition, a table that vanishes, a database connection that drops.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { Element as XmppElement } from '@xmpp/xml';
import { startLoggedServer, startWatcher, writeMapping, sqliteTable, postgresTable, TABLE_SQLITE, TABLE_POSTGRES, type LoggedServer, type ProxyTable } from './support/sip-presence.js';
import { startClient, type LiveClient } from './support/xmpp-client.js';
import { xml } from '@xmpp/client';
import { buildConfig, freePorts } from './support/server.js';
import sipPresence from '../src/modules/sip-presence/index.js';

const TOKEN = 'sip-presence-test-token-0123456789';
const ALICE_PHONE = 'alice@localhost/phone/100@pbx.example.com';
const CAROL_PHONE = 'carol@localhost/phone/101@pbx.example.com';

const fromPhone = (jid: string) => (s: XmppElement) => s.is('presence') && s.attrs.from === jid;

/** The next presence of a phone, checked to say `what` (available, busy, unavailable). */
async function expectPresence(watcher: LiveClient, jid: string, what: 'available' | 'busy' | 'unavailable'): Promise<XmppElement> {
  const p = await watcher.waitFor(fromPhone(jid), `${what} presence of ${jid}`, 10_000);
  if (what === 'unavailable') assert.equal(p.attrs.type, 'unavailable', p.toString());
  else {
    assert.equal(p.attrs.type, undefined, p.toString());
    assert.equal(p.getChildText('show'), what === 'busy' ? 'dnd' : null, p.toString());
    if (what === 'busy') assert.equal(p.getChildText('status'), 'On the phone');
    assert.equal(p.getChildText('priority'), '-1', 'a phone never takes messages to the bare JID');
  }
  return p;
}

async function postEvents(port: number, body: unknown, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }, method = 'POST') {
  const res = await fetch(`http://127.0.0.1:${port}/sip-presence/events`, {
    method, headers: { 'content-type': 'application/json', ...headers }, body: method === 'POST' ? (typeof body === 'string' ? body : JSON.stringify(body)) : undefined,
  });
  return { status: res.status, json: await res.json() as Record<string, unknown> };
}

function bridgeOptions(mapping: string, table: Record<string, unknown>) {
  return { 'sip-presence': { enabled: true, mapping, 'reload-interval': 1, table: { enabled: true, interval: 0.1, ...table }, http: { enabled: true, token: TOKEN } } };
}

describe('SIP presence bridge, internal output, SQLite table and HTTP', () => {
  let dir: string;
  let mapping: string;
  let table: ProxyTable;
  let t: LoggedServer;
  let bob: LiveClient;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'switchboard-sip-'));
    mapping = writeMapping(dir, [
      '# SIP URI, XMPP username, XMPP password, RID, SID, presenceId',
      'sip:100@pbx.example.com,alice,,123456',
      'broken"quote@pbx.example.com,x,y,1',
      '101@@pbx.example.com,carol,secret,123456',
      '102@pbx.example.com,nobody,secret,123456',
    ]);
    table = sqliteTable(join(dir, 'proxy.db'));
    t = await startLoggedServer(bridgeOptions(mapping, { driver: 'sqlite', path: join(dir, 'proxy.db') }));
    for (const u of ['alice', 'bob', 'carol', 'dave']) await t.addUser(`${u}@localhost`);
    await t.subscribe('bob@localhost', 'alice@localhost');
    await t.subscribe('bob@localhost', 'carol@localhost');
    await t.subscribe('dave@localhost', 'alice@localhost');
    bob = await startWatcher(t.port, 'bob');
  });
  after(async () => {
    await bob?.xmpp.stop();
    await t?.stop();
    await table?.close();
  });

  it('skips a malformed mapping line with its line number, and loads the rest', async () => {
    const line = await t.waitForLog((l) => l.line === 3, 'the malformed line');
    assert.match(line.msg, /phones\.csv line 3: not valid CSV.*line skipped/);
    await table.insert('sip:101@pbx.example.com', 'online');
    await expectPresence(bob, CAROL_PHONE, 'available');
    await table.insert('sip:101@pbx.example.com', 'offline');
    await expectPresence(bob, CAROL_PHONE, 'unavailable');
  });

  it('follows registration, refresh, call, keep-alive, hang-up and deregistration', async () => {
    await table.insert('sip:100@pbx.example.com', 'online');
    await expectPresence(bob, ALICE_PHONE, 'available');
    // still-online changes nothing: the next presence bob gets is the call's.
    await table.insert('sip:100@pbx.example.com', 'still-online');
    await table.insert('sip:100@pbx.example.com', 'onthephone');
    await expectPresence(bob, ALICE_PHONE, 'busy');
    await table.insert('sip:100@pbx.example.com', 'still-onthephone');
    await table.insert('sip:100@pbx.example.com', 'still-onthephone');
    await table.insert('<sip:100@PBX.example.com;transport=tcp>', 'still-online');
    await expectPresence(bob, ALICE_PHONE, 'available');
    await table.insert('sip:100@pbx.example.com', 'offline');
    await expectPresence(bob, ALICE_PHONE, 'unavailable');
    assert.equal(bob.received.filter(fromPhone(ALICE_PHONE)).length, 0, `no other broadcast: ${bob.received.join('\n')}`);
    assert.equal(t.logs.filter((l) => /invalid transition/.test(l.msg)).length, 0, 'every report was an edge of the model');
  });

  it('answers a subscribed contact\'s probe with the phone\'s presence', async () => {
    await table.insert('sip:100@pbx.example.com', 'online');
    await expectPresence(bob, ALICE_PHONE, 'available');
    const dave = await startWatcher(t.port, 'dave');
    try {
      await expectPresence(dave, ALICE_PHONE, 'available');
    } finally {
      await dave.xmpp.stop();
    }
    await table.insert('sip:100@pbx.example.com', 'offline');
    await expectPresence(bob, ALICE_PHONE, 'unavailable');
  });

  it('refuses requests to the phone\'s resource, and takes the resource over from a client that had it', async () => {
    const squatter = await startClient(t.port, 'alice', { resource: 'phone/100@pbx.example.com' });
    let streamError: string | undefined;
    squatter.xmpp.on('element', (el: XmppElement) => { if (el.is('error', 'http://etherx.jabber.org/streams')) streamError = (el.children[0] as XmppElement).name; });
    await table.insert('sip:100@pbx.example.com', 'online');
    await expectPresence(bob, ALICE_PHONE, 'available');
    for (let i = 0; i < 100 && !streamError; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(streamError, 'conflict');
    await squatter.xmpp.stop().catch(() => {});
    await bob.xmpp.send(xml('iq', { type: 'get', to: ALICE_PHONE, id: 'v1' }, xml('query', { xmlns: 'jabber:iq:version' })));
    const iqError = await bob.waitFor((s) => s.is('iq') && s.attrs.id === 'v1', 'the IQ error');
    assert.equal(iqError.attrs.type, 'error');
    assert.ok(iqError.getChild('error')!.getChild('service-unavailable'), iqError.toString());
    await bob.xmpp.send(xml('message', { type: 'chat', to: ALICE_PHONE, id: 'm1' }, xml('body', {}, 'hello phone')));
    const messageError = await bob.waitFor((s) => s.is('message') && s.attrs.id === 'm1', 'the message error');
    assert.equal(messageError.attrs.type, 'error');
    await table.insert('sip:100@pbx.example.com', 'offline');
    await expectPresence(bob, ALICE_PHONE, 'unavailable');
  });

  it('logs an invalid transition and applies the nearest valid state', async () => {
    await table.insert('sip:100@pbx.example.com', 'still-onthephone');
    await expectPresence(bob, ALICE_PHONE, 'busy');
    const warning = await t.waitForLog((l) => /invalid transition/.test(l.msg), 'the invalid transition');
    assert.equal(warning.msg, 'invalid transition offline -> still-onthephone: applied as onthephone');
    assert.equal(warning.uri, '100@pbx.example.com');
    await table.insert('sip:100@pbx.example.com', 'offline');
    await expectPresence(bob, ALICE_PHONE, 'unavailable');
  });

  it('drops a row with an unknown state, with a log line, and applies the rows after it', async () => {
    await table.insert('sip:100@pbx.example.com', 'ringing');
    await table.insert('sip:100@pbx.example.com', 'online');
    await expectPresence(bob, ALICE_PHONE, 'available');
    const dropped = await t.waitForLog((l) => /unknown state "ringing"/.test(l.msg), 'the dropped row');
    assert.match(dropped.msg, /^SIP presence row \d+: unknown state "ringing" \(one of online, still-online, onthephone, still-onthephone, offline\); row dropped$/);
    await table.insert('sip:100@pbx.example.com', 'offline');
    await expectPresence(bob, ALICE_PHONE, 'unavailable');
  });

  it('ignores a phone whose account does not exist, with a log line', async () => {
    await table.insert('sip:102@pbx.example.com', 'online');
    await t.waitForLog((l) => l.msg === 'mapped account does not exist here: phone ignored' && l.account === 'nobody@localhost', 'the missing account');
  });

  it('survives the table vanishing and takes it up again when it is back', async () => {
    const errorsBefore = t.logs.filter((l) => /cannot read the SIP presence table/.test(l.msg)).length;
    await table.exec('DROP TABLE sip_presence');
    const error = await t.waitForLog((l) => /cannot read the SIP presence table/.test(l.msg), 'the poll error');
    assert.match(String(error.error), /no such table: sip_presence/);
    // Polls go on failing (every 0.1 s) without a log line each.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(t.logs.filter((l) => /cannot read the SIP presence table/.test(l.msg)).length, errorsBefore + 1);
    await table.exec(TABLE_SQLITE);
    await table.insert('sip:100@pbx.example.com', 'online');
    await expectPresence(bob, ALICE_PHONE, 'available');
    await t.waitForLog((l) => l.msg === 'SIP presence table readable again', 'recovery');
    await table.insert('sip:100@pbx.example.com', 'offline');
    await expectPresence(bob, ALICE_PHONE, 'unavailable');
  });

  it('waits, without an error, while the proxy holds the table\'s write lock', async () => {
    await table.exec('BEGIN IMMEDIATE');
    await table.insert('sip:100@pbx.example.com', 'online');
    try {
      await t.waitForLog((l) => /table locked by a writer/.test(l.msg), 'a poll that found the table locked');
    } finally {
      await table.exec('COMMIT');
    }
    await expectPresence(bob, ALICE_PHONE, 'available');
    await table.insert('sip:100@pbx.example.com', 'offline');
    await expectPresence(bob, ALICE_PHONE, 'unavailable');
  });

  it('takes a phone offline when it stays silent past its expiry', async () => {
    await table.insert('sip:100@pbx.example.com', 'online', 1);
    await expectPresence(bob, ALICE_PHONE, 'available');
    await expectPresence(bob, ALICE_PHONE, 'unavailable');
    await t.waitForLog((l) => l.msg === 'no report within the expiry: phone offline', 'the expiry');
  });

  describe('HTTP endpoint', () => {
    it('refuses callers without the token, other methods and bad bodies, with a JSON message', async () => {
      let r = await postEvents(t.httpPort, { uri: 'sip:100@pbx.example.com', state: 'online' }, {});
      assert.equal(r.status, 401);
      assert.match(String(r.json.error), /bearer token/);
      r = await postEvents(t.httpPort, { uri: 'sip:100@pbx.example.com', state: 'online' }, { authorization: 'Bearer wrong-token-wrong-token' });
      assert.equal(r.status, 401);
      r = await postEvents(t.httpPort, undefined, { authorization: `Bearer ${TOKEN}` }, 'GET');
      assert.equal(r.status, 405);
      r = await postEvents(t.httpPort, '{"uri": ');
      assert.equal(r.status, 400);
      assert.match(String(r.json.error), /not valid JSON/);
      r = await postEvents(t.httpPort, { uri: 'sip:100@pbx.example.com', state: 'ringing' });
      assert.equal(r.status, 400);
      assert.match(String(r.json.error), /unknown state "ringing"/);
      r = await postEvents(t.httpPort, { uri: 'sip:100@pbx.example.com', state: 'online', expires: -5 });
      assert.equal(r.status, 400);
      r = await postEvents(t.httpPort, { uri: 'sip:999@pbx.example.com', state: 'online' });
      assert.equal(r.status, 404);
      assert.deepEqual(r.json.unknown, ['999@pbx.example.com']);
    });

    it('applies nothing of a batch with one bad report', async () => {
      let r = await postEvents(t.httpPort, [{ uri: 'sip:100@pbx.example.com', state: 'online' }, { uri: 'sip:101@pbx.example.com', state: 'bogus' }]);
      assert.equal(r.status, 400);
      assert.match(String(r.json.error), /^report 1: unknown state "bogus"/);
      r = await postEvents(t.httpPort, [{ uri: 'sip:100@pbx.example.com', state: 'online' }, { uri: 'sip:999@pbx.example.com', state: 'online' }]);
      assert.equal(r.status, 404);
      // Phone 100 is still offline: the next report starts from there.
      r = await postEvents(t.httpPort, { uri: 'sip:100@pbx.example.com', state: 'online' });
      assert.equal(r.status, 200);
      assert.deepEqual(r.json.applied, [{ uri: '100@pbx.example.com', from: 'offline', reported: 'online', to: 'online', valid: true }]);
      await expectPresence(bob, ALICE_PHONE, 'available');
    });

    it('drives a call through POSTed reports', async () => {
      let r = await postEvents(t.httpPort, [{ uri: 'sip:100@pbx.example.com', state: 'still-online' }, { uri: 'sip:100@pbx.example.com', state: 'onthephone' }]);
      assert.equal(r.status, 200);
      assert.deepEqual((r.json.applied as { to: string }[]).map((a) => a.to), ['still-online', 'onthephone']);
      await expectPresence(bob, ALICE_PHONE, 'busy');
      r = await postEvents(t.httpPort, { uri: 'sip:100@pbx.example.com', state: 'offline' });
      assert.deepEqual(r.json.applied, [{ uri: '100@pbx.example.com', from: 'onthephone', reported: 'offline', to: 'offline', valid: false }]);
      await expectPresence(bob, ALICE_PHONE, 'unavailable');
    });
  });

  it('reads the mapping file again when it changes: an unmapped phone goes offline', async () => {
    await table.insert('sip:101@pbx.example.com', 'online');
    await expectPresence(bob, CAROL_PHONE, 'available');
    const loads = t.logs.filter((l) => l.msg === 'SIP presence mapping loaded').length;
    writeFileSync(mapping, 'sip:100@pbx.example.com,alice,,123456\n');
    await expectPresence(bob, CAROL_PHONE, 'unavailable');
    await t.waitForLog((l) => l.msg === 'phone no longer mapped: offline' && l.uri === '101@pbx.example.com', 'the unmapped phone');
    assert.equal(t.logs.filter((l) => l.msg === 'SIP presence mapping loaded').length, loads + 1);
    const r = await postEvents(t.httpPort, { uri: 'sip:101@pbx.example.com', state: 'online' });
    assert.equal(r.status, 404);
  });

  it('takes the rows written while it was stopped at the next start', async () => {
    await table.insert('sip:100@pbx.example.com', 'online');
    await expectPresence(bob, ALICE_PHONE, 'available');
    await bob.xmpp.stop();
    t = await t.restart();
    await table.insert('sip:100@pbx.example.com', 'onthephone');
    bob = await startWatcher(t.port, 'bob');
    // The phone state lived in memory: after the restart the call starts from offline (logged), and is on.
    await expectPresence(bob, ALICE_PHONE, 'busy');
    await t.waitForLog((l) => l.msg === 'invalid transition offline -> onthephone: applied as onthephone', 'the resynchronisation');
    await table.insert('sip:100@pbx.example.com', 'offline');
    await expectPresence(bob, ALICE_PHONE, 'unavailable');
  });
});

const PG_URL = process.env.SWITCHBOARD_TEST_PG_URL;

// In CI PostgreSQL is part of the suite (test/support/postgres.ts): a missing URL fails there.
describe('SIP presence bridge, PostgreSQL table', { skip: PG_URL || process.env.CI ? false : 'SWITCHBOARD_TEST_PG_URL is not set' }, () => {
  const schema = `switchboard_sip_${process.pid}_${Date.now()}`;
  let table: ProxyTable;
  let t: LoggedServer;
  let bob: LiveClient;
  let admin: pg.Client;

  before(async () => {
    if (!PG_URL) throw new Error('SWITCHBOARD_TEST_PG_URL must be set in CI: the PostgreSQL table is part of the suite');
    admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    const u = new URL(PG_URL!);
    u.searchParams.set('options', `-c search_path=${schema}`);
    table = await postgresTable(u.toString());
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-sip-'));
    const mapping = writeMapping(dir, ['sip:100@pbx.example.com,alice,,123456']);
    t = await startLoggedServer(bridgeOptions(mapping, { driver: 'postgres', url: PG_URL, name: `${schema}.sip_presence` }));
    for (const u of ['alice', 'bob']) await t.addUser(`${u}@localhost`);
    await t.subscribe('bob@localhost', 'alice@localhost');
    bob = await startWatcher(t.port, 'bob');
  });
  after(async () => {
    await bob?.xmpp.stop();
    await t?.stop();
    await table?.close();
    await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin?.end();
  });

  it('follows a call through the table', async () => {
    await table.insert('sip:100@pbx.example.com', 'online');
    await expectPresence(bob, ALICE_PHONE, 'available');
    await table.insert('sip:100@pbx.example.com', 'onthephone');
    await expectPresence(bob, ALICE_PHONE, 'busy');
    await table.insert('sip:100@pbx.example.com', 'still-online');
    await expectPresence(bob, ALICE_PHONE, 'available');
  });

  it('reconnects after the database drops its connections (as in a restart)', async () => {
    const killed = await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'switchboard-sip-presence' AND pid <> pg_backend_pid()`);
    assert.ok(killed.rowCount! >= 1, 'the bridge had a connection');
    await table.insert('sip:100@pbx.example.com', 'onthephone');
    await expectPresence(bob, ALICE_PHONE, 'busy');
    await table.insert('sip:100@pbx.example.com', 'offline');
    await expectPresence(bob, ALICE_PHONE, 'unavailable');
  });

  it('survives the table vanishing', async () => {
    await table.exec('DROP TABLE sip_presence');
    const error = await t.waitForLog((l) => /cannot read the SIP presence table/.test(l.msg) && /does not exist/.test(String(l.error)), 'the poll error');
    assert.ok(error);
    await table.exec(TABLE_POSTGRES);
    await table.insert('sip:100@pbx.example.com', 'online');
    await expectPresence(bob, ALICE_PHONE, 'available');
  });
});

describe('SIP presence bridge, configuration and address restriction', () => {
  it('is off unless configured: no endpoint', async () => {
    const t = await startLoggedServer({});
    try {
      const r = await fetch(`http://127.0.0.1:${t.httpPort}/sip-presence/events`, { method: 'POST', body: '{}' });
      assert.equal(r.status, 404);
    } finally {
      await t.stop();
    }
  });

  it('rejects incomplete options at start, with the option named', () => {
    const rejects = (options: Record<string, unknown>, message: RegExp) =>
      assert.throws(() => buildConfig({ 'sip-presence': { enabled: true, ...options } }), message);
    rejects({ table: { enabled: true, path: '/tmp/x.db' } }, /mapping file is required/);
    rejects({ mapping: '/tmp/p.csv' }, /enable at least one input/);
    rejects({ mapping: '/tmp/p.csv', table: { enabled: true } }, /SQLite file is required/);
    rejects({ mapping: '/tmp/p.csv', table: { enabled: true, driver: 'postgres' } }, /connection URL is required/);
    rejects({ mapping: '/tmp/p.csv', table: { enabled: true, path: '/tmp/x.db', name: 'x; DROP TABLE y' } }, /table name/);
    rejects({ mapping: '/tmp/p.csv', http: { enabled: true } }, /needs a token or an allow list/);
    rejects({ mapping: '/tmp/p.csv', http: { enabled: true, token: 'short' } }, /16/);
    rejects({ mapping: '/tmp/p.csv', http: { enabled: true, token: TOKEN }, output: 'external' }, /BOSH URL is required/);
  });

  it('refuses to start without a readable mapping file', async () => {
    await assert.rejects(startLoggedServer({ 'sip-presence': { enabled: true, mapping: '/nonexistent/phones.csv', http: { enabled: true, token: TOKEN } } }),
      /sip-presence: cannot read the mapping file: ENOENT/);
  });

  it('accepts reports only from the allowed addresses', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-sip-'));
    const mapping = writeMapping(dir, ['sip:100@pbx.example.com,alice,,123456']);
    const report = { uri: 'sip:100@pbx.example.com', state: 'online' };
    const closed = await startLoggedServer({ 'sip-presence': { enabled: true, mapping, http: { enabled: true, allow: ['10.1.2.3'] } } });
    try {
      const r = await postEvents(closed.httpPort, report, {});
      assert.equal(r.status, 403);
      assert.match(String(r.json.error), /address 127\.0\.0\.1 may not report/);
    } finally {
      await closed.stop();
    }
    const open = await startLoggedServer({ 'sip-presence': { enabled: true, mapping, http: { enabled: true, allow: ['127.0.0.1', '::1'] } } });
    try {
      const r = await postEvents(open.httpPort, report, {});
      assert.equal(r.status, 200, JSON.stringify(r.json));
    } finally {
      await open.stop();
    }
  });

  it('tells `switchboard check` about the mapping, the table and the BOSH server, taking no row', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-sip-'));
    const mapping = writeMapping(dir, ['sip:100@pbx.example.com,alice,,123456', 'not-a-uri,x,y,1']);
    const table = sqliteTable(join(dir, 'proxy.db'));
    await table.insert('sip:100@pbx.example.com', 'online');
    await table.insert('sip:100@pbx.example.com', 'offline');
    await table.close();
    const options = (extra: Record<string, unknown>) => buildConfig({ 'sip-presence': { enabled: true, mapping, ...extra } })['sip-presence'] as never;
    const good = (await sipPresence.check!(options({ table: { enabled: true, path: join(dir, 'proxy.db') } })))!;
    assert.deepEqual(good.problems, []);
    assert.deepEqual(good.lines, [`mapping ${mapping}: 1 phones, output internal`, `${join(dir, 'proxy.db')} table sip_presence: readable, 2 rows waiting`]);
    assert.match(good.warnings![0]!, /line 2: "not-a-uri" is not a SIP URI/);
    const again = (await sipPresence.check!(options({ table: { enabled: true, path: join(dir, 'proxy.db') } })))!;
    assert.match(again.lines[1]!, /2 rows waiting/, 'the check takes nothing out of the table');
    const [closedPort] = await freePorts(1);
    const bad = (await sipPresence.check!(options({
      table: { enabled: true, path: join(dir, 'missing.db') }, output: 'external', domain: 'localhost',
      http: { enabled: true, token: TOKEN }, external: { url: `http://127.0.0.1:${closedPort}/http-bind/` },
    })))!;
    assert.equal(bad.problems!.length, 2, bad.problems!.join('\n'));
    assert.match(bad.problems![0]!, /missing\.db table sip_presence: unable to open database file/);
    assert.match(bad.problems![1]!, new RegExp(`BOSH http://127.0.0.1:${closedPort}/http-bind/: fetch failed`));
    assert.equal(await sipPresence.check!(buildConfig({})['sip-presence'] as never), undefined, 'nothing to say when off');
  });
});
