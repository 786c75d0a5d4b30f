// The admin web UI (/admin/) in Debian's Chromium: an administrator logs in, adds a domain and a
// user on it through the forms, and that user logs in over XMPP at once; ends the user's session;
// deletes the user, who can then no longer log in; browses PubSub and watches the live charts.
// Screenshots of each page go to test-artifacts/.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { startTestServer, type TestServer } from './support/server.js';
import { canLogIn, connectClient } from './support/adhoc-client.js';
import { launchBrowser, noBrowser, type Browser } from './support/browser.js';

const ARTIFACTS = new URL('../test-artifacts/', import.meta.url);
const shot = (page: Page, name: string) => page.screenshot({ path: new URL(`admin-${name}.png`, ARTIFACTS).pathname, fullPage: true });

describe('admin web UI in Chromium', { skip: noBrowser, timeout: 180_000 }, () => {
  let t: TestServer;
  let browser: Browser;
  let page: Page;
  const log: string[] = [];
  const flash = () => page.locator('p.flash').first().textContent({ timeout: 10_000 });

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    t = await startTestServer({ admins: ['admin@localhost'], 'admin-web': { 'chart-interval': 1 } });
    await t.addUser('admin@localhost', 'admin-pw');
    await t.server.storage.pubsub.createNode({ service: 'pubsub.localhost', node: 'device_state', config: { nodeType: 'collection', collection: [], title: 'Device states' }, createdAt: new Date() });
    await t.server.storage.pubsub.createNode({ service: 'pubsub.localhost', node: 'SIP/100', config: { nodeType: 'leaf', collection: ['device_state'] }, createdAt: new Date() });
    await t.server.storage.pubsub.publishItem('pubsub.localhost', 'SIP/100', { id: 'current', publisher: 'asterisk@localhost', payload: "<state xmlns='http://asterisk.org'>INUSE</state>", publishedAt: new Date() });
    browser = await launchBrowser(log);
    page = await browser.newPage();
    // Removals ask first (data-confirm); the administrator agrees.
    page.on('dialog', (d) => { void d.accept(); });
  });
  after(async () => {
    await browser?.close();
    await t?.stop(true);
  });

  it('refuses a wrong password, then logs the administrator in', async () => {
    await page.goto(`http://127.0.0.1:${t.httpPort}/admin/`);
    assert.match(page.url(), /\/admin\/login$/);
    await page.fill('#jid', 'admin@localhost');
    await page.fill('#password', 'wrong');
    await page.click('button[type=submit]');
    assert.equal(await flash(), 'Wrong JID or password.');
    await shot(page, 'login-refused');
    await page.fill('#password', 'admin-pw');
    await page.click('button[type=submit]');
    await page.waitForSelector('h1:text("Overview")');
    assert.equal(await page.getAttribute('nav a.external', 'href'), '/panel/');
    const cookies = await browser.context.cookies();
    const session = cookies.find((c) => c.name === 'switchboard_admin')!;
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    await shot(page, 'overview');
  });

  it('adds a domain in the UI, and a user on it who then logs in over XMPP', async () => {
    await page.click('nav a:text("Domains")');
    await page.fill('#add-domain-domain', 'shop.example');
    await page.fill('#add-domain-max-users', '10');
    await page.fill('#add-domain-other', 'region=eu');
    await page.click('#add-domain button[type=submit]');
    assert.equal(await flash(), 'Operation successful: the domain shop.example has been added.');
    await page.waitForSelector('td a:text("shop.example")');
    await shot(page, 'domains');
    assert.equal(t.server.vhosts.get('shop.example')?.['max-users'], 10);

    await page.click('nav a:text("Users")');
    await page.fill('#add-user-accountjid', 'carol@shop.example');
    await page.fill('#add-user-password', 'carol-pw');
    await page.fill('#add-user-password-verify', 'carol-pw');
    await page.click('#add-user button[type=submit]');
    assert.equal(await flash(), 'The user carol@shop.example has been added.');
    assert.match(page.url(), /domain=shop\.example/, 'the list of the new user\'s domain');
    await page.waitForSelector('td:text("carol@shop.example")');
    await shot(page, 'users');
    assert.ok(await canLogIn(t.port, 'carol', 'shop.example', 'carol-pw'), 'the new domain accepts the login');
  });

  it('shows the online session and ends it', async () => {
    const carol = await connectClient(t.port, 'carol', { domain: 'shop.example', password: 'carol-pw', resource: 'laptop' });
    const ended = new Promise<void>((resolve) => carol.xmpp.on('status', (status: string) => { if (status === 'disconnect') resolve(); }));
    try {
      await page.click('nav a:text("Sessions")');
      await page.waitForSelector('td:text("carol@shop.example/laptop")');
      await shot(page, 'sessions');
      await page.click('button[data-end-session="carol@shop.example/laptop"]');
      assert.equal(await flash(), '1 session(s) ended.');
      await ended;
    } finally {
      await carol.stop();
    }
  });

  it('deletes the user in the UI; the user can no longer log in', async () => {
    await page.goto(`http://127.0.0.1:${t.httpPort}/admin/users?domain=shop.example`);
    await page.click('button[data-delete-user="carol@shop.example"]');
    assert.equal(await flash(), 'Deleted: carol@shop.example.');
    assert.equal(await page.locator('td:text("carol@shop.example")').count(), 0);
    await shot(page, 'user-deleted');
    assert.equal(await canLogIn(t.port, 'carol', 'shop.example', 'carol-pw'), false);
  });

  it('refuses a malformed value with the form kept as typed', async () => {
    await page.goto(`http://127.0.0.1:${t.httpPort}/admin/domains/edit?domain=shop.example`);
    await page.fill('#update-domain-max-users', 'many');
    await page.click('#update-domain button[type=submit]');
    assert.equal(await flash(), 'Max users must be a whole number');
    assert.equal(await page.inputValue('#update-domain-max-users'), 'many');
    await shot(page, 'domain-refused');
    assert.equal(t.server.vhosts.get('shop.example')?.['max-users'], 10, 'unchanged');
  });

  it('removes the domain in the UI', async () => {
    await page.click('nav a:text("Domains")');
    await page.click('button[data-remove-domain="shop.example"]');
    assert.equal(await flash(), 'Operation successful: the domain shop.example has been removed.');
    assert.equal(t.server.vhosts.get('shop.example'), undefined);
  });

  it('browses the PubSub tree and a node', async () => {
    await page.click('nav a:text("PubSub")');
    await page.click('li[data-node="SIP/100"] > a');
    await page.waitForSelector('h2:text("SIP/100")');
    assert.match((await page.textContent('section.detail'))!, /<state xmlns='http:\/\/asterisk\.org'>INUSE<\/state>/);
    await shot(page, 'pubsub');
  });

  it('draws live charts that refresh from the statistics', async () => {
    const bob = await (async () => { await t.addUser('bob@localhost'); return connectClient(t.port, 'bob'); })();
    try {
      await page.click('nav a:text("Statistics")');
      // The page's script polls /admin/stats.json every second and marks each refresh.
      await page.waitForSelector('.charts[data-updated]', { timeout: 10_000 });
      await page.waitForFunction(() => document.querySelector('figure[data-series="sessions"] .latest')?.textContent === '1', undefined, { timeout: 10_000 });
      assert.notEqual(await page.getAttribute('figure[data-series="sessions"] polyline', 'points'), '');
      await shot(page, 'statistics');
    } finally {
      await bob.stop();
    }
  });

  it('ran without script errors or Content-Security-Policy violations', () => {
    assert.deepEqual(log.filter((l) => l.startsWith('pageerror') || /Content Security Policy|Refused to/.test(l)), []);
  });
});
