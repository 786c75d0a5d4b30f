// PubSub state survives a restart, on every storage backend (SQLite always, PostgreSQL when
// SWITCHBOARD_TEST_PG_URL is set): nodes with their configuration and place in collections,
// affiliations, subscriptions with their options, and items. Subscriptions that were to end
// with the subscriber's presence end with the restart, since every session ended.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { backends } from './support/postgres.js';
import {
  assertResult, asteriskState, connect, form, iq, nextEvent, nodeConfig, owner, pubsub,
} from './support/pubsub.js';

for (const backend of backends()) {
  describe(`PubSub across a restart (${backend.name})`, () => {
    after(() => backend.cleanup());

    it('keeps nodes, configuration, collections, affiliations, subscriptions and items', async () => {
      let t: TestServer = await startTestServer({ storage: await backend.storage() });
      try {
        for (const user of ['olga', 'pete', 'rita']) await t.addUser(`${user}@localhost`, 'pw');
        let olga = await connect(t, 'olga');
        const pete = await connect(t, 'pete');
        const rita = await connect(t, 'rita');
        assertResult(await iq(olga, pubsub(`<create node='building'/><configure>${nodeConfig({ 'pubsub#node_type': 'collection', 'pubsub#title': 'Building' })}</configure>`)));
        assertResult(await iq(olga, pubsub(`<create node='building/desk'/><configure>${nodeConfig({ 'pubsub#collection': 'building', 'pubsub#max_items': '7', 'pubsub#access_model': 'whitelist' })}</configure>`)));
        assertResult(await iq(olga, owner("<affiliations node='building/desk'><affiliation jid='pete@localhost' affiliation='publisher'/></affiliations>")));
        assertResult(await iq(pete, pubsub("<subscribe node='building' jid='pete@localhost'/>")));
        assertResult(await iq(rita, pubsub(`<subscribe node='building' jid='rita@localhost'/><options>${form('http://jabber.org/protocol/pubsub#subscribe_options', { 'pubsub#expire': 'presence' })}</options>`)));
        for (const [id, state] of [['a', 'INUSE'], ['b', 'BUSY']]) assertResult(await iq(olga, pubsub(`<publish node='building/desk'><item id='${id}'>${asteriskState(state!)}</item></publish>`)));
        for (const c of [olga, pete, rita]) c.destroy();

        t = await t.restart();
        olga = await connect(t, 'olga');
        const peteAgain = await connect(t, 'pete', 'again');
        const configure = await iq(olga, owner("<configure node='building/desk'/>"), 'get');
        const fields = configure.getChild('pubsub')!.getChild('configure')!.getChild('x')!.getChildren('field');
        const value = (name: string) => fields.find((f) => f.attrs.var === name)!.getChildren('value').map((v) => v.text());
        assert.deepEqual(value('pubsub#max_items'), ['7']);
        assert.deepEqual(value('pubsub#access_model'), ['whitelist']);
        assert.deepEqual(value('pubsub#collection'), ['building']);
        const affiliations = await iq(olga, owner("<affiliations node='building/desk'/>"), 'get');
        assert.deepEqual(affiliations.getChild('pubsub')!.getChild('affiliations')!.getChildren('affiliation').map((a) => `${a.attrs.jid} ${a.attrs.affiliation}`).sort(),
          ['olga@localhost owner', 'pete@localhost publisher']);
        const subscriptions = await iq(olga, owner("<subscriptions node='building'/>"), 'get');
        assert.deepEqual(subscriptions.getChild('pubsub')!.getChild('subscriptions')!.getChildren('subscription').map((s) => s.attrs.jid),
          ['pete@localhost'], "rita's expire=presence subscription ended with the restart");
        const items = await iq(olga, pubsub("<items node='building/desk'/>"), 'get');
        assert.deepEqual(items.getChild('pubsub')!.getChild('items')!.getChildren('item').map((i) => `${i.attrs.id} ${i.firstElement()!.text()}`), ['b BUSY', 'a INUSE']);
        const below = await iq(olga, "<query xmlns='http://jabber.org/protocol/disco#items' node='building'/>", 'get');
        assert.deepEqual(below.getChild('query')!.getChildren('item').map((i) => i.attrs.node), ['building/desk']);

        // The restored hierarchy and subscription deliver, and the restored affiliation lets pete publish.
        assertResult(await iq(peteAgain, pubsub(`<publish node='building/desk'><item id='c'>${asteriskState('RINGING')}</item></publish>`)));
        const event = await nextEvent(peteAgain);
        assert.equal(event.getChild('event')!.getChild('items')!.attrs.node, 'building/desk');
        olga.destroy();
        peteAgain.destroy();
      } finally {
        await t.stop(true);
      }
    });
  });
}
