// Advanced Message Processing (XEP-0079) over real sockets: disco of the supported conditions and
// actions, the error replies for unsupported or unacceptable rules, and each condition (deliver,
// expire-at, match-resource) with each action (alert, drop, error, notify), for messages
// delivered at once and messages stored offline.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { RawClient } from './support/raw-client.js';
import type { Element } from '../src/xml/element.js';
import type { RosterItem } from '../src/storage/types.js';

const NS_AMP = 'http://jabber.org/protocol/amp';
const NS_AMP_ERRORS = 'http://jabber.org/protocol/amp#errors';
const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

const rule = (condition: string, action: string, value: string) => `<rule condition='${condition}' action='${action}' value='${value}'/>`;
const withRules = (to: string, id: string, rules: string, opts: { body?: string; ampAttrs?: string } = {}) =>
  `<message type='chat' to='${to}' id='${id}'>${opts.body === undefined ? '<body>hello</body>' : opts.body}<amp xmlns='${NS_AMP}'${opts.ampAttrs ?? ''}>${rules}</amp></message>`;
const ruleAttrs = (el: Element | undefined) => el?.getChildren('rule').map((r) => `${r.attrs.condition} ${r.attrs.action} ${r.attrs.value}`);
const past = '2004-01-01T00:00:00Z';
const future = '2999-01-01T00:00:00Z';

function contact(jid: string): RosterItem {
  return { jid, groups: [], subscription: 'both', ask: false, pendingIn: false, approved: false, visible: true };
}

