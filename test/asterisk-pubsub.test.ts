// Two Asterisk servers (res_xmpp) distributing device states and MWI through Switchboard's
// PubSub service, replayed byte for byte from the wire captures in test/fixtures/asterisk: both
// modes (flat nodes and XEP-0248 collections), on a fresh server and with the nodes created
// beforehand, the error captures and the malformed-item capture. What each simulated Asterisk
// receives is checked after every chunk it sent:
// - every subscribe succeeds the first time;
// - each state or MWI item an Asterisk (or the capture's admin) publishes reaches the other
//   Asterisk exactly once, in the same step, with the sender's payload; apart from that a
//   subscriber only gets the last published items it is owed when it subscribes;
// - every PubSub error carries the XEP-0086 code and echoes the <pubsub> (Asterisk needs both);
// - no item that would crash Asterisk (no eid, no message counts, no payload) reaches anyone.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { backends } from './support/postgres.js';
import { RawClient } from './support/raw-client.js';
import { AsteriskReplay, parseChunk, type ReplayStep } from './support/asterisk-replay.js';
import type { Element } from '../src/xml/element.js';

const SERVICE = 'pubsub.localhost';
const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
const NS_EVENT = 'http://jabber.org/protocol/pubsub#event';
const EIDS: Record<string, string> = { a1: '02:00:00:00:00:01', a2: '02:00:00:00:00:02' };
const AGENTS = ['a1', 'a2'];
const STATES = ['UNKNOWN', 'NOT_INUSE', 'INUSE', 'BUSY', 'INVALID', 'UNAVAILABLE', 'RINGING', 'RINGINUSE', 'ONHOLD'];

type Kind = 'state' | 'mailbox';
/** Which event node (flat) or collection an Asterisk payload travels through. */
const NODE_OF: Record<Kind, string> = { state: 'device_state', mailbox: 'message_waiting' };

interface Published { id: string; kind: Kind; payload: string; eid: string }

/** What Asterisk would read from an event item without crashing (res_xmpp.c xmpp_pubsub_handle_event). */
function wouldCrashAsterisk(item: Element): boolean {
  const content = item.children[0];
  if (content === undefined || typeof content === 'string') return true;
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(content.attrs.eid ?? '')) return true;
  if (content.name === 'state') return !STATES.includes(content.text());
  if (content.name === 'mailbox') return !['NEWMSGS', 'OLDMSGS'].every((n) => /^\d+$/.test(content.getChildText(n) ?? ''));
  return false;
}

/** Asterisk payloads published by a step's stanzas. */
function publishesIn(sent: Element[]): Published[] {
  const out: Published[] = [];
  for (const iq of sent) {
    const item = iq.getChild('pubsub', NS_PUBSUB)?.getChild('publish')?.getChild('item');
    const payload = item?.firstElement();
    if (!item || !payload || (payload.name !== 'state' && payload.name !== 'mailbox') || wouldCrashAsterisk(item)) continue;
    out.push({ id: item.attrs.id!, kind: payload.name, payload: String(payload), eid: payload.attrs.eid! });
  }
  return out;
}

/** Event items delivered in a step, from the service. */
function eventItems(received: Element[]): { item: Element; node: string }[] {
  return received.filter((s) => s.name === 'message' && s.attrs.from === SERVICE)
    .flatMap((m) => (m.getChild('event', NS_EVENT)?.getChildren('items') ?? []).flatMap((items) => items.getChildren('item').map((item) => ({ item, node: items.attrs.node! }))));
}

/** The reply to each IQ a step sent to the service, matched by id in order (Asterisk repeats ids). */
function repliesTo(step: ReplayStep): { request: Element; reply: Element | undefined }[] {
  const pool = [...(step.received.get(step.agent) ?? [])].filter((s) => s.name === 'iq' && (s.attrs.type === 'result' || s.attrs.type === 'error'));
  return step.sent.filter((s) => s.name === 'iq' && s.attrs.to === SERVICE).map((request) => {
    const i = pool.findIndex((r) => r.attrs.id === request.attrs.id);
    return { request, reply: i >= 0 ? pool.splice(i, 1)[0] : undefined };
  });
}

interface ReplayFindings {
  /** Deliveries of one Asterisk's (or the admin's) items to the other Asterisk, each checked. */
  crossDeliveries: number;
  subscribes: number;
  errors: Element[];
}

/**
 * Walks the steps of a replay, checking replies, subscriptions and deliveries as described at
 * the top of this file. MARK steps carry the admin's publishes, checked like an Asterisk's.
 */
