// The admin web UI (/admin/) over HTTP, as a browser would use it but without one: logging in
// (same answer for an unknown account and a wrong password, failures limited per address and per
// account, non-administrators refused), the CSRF token every form needs, malformed values refused
// with the command's message and nothing changed, and each change done through the ad-hoc
// commands, with effects seen over XMPP.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { AdminWebClient, flash } from './support/admin-web-client.js';
import { NS_ADMIN, canLogIn, connectClient } from './support/adhoc-client.js';

describe('admin web UI over HTTP', () => {
  let t: TestServer;
  /** A client from its own loopback address: the per-address limit of one test does not touch the others. */
  let nextAddress = 10;
  const web = () => new AdminWebClient(t.httpPort, `127.0.0.${nextAddress++}`);
  const loggedIn = async (jid = 'admin@localhost', password = 'secret') => {
    const c = web();
    const res = await c.login(jid, password);
    assert.equal(res.status, 303, `logged in as ${jid}: ${flash(res.text)}`);
    assert.equal(res.headers.location, '/admin/');
    return c;
  };

  before(async () => {
    t = await startTestServer({ admins: ['admin@localhost', 'admin2@localhost', 'ghost@localhost', 'temp@localhost', 'off@localhost'], 'admin-web': { 'login-attempts': 3 } });
    for (const u of ['admin', 'admin2', 'plain', 'bob', 'off']) await t.addUser(`${u}@localhost`);
  });
  after(async () => {
    await t.stop(true);
  });

  it('sends pages that are not logged in to the login form, and JSON requests get 401', async () => {
    const c = web();
    const page = await c.get('/admin/domains');
    assert.equal(page.status, 303);
    assert.equal(page.headers.location, '/admin/login');
    const json = await c.get('/admin/stats.json');
    assert.equal(json.status, 401);
    assert.match(json.text, /not logged in/);
    const login = await c.get('/admin/login');
    assert.equal(login.status, 200);
    assert.match(login.text, /<form method="post" action="\/admin\/login"/);
    assert.match(String(login.headers['content-security-policy']), /frame-ancestors 'none'/);
  });

  it('gives the same answer for an unknown account and a wrong password, and no session', async () => {
    const c = web();
    const wrong = await c.login('admin@localhost', 'not-the-password');
    const unknown = await c.login('nobody@localhost', 'secret');
    const garbage = await c.login('@@not a jid', 'secret');
    for (const res of [wrong, unknown, garbage]) {
      assert.equal(res.status, 401);
      assert.equal(flash(res.text), 'Wrong JID or password.');
      assert.ok(!c.cookies.has('switchboard_admin'), 'no session cookie');
    }
    assert.equal((await c.get('/admin/')).status, 303, 'still not logged in');
  });

  it('logs an administrator in with an HttpOnly, SameSite=Strict session cookie, and out', async () => {
    const c = web();
    const res = await c.login('admin@localhost', 'secret');
    assert.equal(res.status, 303);
    const session = res.setCookies.find((s) => s.startsWith('switchboard_admin='))!;
    assert.match(session, /HttpOnly/);
    assert.match(session, /SameSite=Strict/);
    assert.match(session, /Path=\/admin\//);
    const overview = await c.get('/admin/');
    assert.equal(overview.status, 200);
    assert.match(overview.text, /href="\/panel\/"/, 'links to the operator panel');
    assert.match(overview.text, /admin@localhost/);
    const out = await c.post('/admin/logout', {});
    assert.equal(out.status, 303);
    assert.equal((await c.get('/admin/')).status, 303, 'the session is gone');
  });

  it('limits failed logins per address: at the limit even the right password is refused', async () => {
    const c = web();
    for (let i = 0; i < 3; i++) assert.equal((await c.login('admin2@localhost', `wrong${i}`)).status, 401);
    const limited = await c.login('admin2@localhost', 'secret');
    assert.equal(limited.status, 429);
    assert.match(flash(limited.text)!, /Too many failed logins\. Try again in \d+ s\./);
    // Another account from the same address: the address is limited too.
    assert.equal((await c.login('admin@localhost', 'secret')).status, 429);
    // The same account from another address: the account's limit (3 failures) is reached as well.
    const elsewhere = web();
    assert.equal((await elsewhere.login('admin2@localhost', 'secret')).status, 429);
    // Other accounts from other addresses are not affected.
    await loggedIn('admin@localhost');
  });

  it('counts failures per account across addresses, unknown accounts alike', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await web().login('ghost@localhost', 'guess')).status, 401);
    const res = await web().login('ghost@localhost', 'guess');
    assert.equal(res.status, 429, 'an unknown account is limited like a known one: nothing tells them apart');
  });

  it('refuses a user who is not an administrator, with a clear message', async () => {
    const c = web();
    const res = await c.login('plain@localhost', 'secret');
    assert.equal(res.status, 403);
    assert.equal(flash(res.text), 'plain@localhost is not an administrator of this server. The admin UI is for the JIDs listed in admins.');
    assert.ok(!c.cookies.has('switchboard_admin'));
    assert.equal((await c.get('/admin/users')).status, 303);
  });

  it('refuses an administrator whose account was disabled over XMPP (XEP-0133), as SASL does', async () => {
    const admin = await connectClient(t.port, 'admin', { resource: 'psi' });
    try {
      const done = await admin.command('sess-man@localhost', `${NS_ADMIN}#disable-user`, { fields: { accountjids: 'off@localhost' } });
      assert.equal(done.status, 'completed');
    } finally {
      await admin.stop();
    }
    const c = web();
    const res = await c.login('off@localhost', 'secret');
    assert.equal(res.status, 403);
    assert.equal(flash(res.text), 'off@localhost may not log in: this account is disabled.');
    assert.ok(!c.cookies.has('switchboard_admin'));
  });

  it('refuses a login form that did not come from the login page (no double-submit token)', async () => {
    const c = web();
    const res = await c.post('/admin/login', { jid: 'admin@localhost', password: 'secret' }, { csrf: 'forged' });
    assert.equal(res.status, 403);
    assert.match(flash(res.text)!, /did not come from this page/);
    assert.ok(!c.cookies.has('switchboard_admin'));
  });

  it('refuses every change without the session\'s CSRF token, and changes nothing', async () => {
    const c = await loggedIn();
    await c.get('/admin/users');
    const fields = { accountjid: 'csrf@localhost', password: 'pw', 'password-verify': 'pw' };
    for (const csrf of [false, 'x'.repeat(43)] as const) {
      const res = await c.post('/admin/users/add', fields, { csrf });
      assert.equal(res.status, 403);
      assert.match(flash(res.text)!, /security token \(CSRF\); nothing was changed/);
    }
    assert.equal(await t.server.storage.users.exists('localhost', 'csrf'), false);
    const domain = await c.post('/admin/domains/add', { domain: 'csrf.example', _bool: 'enabled', enabled: '1' }, { csrf: false });
    assert.equal(domain.status, 403);
    assert.equal(t.server.vhosts.get('csrf.example'), undefined);
    // With the token it works.
    const ok = await c.post('/admin/users/add', fields);
    assert.equal(ok.status, 303);
    assert.equal(await t.server.storage.users.exists('localhost', 'csrf'), true);
  });

  it('refuses malformed domain forms with the VHost Manager\'s message, and changes nothing', async () => {
    const c = await loggedIn();
    await c.get('/admin/domains');
    const before = t.server.vhosts.list().length;
    const base = { domain: 'good.example', _bool: ['enabled', 'anonymous-login', 'in-band-registration', 'tls-required'], enabled: '1', 'max-users': '0', owner: 'admin@localhost', administrators: '', 'presence-forward': '', 'message-forward': '', other: '' };
    const cases: [Record<string, string | string[]>, number, RegExp][] = [
      [{ 'max-users': 'lots' }, 400, /Max users must be a whole number/],
      [{ domain: 'not a domain!' }, 400, /is not a valid domain name/],
      [{ domain: '' }, 400, /Domain name is required/],
      [{ owner: 'not@a@jid' }, 400, /Owner/],
      [{ other: 'novalue' }, 400, /Other parameters: "novalue" is not key=value/],
      [{ domain: 'localhost' }, 409, /already exists/],
    ];
    for (const [change, status, message] of cases) {
      const res = await c.post('/admin/domains/add', { ...base, ...change });
      assert.equal(res.status, status, `${JSON.stringify(change)}: ${flash(res.text)}`);
      assert.match(flash(res.text)!, message);
      assert.match(res.text, /id="add-domain"/, 'the form is shown again');
    }
    assert.equal(t.server.vhosts.list().length, before, 'no domain added');
    const update = await c.post('/admin/domains/edit', { ...base, domain: 'localhost', 'max-users': '-3' });
    assert.equal(update.status, 400);
    assert.match(flash(update.text)!, /Max users must be a whole number/);
    assert.match(update.text, /value="-3"/, 'what was typed is kept');
    assert.equal(t.server.vhosts.get('localhost')!['max-users'], 0, 'unchanged');
    const remove = await c.post('/admin/domains/remove', { domain: 'localhost' });
    assert.equal(remove.status, 403);
    assert.match(flash(remove.text)!, /configur/);
    assert.ok(t.server.vhosts.get('localhost'));
  });

  it('refuses malformed user forms with the session manager\'s message, and changes nothing', async () => {
    const c = await loggedIn();
    await c.get('/admin/users');
    const users = async () => (await t.server.storage.users.list('localhost')).sort().join(',');
    const before = await users();
    const cases: [string, Record<string, string>, number, RegExp][] = [
      ['/admin/users/add', { accountjid: 'no-domain', password: 'pw', 'password-verify': 'pw' }, 400, /is not a JID of the form user@domain/],
      ['/admin/users/add', { accountjid: 'carol@localhost', password: 'pw', 'password-verify': 'other' }, 400, /The passwords do not match/],
      ['/admin/users/add', { accountjid: 'carol@localhost', password: '', 'password-verify': '' }, 400, /The password is required/],
      ['/admin/users/add', { accountjid: 'carol@unknown.example', password: 'pw', 'password-verify': 'pw' }, 404, /not hosted on this server/],
      ['/admin/users/add', { accountjid: 'bob@localhost', password: 'pw', 'password-verify': 'pw' }, 409, /already exists/],
      ['/admin/users/password', { accountjid: 'nobody@localhost', password: 'pw' }, 404, /no such user/],
      ['/admin/users/password', { accountjid: 'bob@localhost', password: '\u0007' }, 400, /prohibited character/],
      ['/admin/users/delete', { accountjids: '' }, 400, /at least one Jabber ID is required/],
      ['/admin/sessions/end', { accountjids: 'localhost' }, 400, /not a user's Jabber ID/],
    ];
    for (const [path, fields, status, message] of cases) {
      const res = await c.post(path, fields);
      assert.equal(res.status, status, `${path} ${JSON.stringify(fields)}: ${flash(res.text)}`);
      assert.match(flash(res.text)!, message);
    }
    assert.equal(await users(), before, 'no account added or removed');
    assert.ok(await canLogIn(t.port, 'bob'), "bob's password unchanged");
  });

  it('refuses forms that are not urlencoded or too large', async () => {
    const c = await loggedIn();
    await c.get('/admin/users');
    const json = await c.send('POST', '/admin/users/add', JSON.stringify({ accountjid: 'x@localhost' }), { 'content-type': 'application/json' });
    assert.equal(json.status, 415);
    const big = await c.post('/admin/users/add', { accountjid: 'big@localhost', password: 'p'.repeat(70 * 1024) });
    assert.equal(big.status, 413);
    assert.equal(await t.server.storage.users.exists('localhost', 'big'), false);
  });

  it('adds, updates and removes a domain through the VHost Manager; the changes serve logins at once', async () => {
    const c = await loggedIn();
    const form = await c.get('/admin/domains');
    for (const field of ['domain', 'enabled', 'anonymous-login', 'in-band-registration', 'tls-required', 'max-users', 'owner', 'administrators', 'presence-forward', 'message-forward', 'other']) {
      assert.match(form.text, new RegExp(`name="${field}"`), `the VHost form has ${field}`);
    }
    const added = await c.post('/admin/domains/add', {
      domain: 'Web.Example', _bool: ['enabled', 'anonymous-login', 'in-band-registration', 'tls-required'], enabled: '1',
      'max-users': '5', owner: 'admin@localhost', administrators: 'bob@localhost', 'presence-forward': '', 'message-forward': '', other: 'note=from the web',
    });
    assert.equal(added.status, 303, flash(added.text));
    const listed = await c.get('/admin/domains');
    assert.match(flash(listed.text)!, /Operation successful: the domain web\.example has been added\./);
    const vhost = t.server.vhosts.get('web.example')!;
    assert.equal(vhost.enabled, true);
    assert.equal(vhost['anonymous-login'], false, 'an unchecked box is false');
    assert.equal(vhost['max-users'], 5);
    assert.deepEqual(vhost.administrators, ['bob@localhost']);
    assert.deepEqual(vhost.other, { note: 'from the web' });

    const edit = await c.get('/admin/domains/edit?domain=web.example');
    assert.equal(edit.status, 200);
    assert.match(edit.text, /name="max-users" value="5"/, 'the current settings');
    const updated = await c.post('/admin/domains/edit', {
      domain: 'web.example', _bool: ['enabled', 'anonymous-login', 'in-band-registration', 'tls-required'], 'anonymous-login': '1',
      'max-users': '7', owner: 'admin@localhost', administrators: '', 'presence-forward': '', 'message-forward': '', other: '',
    });
    assert.equal(updated.status, 303, flash(updated.text));
    assert.equal(t.server.vhosts.get('web.example')!.enabled, false, 'unchecked: disabled');
    assert.equal(t.server.vhosts.get('web.example')!['max-users'], 7);
    await t.addUser('dora@web.example');
    assert.equal(await canLogIn(t.port, 'dora', 'web.example'), false, 'a disabled domain refuses logins');
    await c.post('/admin/domains/edit', { domain: 'web.example', _bool: ['enabled'], enabled: '1', 'max-users': '7', owner: '', administrators: '', other: '' });
    assert.equal(await canLogIn(t.port, 'dora', 'web.example'), true, 're-enabled: logins again');

    const removed = await c.post('/admin/domains/remove', { domain: 'web.example' });
    assert.equal(removed.status, 303);
    assert.equal(t.server.vhosts.get('web.example'), undefined);
    assert.equal(await canLogIn(t.port, 'dora', 'web.example'), false);
  });

  it('adds a user, changes the password and deletes the user through XEP-0133 commands', async () => {
    const c = await loggedIn();
    await c.get('/admin/users?domain=localhost');
    assert.equal((await c.post('/admin/users/add', { accountjid: 'erin@localhost', password: 'first', 'password-verify': 'first', email: 'erin@example.com', given_name: '', surname: '' })).status, 303);
    const list = await c.get('/admin/users?domain=localhost');
    assert.equal(flash(list.text), 'The user erin@localhost has been added.');
    assert.match(list.text, /erin@localhost/);
    assert.ok(await canLogIn(t.port, 'erin', 'localhost', 'first'));

    assert.equal((await c.post('/admin/users/password', { accountjid: 'erin@localhost', password: 'second' })).status, 303);
    assert.ok(await canLogIn(t.port, 'erin', 'localhost', 'second'));
    assert.equal(await canLogIn(t.port, 'erin', 'localhost', 'first'), false);

    const online = await connectClient(t.port, 'erin', { password: 'second' });
    const ended = new Promise<void>((resolve) => online.xmpp.on('status', (status: string) => { if (status === 'disconnect') resolve(); }));
    assert.equal((await c.post('/admin/users/delete', { accountjids: 'erin@localhost' })).status, 303);
    await ended;
    assert.equal(flash((await c.get('/admin/users')).text), 'Deleted: erin@localhost.');
    assert.equal(await t.server.storage.users.exists('localhost', 'erin'), false);
    assert.equal(await canLogIn(t.port, 'erin', 'localhost', 'second'), false);
  });

  it('lists online sessions and ends one', async () => {
    const bob = await connectClient(t.port, 'bob', { resource: 'desk' });
    try {
      const c = await loggedIn();
      const page = await c.get('/admin/sessions');
      assert.match(page.text, /bob@localhost\/desk/);
      const offline = new Promise<void>((resolve) => bob.xmpp.on('status', (status: string) => { if (status === 'disconnect') resolve(); }));
      const res = await c.post('/admin/sessions/end', { accountjids: 'bob@localhost/desk' });
      assert.equal(res.status, 303);
      await offline;
      assert.equal(flash((await c.get('/admin/sessions')).text), '1 session(s) ended.');
    } finally {
      await bob.stop();
    }
  });

  it('ends the web session of an administrator whose account was deleted; an unknown session id is no session', async () => {
    await t.addUser('temp@localhost');
    const c = await loggedIn('temp@localhost');
    assert.equal((await c.get('/admin/users')).status, 200);
    await t.server.storage.users.delete('localhost', 'temp');
    assert.equal((await c.get('/admin/users')).status, 303, 'back to the login form');
    const forged = web();
    forged.cookies.set('switchboard_admin', 'not-a-session');
    assert.equal((await forged.get('/admin/')).status, 303);
  });

  it('serves statistics as a page and as JSON for the charts', async () => {
    const c = await loggedIn();
    const page = await c.get('/admin/stats');
    assert.equal(page.status, 200);
    assert.match(page.text, /data-series="sessions"/);
    assert.match(page.text, /<svg viewBox="0 0 240 48"/);
    const json = await c.get('/admin/stats.json');
    assert.equal(json.status, 200);
    const body = JSON.parse(json.text) as { interval: number; series: { key: string; points: string; latest: string }[] };
    assert.equal(body.interval, 5);
    assert.deepEqual(body.series.map((s) => s.key).slice(0, 2), ['sessions', 'connections']);
  });

  it('browses PubSub nodes read-only, escaping what is stored', async () => {
    const service = 'pubsub.localhost';
    await t.server.storage.pubsub.createNode({ service, node: 'devices', config: { nodeType: 'collection', collection: [] }, createdAt: new Date() });
    await t.server.storage.pubsub.createNode({ service, node: 'SIP/100', config: { nodeType: 'leaf', collection: ['devices'], title: 'Desk <phone>' }, createdAt: new Date() });
    await t.server.storage.pubsub.publishItem(service, 'SIP/100', { id: 'current', publisher: 'asterisk@localhost', payload: '<state xmlns="urn:x">INUSE</state>', publishedAt: new Date() });
    const c = await loggedIn();
    const tree = await c.get(`/admin/pubsub?service=${service}`);
    assert.equal(tree.status, 200);
    assert.match(tree.text, /<li class="collection" data-node="devices">.*<li class="leaf" data-node="SIP\/100">/s, 'the leaf under its collection');
    assert.match(tree.text, /Desk &lt;phone&gt;/);
    const node = await c.get(`/admin/pubsub?service=${service}&node=${encodeURIComponent('SIP/100')}`);
    assert.match(node.text, /&lt;state xmlns=&quot;urn:x&quot;&gt;INUSE&lt;\/state&gt;/);
    const bad = await c.get('/admin/pubsub?service=a%20b%40%40c');
    assert.equal(bad.status, 400);
    assert.match(flash(bad.text)!, /is not a service address/);
  });

  it('is not served when admin-web.enabled is false', async () => {
    const off = await startTestServer({ admins: ['admin@localhost'], 'admin-web': { enabled: false } });
    try {
      const res = await new AdminWebClient(off.httpPort).get('/admin/login');
      assert.equal(res.status, 404);
    } finally {
      await off.stop(true);
    }
  });
});
