// What an admin can switch: the Asterisk rules as a whole, per service, and the service address.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildConfig, startTestServer, type TestServer } from './support/server.js';
import { assertError, assertResult, connect, iq, pubsub } from './support/pubsub.js';

async function withServer(overrides: Record<string, unknown>, run: (t: TestServer) => Promise<void>): Promise<void> {
  const t = await startTestServer(overrides);
  try {
    await t.addUser('olga@localhost', 'pw');
    await run(t);
  } finally {
    await t.stop(true);
  }
}

const stateWithoutEid = "<item id='d'><state xmlns='http://asterisk.org'>INUSE</state></item>";

describe('PubSub configuration', () => {
  it('without the Asterisk rules is plain XEP-0060: no autocreate, no payload checks', () => withServer({ pubsub: { asterisk: { enabled: false } } }, async (t) => {
    const olga = await connect(t, 'olga');
    assertError(await iq(olga, pubsub("<subscribe node='device_state' jid='olga@localhost'/>")), 'item-not-found', 404);
    assertResult(await iq(olga, pubsub("<create node='device_state'/>")));
    assertResult(await iq(olga, pubsub(`<publish node='device_state'>${stateWithoutEid}</publish>`)));
    assertError(await iq(olga, pubsub("<subscribe node='device_state' jid='olga@localhost'/>") + "<error code='404'/>"), 'bad-request', 400);
    olga.destroy();
  }));

  it('takes per-service settings over the general ones', () => withServer({ pubsub: { services: { 'pubsub.localhost': { asterisk: { autocreate: false } } } } }, async (t) => {
    const olga = await connect(t, 'olga');
    assertError(await iq(olga, pubsub("<subscribe node='message_waiting' jid='olga@localhost'/>")), 'item-not-found', 404);
    assertResult(await iq(olga, pubsub("<create node='device_state'/>")));
    assertError(await iq(olga, pubsub(`<publish node='device_state'>${stateWithoutEid}</publish>`)), 'bad-request', 400, 'invalid-payload');
    olga.destroy();
  }));

  it('lets only administrators create nodes with node-creation: admins; Asterisk autocreate still works', () => withServer({ admins: ['root@localhost'], pubsub: { 'node-creation': 'admins' } }, async (t) => {
    await t.addUser('root@localhost', 'pw');
    const olga = await connect(t, 'olga');
    const root = await connect(t, 'root');
    assertError(await iq(olga, pubsub("<create node='mine'/>")), 'forbidden', 403);
    assertError(await iq(olga, pubsub('<create/>')), 'forbidden', 403);
    assertResult(await iq(root, pubsub("<create node='mine'/>")));
    assertResult(await iq(olga, pubsub("<subscribe node='device_state' jid='olga@localhost'/>")));
    olga.destroy();
    root.destroy();
  }));

  it('serves each virtual host at the address given', () => withServer({ 'virtual-hosts': ['localhost', 'example.test'], pubsub: { address: 'events.{host}' } }, async (t) => {
    const olga = await connect(t, 'olga');
    const items = await iq(olga, "<query xmlns='http://jabber.org/protocol/disco#items'/>", 'get', 'localhost');
    assert.ok(items.getChild('query')!.getChildren('item').some((i) => i.attrs.jid === 'events.localhost'));
    assertResult(await iq(olga, "<query xmlns='http://jabber.org/protocol/disco#info'/>", 'get', 'events.example.test'));
    olga.destroy();
  }));

  it('refuses an address without {host}', () => {
    assert.throws(() => buildConfig({ pubsub: { address: 'pubsub.example.com' } }), /must contain \{host\}/);
  });
});