function checkReplay(steps: ReplayStep[]): ReplayFindings {
  const findings: ReplayFindings = { crossDeliveries: 0, subscribes: 0, errors: [] };
  /** The kinds each connected agent is subscribed to. */
  const subscribed = new Map<string, Set<Kind>>();
  /** Latest payload of each item id, for last-item deliveries at subscribe time. */
  const latest = new Map<string, string>();
  for (const [index, step] of steps.entries()) {
    const where = `step ${index} (${step.agent} conn=${step.conn}${step.mark ? ` ${step.mark}` : ''})`;
    for (const agent of AGENTS) if (!step.received.has(agent)) subscribed.delete(agent);
    for (const [agent, list] of step.received) {
      assert.ok(!list.some((s) => s.name === 'error' && s.attrs.xmlns === 'http://etherx.jabber.org/streams'), `${where}: no stream error for ${agent}`);
      for (const { item } of eventItems(list)) assert.ok(!wouldCrashAsterisk(item), `${where}: ${agent} received an item that crashes Asterisk: ${item}`);
    }
    if (step.agent !== 'MARK') {
      for (const { request, reply } of repliesTo(step)) {
        assert.ok(reply, `${where}: no reply to ${request}`);
        if (reply.attrs.type === 'error') {
          findings.errors.push(reply);
          assert.match(reply.getChild('error')?.attrs.code ?? '', /^\d{3}$/, `${where}: error without code: ${reply}`);
          assert.ok(reply.getChild('pubsub') ?? reply.getChild('query'), `${where}: error without the echoed payload: ${reply}`);
        }
        const subscribe = request.getChild('pubsub', NS_PUBSUB)?.getChild('subscribe');
        if (subscribe) {
          findings.subscribes++;
          assert.equal(reply.getChild('pubsub')?.getChild('subscription')?.attrs.subscription, 'subscribed', `${where}: subscribe to ${subscribe.attrs.node} failed: ${reply}`);
          const kind = (Object.keys(NODE_OF) as Kind[]).find((k) => NODE_OF[k] === subscribe.attrs.node)!;
          if (!subscribed.has(step.agent)) subscribed.set(step.agent, new Set());
          subscribed.get(step.agent)!.add(kind);
        }
      }
    }
    const published = publishesIn(step.sent);
    for (const agent of AGENTS) {
      const received = eventItems(step.received.get(agent) ?? []).filter(({ item }) => item.children[0] && (item.children[0] as Element).attrs.eid !== EIDS[agent]);
      if (step.agent === agent) {
        // Its own step: only the last items of nodes, owed at subscribe time.
        for (const { item } of received) assert.equal(String(item.children[0]), latest.get(item.attrs.id!), `${where}: ${agent} got a stale or unexpected item ${item}`);
        continue;
      }
      const expected = published.filter((p) => p.eid !== EIDS[agent] && subscribed.get(agent)?.has(p.kind));
      assert.deepEqual(received.map(({ item }) => `${item.attrs.id} ${item.children[0]}`), expected.map((p) => `${p.id} ${p.payload}`),
        `${where}: ${agent} gets each item of the others exactly once, with the sender's payload`);
      findings.crossDeliveries += expected.length;
    }
    for (const p of published) latest.set(p.id, p.payload);
  }
  return findings;
}

async function withServer(run: (t: TestServer) => Promise<void>, storage?: Record<string, unknown>): Promise<void> {
  const t = await startTestServer(storage ? { storage } : {});
  try {
    for (const user of ['alice', 'bob', 'admin']) await t.addUser(`${user}@localhost`, 'pw');
    await run(t);
  } finally {
    await t.stop(true);
  }
}

async function adminClient(t: TestServer): Promise<RawClient> {
  const admin = await RawClient.connect(t.port);
  await admin.login('admin', 'pw', 'localhost', 'console');
  return admin;
}

let nextId = 0;
async function request(client: RawClient, body: string, type: 'set' | 'get' = 'set'): Promise<{ sent: Element; reply: Element }> {
  const id = `admin-${++nextId}`;
  const text = `<iq to='${SERVICE}' type='${type}' id='${id}'>${body}</iq>`;
  client.send(text);
  return { sent: parseChunk(text)[0]!, reply: await client.waitForName('iq', { id }) };
}

/** Precreates the two event nodes (as leaves, or as collections) the way an admin would, open to publishers. */
async function precreate(t: TestServer, type: 'leaf' | 'collection'): Promise<void> {
  const admin = await adminClient(t);
  for (const node of ['device_state', 'message_waiting']) {
    const { reply } = await request(admin, `<pubsub xmlns='${NS_PUBSUB}'><create node='${node}'/><configure><x xmlns='jabber:x:data' type='submit'>`
      + `<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field>`
      + `<field var='pubsub#node_type'><value>${type}</value></field><field var='pubsub#publish_model'><value>open</value></field>`
      + '</x></configure></pubsub>');
    assert.equal(reply.attrs.type, 'result', String(reply));
  }
  admin.destroy();
}

