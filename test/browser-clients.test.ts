// Real browsers: Debian's Chromium, driven by playwright-core, loads a page using strophe.js
// over BOSH and a page using @xmpp/client over WebSocket (the libraries' own browser builds).
// Each logs in, subscribes with a client connected over TCP, and exchanges messages and
// presence with it; closing the page makes the TCP client see it go unavailable. The pages
// come from another origin than the server's, so BOSH goes through CORS as on a real site.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { startTestServer, type TestServer } from './support/server.js';
import { RawClient } from './support/raw-client.js';
import { launchBrowser, moduleFile, noBrowser, servePages, type Browser } from './support/browser.js';

// A page's `window.xmpp` API, the same for both libraries: start, send, and what arrived.
const COMMON = `
  window.received = [];
  window.statuses = [];
  function note(kind, el) {
    window.received.push({
      kind, from: el.getAttribute('from'), type: el.getAttribute('type'), id: el.getAttribute('id'),
      body: el.querySelector('body') ? el.querySelector('body').textContent : null,
      show: el.querySelector('show') ? el.querySelector('show').textContent : null,
    });
  }
`;

const STROPHE_PAGE = `<!doctype html><meta charset="utf-8"><title>strophe over BOSH</title>
<script src="/strophe.js"></script>
<script>${COMMON}
  let conn;
  window.xmpp = {
    start(service, jid, password) {
      return new Promise((resolve, reject) => {
        conn = new Strophe.Connection(service);
        conn.addHandler((m) => { note('message', m); return true; }, null, 'message');
        conn.addHandler((p) => {
          note('presence', p);
          // Approve subscription requests, as a user clicking "accept" would.
          if (p.getAttribute('type') === 'subscribe') conn.send($pres({ to: p.getAttribute('from'), type: 'subscribed' }));
          return true;
        }, null, 'presence');
        conn.connect(jid, password, (status, condition) => {
          window.statuses.push(status);
          if (status === Strophe.Status.CONNECTED) resolve(conn.jid);
          else if (status === Strophe.Status.AUTHFAIL || status === Strophe.Status.CONNFAIL) reject(new Error('status ' + status + ' ' + condition));
        });
      });
    },
    presence(show) { conn.send(show ? $pres().c('show').t(show) : $pres()); },
    subscribe(to) { conn.send($pres({ to, type: 'subscribe' })); },
    message(to, id, body) { conn.send($msg({ to, type: 'chat', id }).c('body').t(body)); },
    stop() { conn.disconnect('bye'); },
    mechanism() { return conn._sasl_mechanism ? conn._sasl_mechanism.mechname : null; },
  };
</script>`;

const XMPPJS_PAGE = `<!doctype html><meta charset="utf-8"><title>@xmpp/client over WebSocket</title>
<script src="/xmpp.js"></script>
<script>${COMMON}
  const { client, xml } = window.XMPP;
  let x;
  const toDom = (el) => new DOMParser().parseFromString(el.toString(), 'text/xml').documentElement;
  window.xmpp = {
    async start(service, jid, password) {
      const [local, domain] = jid.split('@');
      x = client({ service, domain, resource: 'browser', username: local, password });
      x.on('error', (e) => window.statuses.push('error ' + e.message));
      x.on('status', (s) => window.statuses.push(s));
      x.on('stanza', (s) => {
        if (s.is('message')) note('message', toDom(s));
        if (s.is('presence')) {
          note('presence', toDom(s));
          if (s.attrs.type === 'subscribe') x.send(xml('presence', { to: s.attrs.from, type: 'subscribed' }));
        }
      });
      const address = await x.start();
      return address.toString();
    },
    presence(show) { return x.send(show ? xml('presence', {}, xml('show', {}, show)) : xml('presence')); },
    subscribe(to) { return x.send(xml('presence', { to, type: 'subscribe' })); },
    message(to, id, body) { return x.send(xml('message', { to, type: 'chat', id }, xml('body', {}, body))); },
    stop() { return x.stop(); },
  };
</script>`;

type Received = { kind: string; from: string | null; type: string | null; id: string | null; body: string | null; show: string | null };

