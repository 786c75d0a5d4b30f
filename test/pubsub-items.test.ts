// PubSub items over real sockets (XEP-0060 sections 6.5, 7.1, 7.2): publishing with client and
// server ids, replacement, retrieval (all, max_items, by id), retraction with notification,
// publish-options preconditions, payload checks, publish models, send_last_published_item, and
// the Asterisk payload validation that applies under device_state and message_waiting only.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import type { RawClient } from './support/raw-client.js';
import {
  assertError, assertResult, asteriskState, connect, form, iq, nextEvent, nodeConfig, owner, pubsub, takeEvents,
} from './support/pubsub.js';

const PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';
const entry = (text: string) => `<entry xmlns='urn:test'>${text}</entry>`;

describe('PubSub items', () => {
  let t: TestServer;
  let olga: RawClient;
  let pete: RawClient;
  before(async () => {
    t = await startTestServer({ pubsub: { 'max-item-size': 1024 } });
    for (const user of ['olga', 'pete', 'rita']) await t.addUser(`${user}@localhost`, 'pw');
    olga = await connect(t, 'olga');
    pete = await connect(t, 'pete');
    assertResult(await iq(olga, pubsub(`<create node='blog'/><configure>${nodeConfig({ 'pubsub#max_items': '3' })}</configure>`)));
    assertResult(await iq(pete, pubsub("<subscribe node='blog' jid='pete@localhost'/>")));
  });
  after(async () => {
    olga.destroy();
    pete.destroy();
    await t.stop(true);
  });

  const itemIds = async (client: RawClient, query: string) => {
    const reply = await iq(client, pubsub(query), 'get');
    assertResult(reply);
    return reply.getChild('pubsub')!.getChild('items')!.getChildren('item').map((i) => i.attrs.id);
  };

  it('publishes with the id given, notifies subscribers from the service with the payload, and generates ids', async () => {
    const reply = await iq(olga, pubsub(`<publish node='blog'><item id='first'>${entry('one')}</item></publish>`));
    assert.equal(reply.getChild('pubsub')!.getChild('publish')!.getChild('item')!.attrs.id, 'first');
    const event = await nextEvent(pete);
    assert.equal(event.attrs.from, 'pubsub.localhost');
    const item = event.getChild('event')!.getChild('items')!.getChild('item')!;
    assert.equal(item.attrs.id, 'first');
    assert.equal(item.attrs.publisher, 'olga@localhost');
    assert.equal(String(item.firstElement()), entry('one'));
    const generated = await iq(olga, pubsub(`<publish node='blog'><item>${entry('two')}</item></publish>`));
    assert.ok(generated.getChild('pubsub')!.getChild('publish')!.getChild('item')!.attrs.id);
    await nextEvent(pete);
  });

  it('replaces an item with the same id, which becomes the newest, and keeps at most max_items', async () => {
    for (const id of ['a', 'b', 'first']) assertResult(await iq(olga, pubsub(`<publish node='blog'><item id='${id}'>${entry(id)}</item></publish>`)));
    assert.deepEqual(await itemIds(olga, "<items node='blog'/>"), ['first', 'b', 'a']);
    assert.deepEqual(await itemIds(olga, "<items node='blog' max_items='2'/>"), ['first', 'b']);
    assert.deepEqual(await itemIds(pete, "<items node='blog'><item id='a'/><item id='gone'/></items>"), ['a']);
    takeEvents(pete);
  });

  it('retracts items, notifying subscribers when asked; only publishers and owners may', async () => {
    assertError(await iq(pete, pubsub("<retract node='blog'><item id='a'/></retract>")), 'forbidden', 403);
    assertResult(await iq(olga, pubsub("<retract node='blog' notify='true'><item id='a'/></retract>")));
    const event = await nextEvent(pete, (e) => !!e.getChild('items')?.getChild('retract'));
    assert.equal(event.getChild('event')!.getChild('items')!.getChild('retract')!.attrs.id, 'a');
    assertError(await iq(olga, pubsub("<retract node='blog'><item id='a'/></retract>")), 'item-not-found', 404);
    assertError(await iq(olga, pubsub("<retract node='blog'/>")), 'bad-request', 400, 'item-required');
  });

  it('retracts several items in one request (XEP-0060 schema: one or more items), all or none, in one notification', async () => {
    assertResult(await iq(olga, pubsub(`<create node='multi'/><configure>${nodeConfig({ 'pubsub#max_items': '10' })}</configure>`)));
    assertResult(await iq(pete, pubsub("<subscribe node='multi' jid='pete@localhost'/>")));
    for (const id of ['x1', 'x2', 'x3', 'x4']) assertResult(await iq(olga, pubsub(`<publish node='multi'><item id='${id}'>${entry(id)}</item></publish>`)));
    takeEvents(pete);
    assertResult(await iq(olga, pubsub("<retract node='multi'><item id='x1'/><item id='x2'/></retract>")));
    const event = await nextEvent(pete, (e) => !!e.getChild('items')?.getChild('retract'));
    assert.deepEqual(event.getChild('event')!.getChild('items')!.getChildren('retract').map((r) => r.attrs.id), ['x1', 'x2']);
    // One missing item, or one the requester may not retract: nothing is retracted.
    assertError(await iq(olga, pubsub("<retract node='multi'><item id='x3'/><item id='gone'/></retract>")), 'item-not-found', 404);
    assertError(await iq(pete, pubsub("<retract node='multi'><item id='x3'/><item id='x4'/></retract>")), 'forbidden', 403);
    assertError(await iq(olga, pubsub("<retract node='multi'><item id='x3'/><item/></retract>")), 'bad-request', 400, 'item-required');
    assert.deepEqual(await itemIds(olga, "<items node='multi'/>"), ['x4', 'x3']);
  });

  it('trims the stored items at once when the configuration lowers max_items', async () => {
    assertResult(await iq(olga, pubsub(`<create node='trim'/><configure>${nodeConfig({ 'pubsub#max_items': '5' })}</configure>`)));
    for (const id of ['t1', 't2', 't3', 't4', 't5']) assertResult(await iq(olga, pubsub(`<publish node='trim'><item id='${id}'>${entry(id)}</item></publish>`)));
    assertResult(await iq(olga, owner(`<configure node='trim'>${nodeConfig({ 'pubsub#max_items': '2' })}</configure>`)));
    assert.deepEqual(await itemIds(olga, "<items node='trim'/>"), ['t5', 't4']);
    assertResult(await iq(olga, owner(`<configure node='trim'>${nodeConfig({ 'pubsub#max_items': '4' })}</configure>`)));
    assertResult(await iq(olga, pubsub(`<publish node='trim'><item id='t6'>${entry('t6')}</item></publish>`)));
    assert.deepEqual(await itemIds(olga, "<items node='trim'/>"), ['t6', 't5', 't4'], 'what was trimmed stays gone');
  });

  it('drops items older than pubsub#item_expire', async () => {
    assertResult(await iq(olga, pubsub(`<create node='expiring'/><configure>${nodeConfig({ 'pubsub#item_expire': '1' })}</configure>`)));
    assertResult(await iq(olga, pubsub(`<create node='lasting'/><configure>${nodeConfig({ 'pubsub#item_expire': '3600' })}</configure>`)));
    assertResult(await iq(olga, pubsub(`<publish node='expiring'><item id='e1'>${entry('e1')}</item></publish>`)));
    assertResult(await iq(olga, pubsub(`<publish node='lasting'><item id='l1'>${entry('l1')}</item></publish>`)));
    assertError(await iq(olga, pubsub(`<create node='bad-expiry'/><configure>${nodeConfig({ 'pubsub#item_expire': 'soon' })}</configure>`)), 'not-acceptable', 406, 'invalid-options');
    // Expiry only ever goes one way, so waiting longer than needed cannot make this fail.
    for (const deadline = Date.now() + 15_000; (await itemIds(olga, "<items node='expiring'/>")).length > 0;) {
      assert.ok(Date.now() < deadline, 'the item expired');
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.deepEqual(await itemIds(olga, "<items node='lasting'/>"), ['l1']);
  });

  it('refuses publishers the node does not allow, and nodes that do not exist', async () => {
    assertError(await iq(pete, pubsub(`<publish node='blog'><item>${entry('x')}</item></publish>`)), 'forbidden', 403);
    assertResult(await iq(olga, owner("<affiliations node='blog'><affiliation jid='pete@localhost/any' affiliation='publisher'/></affiliations>")));
    assertResult(await iq(pete, pubsub(`<publish node='blog'><item id='by-pete'>${entry('x')}</item></publish>`)));
    assertError(await iq(pete, pubsub(`<publish node='nowhere'><item>${entry('x')}</item></publish>`)), 'item-not-found', 404);
    takeEvents(pete);
  });

  it('checks payloads: one element, the node type, the size limit', async () => {
    assertError(await iq(olga, pubsub(`<publish node='blog'><item>${entry('1')}${entry('2')}</item></publish>`)), 'bad-request', 400, 'invalid-payload');
    assertError(await iq(olga, pubsub("<publish node='blog'><item id='empty'/></publish>")), 'bad-request', 400, 'payload-required');
    assertError(await iq(olga, pubsub(`<publish node='blog'><item>${entry('x'.repeat(2000))}</item></publish>`)), 'not-acceptable', 406, 'payload-too-big');
    assertResult(await iq(olga, pubsub(`<create node='typed'/><configure>${nodeConfig({ 'pubsub#type': 'urn:typed' })}</configure>`)));
    assertError(await iq(olga, pubsub(`<publish node='typed'><item>${entry('x')}</item></publish>`)), 'bad-request', 400, 'invalid-payload');
    assertResult(await iq(olga, pubsub("<publish node='typed'><item><t xmlns='urn:typed'/></item></publish>")));
  });

  it('treats publish-options as preconditions (conflict when unmet)', async () => {
    const options = (fields: Record<string, string>) => `<publish-options>${form(PUBLISH_OPTIONS, fields)}</publish-options>`;
    assertResult(await iq(olga, pubsub(`<publish node='blog'><item id='pre'>${entry('ok')}</item></publish>${options({ 'pubsub#access_model': 'open' })}`)));
    assertError(await iq(olga, pubsub(`<publish node='blog'><item>${entry('no')}</item></publish>${options({ 'pubsub#access_model': 'whitelist' })}`)),
      'conflict', 409, 'precondition-not-met');
    takeEvents(pete);
  });

  it('takes pubsub#persist_items=0 as an option of the item, as Asterisk means it: delivered, not stored (COMPAT)', async () => {
    assertResult(await iq(olga, pubsub(`<publish node='blog'><item id='transient'>${entry('stored')}</item></publish>`)));
    const reply = await iq(olga, pubsub(`<publish node='blog'><item id='transient'>${entry('not stored')}</item></publish>`
      + `<publish-options>${form(PUBLISH_OPTIONS, { 'pubsub#persist_items': '0' })}</publish-options>`));
    assertResult(reply);
    const events = [await nextEvent(pete), await nextEvent(pete)];
    assert.equal(events[1]!.getChild('event')!.getChild('items')!.getChild('item')!.firstElement()!.text(), 'not stored');
    assert.deepEqual(await itemIds(olga, "<items node='blog'><item id='transient'/></items>"), [], 'the older stored item is not kept either');
  });

  it('sends the last published item to a new subscriber when configured to', async () => {
    assertResult(await iq(olga, pubsub(`<create node='status'/><configure>${nodeConfig({ 'pubsub#send_last_published_item': 'on_sub' })}</configure>`)));
    assertResult(await iq(olga, pubsub(`<publish node='status'><item id='old'>${entry('old')}</item></publish>`)));
    assertResult(await iq(olga, pubsub(`<publish node='status'><item id='now'>${entry('now')}</item></publish>`)));
    const reply = await iq(pete, pubsub("<subscribe node='status' jid='pete@localhost'/>"));
    assertResult(reply);
    const event = await nextEvent(pete, (e) => e.getChild('items')?.attrs.node === 'status');
    assert.equal(event.getChild('event')!.getChild('items')!.getChild('item')!.attrs.id, 'now');
    await pete.expectNothing((s) => s.getChild('event')?.getChild('items')?.attrs.node === 'status');
    const subscribedIndex = pete.received.indexOf(`id='${reply.attrs.id}'`);
    assert.ok(subscribedIndex >= 0 && subscribedIndex < pete.received.lastIndexOf("id='now'"), 'the result comes before the last item');
  });

  it('sends the last published item again when a subscriber comes online, with on_sub_and_presence', async () => {
    assertResult(await iq(olga, pubsub(`<create node='presence-too'/><configure>${nodeConfig({ 'pubsub#send_last_published_item': 'on_sub_and_presence' })}</configure>`)));
    assertResult(await iq(olga, pubsub(`<publish node='presence-too'><item id='latest'>${entry('latest')}</item></publish>`)));
    const rita = await connect(t, 'rita', 'desk', false);
    assertResult(await iq(rita, pubsub("<subscribe node='presence-too' jid='rita@localhost'/>")));
    await nextEvent(rita, (e) => e.getChild('items')?.attrs.node === 'presence-too');
    rita.destroy();
    const again = await connect(t, 'rita', 'phone');
    const event = await nextEvent(again, (e) => e.getChild('items')?.attrs.node === 'presence-too');
    assert.equal(event.getChild('event')!.getChild('items')!.getChild('item')!.attrs.id, 'latest');
    again.destroy();
  });

  describe('Asterisk payloads under device_state and message_waiting (COMPAT)', () => {
    it('refuses a state without eid or with an unknown state, a mailbox without counts or with a bare id', async () => {
      const bad = [
        ['device_state', "<item id='d'><state xmlns='http://asterisk.org' cachable='1'>INUSE</state></item>"],
        ['device_state', "<item id='d'><state xmlns='http://asterisk.org' eid='00:11:22:33:44:55'>ON_FIRE</state></item>"],
        ['device_state', "<item id='d'><state xmlns='http://asterisk.org' eid='00:11:22:33:44:55'></state></item>"],
        ['device_state', "<item id='d'><STATE xmlns='http://asterisk.org' eid='00:11:22:33:44:55'>INUSE</STATE></item>"],
        ['device_state', "<item id='d'><state xmlns='urn:elsewhere'>INUSE</state></item>"],
        ['device_state', "<item id='d'/>"],
        ['message_waiting', "<item id='1@default'><mailbox xmlns='http://asterisk.org' eid='00:11:22:33:44:55'><NEWMSGS>1</NEWMSGS></mailbox></item>"],
        ['message_waiting', "<item id='1@default'><mailbox xmlns='http://asterisk.org' eid='00:11:22:33:44:55'><NEWMSGS>x</NEWMSGS><OLDMSGS>1</OLDMSGS></mailbox></item>"],
        ['message_waiting', "<item id='1'><mailbox xmlns='http://asterisk.org' eid='00:11:22:33:44:55'><NEWMSGS>1</NEWMSGS><OLDMSGS>1</OLDMSGS></mailbox></item>"],
      ];
      assertResult(await iq(pete, pubsub("<subscribe node='device_state' jid='pete@localhost'/>")));
      assertResult(await iq(pete, pubsub("<subscribe node='message_waiting' jid='pete@localhost'/>")));
      for (const [node, item] of bad) assertError(await iq(olga, pubsub(`<publish node='${node}'>${item}</publish>`)), 'bad-request', 400);
      await pete.expectNothing((s) => s.name === 'message' && !!s.getChild('event'));
      assertResult(await iq(olga, pubsub(`<publish node='device_state'><item id='Custom:ok'>${asteriskState('RINGING')}</item></publish>`)));
      assertResult(await iq(olga, pubsub("<publish node='device_state'><item id='other'><note xmlns='urn:other'/></item></publish>")));
      assert.equal((await nextEvent(pete)).getChild('event')!.getChild('items')!.getChild('item')!.attrs.id, 'Custom:ok');
    });

    it('creates no leaf under a flat device_state node (servers of one cluster in different modes)', async () => {
      assertError(await iq(olga, pubsub(`<publish node='Custom:leaf'><item id='Custom:leaf'>${asteriskState('INUSE')}</item></publish>`)), 'item-not-found', 404);
    });

    it('creates no node for a refused item', async () => {
      const fresh = await startTestServer();
      try {
        await fresh.addUser('olga@localhost', 'pw');
        const client = await connect(fresh, 'olga');
        assertError(await iq(client, pubsub("<publish node='Custom:never'><item id='Custom:never'><state xmlns='http://asterisk.org'>INUSE</state></item></publish>")), 'bad-request', 400);
        for (const node of ['Custom:never', 'device_state']) {
          assertError(await iq(client, `<query xmlns='http://jabber.org/protocol/disco#info' node='${node}'/>`, 'get'), 'item-not-found', 404);
        }
        client.destroy();
      } finally {
        await fresh.stop(true);
      }
    });

    it('leaves other nodes alone', async () => {
      assertResult(await iq(olga, pubsub("<publish node='blog'><item id='s'><state xmlns='http://asterisk.org'>whatever</state></item></publish>")));
      takeEvents(pete);
    });
  });
});