describe('Asterisk distributing device states and MWI (wire capture replay)', () => {
  let replay: AsteriskReplay | undefined;
  after(() => replay?.close());

  for (const backend of backends()) {
    after(() => backend.cleanup());
    for (const [capture, what] of [
      ['flat.log', 'flat mode on a fresh server: the two nodes are created by the subscribes that name them'],
      ['collection.log', 'collection mode on a fresh server: collections on demand, MWI leaf 1234@default created under message_waiting'],
    ] as const) {
      it(`${capture}: ${what} (${backend.name})`, async () => withServer(async (t) => {
        replay = new AsteriskReplay(t.port);
        const findings = checkReplay(await replay.run(capture));
        assert.ok(findings.subscribes >= 4, `every login subscribed (${findings.subscribes})`);
        assert.ok(findings.crossDeliveries >= 3, `states and MWI went across (${findings.crossDeliveries})`);
      }, await backend.storage()));
    }
  }

  it('flat-precreated.log: nodes an admin created beforehand', () => withServer(async (t) => {
    await precreate(t, 'leaf');
    replay = new AsteriskReplay(t.port);
    const findings = checkReplay(await replay.run('flat-precreated.log'));
    assert.ok(findings.crossDeliveries >= 4, `states and MWI went across (${findings.crossDeliveries})`);
  }));

  it('collection-precreated.log: collections an admin created beforehand', () => withServer(async (t) => {
    await precreate(t, 'collection');
    replay = new AsteriskReplay(t.port);
    const findings = checkReplay(await replay.run('collection-precreated.log'));
    assert.ok(findings.crossDeliveries >= 4, `states and MWI went across (${findings.crossDeliveries})`);
  }));

  it('error-echo-code.log: the publish re-sent with the old <error> as a second child succeeds (COMPAT)', () => withServer(async (t) => {
    replay = new AsteriskReplay(t.port);
    const steps = await replay.run('error-echo-code.log');
    checkReplay(steps);
    const retried = steps.flatMap((step) => repliesTo(step)).filter(({ request }) => request.getChild('error') && request.getChild('pubsub')?.getChild('publish'));
    assert.ok(retried.length > 0, 'the capture re-sends a publish with a trailing <error>');
    for (const { reply } of retried) assert.equal(reply?.attrs.type, 'result', `retried publish accepted: ${reply}`);
  }));

  it('error-echo-nocode.log: every error Asterisk gets has a code (a code-less echoed error crashed it)', () => withServer(async (t) => {
    replay = new AsteriskReplay(t.port);
    const findings = checkReplay(await replay.run('error-echo-nocode.log'));
    assert.ok(findings.errors.length > 0, 'the unsubscribes of a fresh login are answered with errors');
  }));

  it('malformed-events.log: items that crashed both Asterisks are refused with bad-request and reach no one', () => withServer(async (t) => {
    const admin = await adminClient(t);
    const refused: Element[] = [];
    const publish = (node: string, item: string) => `<pubsub xmlns='${NS_PUBSUB}'><publish node='${node}'>${item}</publish></pubsub>`;
    const actions: [string, string, 'result' | 'error'][] = [
      ['T1 ', publish('device_state', "<item id='Custom:otherstate'><state xmlns='http://asterisk.org' eid='02:00:00:00:00:09' cachable='1'>INUSE</state></item>"), 'result'],
      ['T1b ', publish('message_waiting', "<item id='5555@default'><mailbox xmlns='http://asterisk.org' eid='02:00:00:00:00:09'><NEWMSGS>4</NEWMSGS><OLDMSGS>2</OLDMSGS></mailbox></item>"), 'result'],
      ['T5 ', `<pubsub xmlns='${NS_PUBSUB}'><retract node='device_state' notify='1'><item id='Custom:otherstate'/></retract></pubsub>`, 'result'],
      ['T2 admin publishes', publish('device_state', "<item id='Custom:otherstate'><state xmlns='http://asterisk.org' cachable='1'>NOT_INUSE</state></item>"), 'error'],
      ['T3 admin publishes', publish('device_state', "<item id='Custom:otherstate'/>"), 'error'],
      ['T4 admin publishes', publish('message_waiting', "<item id='6666@default'><mailbox xmlns='http://asterisk.org' eid='02:00:00:00:00:09'><NEWMSGS>1</NEWMSGS></mailbox></item>"), 'error'],
    ];
    replay = new AsteriskReplay(t.port);
    const steps = await replay.run('malformed-events.log', async (mark) => {
      const action = actions.find(([prefix]) => mark.startsWith(prefix));
      if (!action) return;
      const { sent, reply } = await request(admin, action[1]);
      assert.equal(reply.attrs.type, action[2], `${mark}: ${reply}`);
      if (action[2] === 'error') refused.push(reply);
      return [sent];
    });
    admin.destroy();
    const findings = checkReplay(steps);
    assert.equal(refused.length, 3);
    for (const reply of refused) {
      assert.equal(reply.getChild('error')?.attrs.code, '400');
      assert.ok(reply.getChild('error')?.getChild('bad-request'), String(reply));
      assert.ok(reply.getChild('pubsub')?.getChild('publish'), `the payload is echoed: ${reply}`);
    }
    const markSteps = steps.filter((s) => s.mark);
    const retracts = markSteps.find((s) => s.mark!.startsWith('T5 '))!;
    for (const agent of AGENTS) {
      const got = (retracts.received.get(agent) ?? []).filter((m) => m.getChild('event', NS_EVENT)?.getChild('items')?.getChild('retract'));
      assert.equal(got.length, 1, `${agent} hears of the retraction once`);
    }
    assert.ok(findings.crossDeliveries >= 4, `the admin's good items reached both (${findings.crossDeliveries})`);
  }));
});
