// PubSub nodes over real sockets (XEP-0060 sections 5 and 8, XEP-0248): creation, configuration,
// default configuration, deletion with notification and redirect, purge, the node quota, disco of
// the service and the node hierarchy, and collections.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import type { RawClient } from './support/raw-client.js';
import type { Element } from '../src/xml/element.js';
import {
  NODE_CONFIG, NS_PUBSUB, SERVICE, assertError, assertResult, asteriskState, connect, form, iq, nextEvent, nodeConfig, owner, pubsub, takeEvents,
} from './support/pubsub.js';

const field = (x: Element | undefined, name: string) =>
  x!.getChildren('field').find((f) => f.attrs.var === name)?.getChildren('value').map((v) => v.text());

describe('PubSub nodes', () => {
  let t: TestServer;
  let olga: RawClient;
  let pete: RawClient;
  before(async () => {
    t = await startTestServer();
    for (const user of ['olga', 'pete']) await t.addUser(`${user}@localhost`, 'pw');
    olga = await connect(t, 'olga');
    pete = await connect(t, 'pete');
  });
  after(async () => {
    olga.destroy();
    pete.destroy();
    await t.stop(true);
  });

  it('is announced by the host and describes itself (disco)', async () => {
    const items = await iq(olga, "<query xmlns='http://jabber.org/protocol/disco#items'/>", 'get', 'localhost');
    assert.ok(items.getChild('query')!.getChildren('item').some((i) => i.attrs.jid === SERVICE));
    const info = await iq(olga, "<query xmlns='http://jabber.org/protocol/disco#info'/>", 'get');
    const query = info.getChild('query')!;
    assert.equal(query.getChild('identity')?.attrs.category, 'pubsub');
    assert.equal(query.getChild('identity')?.attrs.type, 'service');
    const features = query.getChildren('feature').map((f) => f.attrs.var);
    for (const f of ['', '#collections', '#create-nodes', '#publish-options', '#subscription-options']) assert.ok(features.includes(NS_PUBSUB + f), f);
  });

  it('creates a named node owned by its creator, and refuses a second one of that name with conflict', async () => {
    assertResult(await iq(olga, pubsub("<create node='news'/>")));
    assertError(await iq(pete, pubsub("<create node='news'/>")), 'conflict', 409);
    const affiliations = await iq(olga, owner("<affiliations node='news'/>"), 'get');
    assert.deepEqual(affiliations.getChild('pubsub')!.getChild('affiliations')!.getChildren('affiliation').map((a) => [a.attrs.jid, a.attrs.affiliation]),
      [['olga@localhost', 'owner']]);
  });

  it('creates an instant node and names it in the result', async () => {
    const reply = await iq(olga, pubsub('<create/>'));
    assertResult(reply);
    const name = reply.getChild('pubsub')?.getChild('create')?.attrs.node;
    assert.ok(name, String(reply));
    const info = await iq(olga, `<query xmlns='http://jabber.org/protocol/disco#info' node='${name}'/>`, 'get');
    assert.equal(info.getChild('query')!.getChild('identity')!.attrs.type, 'leaf');
  });

  it('creates and configures at once; the configuration form comes back for owners only', async () => {
    assertResult(await iq(olga, pubsub(`<create node='configured'/><configure>${nodeConfig({ 'pubsub#title': 'Configured', 'pubsub#max_items': '5', 'pubsub#access_model': 'whitelist' })}</configure>`)));
    const reply = await iq(olga, owner("<configure node='configured'/>"), 'get');
    const x = reply.getChild('pubsub')!.getChild('configure')!.getChild('x')!;
    assert.deepEqual(field(x, 'FORM_TYPE'), [NODE_CONFIG]);
    assert.deepEqual(field(x, 'pubsub#title'), ['Configured']);
    assert.deepEqual(field(x, 'pubsub#max_items'), ['5']);
    assert.deepEqual(field(x, 'pubsub#access_model'), ['whitelist']);
    assertError(await iq(pete, owner("<configure node='configured'/>"), 'get'), 'forbidden', 403);
  });

  it('accepts a configuration form with two FORM_TYPE fields, as Asterisk sends it (COMPAT)', async () => {
    const x = "<x xmlns='jabber:x:data' type='submit'>"
      + "<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#owner</value></field>"
      + "<field var='pubsub#node_type'><value>leaf</value></field>"
      + `<field var='FORM_TYPE' type='hidden'><value>${NODE_CONFIG}</value></field>`
      + "<field var='pubsub#deliver_payloads'><value>1</value></field><field var='pubsub#persist_items'><value>1</value></field>"
      + "<field var='pubsub#access_model'><value>whitelist</value></field></x>";
    assertResult(await iq(olga, pubsub(`<create node='Custom:twoforms'/><configure>${x}</configure>`)));
  });

  it('changes a configuration and tells subscribers when notify_config is on', async () => {
    assertResult(await iq(olga, pubsub(`<create node='changing'/><configure>${nodeConfig({ 'pubsub#notify_config': '1' })}</configure>`)));
    assertResult(await iq(pete, pubsub("<subscribe node='changing' jid='pete@localhost'/>")));
    assertResult(await iq(olga, owner(`<configure node='changing'>${nodeConfig({ 'pubsub#title': 'Changed' })}</configure>`)));
    const event = await nextEvent(pete, (e) => !!e.getChild('configuration'));
    assert.deepEqual(field(event.getChild('event')!.getChild('configuration')!.getChild('x'), 'pubsub#title'), ['Changed']);
  });

  it('refuses invalid configurations: a bad value (not-acceptable), a form that is not one (bad-request), a node type change', async () => {
    assertResult(await iq(olga, pubsub("<create node='strict'/>")));
    assertError(await iq(olga, owner(`<configure node='strict'>${nodeConfig({ 'pubsub#access_model': 'everyone' })}</configure>`)), 'not-acceptable', 406, 'invalid-options');
    assertError(await iq(olga, owner(`<configure node='strict'>${nodeConfig({ 'pubsub#max_items': 'lots' })}</configure>`)), 'not-acceptable', 406);
    assertError(await iq(olga, owner("<configure node='strict'><x xmlns='jabber:x:data' type='form'/></configure>")), 'bad-request', 400);
    assertError(await iq(olga, owner(`<configure node='strict'>${form('urn:other', { a: 'b' })}</configure>`)), 'bad-request', 400);
    assertError(await iq(olga, owner(`<configure node='strict'>${nodeConfig({ 'pubsub#node_type': 'collection' })}</configure>`)), 'not-acceptable', 406);
    assertError(await iq(olga, pubsub(`<create node='unknown-type'/><configure>${nodeConfig({ 'pubsub#node_type': 'hypercube' })}</configure>`)), 'not-acceptable', 406);
    assertError(await iq(olga, owner(`<configure node='missing'>${nodeConfig({})}</configure>`)), 'item-not-found', 404);
  });

  it('gives the default configuration of leaves and collections', async () => {
    const reply = await iq(olga, owner('<default/>'), 'get');
    const x = reply.getChild('pubsub')!.getChild('default')!.getChild('x')!;
    assert.deepEqual(field(x, 'pubsub#node_type'), ['leaf']);
    assert.deepEqual(field(x, 'pubsub#persist_items'), ['1']);
  });

  it('deletes a node, telling its subscribers with the redirect; only owners may', async () => {
    assertResult(await iq(olga, pubsub("<create node='doomed'/>")));
    assertResult(await iq(pete, pubsub("<subscribe node='doomed' jid='pete@localhost'/>")));
    assertError(await iq(pete, owner("<delete node='doomed'/>")), 'forbidden', 403);
    assertResult(await iq(olga, owner("<delete node='doomed'><redirect uri='xmpp:pubsub.localhost?;node=news'/></delete>")));
    const event = await nextEvent(pete, (e) => !!e.getChild('delete'));
    assert.equal(event.getChild('event')!.getChild('delete')!.getChild('redirect')!.attrs.uri, 'xmpp:pubsub.localhost?;node=news');
    assertError(await iq(pete, pubsub("<subscribe node='doomed' jid='pete@localhost'/>")), 'item-not-found', 404);
  });

  it('purges the items of a node and tells subscribers', async () => {
    assertResult(await iq(olga, pubsub("<create node='purgeable'/>")));
    assertResult(await iq(pete, pubsub("<subscribe node='purgeable' jid='pete@localhost'/>")));
    assertResult(await iq(olga, pubsub("<publish node='purgeable'><item id='1'><entry xmlns='urn:test'>one</entry></item></publish>")));
    await nextEvent(pete, (e) => !!e.getChild('items'));
    assertResult(await iq(olga, owner("<purge node='purgeable'/>")));
    await nextEvent(pete, (e) => !!e.getChild('purge'));
    const items = await iq(olga, pubsub("<items node='purgeable'/>"), 'get');
    assert.equal(items.getChild('pubsub')!.getChild('items')!.getChildren('item').length, 0);
  });

  it('limits how many nodes an account creates (max-nodes-exceeded), administrators excepted', async () => {
    const limited = await startTestServer({ admins: ['admin@localhost'], pubsub: { 'max-nodes-per-user': 3 } });
    try {
      for (const user of ['quota', 'admin']) await limited.addUser(`${user}@localhost`, 'pw');
      const quota = await connect(limited, 'quota');
      for (const n of [1, 2, 3]) assertResult(await iq(quota, pubsub(`<create node='quota-${n}'/>`)));
      assertResult(await iq(quota, pubsub("<publish node='quota-1'><item id='kept'><entry xmlns='urn:test'/></item></publish>")));
      assertError(await iq(quota, pubsub("<create node='quota-4'/>")), 'not-allowed', 405, 'max-nodes-exceeded');
      const items = await iq(quota, pubsub("<items node='quota-1'/>"), 'get');
      assert.equal(items.getChild('pubsub')!.getChild('items')!.getChildren('item').length, 1, 'what was stored stays');
      quota.destroy();
      const admin = await connect(limited, 'admin');
      for (const n of [1, 2, 3, 4]) assertResult(await iq(admin, pubsub(`<create node='admin-${n}'/>`)));
      admin.destroy();
    } finally {
      await limited.stop(true);
    }
  });

  describe('collections (XEP-0248)', () => {
    it('associates leaves with a collection and browses the hierarchy', async () => {
      assertResult(await iq(olga, pubsub(`<create node='phones'/><configure>${nodeConfig({ 'pubsub#node_type': 'collection' })}</configure>`)));
      assertResult(await iq(olga, pubsub(`<create node='phones/desk'/><configure>${nodeConfig({ 'pubsub#collection': 'phones' })}</configure>`)));
      assertResult(await iq(olga, pubsub(`<create node='phones/lobby'/><configure>${nodeConfig({ 'pubsub#collection': 'phones' })}</configure>`)));
      const top = await iq(olga, "<query xmlns='http://jabber.org/protocol/disco#items'/>", 'get');
      const topNodes = top.getChild('query')!.getChildren('item').map((i) => i.attrs.node);
      assert.ok(topNodes.includes('phones') && !topNodes.includes('phones/desk'), 'leaves of a collection are below it');
      const below = await iq(olga, "<query xmlns='http://jabber.org/protocol/disco#items' node='phones'/>", 'get');
      assert.deepEqual(below.getChild('query')!.getChildren('item').map((i) => i.attrs.node).sort(), ['phones/desk', 'phones/lobby']);
      const info = await iq(olga, "<query xmlns='http://jabber.org/protocol/disco#info' node='phones'/>", 'get');
      assert.equal(info.getChild('query')!.getChild('identity')!.attrs.type, 'collection');
    });

    it('delivers items of the leaves to subscribers of the collection, once each, also two levels down with depth all', async () => {
      assertResult(await iq(olga, pubsub(`<create node='site'/><configure>${nodeConfig({ 'pubsub#node_type': 'collection' })}</configure>`)));
      assertResult(await iq(olga, pubsub(`<create node='site/floor'/><configure>${nodeConfig({ 'pubsub#node_type': 'collection', 'pubsub#collection': 'site' })}</configure>`)));
      assertResult(await iq(olga, pubsub(`<create node='site/floor/desk'/><configure>${nodeConfig({ 'pubsub#collection': 'site/floor' })}</configure>`)));
      const options = (depth: string) => `<options>${form('http://jabber.org/protocol/pubsub#subscribe_options', { 'pubsub#subscription_type': 'items', 'pubsub#subscription_depth': depth })}</options>`;
      assertResult(await iq(pete, pubsub(`<subscribe node='site' jid='pete@localhost'/>${options('all')}`)));
      assertResult(await iq(pete, pubsub(`<subscribe node='site/floor' jid='pete@localhost'/>${options('1')}`)));
      takeEvents(pete);
      assertResult(await iq(olga, pubsub(`<publish node='site/floor/desk'><item id='d1'>${asteriskState('INUSE')}</item></publish>`)));
      const event = await nextEvent(pete, (e) => !!e.getChild('items'));
      assert.equal(event.getChild('event')!.getChild('items')!.attrs.node, 'site/floor/desk');
      const headers = event.getChild('headers')?.getChildren('header') ?? [];
      assert.equal(headers.length, 2, 'one message naming both subscriptions (SHIM SubID)');
      await pete.expectNothing((s) => s.name === 'message' && !!s.getChild('event'));
    });

    it('does not deliver beyond depth 1 unless asked', async () => {
      assertResult(await iq(olga, pubsub(`<create node='shallow'/><configure>${nodeConfig({ 'pubsub#node_type': 'collection' })}</configure>`)));
      assertResult(await iq(olga, pubsub(`<create node='shallow/mid'/><configure>${nodeConfig({ 'pubsub#node_type': 'collection', 'pubsub#collection': 'shallow' })}</configure>`)));
      assertResult(await iq(olga, pubsub(`<create node='shallow/mid/leaf'/><configure>${nodeConfig({ 'pubsub#collection': 'shallow/mid' })}</configure>`)));
      assertResult(await iq(pete, pubsub("<subscribe node='shallow' jid='pete@localhost'/>")));
      takeEvents(pete);
      assertResult(await iq(olga, pubsub(`<publish node='shallow/mid/leaf'><item>${asteriskState('BUSY')}</item></publish>`)));
      await pete.expectNothing((s) => s.name === 'message' && !!s.getChild('event')?.getChild('items'));
    });

    it('tells subscribers of type nodes about new children', async () => {
      assertResult(await iq(olga, pubsub(`<create node='watched'/><configure>${nodeConfig({ 'pubsub#node_type': 'collection' })}</configure>`)));
      assertResult(await iq(pete, pubsub(`<subscribe node='watched' jid='pete@localhost'/><options>${form('http://jabber.org/protocol/pubsub#subscribe_options', { 'pubsub#subscription_type': 'nodes' })}</options>`)));
      assertResult(await iq(olga, pubsub(`<create node='watched/new'/><configure>${nodeConfig({ 'pubsub#collection': 'watched' })}</configure>`)));
      const event = await nextEvent(pete, (e) => !!e.getChild('collection'));
      assert.equal(event.getChild('event')!.getChild('collection')!.getChild('associate')!.attrs.node, 'watched/new');
    });

    it('refuses to publish to a collection, to join a leaf or a missing collection, and to nest a node in itself', async () => {
      assertError(await iq(olga, pubsub(`<publish node='phones'><item>${asteriskState('INUSE')}</item></publish>`)), 'feature-not-implemented', 501, 'unsupported');
      assertError(await iq(olga, pubsub(`<create node='orphan'/><configure>${nodeConfig({ 'pubsub#collection': 'no-such-collection' })}</configure>`)), 'item-not-found', 404);
      assertError(await iq(olga, pubsub(`<create node='under-leaf'/><configure>${nodeConfig({ 'pubsub#collection': 'news' })}</configure>`)), 'not-allowed', 405);
      assertError(await iq(olga, owner(`<configure node='phones'>${nodeConfig({ 'pubsub#collection': 'phones' })}</configure>`)), 'not-acceptable', 406);
    });

    it('deleting a collection leaves its children at the top', async () => {
      assertResult(await iq(olga, pubsub(`<create node='temporary'/><configure>${nodeConfig({ 'pubsub#node_type': 'collection' })}</configure>`)));
      assertResult(await iq(olga, pubsub(`<create node='temporary/child'/><configure>${nodeConfig({ 'pubsub#collection': 'temporary' })}</configure>`)));
      assertResult(await iq(olga, owner("<delete node='temporary'/>")));
      const top = await iq(olga, "<query xmlns='http://jabber.org/protocol/disco#items'/>", 'get');
      assert.ok(top.getChild('query')!.getChildren('item').some((i) => i.attrs.node === 'temporary/child'));
    });
  });
});
