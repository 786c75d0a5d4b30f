// The AMI relay end to end: a real Switchboard connected to three simulated Asterisk manager
// interfaces over TCP, and XMPP clients of its PubSub service. States go both ways between the
// AMI servers without loops, a device several sources report follows Asterisk's aggregation,
// links come back after cuts, restarts, garbage and half-open connections and resynchronise,
// and the XMPP side sees AMI states as res_xmpp publishes them (and the other way round).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { AmiSimulator } from './support/ami-simulator.js';
import { assertResult, connect, form, iq, pubsub, SERVICE, NS_EVENT } from './support/pubsub.js';
import type { RawClient } from './support/raw-client.js';
import { eidOf } from '../src/modules/ami/config.js';

const XMPP_EID = '02:00:00:00:00:99';

describe('AMI relay between three Asterisk servers and XMPP', () => {
  let t: TestServer;
  let a: AmiSimulator;
  let b: AmiSimulator;
  let c: AmiSimulator;
  let watcher: RawClient;
  let pbx: RawClient;
  const eid = (name: string) => eidOf({ name });

  before(async () => {
    [a, b, c] = [new AmiSimulator('A'), new AmiSimulator('B'), new AmiSimulator('C')];
    for (const sim of [a, b, c]) await sim.start();
    a.changeDevice('SIP/gone', 'NOT_INUSE');
    t = await startTestServer({
      admins: ['admin@localhost'],
      ami: {
        presence: true,
        'request-timeout': 500,
        'keepalive-interval': 300,
        'reconnect-initial': 50,
        'reconnect-max': 400,
        'connect-timeout': 1000,
        servers: [a, b, c].map((sim) => ({ name: sim.name, host: '127.0.0.1', port: sim.port, username: 'relay', secret: 'amipw' })),
      },
    });
    for (const user of ['watcher', 'pbx', 'admin']) await t.addUser(`${user}@localhost`, 'pw');
    watcher = await connect(t, 'watcher', 'w');
    pbx = await connect(t, 'pbx', 'astvoip9');
    // An XMPP subscriber of the flat device_state node, as Asterisk res_xmpp subscribes.
    assertResult(await iq(watcher, pubsub("<subscribe node='device_state' jid='watcher@localhost'/>")));
    for (const sim of [a, b, c]) await sim.waitFor(() => sim.connectedSessions === 1, 'the relay logged in');
  });

  after(async () => {
    watcher?.destroy();
    pbx?.destroy();
    await t?.stop(true);
    for (const sim of [a, b, c]) await sim?.stop();
  });

  it('relays a device state to the other servers as Custom:<device>, not back to its owner', async () => {
    a.changeDevice('SIP/100', 'INUSE');
    for (const sim of [b, c]) await sim.waitFor(() => sim.devices.get('Custom:SIP/100') === 'INUSE', 'Custom:SIP/100 INUSE');
    // A later change of B reaches A after anything B's echo could have caused (one stream, in order).
    b.changeDevice('SIP/200', 'RINGING');
    for (const sim of [a, c]) await sim.waitFor(() => sim.devices.get('Custom:SIP/200') === 'RINGING', 'Custom:SIP/200 RINGING');
    assert.deepEqual(a.writesTo('DEVICE_STATE(Custom:SIP/100)'), [], 'nothing written back to the owner');
    assert.deepEqual(b.writesTo('DEVICE_STATE(Custom:SIP/100)'), ['INUSE'], 'written once: the echo was not relayed');
    assert.deepEqual(c.writesTo('DEVICE_STATE(Custom:SIP/100)'), ['INUSE']);
    assert.deepEqual(b.writesTo('DEVICE_STATE(Custom:SIP/200)'), []);
  });

  it('aggregates a device reported by several servers by Asterisk\'s rules', async () => {
    a.changeDevice('SIP/300', 'INUSE');
    await c.waitFor(() => c.devices.get('Custom:SIP/300') === 'INUSE', 'INUSE from A');
    b.changeDevice('SIP/300', 'RINGING');
    // C sees both: RINGING with INUSE is RINGINUSE; A sees B's, B sees A's.
    await c.waitFor(() => c.devices.get('Custom:SIP/300') === 'RINGINUSE', 'RINGINUSE on C');
    await a.waitFor(() => a.devices.get('Custom:SIP/300') === 'RINGING', 'RINGING on A');
    assert.equal(b.devices.get('Custom:SIP/300'), 'INUSE');
  });

  it('shares a Custom state under its own name, every server holding the aggregate', async () => {
    a.changeDevice('Custom:mystate', 'INUSE');
    for (const sim of [b, c]) await sim.waitFor(() => sim.devices.get('Custom:mystate') === 'INUSE', 'Custom:mystate INUSE');
    // B's dialplan sets it idle, but A still says INUSE: the cluster-wide value stays INUSE.
    b.changeDevice('Custom:mystate', 'NOT_INUSE');
    await b.waitFor(() => b.writesTo('DEVICE_STATE(Custom:mystate)').length === 2, 'B corrected');
    assert.equal(b.devices.get('Custom:mystate'), 'INUSE');
    a.changeDevice('Custom:mystate', 'NOT_INUSE');
    for (const sim of [b, c]) await sim.waitFor(() => sim.devices.get('Custom:mystate') === 'NOT_INUSE', 'Custom:mystate NOT_INUSE');
    assert.deepEqual(a.writesTo('DEVICE_STATE(Custom:mystate)'), []);
  });

  it('relays presence states, text with commas intact', async () => {
    a.changePresence('CustomPresence:alice', 'away', 'lunch', 'back at 2, maybe 3');
    for (const sim of [b, c]) {
      await sim.waitFor(() => sim.presence.get('CustomPresence:alice')?.status === 'away', 'presence of alice');
      assert.deepEqual(sim.presence.get('CustomPresence:alice'), { status: 'away', subtype: 'lunch', message: 'back at 2, maybe 3' });
    }
    b.changeDevice('SIP/marker1', 'INUSE');
    await a.waitFor(() => a.devices.has('Custom:SIP/marker1'), 'marker');
    assert.deepEqual(a.writesTo('PRESENCE_STATE(CustomPresence:alice)'), [], 'not written back to its owner');
    assert.equal(b.writesTo('PRESENCE_STATE(CustomPresence:alice)').length, 1, 'the echo was not relayed');
  });

  it('publishes AMI states to the PubSub node as res_xmpp does, and shows them in the device-state view', async () => {
    a.changeDevice('SIP/400', 'BUSY');
    const event = await watcher.waitFor((s) => s.name === 'message' && s.attrs.from === SERVICE
      && s.getChild('event', NS_EVENT)?.getChild('items')?.getChild('item')?.attrs.id === 'SIP/400', 5000, 'the SIP/400 event');
    const state = event.getChild('event', NS_EVENT)!.getChild('items')!.getChild('item')!.getChild('state', 'http://asterisk.org')!;
    assert.equal(state.text(), 'BUSY');
    assert.equal(state.attrs.eid, eid('A'));
    const response = await fetch(`http://127.0.0.1:${t.httpPort}/api/device-states`, { headers: { Authorization: `Basic ${Buffer.from('admin@localhost:pw').toString('base64')}` } });
    const { devices } = await response.json() as { devices: { device: string; state: string; servers: { eid: string; state: string }[] }[] };
    const sip300 = devices.find((d) => d.device === 'SIP/300');
    assert.equal(sip300?.state, 'RINGINUSE');
    assert.deepEqual(sip300?.servers.map((s) => [s.eid, s.state]).sort(), [[eid('A'), 'INUSE'], [eid('B'), 'RINGING']].sort());
  });

  it('writes states published over XMPP to every AMI server, aggregated with AMI reports', async () => {
    const publish = (device: string, state: string) => iq(pbx, pubsub(`<publish node='device_state'><item id='${device}'>`
      + `<state xmlns='http://asterisk.org' eid='${XMPP_EID}' cachable='1'>${state}</state></item></publish>`));
    assertResult(await publish('SIP/900', 'BUSY'));
    for (const sim of [a, b, c]) await sim.waitFor(() => sim.devices.get('Custom:SIP/900') === 'BUSY', 'Custom:SIP/900 from XMPP');
    // SIP/100 is INUSE on A; an XMPP Asterisk says RINGING: B and C get RINGINUSE, A gets RINGING.
    assertResult(await publish('SIP/100', 'RINGING'));
    for (const sim of [b, c]) await sim.waitFor(() => sim.devices.get('Custom:SIP/100') === 'RINGINUSE', 'RINGINUSE');
    await a.waitFor(() => a.devices.get('Custom:SIP/100') === 'RINGING', 'RINGING on A');
  });

  it('skips garbage lines and goes on', async () => {
    const before = a.loginAttempts;
    a.sendRaw('this line is not AMI at all\r\n\r\nEvent: DeviceStateChange\r\nnonsense\r\nDevice: SIP/101\r\nState: ONHOLD\r\n\r\n');
    for (const sim of [b, c]) await sim.waitFor(() => sim.devices.get('Custom:SIP/101') === 'ONHOLD', 'SIP/101 despite the garbage');
    assert.equal(a.loginAttempts, before, 'the link stayed up');
    const metrics = await t.server.metrics.text();
    assert.match(metrics, /switchboard_ami_failures_total\{link="A"\} [1-9]/);
    assert.match(metrics, /switchboard_ami_events_in_total\{link="A"\} [1-9]/);
    assert.match(metrics, /switchboard_ami_link_up\{link="B"\} 1/);
  });

  it('reconnects after a connection cut mid-message, and resynchronises what changed meanwhile on both sides', async () => {
    const logins = a.loginAttempts;
    a.cutMidMessage();
    b.changeDevice('SIP/201', 'INUSE');
    // Nobody hears this one live: only A's PresenceStateList after the reconnection tells it.
    a.changePresence('CustomPresence:carol', 'dnd', '', 'in a meeting');
    await a.waitFor(() => a.loginAttempts > logins && a.connectedSessions === 1, 'A reconnected');
    await a.waitFor(() => a.devices.get('Custom:SIP/201') === 'INUSE', 'the change made while A was away');
    await b.waitFor(() => b.presence.get('CustomPresence:carol')?.status === 'dnd', 'carol\'s presence from A\'s list');
    assert.ok(a.actions.includes('presencestatelist'));
    assert.ok(a.actions.includes('devicestatelist'));
    assert.equal(b.devices.get('Custom:SIP/cut'), undefined, 'the cut event was never relayed');
  });

  it('reconnects after an Asterisk restart; a device it no longer lists is withdrawn', async () => {
    await c.waitFor(() => c.devices.get('Custom:SIP/gone') === 'NOT_INUSE', 'SIP/gone known from the initial list');
    await a.stop();
    a.devices.delete('SIP/gone');
    b.changeDevice('SIP/202', 'BUSY');
    await c.waitFor(() => c.devices.get('Custom:SIP/202') === 'BUSY', 'B still relayed while A is down');
    await a.start();
    await a.waitFor(() => a.devices.get('Custom:SIP/202') === 'BUSY', 'A caught up after its restart');
    await c.waitFor(() => c.devices.get('Custom:SIP/gone') === 'UNKNOWN', 'SIP/gone withdrawn');
  });

  it('finds a half-open connection by its unanswered Ping and connects again', async () => {
    const logins = b.loginAttempts;
    b.freeze();
    await b.waitFor(() => b.loginAttempts > logins && b.connectedSessions === 1, 'B reconnected after the silent connection');
    a.changeDevice('SIP/102', 'INUSE');
    await b.waitFor(() => b.devices.get('Custom:SIP/102') === 'INUSE', 'relaying again');
  });
});

