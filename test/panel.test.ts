// The operator panel (/panel/) in Debian's Chromium: an operator logs in with an XMPP account
// over WebSocket and sees the devices Asterisk servers publish (flat mode and collection
// nodes), coloured by aggregated state, the mailboxes' counts and the contacts' presence; a
// published change shows within a second; the page reconnects by itself after a server restart;
// and it fits a phone screen. Screenshots go to test-artifacts/.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { startTestServer, type TestServer } from './support/server.js';
import type { RawClient } from './support/raw-client.js';
import { assertResult, asteriskState, connect, form, iq, pubsub } from './support/pubsub.js';
import { launchBrowser, noBrowser, type Browser } from './support/browser.js';

const ARTIFACTS = new URL('../test-artifacts/', import.meta.url);
const EID1 = '02:00:00:00:00:01';
const EID2 = '02:00:00:00:00:02';
const SUBSCRIBE_OPTIONS = 'http://jabber.org/protocol/pubsub#subscribe_options';
const mailbox = (newMessages: number, oldMessages: number, eid = EID1) =>
  `<mailbox xmlns='http://asterisk.org' eid='${eid}'><NEWMSGS>${newMessages}</NEWMSGS><OLDMSGS>${oldMessages}</OLDMSGS></mailbox>`;

/** An Asterisk publish in flat mode: node device_state (or message_waiting), item id = device. */
async function publish(client: RawClient, node: string, id: string, payload: string): Promise<void> {
  assertResult(await iq(client, pubsub(`<publish node='${node}'><item id='${id}'>${payload}</item></publish>`)));
}

async function device(page: Page, name: string): Promise<string | null> {
  return page.locator(`li.device[data-device="${name}"]`).getAttribute('data-state', { timeout: 5000 });
}

/** Waits until the device shows `state`; returns how long that took. */
async function until(page: Page, name: string, state: string, timeout = 5000): Promise<number> {
  const started = Date.now();
  await page.waitForSelector(`li.device[data-device="${name}"][data-state="${state}"]`, { timeout });
  return Date.now() - started;
}

async function logIn(page: Page, url: string, jid: string, password: string): Promise<void> {
  await page.goto(url);
  await page.fill('#jid', jid);
  await page.fill('#password', password);
  await page.click('button[type=submit]');
  await page.waitForSelector('#status[data-status="live"]', { timeout: 10_000 });
}

