// The cluster-wide device-state view over HTTP: what each Asterisk (eid) reports for a device, the
// aggregate by Asterisk's rules, mailbox counts, administrators only (HTTP Basic against the stored
// credentials), and rebuilt from the stored items after a restart.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import type { RawClient } from './support/raw-client.js';
import { assertResult, asteriskState, connect, iq, pubsub } from './support/pubsub.js';
import { aggregateDeviceState } from '../src/modules/pubsub/device-states.js';

const EID1 = '02:00:00:00:00:01';
const EID2 = '02:00:00:00:00:02';
const mailbox = (newMessages: number, oldMessages: number, eid = EID1) =>
  `<mailbox xmlns='http://asterisk.org' eid='${eid}'><NEWMSGS>${newMessages}</NEWMSGS><OLDMSGS>${oldMessages}</OLDMSGS></mailbox>`;

async function get(t: TestServer, path: string, credentials?: string): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = credentials ? { Authorization: `Basic ${Buffer.from(credentials).toString('base64')}` } : {};
  const response = await fetch(`http://127.0.0.1:${t.httpPort}${path}`, { headers });
  return { status: response.status, body: await response.json(), headers: response.headers };
}

describe('Asterisk aggregation rules', () => {
  it('takes the highest state, and RINGING with a busy one is RINGINUSE', () => {
    assert.equal(aggregateDeviceState([]), 'INVALID');
    assert.equal(aggregateDeviceState(['NOT_INUSE', 'UNAVAILABLE']), 'NOT_INUSE');
    assert.equal(aggregateDeviceState(['INUSE', 'BUSY']), 'BUSY');
    assert.equal(aggregateDeviceState(['RINGING', 'NOT_INUSE']), 'RINGING');
    assert.equal(aggregateDeviceState(['RINGING', 'ONHOLD']), 'RINGINUSE');
    assert.equal(aggregateDeviceState(['INUSE', 'RINGING']), 'RINGINUSE');
    assert.equal(aggregateDeviceState(['UNKNOWN', 'INVALID']), 'UNKNOWN');
  });
});

describe('Device-state view (GET /api/device-states, /api/mailboxes)', () => {
  let t: TestServer;
  let alice: RawClient;
  let bob: RawClient;
  before(async () => {
    t = await startTestServer({ admins: ['admin@localhost'] });
    for (const user of ['alice', 'bob', 'admin']) await t.addUser(`${user}@localhost`, 'pw');
    alice = await connect(t, 'alice', 'astvoip1');
    bob = await connect(t, 'bob', 'astvoip2');
  });
  after(async () => {
    alice.destroy();
    bob.destroy();
    await t.stop(true);
  });

  it('is for administrators only', async () => {
    const anonymous = await get(t, '/api/device-states');
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic /);
    assert.equal((await get(t, '/api/device-states', 'admin@localhost:wrong')).status, 401);
    assert.equal((await get(t, '/api/device-states', 'nobody@localhost:pw')).status, 401);
    assert.equal((await get(t, '/api/mailboxes', 'alice@localhost:pw')).status, 403);
    assert.equal((await get(t, '/api/device-states', 'admin@localhost:pw')).status, 200);
  });

  it('shows what each Asterisk reports for a device and the aggregate (flat mode)', async () => {
    assertResult(await iq(alice, pubsub(`<publish node='device_state'><item id='SIP/100'>${asteriskState('INUSE', EID1)}</item></publish>`)));
    assertResult(await iq(bob, pubsub(`<publish node='device_state'><item id='SIP/100'>${asteriskState('RINGING', EID2)}</item></publish>`)));
    const { status, body } = await get(t, '/api/device-states', 'admin@localhost:pw');
    assert.equal(status, 200);
    const device = body.devices.find((d: { device: string }) => d.device === 'SIP/100');
    assert.equal(device.service, 'pubsub.localhost');
    assert.equal(device.state, 'RINGINUSE');
    assert.ok(!Number.isNaN(Date.parse(device.changedAt)));
    assert.deepEqual(device.servers.map((s: { eid: string; state: string; publisher: string }) => [s.eid, s.state, s.publisher]).sort(),
      [[EID1, 'INUSE', 'alice@localhost'], [EID2, 'RINGING', 'bob@localhost']]);
  });

  it('forgets a retracted device', async () => {
    assertResult(await iq(alice, pubsub(`<publish node='device_state'><item id='Custom:gone'>${asteriskState('BUSY', EID1)}</item></publish>`)));
    assertResult(await iq(alice, pubsub("<retract node='device_state'><item id='Custom:gone'/></retract>")));
    const { body } = await get(t, '/api/device-states', 'admin@localhost:pw');
    assert.ok(!body.devices.some((d: { device: string }) => d.device === 'Custom:gone'));
  });

  it('shows mailbox counts', async () => {
    assertResult(await iq(alice, pubsub(`<publish node='message_waiting'><item id='1234@default'>${mailbox(2, 5)}</item></publish>`)));
    assertResult(await iq(alice, pubsub(`<publish node='message_waiting'><item id='1234@default'>${mailbox(3, 5)}</item></publish>`)));
    const { body } = await get(t, '/api/mailboxes', 'admin@localhost:pw');
    const box = body.mailboxes.find((m: { mailbox: string }) => m.mailbox === '1234@default');
    assert.equal(box.new, 3);
    assert.equal(box.old, 5);
    assert.equal(box.servers[0].eid, EID1);
  });

  it('is rebuilt from the stored items after a restart', async () => {
    alice.destroy();
    bob.destroy();
    t = await t.restart();
    alice = await connect(t, 'alice', 'astvoip1');
    bob = await connect(t, 'bob', 'astvoip2');
    const devices = (await get(t, '/api/device-states', 'admin@localhost:pw')).body.devices;
    // One item per device id is stored: the newest report survives.
    assert.deepEqual(devices.map((d: { device: string; state: string }) => [d.device, d.state]), [['SIP/100', 'RINGING']]);
    const mailboxes = (await get(t, '/api/mailboxes', 'admin@localhost:pw')).body.mailboxes;
    assert.deepEqual(mailboxes.map((m: { mailbox: string; new: number; old: number }) => [m.mailbox, m.new, m.old]), [['1234@default', 3, 5]]);
  });

  it('answers other methods and paths as HTTP says', async () => {
    const post = await fetch(`http://127.0.0.1:${t.httpPort}/api/device-states`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal((await get(t, '/api/device-states/extra', 'admin@localhost:pw')).status, 404);
  });
});

describe('Device-state view in collection mode', () => {
  it('follows the leaves of the device_state collection', async () => {
    const t = await startTestServer({ admins: ['admin@localhost'] });
    try {
      for (const user of ['alice', 'admin']) await t.addUser(`${user}@localhost`, 'pw');
      const alice = await connect(t, 'alice', 'astvoip1');
      const options = "<options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#subscribe_options</value></field>"
        + "<field var='pubsub#subscription_type'><value>items</value></field><field var='pubsub#subscription_depth'><value>all</value></field></x></options>";
      assertResult(await iq(alice, pubsub(`<subscribe node='device_state' jid='alice@localhost'/>${options}`)));
      assertResult(await iq(alice, pubsub(`<publish node='Custom:leaf'><item id='Custom:leaf'>${asteriskState('ONHOLD', EID1)}</item></publish>`)));
      const { body } = await get(t, '/api/device-states', 'admin@localhost:pw');
      assert.deepEqual(body.devices.map((d: { device: string; state: string }) => [d.device, d.state]), [['Custom:leaf', 'ONHOLD']]);
      alice.destroy();
    } finally {
      await t.stop(true);
    }
  });
});
