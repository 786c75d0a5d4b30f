// The VHost Manager (seed 001 section 11.6) over real sockets: an administrator, a domain owner
// and a plain user drive vhost-man@<host> and sess-man@<host> through their forms; the effects
// (new hosts accept logins and use their own certificate, removed or disabled ones refuse them,
// owners manage their domains' users and nothing else) take effect at once and survive a restart.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { xml } from '@xmpp/client';
import { startTestServer, type TestServer } from './support/server.js';
import { NS_ADMIN, canLogIn, connectClient, type Connected } from './support/adhoc-client.js';
import { selfSignedPaths } from '../src/transports/certificates.js';
import { checkEnvironment } from '../src/config/check.js';
import { RawClient, STREAM_OPEN } from './support/raw-client.js';
import { waitUntil } from './support/wait.js';

const ADD = 'comp-repo-item-add';
const UPDATE = 'comp-repo-item-update';
const REMOVE = 'comp-repo-item-remove';
const ADD_USER = `${NS_ADMIN}#add-user`;

describe('VHost Manager', () => {
  let t: TestServer;
  const open: Connected[] = [];
  const login = async (user: string | undefined, options: { domain?: string; resource?: string; password?: string } = {}) => {
    const c = await connectClient(t.port, user, options);
    open.push(c);
    return c;
  };

  before(async () => {
    t = await startTestServer({ admins: ['admin@localhost'], 'vhost-man': { 'domains-per-user-limit': 2 } });
    for (const u of ['admin', 'owner', 'helper', 'plain']) await t.addUser(`${u}@localhost`);
  });
  after(async () => {
    for (const c of open) await c.stop();
    await t.stop(true);
  });

  it('lets an administrator add a domain with the seed form; it serves logins at once', async () => {
    const admin = await login('admin');
    const items = await admin.items('localhost');
    assert.ok(items.some((i) => i.jid === 'vhost-man@localhost' && i.name === 'VHost Manager'));
    const commands = await admin.items('vhost-man@localhost');
    assert.deepEqual(commands.map((c) => c.node).slice(0, 3), [ADD, UPDATE, REMOVE]);

    const form = await admin.command('vhost-man@localhost', ADD);
    assert.equal(form.status, 'executing');
    for (const f of ['domain', 'enabled', 'anonymous-login', 'in-band-registration', 'tls-required', 'max-users', 'owner', 'administrators', 'presence-forward', 'message-forward', 'other']) {
      assert.ok(f in form.values, `${f} in the form`);
    }
    assert.deepEqual(form.values.owner, ['admin@localhost']);
    const done = await admin.command('vhost-man@localhost', ADD, {
      sessionid: form.sessionid,
      fields: { domain: 'New.Example', enabled: '1', 'anonymous-login': '1', 'in-band-registration': '0', 'tls-required': '0', 'max-users': '2',
        owner: 'owner@localhost', administrators: 'helper@localhost, admin@localhost', 'presence-forward': '', 'message-forward': '', other: 'note=first, x=y' },
    });
    assert.equal(done.status, 'completed');
    assert.match(done.notes[0]!.text, /Operation successful/);
    const vhost = t.server.vhosts.get('new.example')!;
    assert.equal(vhost.owner, 'owner@localhost');
    assert.deepEqual(vhost.administrators, ['helper@localhost', 'admin@localhost']);
    assert.deepEqual(vhost.other, { note: 'first', x: 'y' });

    // It serves logins now: anonymous (enabled on it), and users the admin adds there.
    const anon = await login(undefined, { domain: 'new.example' });
    assert.match(anon.jid, /@new\.example\//);
    await admin.command('sess-man@localhost', ADD_USER, { fields: { accountjid: 'carol@new.example', password: 'pw', 'password-verify': 'pw' } });
    assert.equal(await canLogIn(t.port, 'carol', 'new.example', 'pw'), true);
    assert.ok(existsSync(selfSignedPaths(t.dataDir, 'new.example').cert), 'a self-signed certificate was generated for it');

    // Max users (2): the third account is refused.
    await admin.command('sess-man@localhost', ADD_USER, { fields: { accountjid: 'dave@new.example', password: 'pw', 'password-verify': 'pw' } });
    const full = await admin.commandError('sess-man@localhost', ADD_USER, { fields: { accountjid: 'erin@new.example', password: 'pw', 'password-verify': 'pw' } });
    assert.equal(full.condition, 'not-allowed');
    assert.match(full.text ?? '', /maximum of 2 users/);

    const dup = await admin.commandError('vhost-man@localhost', ADD, { fields: { domain: 'new.example' } });
    assert.equal(dup.condition, 'conflict');
    assert.match(dup.text ?? '', /already exists/);
    const bad = await admin.commandError('vhost-man@localhost', ADD, { fields: { domain: 'not a domain' } });
    assert.equal(bad.specific, 'bad-payload');
  });

  it('lets a local user add a domain it owns, up to the limit, and manage only its users', async () => {
    const owner = await login('owner');
    // Before owning anything the user sees only Add on the VHost Manager.
    const plainView = await (await login('plain')).items('vhost-man@localhost');
    assert.deepEqual(plainView.map((c) => c.node), [ADD]);

    const form = await owner.command('vhost-man@localhost', ADD);
    assert.deepEqual(form.values.owner, ['owner@localhost']);
    await owner.command('vhost-man@localhost', ADD, { sessionid: form.sessionid, fields: { domain: 'mine.example', enabled: '1', owner: 'owner@localhost' } });
    assert.equal(t.server.vhosts.get('mine.example')!.owner, 'owner@localhost');
    const someoneElse = await owner.commandError('vhost-man@localhost', ADD, { fields: { domain: 'gift.example', owner: 'plain@localhost' } });
    assert.equal(someoneElse.condition, 'forbidden');
    // new.example (owned since the admin made it so) and mine.example: the limit of 2 is reached.
    const limit = await owner.commandError('vhost-man@localhost', ADD, { fields: { domain: 'third.example' } });
    assert.equal(limit.condition, 'not-allowed');
    assert.match(limit.text ?? '', /already own 2 domains/);

    // The session manager now offers the user commands, for its own domains only.
    const smCommands = await owner.items('sess-man@localhost');
    assert.ok(smCommands.some((c) => c.node === ADD_USER));
    await owner.command('sess-man@localhost', ADD_USER, { fields: { accountjid: 'bob@mine.example', password: 'pw', 'password-verify': 'pw' } });
    assert.equal(await canLogIn(t.port, 'bob', 'mine.example', 'pw'), true);
    const exists = await owner.commandError('sess-man@localhost', ADD_USER, { fields: { accountjid: 'bob@mine.example', password: 'pw', 'password-verify': 'pw' } });
    assert.equal(exists.condition, 'conflict');
    assert.match(exists.text ?? '', /bob@mine\.example already exists/);
    const noRights = await owner.commandError('sess-man@localhost', ADD_USER, { fields: { accountjid: 'intruder@localhost', password: 'pw', 'password-verify': 'pw' } });
    assert.equal(noRights.condition, 'forbidden');
    assert.match(noRights.text ?? '', /no rights on the domain localhost/);
    const nowhere = await owner.commandError('sess-man@localhost', ADD_USER, { fields: { accountjid: 'x@absent.example', password: 'pw', 'password-verify': 'pw' } });
    assert.equal(nowhere.condition, 'item-not-found');
    // Commands about a host it does not manage stay hidden and forbidden.
    assert.equal((await owner.commandError('localhost', `${NS_ADMIN}#get-online-users-num`)).condition, 'forbidden');
    const count = await owner.command('sess-man@mine.example', `${NS_ADMIN}#get-registered-users-num`);
    assert.deepEqual(count.values.registeredusersnum, ['1']);

    // An administrator named on a domain manages its users, but not the domain itself.
    const helper = await login('helper');
    await helper.command('sess-man@localhost', ADD_USER, { fields: { accountjid: 'frank@new.example', password: 'pw', 'password-verify': 'pw' } }).catch(() => undefined);
    assert.equal((await helper.commandError('sess-man@localhost', ADD_USER, { fields: { accountjid: 'gus@mine.example', password: 'pw', 'password-verify': 'pw' } })).condition, 'forbidden');
    assert.deepEqual((await helper.items('vhost-man@localhost')).map((c) => c.node), [ADD]);
  });

  it('refuses a plain user everything but adding its own domain', async () => {
    const plain = await login('plain');
    assert.equal((await plain.commandError('vhost-man@localhost', UPDATE)).condition, 'forbidden');
    assert.equal((await plain.commandError('vhost-man@localhost', REMOVE, { fields: { domain: 'mine.example' } })).condition, 'forbidden');
    assert.equal((await plain.commandError('sess-man@localhost', ADD_USER, { fields: { accountjid: 'y@mine.example', password: 'pw', 'password-verify': 'pw' } })).condition, 'forbidden');
    const hidden = await plain.requestError(xml('iq', { type: 'get', to: 'sess-man@localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' })));
    assert.equal(hidden.condition, 'service-unavailable');
  });

  it('updates a domain in two stages (with prev), and disabling it ends its sessions', async () => {
    const owner = await login('owner');
    const bob = await login('bob', { domain: 'mine.example', password: 'pw' });
    const choose = await owner.command('vhost-man@localhost', UPDATE);
    assert.deepEqual(choose.actions, ['next']);
    assert.ok(choose.command.getChild('x')!.getChildren('field')[0]!.getChildren('option').length >= 2);
    const settings = await owner.command('vhost-man@localhost', UPDATE, { sessionid: choose.sessionid, action: 'next', fields: { domain: 'mine.example' } });
    assert.deepEqual(settings.actions, ['prev', 'complete']);
    assert.deepEqual(settings.values.enabled, ['1']);
    const back = await owner.command('vhost-man@localhost', UPDATE, { sessionid: choose.sessionid, action: 'prev' });
    assert.ok('domain' in back.values && !('enabled' in back.values));
    const again = await owner.command('vhost-man@localhost', UPDATE, { sessionid: choose.sessionid, action: 'next', fields: { domain: 'mine.example' } });
    const values = Object.fromEntries(Object.entries(again.values).map(([k, v]) => [k, v]));
    values.enabled = ['0'];
    values['in-band-registration'] = ['1'];
    await owner.command('vhost-man@localhost', UPDATE, { sessionid: choose.sessionid, action: 'complete', fields: values });
    assert.equal(t.server.vhosts.get('mine.example')!.enabled, false);
    assert.equal(t.server.vhosts.get('mine.example')!['in-band-registration'], true);
    await bob.waitFor(() => false, 'nothing', 200).catch(() => undefined);
    await waitUntil(() => t.server.sessions.resources('bob@mine.example').length === 0, 'bob logged out', 5000);
    assert.equal(await canLogIn(t.port, 'bob', 'mine.example', 'pw'), false);
    await owner.command('vhost-man@localhost', UPDATE, { fields: { domain: 'mine.example', enabled: '1' } });
    assert.equal(await canLogIn(t.port, 'bob', 'mine.example', 'pw'), true);
    // The owner may not give the domain away.
    const give = await owner.commandError('vhost-man@localhost', UPDATE, { fields: { domain: 'mine.example', enabled: '1', owner: 'plain@localhost' } });
    assert.equal(give.condition, 'forbidden');
  });

  it('applies in-band registration and max users of a runtime domain to XEP-0077 registration', async () => {
    const admin = await login('admin');
    await admin.command('vhost-man@localhost', ADD, { fields: { domain: 'reg.example', enabled: '1', 'in-band-registration': '1', 'max-users': '1' } });
    const c = await RawClient.connect(t.port);
    c.send(STREAM_OPEN('reg.example'));
    assert.ok((await c.waitForName('features')).getChild('register', 'http://jabber.org/features/iq-register'));
    c.send("<iq type='set' id='r1'><query xmlns='jabber:iq:register'><username>first</username><password>pw</password></query></iq>");
    assert.equal((await c.waitForName('iq', { id: 'r1' })).attrs.type, 'result');
    c.send("<iq type='set' id='r2'><query xmlns='jabber:iq:register'><username>second</username><password>pw</password></query></iq>");
    const refused = await c.waitForName('iq', { id: 'r2' });
    assert.equal(refused.getChild('error')?.getChild('not-allowed')?.name, 'not-allowed');
    c.destroy();
    assert.equal(await canLogIn(t.port, 'first', 'reg.example', 'pw'), true);
    await admin.command('vhost-man@localhost', REMOVE, { fields: { domain: 'reg.example' } });
  });

  it('keeps runtime domains across a restart; removes them; configured ones stay', async () => {
    for (const c of open.splice(0)) await c.stop();
    t = await t.restart();
    assert.equal(await canLogIn(t.port, 'carol', 'new.example', 'pw'), true);
    assert.equal(await canLogIn(t.port, 'bob', 'mine.example', 'pw'), true);
    assert.equal(t.server.vhosts.get('mine.example')!['in-band-registration'], true);

    const owner = await login('owner');
    const choose = await owner.command('vhost-man@localhost', REMOVE);
    const options = choose.command.getChild('x')!.getChildren('field')[0]!.getChildren('option').map((o) => o.getChildText('value'));
    assert.deepEqual(options.sort(), ['mine.example', 'new.example']);
    await owner.command('vhost-man@localhost', REMOVE, { sessionid: choose.sessionid, fields: { domain: 'mine.example' } });
    assert.equal(await canLogIn(t.port, 'bob', 'mine.example', 'pw'), false);
    const admin = await login('admin');
    const configured = await admin.commandError('vhost-man@localhost', REMOVE, { fields: { domain: 'localhost' } });
    assert.equal(configured.condition, 'not-allowed');
    assert.match(configured.text ?? '', /configuration file/);

    for (const c of open.splice(0)) await c.stop();
    t = await t.restart();
    assert.equal(t.server.vhosts.get('mine.example'), undefined);
    assert.equal(await canLogIn(t.port, 'bob', 'mine.example', 'pw'), false);
    assert.equal(await canLogIn(t.port, 'carol', 'new.example', 'pw'), true);

    // `switchboard check` lists the hosts added at runtime.
    const report = await checkEnvironment({ config: t.config, file: undefined, sources: new Map() });
    const at = report.lines.findIndex((l) => l.startsWith('runtime hosts'));
    assert.match(report.lines[at]!, /^runtime hosts +new\.example: enabled true, anonymous-login true, in-band-registration false, tls-required false, max-users 2, owner owner@localhost, administrators helper@localhost admin@localhost$/);
    assert.ok(!report.lines.some((l) => l.includes('mine.example')));
  });
});