describe('AMI relay with XMPP Asterisks in collection mode (XEP-0248)', () => {
  it('publishes AMI states to leaves of the device_state collection, and relays states published to its leaves', async () => {
    const [a, b] = [new AmiSimulator('A'), new AmiSimulator('B')];
    for (const sim of [a, b]) await sim.start();
    const t = await startTestServer({
      ami: { servers: [a, b].map((sim) => ({ name: sim.name, host: '127.0.0.1', port: sim.port, username: 'relay', secret: 'amipw' })) },
    });
    await t.addUser('pbx@localhost', 'pw');
    const pbx = await connect(t, 'pbx', 'astvoip1');
    try {
      // As res_xmpp with collection_nodes=yes subscribes: this makes device_state a collection.
      const options = `<options>${form('http://jabber.org/protocol/pubsub#subscribe_options', { 'pubsub#subscription_type': 'items', 'pubsub#subscription_depth': 'all' })}</options>`;
      assertResult(await iq(pbx, pubsub(`<subscribe node='device_state' jid='pbx@localhost'/>${options}`)));
      for (const sim of [a, b]) await sim.waitFor(() => sim.connectedSessions === 1, 'the relay logged in');
      a.changeDevice('SIP/700', 'RINGING');
      const event = await pbx.waitFor((s) => s.name === 'message' && s.getChild('event', NS_EVENT)?.getChild('items')?.attrs.node === 'SIP/700', 5000, 'the leaf SIP/700 event');
      const state = event.getChild('event', NS_EVENT)!.getChild('items')!.getChild('item')!.getChild('state', 'http://asterisk.org')!;
      assert.equal(state.text(), 'RINGING');
      assert.equal(state.attrs.eid, eidOf({ name: 'A' }));
      // res_xmpp in collection mode publishes to a leaf named after the device.
      assertResult(await iq(pbx, pubsub("<publish node='SIP/800'><item id='SIP/800'>"
        + `<state xmlns='http://asterisk.org' eid='${XMPP_EID}' cachable='1'>INUSE</state></item></publish>`)));
      for (const sim of [a, b]) await sim.waitFor(() => sim.devices.get('Custom:SIP/800') === 'INUSE', 'Custom:SIP/800 from a collection leaf');
    } finally {
      pbx.destroy();
      await t.stop(true);
      for (const sim of [a, b]) await sim.stop();
    }
  });
});

