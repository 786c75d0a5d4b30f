// Ad-hoc commands (XEP-0050) and service administration (XEP-0133) over real sockets with
// @xmpp/client: disco visibility per requester, every session-manager command through its forms
// as a server administrator, the XEP-0050 session rules and errors, and plain users refused.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@xmpp/client';
import { startTestServer, type TestServer } from './support/server.js';
import { NS_ADMIN, canLogIn, connectClient, type Connected } from './support/adhoc-client.js';
import { commandRegistry } from '../src/modules/adhoc/commands.js';
import { fields } from '../src/modules/adhoc/forms.js';
import { waitUntil } from './support/wait.js';

const node = (id: string) => `${NS_ADMIN}#${id}`;

describe('ad-hoc commands and XEP-0133 service administration', () => {
  let t: TestServer;
  const open: Connected[] = [];
  const login = async (user: string | undefined, options: { domain?: string; resource?: string; password?: string } = {}) => {
    const c = await connectClient(t.port, user, options);
    open.push(c);
    return c;
  };

  before(async () => {
    t = await startTestServer({
      admins: ['admin@localhost'],
      'virtual-hosts': ['localhost', 'guest.localhost'],
      'vhost-options': { 'guest.localhost': { 'anonymous-login': true } },
    });
    for (const u of ['admin', 'plain', 'target']) await t.addUser(`${u}@localhost`);
    // A three-stage command to exercise the session rules (next, prev, complete, cancel).
    commandRegistry(t.server).add({
      node: 'test#wizard', name: 'Wizard', component: 'sess-man',
      allowed: (bare) => bare === 'admin@localhost',
      run(step) {
        if (step.stage === 0) return { status: 'executing', form: { type: 'form', title: 'one', fields: [fields.text('a')] }, actions: ['next'] };
        if (step.stage === 1) {
          step.state.a = step.values.get('a');
          return { status: 'executing', form: { type: 'form', title: 'two', fields: [fields.text('b')] }, actions: ['next', 'complete'], defaultAction: 'complete' };
        }
        return { status: 'completed', form: { type: 'result', fields: [fields.text('answer', `${String(step.state.a)}+${step.values.get('b')}`)] } };
      },
    });
  });
  after(async () => {
    for (const c of open) await c.stop();
    await t.stop(true);
  });

  it('shows the components and their commands to an administrator only', async () => {
    const admin = await login('admin');
    const plain = await login('plain');
    const adminItems = await admin.items('localhost');
    assert.deepEqual(adminItems.filter((i) => i.jid.endsWith('@localhost')).map((i) => [i.jid, i.name]),
      [['sess-man@localhost', 'Session Manager'], ['vhost-man@localhost', 'VHost Manager'], ['cl-comp@localhost', 'Cluster Connection Manager']]);
    const plainItems = await plain.items('localhost');
    assert.ok(!plainItems.some((i) => i.jid === 'sess-man@localhost'), 'no session manager for a plain user');

    const commands = await admin.items('sess-man@localhost', 'http://jabber.org/protocol/commands');
    for (const id of ['add-user', 'delete-user', 'disable-user', 'reenable-user', 'change-user-password', 'end-user-session',
      'get-online-users-num', 'get-online-users-list', 'get-registered-users-num', 'get-registered-users-list', 'announce', 'user-stats']) {
      assert.ok(commands.some((c) => c.node === node(id) && c.jid === 'sess-man@localhost' && c.name), `${id} listed`);
    }
    // The host's own JID answers for the session manager, where XEP-0133 clients look.
    const onHost = await admin.items('localhost', 'http://jabber.org/protocol/commands');
    assert.ok(onHost.some((c) => c.node === node('add-user') && c.jid === 'localhost'));
    const info = await admin.request(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info', node: node('add-user') })));
    assert.equal(info.getChild('query')!.getChild('identity')!.attrs.type, 'command-node');

    assert.deepEqual(await plain.items('localhost', 'http://jabber.org/protocol/commands'), []);
    const hidden = await plain.requestError(xml('iq', { type: 'get', to: 'sess-man@localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    assert.equal(hidden.condition, 'service-unavailable');
    const nodeInfo = await plain.requestError(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info', node: node('add-user') })));
    assert.equal(nodeInfo.condition, 'item-not-found');
    const features = await plain.request(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    assert.ok(features.getChild('query')!.getChildren('feature').some((f) => f.attrs.var === 'http://jabber.org/protocol/commands'));
  });

  it('forbids every admin command to a plain user and to an anonymous user', async () => {
    const plain = await login('plain');
    for (const id of ['add-user', 'delete-user', 'get-online-users-num', 'announce']) {
      for (const to of ['localhost', 'sess-man@localhost']) {
        const e = await plain.commandError(to, node(id));
        assert.equal(e.condition, 'forbidden', `${id} at ${to}`);
      }
    }
    const e = await plain.commandError('sess-man@localhost', node('add-user'), { fields: { accountjid: 'x@localhost', password: 'p', 'password-verify': 'p' } });
    assert.equal(e.condition, 'forbidden');
    assert.equal(await canLogIn(t.port, 'x'), false);
    const anon = await login(undefined, { domain: 'guest.localhost' });
    assert.equal((await anon.commandError('sess-man@guest.localhost', node('get-online-users-num'))).condition, 'forbidden');
  });

  it('adds a user through the form; the user can log in; a second add is a conflict', async () => {
    const admin = await login('admin');
    const first = await admin.command('sess-man@localhost', node('add-user'));
    assert.equal(first.status, 'executing');
    assert.ok(first.sessionid);
    assert.deepEqual(first.actions, ['complete']);
    assert.equal(first.values.FORM_TYPE![0], NS_ADMIN);
    assert.equal(first.types.accountjid, 'jid-single');
    assert.equal(first.types.password, 'text-private');
    // A mismatch is reported and the same session may submit again.
    const mismatch = await admin.commandError('sess-man@localhost', node('add-user'), { sessionid: first.sessionid, fields: { accountjid: 'newbie@localhost', password: 'pw1', 'password-verify': 'pw2' } });
    assert.equal(mismatch.condition, 'bad-request');
    assert.equal(mismatch.specific, 'bad-payload');
    assert.match(mismatch.text ?? '', /do not match/);
    const completed = await admin.command('sess-man@localhost', node('add-user'), {
      sessionid: first.sessionid, fields: { accountjid: 'NewBie@localhost', password: 'pw1', 'password-verify': 'pw1', email: 'n@example.com' },
    });
    assert.equal(completed.status, 'completed');
    assert.match(completed.notes[0]!.text, /newbie@localhost has been added/);
    assert.equal(await canLogIn(t.port, 'newbie', 'localhost', 'pw1'), true);

    const again = await admin.commandError('localhost', node('add-user'), { fields: { accountjid: 'newbie@localhost', password: 'x', 'password-verify': 'x' } });
    assert.equal(again.condition, 'conflict');
    assert.match(again.text ?? '', /already exists/);
    const elsewhere = await admin.commandError('localhost', node('add-user'), { fields: { accountjid: 'bob@nowhere.example', password: 'x', 'password-verify': 'x' } });
    assert.equal(elsewhere.condition, 'item-not-found');
    assert.match(elsewhere.text ?? '', /not hosted/);
    const component = await admin.commandError('localhost', node('add-user'), { fields: { accountjid: 'sess-man@localhost', password: 'x', 'password-verify': 'x' } });
    assert.equal(component.condition, 'conflict');
  });

  it('changes a password, disables and re-enables, ends sessions, and deletes users', async () => {
    const admin = await login('admin');
    await t.addUser('victim@localhost', 'old');
    await admin.command('localhost', node('change-user-password'), { fields: { accountjid: 'victim@localhost', password: 'new' } });
    assert.equal(await canLogIn(t.port, 'victim', 'localhost', 'old'), false);
    assert.equal(await canLogIn(t.port, 'victim', 'localhost', 'new'), true);
    const missing = await admin.commandError('localhost', node('change-user-password'), { fields: { accountjid: 'ghost@localhost', password: 'x' } });
    assert.equal(missing.condition, 'item-not-found');

    const victim = await login('victim', { password: 'new', resource: 'r1' });
    await admin.command('localhost', node('disable-user'), { fields: { accountjids: ['victim@localhost'] } });
    await waitUntil(() => t.server.sessions.resources('victim@localhost').length === 0, 'disabled user logged out', 5000);
    assert.equal(await canLogIn(t.port, 'victim', 'localhost', 'new'), false);
    const stats = await admin.command('localhost', node('user-stats'), { fields: { accountjid: 'victim@localhost' } });
    assert.deepEqual(stats.values.disabled, ['1']);
    await admin.command('localhost', node('reenable-user'), { fields: { accountjids: ['victim@localhost'] } });
    assert.equal(await canLogIn(t.port, 'victim', 'localhost', 'new'), true);
    void victim;

    const a = await login('victim', { password: 'new', resource: 'a' });
    const b = await login('victim', { password: 'new', resource: 'b' });
    void a; void b;
    await admin.command('localhost', node('end-user-session'), { fields: { accountjids: ['victim@localhost/a'] } });
    await waitUntil(() => t.server.sessions.resources('victim@localhost').map((s) => s.jid.resource).join() === 'b', 'only /a ended', 5000);
    await admin.command('localhost', node('end-user-session'), { fields: { accountjids: ['victim@localhost'] } });
    await waitUntil(() => t.server.sessions.resources('victim@localhost').length === 0, 'all sessions ended', 5000);

    const deleted = await admin.command('localhost', node('delete-user'), { fields: { accountjids: ['victim@localhost', 'ghost@localhost'] } });
    assert.match(deleted.notes[0]!.text, /Deleted: victim@localhost\. Not found: ghost@localhost/);
    assert.equal(await canLogIn(t.port, 'victim', 'localhost', 'new'), false);
  });

  it('counts and lists online and registered users, gives user statistics, and announces', async () => {
    const admin = await login('admin', { resource: 'console' });
    const target = await login('target', { resource: 'phone' });
    await target.xmpp.send(xml('presence'));
    await target.request(xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:roster' }, xml('item', { jid: 'admin@localhost' }))));
    const online = await admin.command('localhost', node('get-online-users-num'));
    assert.equal(online.status, 'completed');
    assert.ok(Number(online.values.onlineusersnum![0]) >= 2);
    const listForm = await admin.command('localhost', node('get-online-users-list'));
    assert.equal(listForm.types.max_items, 'list-single');
    const list = await admin.command('localhost', node('get-online-users-list'), { sessionid: listForm.sessionid, fields: { max_items: 'none' } });
    assert.ok(list.values.onlineuserjids!.includes('target@localhost'));
    assert.ok(list.values.onlineuserjids!.includes('admin@localhost'));
    const registered = await admin.command('localhost', node('get-registered-users-num'));
    assert.equal(Number(registered.values.registeredusersnum![0]), (await t.server.storage.users.list('localhost')).length);
    const regList = await admin.command('localhost', node('get-registered-users-list'), { fields: { max_items: '25' } });
    assert.ok(regList.values.registereduserjids!.includes('plain@localhost'));

    const stats = await admin.command('sess-man@localhost', node('user-stats'), { fields: { accountjid: 'target@localhost' } });
    assert.deepEqual(stats.values.onlineresources, ['phone']);
    assert.deepEqual(stats.values.ipaddresses, ['127.0.0.1']);
    assert.deepEqual(stats.values.rostersize, ['1']);

    await admin.command('localhost', node('announce'), { fields: { subject: 'Maintenance', announcement: ['Going down', 'in 5 minutes'] } });
    const msg = await target.waitFor((s) => s.is('message') && s.attrs.type === 'headline', 'announcement');
    assert.equal(msg.attrs.from, 'localhost');
    assert.equal(msg.getChildText('subject'), 'Maintenance');
    assert.equal(msg.getChildText('body'), 'Going down\nin 5 minutes');
  });

  it('follows the XEP-0050 session rules: next, prev, complete, cancel and their errors', async () => {
    const admin = await login('admin');
    const other = await login('admin', { resource: 'other' });
    const s1 = await admin.command('localhost', 'test#wizard');
    assert.equal(s1.status, 'executing');
    assert.deepEqual(s1.actions, ['next']);
    assert.equal((await admin.commandError('localhost', 'test#wizard', { sessionid: s1.sessionid, action: 'complete', fields: { a: '1' } })).specific, 'bad-action');
    assert.equal((await admin.commandError('localhost', 'test#wizard', { sessionid: s1.sessionid, action: 'prev' })).specific, 'bad-action');
    const s2 = await admin.command('localhost', 'test#wizard', { sessionid: s1.sessionid, action: 'next', fields: { a: '1' } });
    assert.deepEqual(s2.actions, ['prev', 'next', 'complete']);
    assert.equal(s2.defaultAction, 'complete');
    const back = await admin.command('localhost', 'test#wizard', { sessionid: s1.sessionid, action: 'prev' });
    assert.equal(back.form!.getChildText('title'), 'one');
    await admin.command('localhost', 'test#wizard', { sessionid: s1.sessionid, action: 'next', fields: { a: '7' } });
    // action='execute' at a later stage is the default action (complete here).
    const end = await admin.command('localhost', 'test#wizard', { sessionid: s1.sessionid, action: 'execute', fields: { b: '8' } });
    assert.equal(end.status, 'completed');
    assert.deepEqual(end.values.answer, ['7+8']);
    // The session is gone once completed.
    assert.equal((await admin.commandError('localhost', 'test#wizard', { sessionid: s1.sessionid, fields: { b: '1' } })).specific, 'bad-sessionid');

    const s3 = await admin.command('localhost', 'test#wizard');
    // Another resource cannot use it.
    assert.equal((await other.commandError('localhost', 'test#wizard', { sessionid: s3.sessionid, action: 'next', fields: { a: '1' } })).specific, 'bad-sessionid');
    const canceled = await admin.command('localhost', 'test#wizard', { sessionid: s3.sessionid, action: 'cancel' });
    assert.equal(canceled.status, 'canceled');
    assert.equal((await admin.commandError('localhost', 'test#wizard', { sessionid: s3.sessionid, action: 'next' })).specific, 'bad-sessionid');

    const malformed = await admin.commandError('localhost', 'test#wizard', { action: 'jump' });
    assert.equal(malformed.condition, 'bad-request');
    assert.equal(malformed.specific, 'malformed-action');
    assert.equal((await admin.commandError('localhost', 'test#nothing')).condition, 'item-not-found');
  });

  it('keeps what the commands did across a restart', async () => {
    const admin = await login('admin');
    await admin.command('localhost', node('add-user'), { fields: { accountjid: 'durable@localhost', password: 'pw', 'password-verify': 'pw' } });
    await admin.command('localhost', node('add-user'), { fields: { accountjid: 'sleeper@localhost', password: 'pw', 'password-verify': 'pw' } });
    await admin.command('localhost', node('disable-user'), { fields: { accountjids: 'sleeper@localhost' } });
    for (const c of open.splice(0)) await c.stop();
    t = await t.restart();
    assert.equal(await canLogIn(t.port, 'durable', 'localhost', 'pw'), true);
    assert.equal(await canLogIn(t.port, 'sleeper', 'localhost', 'pw'), false);
  });
});