describe('advanced message processing (XEP-0079)', () => {
  let t: TestServer;
  const open: RawClient[] = [];
  let syncs = 0;

  async function sync(c: RawClient): Promise<void> {
    const id = `sync${++syncs}`;
    c.send(`<iq type='get' id='${id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await c.waitForName('iq', { id });
  }
  async function login(user: string, resource = 'r', presence = true): Promise<RawClient> {
    const c = await RawClient.connect(t.port);
    open.push(c);
    await c.login(user, 'secret', 'localhost', resource);
    c.send("<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>");
    await c.waitForName('iq', { id: 'roster' });
    if (presence) c.send('<presence/>');
    await sync(c);
    return c;
  }
  /** The messages a client received so far, in order, taken out of its buffer. */
  const messages = (c: RawClient) => c.stanzas.splice(0).filter((s) => s.name === 'message');
  /** Sends, waits until the server handled it, and returns what came back to the sender. */
  async function send(c: RawClient, stanza: string): Promise<Element[]> {
    c.send(stanza);
    await sync(c);
    return messages(c);
  }

  before(async () => {
    t = await startTestServer();
    for (const u of ['romeo', 'juliet', 'mallory']) await t.addUser(`${u}@localhost`);
    // Romeo and Juliet see each other's presence; Mallory sees nobody's.
    await t.server.storage.roster.setItem('juliet@localhost', contact('romeo@localhost'));
    await t.server.storage.roster.setItem('romeo@localhost', contact('juliet@localhost'));
  });
  // Each test starts with everyone offline: where a message goes depends on who is online.
  afterEach(async () => {
    for (const c of open.splice(0)) c.destroy();
    while (t.server.sessions.size > 0) await new Promise((resolve) => setTimeout(resolve, 10));
  });
  after(async () => {
    await t.stop(true);
  });

  it('advertises AMP, and each supported action and condition at its disco node', async () => {
    const romeo = await login('romeo', 'disco');
    romeo.send("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    const host = (await romeo.waitForName('iq', { id: 'd1' })).getChild('query')!;
    assert.ok(host.getChildren('feature').some((f) => f.attrs.var === NS_AMP));
    romeo.send(`<iq type='get' id='d2' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info' node='${NS_AMP}'/></iq>`);
    const reply = await romeo.waitForName('iq', { id: 'd2' });
    assert.equal(reply.attrs.type, 'result');
    const node = reply.getChild('query')!;
    assert.equal(node.attrs.node, NS_AMP);
    assert.ok(node.getChild('identity'));
    assert.deepEqual(node.getChildren('feature').map((f) => f.attrs.var), [
      NS_AMP,
      `${NS_AMP}?action=alert`, `${NS_AMP}?action=drop`, `${NS_AMP}?action=error`, `${NS_AMP}?action=notify`,
      `${NS_AMP}?condition=deliver`, `${NS_AMP}?condition=expire-at`, `${NS_AMP}?condition=match-resource`,
    ]);
  });

  it('answers unsupported actions and conditions, unacceptable values and a missing id with the errors of section 8', async () => {
    const romeo = await login('romeo', 'errors');
    const juliet = await login('juliet', 'errors');
    const check = async (stanza: string, id: string | undefined, condition: string, code: string, app: string | undefined, failing: string[]) => {
      const [reply, ...rest] = await send(romeo, stanza);
      assert.equal(rest.length, 0);
      assert.deepEqual({ from: reply!.attrs.from, to: reply!.attrs.to, id: reply!.attrs.id, type: reply!.attrs.type },
        { from: 'localhost', to: 'romeo@localhost/errors', id, type: 'error' });
      assert.ok(reply!.getChild('amp', NS_AMP), 'the rules are echoed');
      assert.equal(reply!.getChild('body'), undefined, 'the body is not');
      const error = reply!.getChild('error')!;
      assert.deepEqual({ type: error.attrs.type, code: error.attrs.code, condition: error.getChild(condition, NS_STANZAS) !== undefined },
        { type: 'modify', code, condition: true });
      if (app) assert.deepEqual(ruleAttrs(error.getChild(app, NS_AMP)), failing);
    };
    await check(withRules('juliet@localhost', 'e1', rule('deliver', 'fly', 'direct') + rule('deliver', 'drop', 'stored')),
      'e1', 'bad-request', '400', 'unsupported-actions', ['deliver fly direct']);
    await check(withRules('juliet@localhost', 'e2', rule('sunset', 'drop', 'soon') + rule('deliver', 'notify', 'direct')),
      'e2', 'bad-request', '400', 'unsupported-conditions', ['sunset drop soon']);
    await check(withRules('juliet@localhost', 'e3', rule('deliver', 'drop', 'somewhere') + rule('match-resource', 'drop', 'sometimes')
      + rule('expire-at', 'drop', '2004-01-01T00:00:00+02:00') + rule('expire-at', 'drop', 'tomorrow') + rule('deliver', 'drop', 'forward')),
    'e3', 'not-acceptable', '406', 'invalid-rules',
    ['deliver drop somewhere', 'match-resource drop sometimes', 'expire-at drop 2004-01-01T00:00:00+02:00', 'expire-at drop tomorrow']);
    await check(`<message type='chat' to='juliet@localhost'><body>no id</body><amp xmlns='${NS_AMP}'>${rule('deliver', 'notify', 'direct')}</amp></message>`,
      undefined, 'bad-request', '400', undefined, []);
    await sync(juliet);
    assert.deepEqual(messages(juliet), [], 'a message whose rules were refused is not delivered');
  });

  it('gives AMP replies only to those allowed to see the recipient\'s presence; others may only drop (section 9)', async () => {
    const mallory = await login('mallory', 'snoop');
    const juliet = await login('juliet', 'private');
    const [refused] = await send(mallory, withRules('juliet@localhost', 's1', rule('deliver', 'drop', 'direct') + rule('deliver', 'alert', 'stored')));
    const error = refused!.getChild('error')!;
    assert.ok(error.getChild('not-acceptable', NS_STANZAS));
    assert.match(error.getChildText('text', NS_STANZAS)!, /presence/);
    assert.deepEqual(ruleAttrs(error.getChild('invalid-rules', NS_AMP)), ['deliver alert stored']);
    assert.deepEqual(await send(mallory, withRules('juliet@localhost', 's2', rule('deliver', 'drop', 'direct'))), [], 'dropped silently');
    assert.deepEqual(await send(mallory, withRules('juliet@localhost', 's3', rule('deliver', 'drop', 'stored'))), []);
    await sync(juliet);
    assert.deepEqual(messages(juliet).map((m) => m.attrs.id), ['s3'], 'only the message no rule dropped arrives');
  });

  it('applies deliver rules to messages delivered at once, stored offline, or not deliverable at all', async () => {
    const romeo = await login('romeo', 'deliver');
    const juliet = await login('juliet', 'balcony');

    const [notify] = await send(romeo, withRules('juliet@localhost', 'v1', rule('deliver', 'notify', 'direct')));
    assert.deepEqual({ from: notify!.attrs.from, to: notify!.attrs.to, id: notify!.attrs.id, type: notify!.attrs.type },
      { from: 'localhost', to: 'romeo@localhost/deliver', id: 'v1', type: undefined });
    const status = notify!.getChild('amp', NS_AMP)!;
    assert.deepEqual({ ...status.attrs }, { xmlns: NS_AMP, status: 'notify', from: 'romeo@localhost/deliver', to: 'juliet@localhost' });
    assert.deepEqual(ruleAttrs(status), ['deliver notify direct']);
    assert.equal(notify!.getChild('body'), undefined);
    await sync(juliet);
    const [delivered, ...more] = messages(juliet);
    assert.equal(more.length, 0);
    assert.equal(delivered!.getChildText('body'), 'hello', 'notify keeps the default delivery');
    const passedOn = delivered!.getChild('amp', NS_AMP)!;
    assert.deepEqual([passedOn.attrs.from, passedOn.attrs.to], ['romeo@localhost/deliver', 'juliet@localhost'], 'section 5.1: the original sender and recipient');

    const [alert] = await send(romeo, withRules('juliet@localhost', 'v2', rule('deliver', 'alert', 'direct')));
    assert.equal(alert!.getChild('amp', NS_AMP)!.attrs.status, 'alert');
    assert.deepEqual(await send(romeo, withRules('juliet@localhost', 'v3', rule('deliver', 'alert', 'stored'))), [], 'not met: she is online');
    await sync(juliet);
    assert.deepEqual(messages(juliet).map((m) => m.attrs.id), ['v3'], 'an alert replaces the delivery');

    juliet.send("<presence type='unavailable'/>");
    await sync(juliet);
    assert.equal((await send(romeo, withRules('juliet@localhost', 'v4', rule('deliver', 'alert', 'stored'))))[0]!.getChild('amp', NS_AMP)!.attrs.status, 'alert');
    // The transient message of section 6.3: never stored.
    assert.deepEqual(await send(romeo, withRules('juliet@localhost', 'v5', rule('deliver', 'drop', 'stored'))), []);
    const [stored] = await send(romeo, withRules('juliet@localhost', 'v6', rule('deliver', 'notify', 'stored')));
    assert.equal(stored!.getChild('amp', NS_AMP)!.attrs.status, 'notify');
    // Without a body the message would not be stored: 'none'.
    const [failed, ...noBounce] = await send(romeo, withRules('juliet@localhost', 'v7', rule('deliver', 'alert', 'stored') + rule('deliver', 'error', 'none'), { body: '' }));
    assert.equal(noBounce.length, 0, 'the AMP error replaces the service-unavailable bounce');
    assert.equal(failed!.attrs.type, 'error');
    assert.deepEqual({ ...failed!.getChild('amp', NS_AMP)!.attrs }, { xmlns: NS_AMP, status: 'error', from: 'romeo@localhost/deliver', to: 'juliet@localhost' });
    const error = failed!.getChild('error')!;
    assert.deepEqual([error.attrs.type, error.attrs.code], ['modify', '500']);
    assert.ok(error.getChild('undefined-condition', NS_STANZAS));
    assert.deepEqual(ruleAttrs(error.getChild('failed-rules', NS_AMP_ERRORS)), ['deliver error none']);

    const back = await login('juliet', 'back');
    const offline = messages(back);
    assert.deepEqual(offline.map((m) => m.attrs.id), ['v6'], 'only the notified message was stored');
    assert.ok(offline[0]!.getChild('delay', 'urn:xmpp:delay'));
  });

  it('applies expire-at on receipt, and again when a stored message is delivered', async () => {
    const romeo = await login('romeo', 'expire');
    const juliet = await login('juliet', 'expire');
    assert.deepEqual(await send(romeo, withRules('juliet@localhost', 'x1', rule('expire-at', 'drop', past))), []);
    const [expired] = await send(romeo, withRules('juliet@localhost', 'x2', rule('expire-at', 'error', past)));
    assert.deepEqual(ruleAttrs(expired!.getChild('error')!.getChild('failed-rules', NS_AMP_ERRORS)), [`expire-at error ${past}`]);
    assert.deepEqual(await send(romeo, withRules('juliet@localhost', 'x3', rule('expire-at', 'drop', future))), []);
    // Notify keeps processing: the next rule that holds still applies.
    const [notified] = await send(romeo, withRules('juliet@localhost', 'x4', rule('deliver', 'notify', 'direct') + rule('expire-at', 'drop', past)));
    assert.equal(notified!.getChild('amp', NS_AMP)!.attrs.status, 'notify');
    await sync(juliet);
    assert.deepEqual(messages(juliet).map((m) => m.attrs.id), ['x3']);

    juliet.send("<presence type='unavailable'/>");
    await sync(juliet);
    const soon = new Date(Date.now() + 1000).toISOString();
    assert.deepEqual(await send(romeo, withRules('juliet@localhost', 'x5', rule('expire-at', 'alert', soon))), [], 'stored: not expired yet');
    assert.deepEqual(await send(romeo, withRules('juliet@localhost', 'x6', rule('expire-at', 'notify', soon))), []);
    assert.deepEqual(await send(romeo, withRules('juliet@localhost', 'x7', rule('expire-at', 'drop', future))), []);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const back = await login('juliet', 'later');
    assert.deepEqual(messages(back).map((m) => m.attrs.id), ['x6', 'x7'], 'the expired message with alert is not delivered');
    await sync(romeo);
    const events = messages(romeo);
    assert.deepEqual(events.map((m) => [m.attrs.id, m.getChild('amp', NS_AMP)?.attrs.status]), [['x5', 'alert'], ['x6', 'notify']]);
    assert.deepEqual({ ...events[0]!.getChild('amp', NS_AMP)!.attrs }, { xmlns: NS_AMP, status: 'alert', from: 'romeo@localhost/expire', to: 'juliet@localhost' });
  });

  it('applies match-resource against where the message would go (section 3.7.3)', async () => {
    const romeo = await login('romeo', 'match');
    const juliet = await login('juliet', 'balcony2');
    // The reliable transport example of section 6.1: the intended resource is gone.
    const [failed] = await send(romeo, withRules('juliet@localhost/garden', 'r1', rule('match-resource', 'error', 'other')));
    assert.deepEqual(ruleAttrs(failed!.getChild('error')!.getChild('failed-rules', NS_AMP_ERRORS)), ['match-resource error other']);
    assert.equal(failed!.getChild('amp', NS_AMP)!.attrs.to, 'juliet@localhost/garden');
    const [alert] = await send(romeo, withRules('juliet@localhost/balcony2', 'r2', rule('match-resource', 'alert', 'exact')));
    assert.equal(alert!.getChild('amp', NS_AMP)!.attrs.status, 'alert');
    assert.deepEqual(await send(romeo, withRules('juliet@localhost', 'r3', rule('match-resource', 'alert', 'exact'))), [], 'a bare JID only matches exactly offline storage');
    const [any] = await send(romeo, withRules('juliet@localhost', 'r4', rule('match-resource', 'notify', 'any')));
    assert.equal(any!.getChild('amp', NS_AMP)!.attrs.status, 'notify');
    assert.deepEqual(await send(romeo, withRules('juliet@localhost/balcony2', 'r5', rule('match-resource', 'drop', 'exact'), { ampAttrs: " per-hop='true'" })), [],
      'a per-hop ruleset ignores match-resource');
    await sync(juliet);
    assert.deepEqual(messages(juliet).map((m) => m.attrs.id), ['r3', 'r4', 'r5']);

    juliet.send("<presence type='unavailable'/>");
    await sync(juliet);
    const [stored] = await send(romeo, withRules('juliet@localhost', 'r6', rule('match-resource', 'alert', 'exact')));
    assert.equal(stored!.getChild('amp', NS_AMP)!.attrs.status, 'alert', 'offline storage is the bare JID itself');
    assert.deepEqual(await send(romeo, withRules('juliet@localhost', 'r7', rule('match-resource', 'alert', 'any'))), [], 'nothing to match while stored');
    assert.deepEqual(messages(await login('juliet', 'again')).map((m) => m.attrs.id), ['r7']);
  });
});