describe('AMI relay across a restart of Switchboard', () => {
  it('writes the device states XMPP servers published before the restart to the AMI servers', async () => {
    const [a, b] = [new AmiSimulator('A'), new AmiSimulator('B')];
    for (const sim of [a, b]) await sim.start();
    const overrides = { ami: { servers: [a, b].map((sim) => ({ name: sim.name, host: '127.0.0.1', port: sim.port, username: 'relay', secret: 'amipw' })) } };
    let t = await startTestServer(overrides);
    try {
      await t.addUser('pbx@localhost', 'pw');
      const pbx = await connect(t, 'pbx', 'astvoip1');
      assertResult(await iq(pbx, pubsub("<publish node='device_state'><item id='SIP/950'>"
        + `<state xmlns='http://asterisk.org' eid='${XMPP_EID}' cachable='1'>BUSY</state></item></publish>`)));
      for (const sim of [a, b]) await sim.waitFor(() => sim.devices.get('Custom:SIP/950') === 'BUSY', 'SIP/950 before the restart');
      pbx.destroy();
      await t.stop();
      // B's Asterisk restarted meanwhile and lost its Custom states; nobody publishes SIP/950 again.
      b.devices.delete('Custom:SIP/950');
      t = await startTestServer(overrides, t.dataDir);
      await b.waitFor(() => b.devices.get('Custom:SIP/950') === 'BUSY', 'SIP/950 from the stored item after the restart');
      assert.deepEqual(a.writesTo('DEVICE_STATE(Custom:SIP/950)'), ['BUSY'], 'A, which kept it, is not written again');
    } finally {
      await t.stop(true);
      for (const sim of [a, b]) await sim.stop();
    }
  });
});

describe('AMI relay with a wrong secret', () => {
  it('logs the refusal, retries with backoff, and keeps the server and other links running', async () => {
    const good = new AmiSimulator('good');
    const wrong = new AmiSimulator('wrong', { secret: 'the-real-one' });
    await good.start();
    await wrong.start();
    const t = await startTestServer({
      ami: {
        'reconnect-initial': 50,
        'reconnect-max': 1000,
        servers: [
          { name: 'good', host: '127.0.0.1', port: good.port, username: 'relay', secret: 'amipw' },
          { name: 'wrong', host: '127.0.0.1', port: wrong.port, username: 'relay', secret: 'not-it' },
        ],
      },
    });
    try {
      await wrong.waitFor(() => wrong.failedLogins >= 3, 'three refused logins');
      await good.waitFor(() => good.connectedSessions === 1, 'the good link');
      const metrics = await t.server.metrics.text();
      assert.match(metrics, /switchboard_ami_link_up\{link="wrong"\} 0/);
      assert.match(metrics, /switchboard_ami_reconnects_total\{link="wrong"\} [1-9]/);
    } finally {
      await t.stop(true);
      await good.stop();
      await wrong.stop();
    }
  });
});
