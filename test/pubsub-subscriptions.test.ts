// PubSub subscriptions over real sockets (XEP-0060 sections 6.1-6.4 and 8.6-8.9): the JID rules,
// access models (presence, roster, whitelist, authorize with owner approval), outcasts, options
// and subids, owner management of subscriptions and affiliations, and subscriptions with
// pubsub#expire=presence, which end when the subscriber goes unavailable, by presence or by a
// bare TCP close as Asterisk does it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import type { RawClient } from './support/raw-client.js';
import {
  NS_PUBSUB, assertError, assertResult, asteriskState, connect, form, iq, nextEvent, nodeConfig, owner, pubsub, takeEvents,
} from './support/pubsub.js';

const SUBSCRIBE_OPTIONS = 'http://jabber.org/protocol/pubsub#subscribe_options';
const entry = (text: string) => `<entry xmlns='urn:test'>${text}</entry>`;

describe('PubSub subscriptions', () => {
  let t: TestServer;
  let olga: RawClient;
  let pete: RawClient;
  before(async () => {
    t = await startTestServer();
    for (const user of ['olga', 'pete', 'rita']) await t.addUser(`${user}@localhost`, 'pw');
    olga = await connect(t, 'olga');
    pete = await connect(t, 'pete');
    assertResult(await iq(olga, pubsub("<create node='open'/>")));
  });
  after(async () => {
    olga.destroy();
    pete.destroy();
    await t.stop(true);
  });

  const subscriptionsOf = async (client: RawClient, node: string) => {
    const reply = await iq(client, owner(`<subscriptions node='${node}'/>`), 'get');
    assertResult(reply);
    return reply.getChild('pubsub')!.getChild('subscriptions')!.getChildren('subscription').map((s) => `${s.attrs.jid} ${s.attrs.subscription}`);
  };

  it('subscribes only the requester\'s own JIDs, bare or full', async () => {
    assertError(await iq(pete, pubsub("<subscribe node='open' jid='olga@localhost'/>")), 'bad-request', 400, 'invalid-jid');
    assertError(await iq(pete, pubsub("<subscribe node='open'/>")), 'bad-request', 400, 'jid-required');
    assertError(await iq(pete, pubsub("<subscribe node='missing' jid='pete@localhost'/>")), 'item-not-found', 404);
    const reply = await iq(pete, pubsub("<subscribe node='open' jid='pete@localhost/r'/>"));
    const subscription = reply.getChild('pubsub')!.getChild('subscription')!;
    assert.equal(subscription.attrs.subscription, 'subscribed');
    assert.ok(subscription.attrs.subid);
    assert.deepEqual(await subscriptionsOf(olga, 'open'), ['pete@localhost/r subscribed']);
  });

  it('lists an entity\'s subscriptions and affiliations', async () => {
    const subs = await iq(pete, pubsub('<subscriptions/>'), 'get');
    assert.deepEqual(subs.getChild('pubsub')!.getChild('subscriptions')!.getChildren('subscription').map((s) => s.attrs.node), ['open']);
    const affs = await iq(olga, pubsub('<affiliations/>'), 'get');
    assert.ok(affs.getChild('pubsub')!.getChild('affiliations')!.getChildren('affiliation').some((a) => a.attrs.node === 'open' && a.attrs.affiliation === 'owner'));
  });

  it('unsubscribes, naming the subscription by subid when there are several', async () => {
    assertResult(await iq(pete, pubsub("<create node='multi'/>")));
    const first = (await iq(olga, pubsub("<subscribe node='multi' jid='olga@localhost'/>"))).getChild('pubsub')!.getChild('subscription')!.attrs.subid!;
    assertError(await iq(olga, pubsub("<unsubscribe node='multi' jid='olga@localhost/elsewhere'/>")), 'unexpected-request', 400, 'not-subscribed');
    assertError(await iq(olga, pubsub("<unsubscribe node='multi' jid='olga@localhost' subid='nope'/>")), 'not-acceptable', 406, 'invalid-subid');
    assertError(await iq(olga, pubsub("<unsubscribe node='multi' jid='pete@localhost'/>")), 'forbidden', 403);
    assertResult(await iq(olga, pubsub(`<unsubscribe node='multi' jid='olga@localhost' subid='${first}'/>`)));
    assertError(await iq(olga, pubsub("<unsubscribe node='multi' jid='olga@localhost'/>")), 'unexpected-request', 400, 'not-subscribed');
  });

  it('gets and sets subscription options; delivery can be switched off', async () => {
    assertResult(await iq(olga, pubsub("<create node='quiet'/>")));
    assertResult(await iq(pete, pubsub("<subscribe node='quiet' jid='pete@localhost'/>")));
    const options = await iq(pete, pubsub("<options node='quiet' jid='pete@localhost'/>"), 'get');
    assert.ok(options.getChild('pubsub')!.getChild('options')!.getChild('x')!.getChildren('field').some((f) => f.attrs.var === 'pubsub#deliver'));
    assertError(await iq(pete, pubsub(`<options node='quiet' jid='pete@localhost'>${form(SUBSCRIBE_OPTIONS, { 'pubsub#deliver': 'perhaps' })}</options>`)), 'bad-request', 400, 'invalid-options');
    assertResult(await iq(pete, pubsub(`<options node='quiet' jid='pete@localhost'>${form(SUBSCRIBE_OPTIONS, { 'pubsub#deliver': '0' })}</options>`)));
    assertResult(await iq(olga, pubsub(`<publish node='quiet'><item>${entry('hush')}</item></publish>`)));
    await pete.expectNothing((s) => s.getChild('event')?.getChild('items')?.attrs.node === 'quiet');
    const defaults = await iq(pete, pubsub('<default/>'), 'get');
    assert.ok(defaults.getChild('pubsub')!.getChild('default')!.getChild('x'));
  });

  describe('access models', () => {
    it('whitelist: members only (closed-node), owners add members by bare JID even when given a full one', async () => {
      assertResult(await iq(olga, pubsub(`<create node='club'/><configure>${nodeConfig({ 'pubsub#access_model': 'whitelist' })}</configure>`)));
      assertError(await iq(pete, pubsub("<subscribe node='club' jid='pete@localhost'/>")), 'not-allowed', 405, 'closed-node');
      assertError(await iq(pete, pubsub("<items node='club'/>"), 'get'), 'not-allowed', 405, 'closed-node');
      assertResult(await iq(olga, owner("<affiliations node='club'><affiliation jid='pete@localhost/astvoip2' affiliation='member'/></affiliations>")));
      const affiliations = await iq(olga, owner("<affiliations node='club'/>"), 'get');
      assert.ok(affiliations.getChild('pubsub')!.getChild('affiliations')!.getChildren('affiliation').some((a) => a.attrs.jid === 'pete@localhost' && a.attrs.affiliation === 'member'));
      assertResult(await iq(pete, pubsub("<subscribe node='club' jid='pete@localhost'/>")));
    });

    it('presence: only those with a presence subscription to an owner', async () => {
      const rita = await connect(t, 'rita');
      assertResult(await iq(olga, pubsub(`<create node='friends'/><configure>${nodeConfig({ 'pubsub#access_model': 'presence' })}</configure>`)));
      assertError(await iq(rita, pubsub("<subscribe node='friends' jid='rita@localhost'/>")), 'not-authorized', 401, 'presence-subscription-required');
      rita.send("<presence type='subscribe' to='olga@localhost'/>");
      await olga.waitFor((s) => s.name === 'presence' && s.attrs.type === 'subscribe');
      olga.send("<presence type='subscribed' to='rita@localhost'/>");
      await rita.waitFor((s) => s.name === 'presence' && s.attrs.from?.startsWith('olga@localhost/') === true && s.attrs.type === undefined);
      assertResult(await iq(rita, pubsub("<subscribe node='friends' jid='rita@localhost'/>")));
      rita.destroy();
    });

    it('roster: only contacts in the allowed groups', async () => {
      assertResult(await iq(olga, pubsub(`<create node='team'/><configure>${nodeConfig({ 'pubsub#access_model': 'roster', 'pubsub#roster_groups_allowed': 'Team' })}</configure>`)));
      assertError(await iq(pete, pubsub("<subscribe node='team' jid='pete@localhost'/>")), 'not-authorized', 401, 'not-in-roster-group');
      assertResult(await iq(olga, "<query xmlns='jabber:iq:roster'><item jid='pete@localhost'><group>Team</group></item></query>", 'set', 'olga@localhost'));
      assertResult(await iq(pete, pubsub("<subscribe node='team' jid='pete@localhost'/>")));
    });

    it('authorize: the subscription waits for an owner, who approves it with the form sent to them', async () => {
      assertResult(await iq(olga, pubsub(`<create node='gated'/><configure>${nodeConfig({ 'pubsub#access_model': 'authorize' })}</configure>`)));
      const reply = await iq(pete, pubsub("<subscribe node='gated' jid='pete@localhost'/>"));
      assert.equal(reply.getChild('pubsub')!.getChild('subscription')!.attrs.subscription, 'pending');
      assertError(await iq(pete, pubsub("<items node='gated'/>"), 'get'), 'not-authorized', 401, 'not-subscribed');
      assertError(await iq(pete, pubsub("<subscribe node='gated' jid='pete@localhost'/>")), 'not-authorized', 401, 'pending-subscription');
      const request = await olga.waitFor((s) => s.name === 'message' && !!s.getChild('x', 'jabber:x:data'));
      const fields = request.getChild('x')!.getChildren('field');
      const value = (name: string) => fields.find((f) => f.attrs.var === name)!.getChildText('value')!;
      assert.equal(value('pubsub#subscriber_jid'), 'pete@localhost');
      olga.send(`<message to='pubsub.localhost'>${form('http://jabber.org/protocol/pubsub#subscribe_authorization', {
        'pubsub#subid': value('pubsub#subid'), 'pubsub#node': 'gated', 'pubsub#subscriber_jid': 'pete@localhost', 'pubsub#allow': 'true' })}</message>`);
      const approved = await nextEvent(pete, (e) => !!e.getChild('subscription'));
      assert.equal(approved.getChild('event')!.getChild('subscription')!.attrs.subscription, 'subscribed');
      assertResult(await iq(pete, pubsub("<items node='gated'/>"), 'get'));
    });

    it('outcasts are refused and lose their subscriptions', async () => {
      assertResult(await iq(olga, pubsub("<create node='banning'/>")));
      assertResult(await iq(pete, pubsub("<subscribe node='banning' jid='pete@localhost'/>")));
      assertResult(await iq(olga, owner("<affiliations node='banning'><affiliation jid='pete@localhost' affiliation='outcast'/></affiliations>")));
      assert.deepEqual(await subscriptionsOf(olga, 'banning'), []);
      assertError(await iq(pete, pubsub("<subscribe node='banning' jid='pete@localhost'/>")), 'forbidden', 403);
      assertError(await iq(olga, owner("<affiliations node='banning'><affiliation jid='olga@localhost' affiliation='none'/></affiliations>")), 'not-acceptable', 406);
    });
  });

  it('lets owners manage subscriptions; the subscriber hears of the change', async () => {
    assertResult(await iq(olga, pubsub("<create node='managed'/>")));
    assertResult(await iq(olga, owner("<subscriptions node='managed'><subscription jid='pete@localhost' subscription='subscribed'/></subscriptions>")));
    await nextEvent(pete, (e) => e.getChild('subscription')?.attrs.subscription === 'subscribed');
    assert.deepEqual(await subscriptionsOf(olga, 'managed'), ['pete@localhost subscribed']);
    assertResult(await iq(olga, owner("<subscriptions node='managed'><subscription jid='pete@localhost' subscription='none'/></subscriptions>")));
    await nextEvent(pete, (e) => e.getChild('subscription')?.attrs.subscription === 'none');
    assert.deepEqual(await subscriptionsOf(olga, 'managed'), []);
    assertError(await iq(pete, owner("<subscriptions node='managed'/>"), 'get'), 'forbidden', 403);
  });

  describe('pubsub#expire=presence', () => {
    const presenceOptions = `<options>${form(SUBSCRIBE_OPTIONS, { 'pubsub#expire': 'presence' })}</options>`;

    it('ends when the subscriber sends unavailable presence', async () => {
      assertResult(await iq(olga, pubsub("<create node='live'/>")));
      const rita = await connect(t, 'rita', 'phone');
      assertResult(await iq(rita, pubsub(`<subscribe node='live' jid='rita@localhost'/>${presenceOptions}`)));
      rita.send("<presence type='unavailable'/>");
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(await subscriptionsOf(olga, 'live'), []);
      rita.destroy();
    });

    it('ends when the subscriber\'s connection just closes, as Asterisk stops (no unavailable presence)', async () => {
      assertResult(await iq(olga, pubsub("<create node='pbx'/>")));
      const rita = await connect(t, 'rita', 'astvoip3');
      assertResult(await iq(rita, pubsub(`<subscribe node='pbx' jid='rita@localhost'/>${presenceOptions}`)));
      assert.deepEqual(await subscriptionsOf(olga, 'pbx'), ['rita@localhost subscribed']);
      rita.destroy();
      await rita.closed;
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(await subscriptionsOf(olga, 'pbx'), []);
    });

    it('of a bare JID lasts while another resource of the account is available', async () => {
      assertResult(await iq(olga, pubsub("<create node='shared'/>")));
      const first = await connect(t, 'rita', 'one');
      const second = await connect(t, 'rita', 'two');
      await new Promise((r) => setTimeout(r, 100));
      assertResult(await iq(first, pubsub(`<subscribe node='shared' jid='rita@localhost'/>${presenceOptions}`)));
      first.destroy();
      await first.closed;
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(await subscriptionsOf(olga, 'shared'), ['rita@localhost subscribed']);
      assertResult(await iq(olga, pubsub(`<publish node='shared'><item>${asteriskState('INUSE')}</item></publish>`)));
      await nextEvent(second);
      second.destroy();
      await second.closed;
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(await subscriptionsOf(olga, 'shared'), []);
      takeEvents(olga);
    });
  });

  it('answers requests it does not know with the right errors', async () => {
    assertError(await iq(pete, `<pubsub xmlns='${NS_PUBSUB}'><frobnicate node='open'/></pubsub>`), 'feature-not-implemented', 501);
    assertError(await iq(pete, '<pubsub/>'), 'service-unavailable', 503);
    assertError(await iq(pete, pubsub("<subscribe node='open' jid='pete@localhost'/>") + '<extra/>'), 'bad-request', 400);
  });
});