describe('operator panel', { skip: noBrowser, timeout: 180_000 }, () => {
  let browser: Browser;
  const log: string[] = [];

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await launchBrowser(log);
  });
  after(async () => {
    await browser?.close();
  });

  describe('flat mode (collection_nodes=no, as in the seed)', () => {
    let t: TestServer;
    let ast1: RawClient;
    let ast2: RawClient;
    let bob: RawClient;
    let page: Page;

    before(async () => {
      t = await startTestServer();
      for (const u of ['asterisk1', 'asterisk2', 'operator', 'bob']) await t.addUser(`${u}@localhost`, 'pw');
      ast1 = await connect(t, 'asterisk1', 'astvoip1');
      ast2 = await connect(t, 'asterisk2', 'astvoip2');
      // As Asterisk starts: subscribing names the two nodes (created as leaves), then it publishes its cached states.
      for (const node of ['device_state', 'message_waiting']) assertResult(await iq(ast1, pubsub(`<subscribe node='${node}' jid='asterisk1@localhost'/>`)));
      await publish(ast1, 'device_state', 'SIP/100', asteriskState('NOT_INUSE', EID1));
      await publish(ast1, 'device_state', 'SIP/101', asteriskState('RINGING', EID1));
      await publish(ast1, 'device_state', 'SIP/102', asteriskState('ONHOLD', EID1));
      await publish(ast1, 'device_state', 'SIP/103', asteriskState('BUSY', EID1));
      await publish(ast1, 'device_state', 'SIP/104', asteriskState('UNAVAILABLE', EID1));
      await publish(ast1, 'device_state', 'Custom:mystate', asteriskState('INUSE', EID1));
      await publish(ast1, 'message_waiting', '1234@default', mailbox(2, 5));
      await publish(ast1, 'message_waiting', '1300@default', mailbox(0, 1));
      // The operator and bob are contacts of each other.
      bob = await connect(t, 'bob', 'desk');
      const op = await connect(t, 'operator', 'setup');
      op.send(`<iq type='set' id='r'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob (reception)'/></query></iq>`);
      await op.waitForName('iq', { id: 'r' });
      op.send(`<presence type='subscribe' to='bob@localhost'/>`);
      await bob.waitFor((s) => s.name === 'presence' && s.attrs.type === 'subscribe', 5000, 'subscribe');
      bob.send(`<presence type='subscribed' to='operator@localhost'/>`);
      await op.waitFor((s) => s.name === 'presence' && s.attrs.from === 'bob@localhost/desk' && !s.attrs.type, 5000, 'bob online');
      op.end();
      await op.closed;
    });
    after(async () => {
      for (const c of [ast1, ast2, bob]) c?.destroy();
      await page?.close();
      await t?.stop(true);
    });

    it('logs in over WebSocket and shows devices, mailboxes and contacts on a phone screen', async () => {
      const context = browser.context;
      page = await context.newPage();
      page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
      await page.setViewportSize({ width: 390, height: 844 });
      await logIn(page, `http://127.0.0.1:${t.httpPort}/panel/`, 'operator@localhost', 'pw');
      assert.match((await page.textContent('#who')) ?? '', /^operator@localhost\/panel-/);
      await page.waitForSelector('li.device[data-device="SIP/104"]');
      assert.equal(await page.isVisible('#login'), false, 'the login form is gone');
      assert.deepEqual(
        Object.fromEntries(await Promise.all(['SIP/100', 'SIP/101', 'SIP/102', 'SIP/103', 'SIP/104', 'Custom:mystate'].map(async (d) => [d, await device(page, d)]))),
        { 'SIP/100': 'idle', 'SIP/101': 'ringing', 'SIP/102': 'onhold', 'SIP/103': 'busy', 'SIP/104': 'unavailable', 'Custom:mystate': 'inuse' });
      assert.equal(await page.textContent('li.device[data-device="SIP/102"] .state'), 'on hold');
      assert.equal(await page.textContent('tr[data-mailbox="1234@default"] .new'), '2');
      assert.equal(await page.textContent('tr[data-mailbox="1234@default"] .old'), '5');
      assert.equal(await page.getAttribute('tr[data-mailbox="1300@default"]', 'data-new'), 'false');
      await page.waitForSelector('li.contact[data-jid="bob@localhost"][data-show="online"]');
      assert.match((await page.textContent('li.contact[data-jid="bob@localhost"] .name')) ?? '', /Bob \(reception\)/);
      // Usable on a phone: nothing wider than the screen, devices two to a row.
      const layout = await page.evaluate(() => {
        const cards = [...document.querySelectorAll('li.device')].map((e) => e.getBoundingClientRect());
        return { scrollWidth: document.documentElement.scrollWidth, width: window.innerWidth, perRow: cards.filter((r) => r.top === cards[0]!.top).length };
      });
      assert.ok(layout.scrollWidth <= layout.width, `no horizontal scrolling (${layout.scrollWidth} > ${layout.width})`);
      assert.equal(layout.perRow, 2);
    });

    it('turns a device to "in use" within a second of a publish, and back to idle', async () => {
      await publish(ast1, 'device_state', 'SIP/100', asteriskState('INUSE', EID1));
      const toInUse = await until(page, 'SIP/100', 'inuse', 1000);
      await page.screenshot({ path: new URL('panel-phone-inuse.png', ARTIFACTS).pathname, fullPage: true });
      await publish(ast1, 'device_state', 'SIP/100', asteriskState('NOT_INUSE', EID1));
      const toIdle = await until(page, 'SIP/100', 'idle', 1000);
      assert.ok(toInUse < 1000 && toIdle < 1000, `${toInUse} ms, ${toIdle} ms`);
    });

    it('aggregates what several Asterisk servers report for one device', async () => {
      await publish(ast2, 'device_state', 'SIP/100', asteriskState('RINGING', EID2));
      await until(page, 'SIP/100', 'ringing');
      await publish(ast1, 'device_state', 'SIP/100', asteriskState('INUSE', EID1));
      // RINGING with INUSE is RINGINUSE: still ringing; the card's title tells both reports.
      await until(page, 'SIP/100', 'ringing');
      const title = await page.getAttribute('li.device[data-device="SIP/100"]', 'title');
      assert.match(title ?? '', new RegExp(`${EID1}: INUSE`));
      assert.match(title ?? '', new RegExp(`${EID2}: RINGING`));
      await publish(ast2, 'device_state', 'SIP/100', asteriskState('NOT_INUSE', EID2));
      await until(page, 'SIP/100', 'inuse');
      await publish(ast1, 'device_state', 'SIP/100', asteriskState('NOT_INUSE', EID1));
      await until(page, 'SIP/100', 'idle');
    });

    it('updates mailbox counts, new devices and contacts live', async () => {
      await publish(ast1, 'message_waiting', '1234@default', mailbox(3, 5));
      await page.waitForSelector('tr[data-mailbox="1234@default"] .new:text-is("3")', { timeout: 1000 });
      await publish(ast2, 'device_state', 'SIP/200', asteriskState('RINGING', EID2));
      await until(page, 'SIP/200', 'ringing', 1000);
      bob.send(`<presence><show>dnd</show><status>in a meeting</status></presence>`);
      await page.waitForSelector('li.contact[data-jid="bob@localhost"][data-show="dnd"]', { timeout: 1000 });
      assert.match((await page.textContent('li.contact[data-jid="bob@localhost"] .detail')) ?? '', /in a meeting/);
      await page.setViewportSize({ width: 1280, height: 800 });
      await page.screenshot({ path: new URL('panel-desktop.png', ARTIFACTS).pathname, fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
    });

    it('reconnects by itself after the server restarts, and keeps updating', async () => {
      for (const c of [ast1, ast2, bob]) c.destroy();
      t = await t.restart();
      await page.waitForSelector('#status[data-status="reconnecting"], #status[data-status="connecting"]', { timeout: 10_000 }).catch(() => {});
      await page.waitForSelector('#status[data-status="live"]', { timeout: 15_000 });
      ast1 = await connect(t, 'asterisk1', 'astvoip1');
      ast2 = await connect(t, 'asterisk2', 'astvoip2');
      bob = await connect(t, 'bob', 'desk');
      // The page subscribes again after the restart (the subscription itself is stored anyway).
      await page.waitForSelector('li.contact[data-jid="bob@localhost"][data-show="online"]', { timeout: 5000 });
      await publish(ast1, 'device_state', 'SIP/101', asteriskState('INUSE', EID1));
      await until(page, 'SIP/101', 'inuse', 2000);
      assert.deepEqual(log.filter((l) => l.startsWith('pageerror')), []);
    });
  });

  describe('collection nodes (collection_nodes=yes)', () => {
    let t: TestServer;
    let ast: RawClient;

    before(async () => {
      t = await startTestServer();
      for (const u of ['asterisk1', 'operator']) await t.addUser(`${u}@localhost`, 'pw');
      ast = await connect(t, 'asterisk1', 'astvoip1');
      // XEP-0248 as Asterisk does it: subscribe to the collection for items at any depth (creates it),
      // then publish to a leaf per device (created under the collection).
      const options = `<options>${form(SUBSCRIBE_OPTIONS, { 'pubsub#subscription_type': 'items', 'pubsub#subscription_depth': 'all' })}</options>`;
      assertResult(await iq(ast, pubsub(`<subscribe node='device_state' jid='asterisk1@localhost'/>${options}`)));
      assertResult(await iq(ast, pubsub(`<subscribe node='message_waiting' jid='asterisk1@localhost'/>${options}`)));
      await publish(ast, 'SIP/300', EID1, asteriskState('NOT_INUSE', EID1));
      await publish(ast, 'SIP/301', EID1, asteriskState('INUSE', EID1));
      await publish(ast, '4000@default', '4000@default', mailbox(1, 0));
    });
    after(async () => {
      ast?.destroy();
      await t?.stop(true);
    });

    it('reads the leaves of the collection and follows them live', async () => {
      const page = await browser.newPage();
      try {
        await logIn(page, `http://127.0.0.1:${t.httpPort}/panel/`, 'operator@localhost', 'pw');
        await until(page, 'SIP/300', 'idle');
        await until(page, 'SIP/301', 'inuse');
        await page.waitForSelector('tr[data-mailbox="4000@default"] .new:text-is("1")');
        await publish(ast, 'SIP/300', EID1, asteriskState('INUSE', EID1));
        assert.ok((await until(page, 'SIP/300', 'inuse', 1000)) < 1000);
        await publish(ast, 'SIP/302', EID1, asteriskState('RINGING', EID1));
        await until(page, 'SIP/302', 'ringing', 1000);
      } finally {
        await page.close();
      }
    });
  });

  it('refuses a wrong password, and says why a missing node shows nothing yet', async () => {
    const t = await startTestServer();
    const page = await browser.newPage();
    try {
      await t.addUser('operator@localhost', 'pw');
      await page.goto(`http://127.0.0.1:${t.httpPort}/panel`);
      await page.fill('#jid', 'operator@localhost');
      await page.fill('#password', 'nope');
      await page.click('button[type=submit]');
      await page.waitForSelector('#login-error:text("Wrong account or password")');
      assert.equal(await page.getAttribute('#status', 'data-status'), 'offline');
      await page.fill('#password', 'pw');
      await page.click('button[type=submit]');
      await page.waitForSelector('#status[data-status="live"]');
      await page.waitForSelector('#device-notice:text("device_state node does not exist")');
      assert.equal(await page.locator('li.device').count(), 0);
    } finally {
      await page.close();
      await t.stop(true);
    }
  });
});