async function waitInPage(page: Page, match: (r: Received) => boolean, what: string): Promise<Received> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const got = (await page.evaluate('window.received')) as Received[];
    const found = got.find(match);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`page: timed out waiting for ${what}; got ${JSON.stringify(got)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('browser clients against Switchboard', { skip: noBrowser, timeout: 120_000 }, () => {
  let t: TestServer;
  let browser: Browser;
  let pages: { url: string; close(): Promise<void> };
  const log: string[] = [];

  before(async () => {
    t = await startTestServer();
    for (const u of ['alice', 'bob', 'carol', 'dave']) await t.addUser(`${u}@localhost`, 'secret');
    pages = await servePages({
      '/strophe.html': { type: 'text/html', body: STROPHE_PAGE },
      '/strophe.js': { type: 'text/javascript', body: moduleFile('strophe.js/dist/strophe.umd.min.js') },
      '/xmpp.html': { type: 'text/html', body: XMPPJS_PAGE },
      '/xmpp.js': { type: 'text/javascript', body: moduleFile('@xmpp/client/dist/xmpp.min.js') },
    });
    browser = await launchBrowser(log);
  });
  after(async () => {
    await browser?.close();
    await pages?.close();
    await t?.stop(true);
  });

  const cases = [
    { name: 'strophe.js over BOSH', page: '/strophe.html', user: 'alice', tcpUser: 'bob', service: () => `http://127.0.0.1:${t.boshPort}/http-bind/` },
    { name: '@xmpp/client over WebSocket', page: '/xmpp.html', user: 'carol', tcpUser: 'dave', service: () => `ws://127.0.0.1:${t.wsPort}/xmpp-websocket` },
  ];

  for (const c of cases) {
    it(`${c.name}: logs in, subscribes, exchanges messages and presence with a TCP client`, async () => {
      const page = await browser.newPage();
      await page.goto(pages.url + c.page);
      const tcp = await RawClient.connect(t.port);
      const tcpJid = await tcp.login(c.tcpUser, 'secret', 'localhost', 'tcp');
      tcp.send(`<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq><presence/>`);
      await tcp.waitForName('iq', { id: 'r' });

      const jid = String(await page.evaluate(([s, u]) => (window as any).xmpp.start(s, `${u}@localhost`, 'secret'), [c.service(), c.user] as const)
        .catch((e) => { throw new Error(`${e}\n${log.join('\n')}`); }));
      assert.match(jid, new RegExp(`^${c.user}@localhost/`));
      const session = t.server.sessions.get(`${c.user}@localhost`, jid.split('/')[1]!);
      assert.ok(session, 'the browser is a bound session on the server');
      if (c.page === '/strophe.html') {
        const mech = await page.evaluate(() => (window as any).xmpp.mechanism());
        assert.match(String(mech), /^SCRAM-SHA-(1|256)$/, 'strophe uses SCRAM from the browser');
      }

      // Subscription both ways: the page asks, the TCP client approves and asks back, the page approves.
      await page.evaluate(() => (window as any).xmpp.presence());
      await page.evaluate((to) => (window as any).xmpp.subscribe(to), `${c.tcpUser}@localhost`);
      await tcp.waitFor((s) => s.name === 'presence' && s.attrs.type === 'subscribe' && s.attrs.from === `${c.user}@localhost`, 5000, 'subscribe');
      tcp.send(`<presence type='subscribed' to='${c.user}@localhost'/><presence type='subscribe' to='${c.user}@localhost'/>`);
      await waitInPage(page, (r) => r.kind === 'presence' && r.type === 'subscribe', 'subscribe from TCP');
      // The page now sees the TCP client online, and the TCP client sees the page.
      await waitInPage(page, (r) => r.kind === 'presence' && r.from === tcpJid && r.type === null, 'TCP client available');
      await tcp.waitFor((s) => s.name === 'presence' && s.attrs.from === jid && !s.attrs.type, 5000, 'page available');

      // Presence changes both ways.
      await page.evaluate(() => (window as any).xmpp.presence('away'));
      const away = await tcp.waitFor((s) => s.name === 'presence' && s.attrs.from === jid && s.getChildText('show') === 'away', 5000, 'away');
      assert.ok(away);
      tcp.send(`<presence><show>dnd</show></presence>`);
      await waitInPage(page, (r) => r.kind === 'presence' && r.from === tcpJid && r.show === 'dnd', 'dnd from TCP');

      // Messages both ways.
      tcp.send(`<message to='${jid}' type='chat' id='to-page'><body>hello browser &amp; co</body></message>`);
      const m = await waitInPage(page, (r) => r.kind === 'message' && r.id === 'to-page', 'message from TCP');
      assert.equal(m.body, 'hello browser & co');
      assert.equal(m.from, tcpJid);
      await page.evaluate(([to]) => (window as any).xmpp.message(to, 'from-page', 'hello <tcp>'), [tcpJid]);
      const back = await tcp.waitForName('message', { id: 'from-page' });
      assert.equal(back.getChildText('body'), 'hello <tcp>');
      assert.equal(back.attrs.from, jid);

      // Leaving the page (the library's disconnect) makes the page's resource unavailable.
      await page.evaluate(() => (window as any).xmpp.stop());
      await tcp.waitFor((s) => s.name === 'presence' && s.attrs.from === jid && s.attrs.type === 'unavailable', 10_000, 'unavailable');
      await page.close();
      tcp.end();
      assert.deepEqual(log.filter((l) => l.startsWith('pageerror')), []);
    });
  }
});
