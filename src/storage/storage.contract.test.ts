// The storage contract (types.ts), run against every backend: SQLite always, PostgreSQL when
// SWITCHBOARD_TEST_PG_URL points to a database the test may create schemas in. In CI a missing
// PostgreSQL is a failure, not a skip, so that backend cannot silently go untested.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { openStorage } from './index.js';
import { latestSchemaVersion } from './migrations.js';
import type { Credentials, OfflineMessage, PubSubItemRecord, PubSubNodeRecord, PubSubSubscriptionRecord, RosterItem, Storage, StorageConfig } from './types.js';

/** A place to create databases in, and a way to reach them behind the storage layer's back. */
interface TestBackend {
  /** The database the suite works on; reopening it with openStorage(config, dataDir) is a restart. */
  readonly config: StorageConfig;
  readonly dataDir: string;
  /** Another, empty database. */
  newDatabase(): Promise<StorageConfig>;
  executeRaw(config: StorageConfig, sql: string): Promise<void>;
  destroy(): Promise<void>;
}

async function sqliteBackend(): Promise<TestBackend> {
  const root = await mkdtemp(join(tmpdir(), 'switchboard-storage-'));
  let databases = 0;
  return {
    // No path, and a data directory that does not exist yet: openStorage must create it.
    config: { type: 'sqlite' },
    dataDir: join(root, 'data', 'dir'),
    async newDatabase() {
      return { type: 'sqlite', path: join(root, `fresh-${++databases}`, 'db.sqlite') };
    },
    async executeRaw(config, sql) {
      assert.equal(config.type, 'sqlite');
      const db = new Database(config.path);
      try {
        db.exec(sql);
      } finally {
        db.close();
      }
    },
    destroy: () => rm(root, { recursive: true, force: true }),
  };
}

/** Each database is a fresh schema (selected with search_path), dropped at the end: runs are independent. */
async function postgresBackend(url: string): Promise<TestBackend> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const schemas: string[] = [];
  const newDatabase = async (): Promise<StorageConfig> => {
    const schema = `switchboard_test_${process.pid}_${Date.now()}_${schemas.length}`;
    await admin.query(`CREATE SCHEMA ${schema}`);
    schemas.push(schema);
    const schemaUrl = new URL(url);
    schemaUrl.searchParams.set('options', `-c search_path=${schema}`);
    return { type: 'postgres', url: schemaUrl.toString() };
  };
  return {
    config: await newDatabase(),
    dataDir: tmpdir(), // unused by PostgreSQL
    newDatabase,
    async executeRaw(config, sql) {
      assert.equal(config.type, 'postgres');
      const client = new pg.Client({ connectionString: config.url });
      await client.connect();
      try {
        await client.query(sql);
      } finally {
        await client.end();
      }
    },
    async destroy() {
      for (const schema of schemas) await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    },
  };
}

function credentials(tag: string): Credentials {
  const keys = (hash: string) => ({
    salt: Buffer.from(`salt-${hash}-${tag}`).toString('base64'),
    iterations: 4096,
    storedKey: Buffer.from(`stored-${hash}-${tag}`).toString('base64'),
    serverKey: Buffer.from(`server-${hash}-${tag}`).toString('base64'),
  });
  return { 'SCRAM-SHA-1': keys('sha1'), 'SCRAM-SHA-256': keys('sha256') };
}

function rosterItem(jid: string, changes: Partial<RosterItem> = {}): RosterItem {
  return { jid, groups: [], subscription: 'none', ask: false, pendingIn: false, approved: false, visible: true, ...changes };
}

function offlineMessage(sender: string, text: string, stamp = new Date('2024-05-06T07:08:09.123Z')): Omit<OfflineMessage, 'id'> {
  return { sender, stamp, stanza: `<message from='${sender}/r' type='chat'><body>${text}</body></message>` };
}

function storageContract(createBackend: () => Promise<TestBackend>): void {
  let backend: TestBackend;
  let storage: Storage;

  before(async () => {
    backend = await createBackend();
    storage = await openStorage(backend.config, backend.dataDir);
  });

  after(async () => {
    await storage?.close();
    await backend?.destroy();
  });

  describe('users', () => {
    it('creates an account once; a duplicate keeps the first credentials', async () => {
      assert.equal(await storage.users.create('example.org', 'alice', credentials('first')), true);
      assert.equal(await storage.users.create('example.org', 'alice', credentials('second')), false);
      assert.deepEqual(await storage.users.get('example.org', 'alice'), credentials('first'));
    });

    it('keeps accounts of different domains apart', async () => {
      await storage.users.create('one.example', 'bob', credentials('one'));
      await storage.users.create('two.example', 'bob', credentials('two'));
      assert.deepEqual(await storage.users.get('one.example', 'bob'), credentials('one'));
      assert.deepEqual(await storage.users.get('two.example', 'bob'), credentials('two'));
      assert.equal(await storage.users.get('three.example', 'bob'), undefined);
    });

    it('tells whether an account exists', async () => {
      await storage.users.create('example.org', 'carol', credentials('carol'));
      assert.equal(await storage.users.exists('example.org', 'carol'), true);
      assert.equal(await storage.users.exists('example.org', 'nobody'), false);
      assert.equal(await storage.users.exists('example.net', 'carol'), false);
    });

    it('replaces credentials of existing accounts only', async () => {
      await storage.users.create('example.org', 'dave', credentials('old'));
      assert.equal(await storage.users.setCredentials('example.org', 'dave', credentials('new')), true);
      assert.deepEqual(await storage.users.get('example.org', 'dave'), credentials('new'));
      assert.equal(await storage.users.setCredentials('example.org', 'ghost', credentials('new')), false);
      assert.equal(await storage.users.exists('example.org', 'ghost'), false);
    });

    it('lists the usernames of one domain in code point order', async () => {
      const domain = 'list.example';
      for (const username of ['zoë', 'bob', 'Ärger', '😀', 'alice', 'Zed', '用户']) {
        await storage.users.create(domain, username, credentials(username));
      }
      await storage.users.create('other.example', 'mallory', credentials('mallory'));
      assert.deepEqual(await storage.users.list(domain), ['Zed', 'alice', 'bob', 'zoë', 'Ärger', '用户', '😀']);
      assert.deepEqual(await storage.users.list('empty.example'), []);
    });

    it('deletes an account with its roster and key-value data, and nothing of other accounts', async () => {
      const domain = 'delete.example';
      await storage.users.create(domain, 'erin', credentials('erin'));
      await storage.users.create(domain, 'frank', credentials('frank'));
      for (const owner of [`erin@${domain}`, `frank@${domain}`]) {
        await storage.roster.setItem(owner, rosterItem('someone@example.org', { pendingIn: true, visible: false }));
        await storage.keyValue('last-activity').set(owner, 'seconds', 42);
        await storage.keyValue('private').set(owner, 'storage:bookmarks', '<storage/>');
      }
      const versionBefore = (await storage.roster.get(`erin@${domain}`)).version;

      assert.equal(await storage.users.delete(domain, 'erin'), true);
      assert.equal(await storage.users.exists(domain, 'erin'), false);
      const roster = await storage.roster.get(`erin@${domain}`);
      assert.deepEqual(roster.items, []);
      assert.equal(await storage.keyValue('last-activity').get(`erin@${domain}`, 'seconds'), undefined);
      assert.equal(await storage.keyValue('private').get(`erin@${domain}`, 'storage:bookmarks'), undefined);
      assert.equal(await storage.users.delete(domain, 'erin'), false);

      assert.equal(await storage.users.exists(domain, 'frank'), true);
      assert.equal((await storage.roster.get(`frank@${domain}`)).items.length, 1);
      assert.equal(await storage.keyValue('last-activity').get(`frank@${domain}`, 'seconds'), 42);
      assert.deepEqual(await storage.users.list(domain), ['frank']);

      // A recreated account must not reuse a roster version a client may have cached.
      await storage.users.create(domain, 'erin', credentials('erin again'));
      assert.ok(roster.version > versionBefore);
      assert.ok((await storage.roster.setItem(`erin@${domain}`, rosterItem('new@example.org'))) > roster.version);
    });

    it('stores unicode usernames and domains as given', async () => {
      await storage.users.create('exämple.org', 'jürgen', credentials('jürgen'));
      await storage.users.create('例え.jp', '用户', credentials('用户'));
      assert.deepEqual(await storage.users.get('exämple.org', 'jürgen'), credentials('jürgen'));
      assert.deepEqual(await storage.users.get('例え.jp', '用户'), credentials('用户'));
      assert.equal(await storage.users.exists('example.org', 'jurgen'), false);
    });
  });

  describe('roster', () => {
    it('starts empty at version 0', async () => {
      assert.deepEqual(await storage.roster.get('empty@example.org'), { version: 0, items: [] });
      assert.equal(await storage.roster.getItem('empty@example.org', 'x@example.org'), undefined);
    });

    it('stores every field of an item, visible or not, and bumps the version on each change', async () => {
      const owner = 'grace@example.org';
      const full = rosterItem('heidi@example.org', {
        name: 'Heidi', groups: ['Work', 'Friends'], subscription: 'both', ask: true, pendingIn: true, approved: true,
      });
      const hidden = rosterItem('ivan@example.org', { subscription: 'from', pendingIn: true, visible: false });
      assert.equal(await storage.roster.setItem(owner, full), 1);
      assert.equal(await storage.roster.setItem(owner, hidden), 2);
      assert.deepEqual(await storage.roster.getItem(owner, full.jid), full);
      assert.deepEqual(await storage.roster.get(owner), { version: 2, items: [full, hidden] });
    });

    it('replaces an item with the same JID', async () => {
      const owner = 'judy@example.org';
      await storage.roster.setItem(owner, rosterItem('ken@example.org', { name: 'Ken', groups: ['A'], ask: true }));
      const replaced = rosterItem('ken@example.org', { groups: ['B', 'C'], subscription: 'to' });
      assert.equal(await storage.roster.setItem(owner, replaced), 2);
      // The name is gone too: replacing is not merging.
      assert.deepEqual(await storage.roster.get(owner), { version: 2, items: [replaced] });
    });

    it('removes items, bumping the version only when something was removed', async () => {
      const owner = 'leo@example.org';
      await storage.roster.setItem(owner, rosterItem('mia@example.org'));
      await storage.roster.setItem(owner, rosterItem('ned@example.org'));
      assert.equal(await storage.roster.removeItem(owner, 'mia@example.org'), 3);
      assert.equal(await storage.roster.removeItem(owner, 'mia@example.org'), 3);
      assert.equal(await storage.roster.removeItem('nobody@example.org', 'mia@example.org'), 0);
      assert.equal(await storage.roster.getItem(owner, 'mia@example.org'), undefined);
      assert.deepEqual(await storage.roster.get(owner), { version: 3, items: [rosterItem('ned@example.org')] });
    });

    it('keeps rosters of different owners apart', async () => {
      await storage.roster.setItem('olga@example.org', rosterItem('pat@example.org', { name: 'for olga' }));
      await storage.roster.setItem('pat@example.org', rosterItem('olga@example.org'));
      assert.deepEqual(await storage.roster.get('olga@example.org'), {
        version: 1, items: [rosterItem('pat@example.org', { name: 'for olga' })],
      });
      assert.equal(await storage.roster.removeItem('olga@example.org', 'pat@example.org'), 2);
      assert.deepEqual(await storage.roster.get('pat@example.org'), { version: 1, items: [rosterItem('olga@example.org')] });
    });

    it('gives concurrent changes distinct, consecutive versions', async () => {
      const owner = 'quinn@example.org';
      const versions = await Promise.all(
        Array.from({ length: 20 }, (_, i) => storage.roster.setItem(owner, rosterItem(`contact${i}@example.org`))));
      assert.deepEqual([...versions].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1));
      const roster = await storage.roster.get(owner);
      assert.equal(roster.version, 20);
      assert.equal(roster.items.length, 20);
    });

    it('stores unicode JIDs, names and groups', async () => {
      const owner = 'jürgen@exämple.org';
      const item = rosterItem('ñandú@例え.jp', { name: 'Ñandú 🐦', groups: ['Freunde', '友達'] });
      await storage.roster.setItem(owner, item);
      assert.deepEqual(await storage.roster.getItem(owner, 'ñandú@例え.jp'), item);
      assert.equal(await storage.roster.getItem(owner, 'nandu@例え.jp'), undefined);
      assert.deepEqual((await storage.roster.get(owner)).items, [item]);
    });
  });

  describe('key-value', () => {
    it('stores JSON values and tells null from missing', async () => {
      const store = storage.keyValue('kv-values');
      const owner = 'rita@example.org';
      const values: Record<string, unknown> = {
        object: { seen: 1700000000, status: 'away', nested: { list: [1, 'two', null] } },
        array: ['a', 'b'],
        string: '<query xmlns="jabber:iq:private"/>',
        number: 3.5,
        boolean: false,
        null: null,
      };
      for (const [key, value] of Object.entries(values)) await store.set(owner, key, value);
      for (const [key, value] of Object.entries(values)) assert.deepEqual(await store.get(owner, key), value);
      assert.equal(await store.get(owner, 'missing'), undefined);
    });

    it('overwrites and deletes values; deleting a missing key is harmless', async () => {
      const store = storage.keyValue('kv-overwrite');
      await store.set('sam@example.org', 'k', 1);
      await store.set('sam@example.org', 'k', { now: 2 });
      assert.deepEqual(await store.get('sam@example.org', 'k'), { now: 2 });
      await store.delete('sam@example.org', 'k');
      assert.equal(await store.get('sam@example.org', 'k'), undefined);
      await store.delete('sam@example.org', 'k');
    });

    it('keeps namespaces and owners apart', async () => {
      const first = storage.keyValue('kv-first');
      const second = storage.keyValue('kv-second');
      await first.set('tom@example.org', 'shared-key', 'first');
      await second.set('tom@example.org', 'shared-key', 'second');
      await first.set('uma@example.org', 'shared-key', 'uma');
      assert.equal(await first.get('tom@example.org', 'shared-key'), 'first');
      assert.equal(await second.get('tom@example.org', 'shared-key'), 'second');
      await first.delete('tom@example.org', 'shared-key');
      assert.equal(await first.get('tom@example.org', 'shared-key'), undefined);
      assert.equal(await second.get('tom@example.org', 'shared-key'), 'second');
      assert.equal(await first.get('uma@example.org', 'shared-key'), 'uma');
      assert.equal(await storage.keyValue('kv-first').get('uma@example.org', 'shared-key'), 'uma');
    });

    it('stores unicode owners, keys and values', async () => {
      const store = storage.keyValue('kv-ünïcode');
      await store.set('jürgen@exämple.org', 'schlüssel', { text: 'grüße 👋', 'ключ': '值' });
      assert.deepEqual(await store.get('jürgen@exämple.org', 'schlüssel'), { text: 'grüße 👋', 'ключ': '值' });
      assert.equal(await store.get('jurgen@exämple.org', 'schlüssel'), undefined);
    });

    it('refuses values that have no JSON form', async () => {
      await assert.rejects(storage.keyValue('kv-invalid').set('val@example.org', 'k', undefined), TypeError);
    });
  });

  describe('offline messages', () => {
    it('lists a recipient\'s messages oldest first, with every field as stored', async () => {
      const store = storage.offline;
      const first = offlineMessage('ann@example.org', 'one', new Date('2024-01-02T03:04:05.678Z'));
      const second = offlineMessage('bea@example.org', 'twö <&> 😀', new Date('2023-12-31T23:59:59.999Z'));
      const third = offlineMessage('ann@example.org', 'three');
      const ids: number[] = [];
      for (const m of [first, second, third]) ids.push((await store.append('cai@example.org', m))!);
      assert.ok(ids[0]! < ids[1]! && ids[1]! < ids[2]!, 'ids grow in append order, whatever the stamps');
      assert.deepEqual(await store.list('cai@example.org'), [first, second, third].map((m, i) => ({ id: ids[i], ...m })));
      assert.deepEqual(await store.list('nobody@example.org'), []);
    });

    it('counts per sender-recipient pair and keeps recipients apart', async () => {
      const store = storage.offline;
      await store.append('dan@example.org', offlineMessage('eve@example.org', 'a'));
      await store.append('dan@example.org', offlineMessage('eve@example.org', 'b'));
      await store.append('dan@example.org', offlineMessage('fay@example.org', 'c'));
      await store.append('gus@example.org', offlineMessage('eve@example.org', 'd'));
      assert.equal(await store.count('dan@example.org', 'eve@example.org'), 2);
      assert.equal(await store.count('dan@example.org', 'fay@example.org'), 1);
      assert.equal(await store.count('gus@example.org', 'eve@example.org'), 1);
      assert.equal(await store.count('gus@example.org', 'fay@example.org'), 0);
      assert.deepEqual((await store.list('gus@example.org')).map((m) => m.stanza), [offlineMessage('eve@example.org', 'd').stanza]);
    });

    it('deletes a message once, and only the recipient\'s own', async () => {
      const store = storage.offline;
      const id = (await store.append('hal@example.org', offlineMessage('ivy@example.org', 'x')))!;
      assert.equal(await store.delete('other@example.org', id), false);
      assert.equal(await store.delete('hal@example.org', id), true);
      assert.equal(await store.delete('hal@example.org', id), false);
      assert.deepEqual(await store.list('hal@example.org'), []);
    });

    it('never reuses the id of a deleted message', async () => {
      const store = storage.offline;
      const newest = (await store.append('jon@example.org', offlineMessage('kim@example.org', 'x')))!;
      await store.delete('jon@example.org', newest);
      assert.ok((await store.append('jon@example.org', offlineMessage('kim@example.org', 'y')))! > newest);
    });

    it('refuses a message once the pair has reached the limit, other pairs unaffected', async () => {
      const store = storage.offline;
      assert.ok(await store.append('lea@example.org', offlineMessage('max@example.org', '1'), 2));
      assert.ok(await store.append('lea@example.org', offlineMessage('max@example.org', '2'), 2));
      assert.equal(await store.append('lea@example.org', offlineMessage('max@example.org', '3'), 2), undefined);
      assert.ok(await store.append('lea@example.org', offlineMessage('ned@example.org', '1'), 2));
      assert.equal(await store.append('lea@example.org', offlineMessage('ned@example.org', '0'), 0), undefined, 'a limit of 0 stores nothing');
      assert.equal(await store.count('lea@example.org', 'max@example.org'), 2);
    });

    it('does not overshoot the limit under concurrent appends', async () => {
      const store = storage.offline;
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.append('ola@example.org', offlineMessage('pia@example.org', String(i)), 5)));
      assert.equal(results.filter((id) => id !== undefined).length, 5);
      assert.equal(await store.count('ola@example.org', 'pia@example.org'), 5);
    });

    it('is deleted with the recipient\'s account; what the account sent to others stays', async () => {
      const domain = 'offline-delete.example';
      await storage.users.create(domain, 'quinn', credentials('quinn'));
      await storage.offline.append(`quinn@${domain}`, offlineMessage(`rose@${domain}`, 'for quinn'));
      await storage.offline.append(`rose@${domain}`, offlineMessage(`quinn@${domain}`, 'from quinn'));
      await storage.users.delete(domain, 'quinn');
      assert.deepEqual(await storage.offline.list(`quinn@${domain}`), []);
      assert.equal((await storage.offline.list(`rose@${domain}`)).length, 1);
    });

    it('keeps messages across a restart', async () => {
      const kept = offlineMessage('sid@example.org', 'still here');
      const id = await storage.offline.append('tea@example.org', kept);
      await storage.close();
      storage = await openStorage(backend.config, backend.dataDir);
      assert.deepEqual(await storage.offline.list('tea@example.org'), [{ id, ...kept }]);
    });
  });

  describe('pubsub', () => {
    const service = 'pubsub.example.org';
    const node = (name: string, changes: Partial<PubSubNodeRecord> = {}): PubSubNodeRecord => ({
      service, node: name, config: { title: name, maxItems: 10, collection: [] }, createdAt: new Date('2024-02-03T04:05:06.789Z'), ...changes,
    });
    const item = (id: string, payload = `<state xmlns='http://asterisk.org' eid='00:11:22:33:44:55'>INUSE</state>`): PubSubItemRecord => ({
      id, publisher: 'ast1@example.org', payload, publishedAt: new Date('2024-02-03T04:05:07.000Z'),
    });
    const ids = async (name: string, query?: { ids?: string[]; max?: number }) => (await storage.pubsub.getItems(service, name, query)).map((i) => i.id);

    it('creates a node once, with its creator as owner; a duplicate keeps the first', async () => {
      const store = storage.pubsub;
      assert.equal(await store.createNode(node('n1', { creator: 'ann@example.org' }), 'ann@example.org'), true);
      assert.equal(await store.createNode(node('n1', { config: { title: 'other' } }), 'bob@example.org'), false);
      assert.equal(await store.createNode(node('service-owned')), true);
      const state = await store.loadService(service);
      assert.deepEqual(state.nodes.filter((n) => n.node === 'n1' || n.node === 'service-owned'), [
        node('n1', { creator: 'ann@example.org' }), node('service-owned'),
      ]);
      assert.deepEqual(state.affiliations.filter((a) => a.node === 'n1'), [{ node: 'n1', jid: 'ann@example.org', affiliation: 'owner' }]);
      assert.deepEqual(state.affiliations.filter((a) => a.node === 'service-owned'), []);
      assert.deepEqual(await store.loadService('pubsub.elsewhere.org'), { nodes: [], affiliations: [], subscriptions: [] });
    });

    it('replaces a configuration and sets, changes and removes affiliations', async () => {
      const store = storage.pubsub;
      await store.createNode(node('n2'), 'ann@example.org');
      await store.setNodeConfig(service, 'n2', { title: 'renamed', collection: ['c'] });
      await store.setAffiliation(service, 'n2', 'bob@example.org', 'publisher');
      await store.setAffiliation(service, 'n2', 'bob@example.org', 'outcast');
      await store.setAffiliation(service, 'n2', 'cat@example.org', 'member');
      await store.setAffiliation(service, 'n2', 'cat@example.org', 'none');
      await store.setAffiliation(service, 'n2', 'nobody@example.org', 'none');
      const state = await store.loadService(service);
      assert.deepEqual(state.nodes.find((n) => n.node === 'n2')!.config, { title: 'renamed', collection: ['c'] });
      assert.deepEqual(state.affiliations.filter((a) => a.node === 'n2'), [
        { node: 'n2', jid: 'ann@example.org', affiliation: 'owner' },
        { node: 'n2', jid: 'bob@example.org', affiliation: 'outcast' },
      ]);
    });

    it('stores subscriptions by subid with their options, replaces and deletes them', async () => {
      const store = storage.pubsub;
      await store.createNode(node('n3'));
      const first: PubSubSubscriptionRecord = { node: 'n3', jid: 'dan@example.org', subid: 's1', state: 'pending', options: { expire: 'presence' } };
      const second: PubSubSubscriptionRecord = { node: 'n3', jid: 'dan@example.org/res', subid: 's2', state: 'subscribed', options: {} };
      await store.setSubscription(service, first);
      await store.setSubscription(service, second);
      await store.setSubscription(service, { ...first, state: 'subscribed' });
      await store.deleteSubscription(service, 'n3', 's2');
      await store.deleteSubscription(service, 'n3', 'missing');
      const state = await store.loadService(service);
      assert.deepEqual(state.subscriptions.filter((s) => s.node === 'n3'), [{ ...first, state: 'subscribed' }]);
    });

    it('keeps items newest first; republishing an id replaces the item and makes it the newest', async () => {
      const store = storage.pubsub;
      await store.createNode(node('n4'));
      for (const id of ['a', 'b', 'c']) await store.publishItem(service, 'n4', item(id));
      await store.publishItem(service, 'n4', item('a', `<mailbox xmlns='http://asterisk.org'><NEWMSGS>2</NEWMSGS></mailbox>`));
      assert.deepEqual(await ids('n4'), ['a', 'c', 'b']);
      assert.deepEqual((await store.getItems(service, 'n4', { max: 1 }))[0], item('a', `<mailbox xmlns='http://asterisk.org'><NEWMSGS>2</NEWMSGS></mailbox>`));
      assert.deepEqual(await ids('n4', { max: 2 }), ['a', 'c']);
      assert.deepEqual(await ids('n4', { ids: ['b', 'missing', 'a', 'b'] }), ['a', 'b']);
      assert.deepEqual(await ids('n4', { max: 0 }), []);
      assert.deepEqual(await ids('nothing-here'), []);
    });

    it('keeps only the newest max items, also under concurrent publishes', async () => {
      const store = storage.pubsub;
      await store.createNode(node('n5'));
      for (const id of ['a', 'b', 'c', 'd']) await store.publishItem(service, 'n5', item(id), 2);
      assert.deepEqual(await ids('n5'), ['d', 'c']);
      await Promise.all(Array.from({ length: 20 }, (_, i) => store.publishItem(service, 'n5', item(`x${i}`), 3)));
      assert.equal((await ids('n5')).length, 3);
    });

    it('retracts one item, purges all, and keeps unicode payloads as written', async () => {
      const store = storage.pubsub;
      await store.createNode(node('n6'));
      const odd = item('ü 😀 <&>', `<note xmlns='urn:x'>twö &lt;&amp;&gt; 😀</note>`);
      await store.publishItem(service, 'n6', odd);
      await store.publishItem(service, 'n6', item('b'));
      assert.deepEqual(await store.getItems(service, 'n6', { ids: [odd.id] }), [odd]);
      assert.equal(await store.retractItem(service, 'n6', 'b'), true);
      assert.equal(await store.retractItem(service, 'n6', 'b'), false);
      assert.deepEqual(await ids('n6'), [odd.id]);
      await store.purgeItems(service, 'n6');
      assert.deepEqual(await ids('n6'), []);
    });

    it('deletes a node with its affiliations, subscriptions and items, and nothing of other nodes', async () => {
      const store = storage.pubsub;
      for (const name of ['gone', 'kept']) {
        await store.createNode(node(name), 'eve@example.org');
        await store.setSubscription(service, { node: name, jid: 'fay@example.org', subid: `sub-${name}`, state: 'subscribed', options: {} });
        await store.publishItem(service, name, item('i'));
      }
      await store.createNode({ ...node('gone'), service: 'pubsub.other.org' });
      assert.equal(await store.deleteNode(service, 'gone'), true);
      assert.equal(await store.deleteNode(service, 'gone'), false);
      const state = await store.loadService(service);
      assert.equal(state.nodes.some((n) => n.node === 'gone'), false);
      assert.equal(state.affiliations.some((a) => a.node === 'gone'), false);
      assert.equal(state.subscriptions.some((s) => s.node === 'gone'), false);
      assert.deepEqual(await ids('gone'), []);
      assert.deepEqual(await ids('kept'), ['i']);
      assert.equal((await store.loadService('pubsub.other.org')).nodes.length, 1, 'the same name on another service stays');
    });

    it('keeps nodes, affiliations, subscriptions and items across a restart', async () => {
      await storage.pubsub.createNode(node('durable'), 'gil@example.org');
      await storage.pubsub.setSubscription(service, { node: 'durable', jid: 'hal@example.org', subid: 'sd', state: 'subscribed', options: { deliver: true } });
      await storage.pubsub.publishItem(service, 'durable', item('one'));
      await storage.close();
      storage = await openStorage(backend.config, backend.dataDir);
      const state = await storage.pubsub.loadService(service);
      assert.deepEqual(state.nodes.find((n) => n.node === 'durable'), node('durable'));
      assert.ok(state.affiliations.some((a) => a.node === 'durable' && a.jid === 'gil@example.org' && a.affiliation === 'owner'));
      assert.ok(state.subscriptions.some((s) => s.subid === 'sd' && s.options.deliver === true));
      assert.deepEqual(await storage.pubsub.getItems(service, 'durable'), [item('one')]);
    });
  });

  describe('persistence and migrations', () => {
    it('is at the latest schema version', async () => {
      assert.equal(await storage.schemaVersion(), latestSchemaVersion);
    });

    it('keeps everything across a restart', async () => {
      await storage.users.create('restart.example', 'victor', credentials('victor'));
      await storage.roster.setItem('victor@restart.example', rosterItem('wendy@restart.example', { name: 'Wendy' }));
      await storage.keyValue('restart').set('victor@restart.example', 'k', { kept: true });
      await storage.close();
      storage = await openStorage(backend.config, backend.dataDir);

      assert.deepEqual(await storage.users.get('restart.example', 'victor'), credentials('victor'));
      assert.deepEqual(await storage.roster.get('victor@restart.example'), {
        version: 1, items: [rosterItem('wendy@restart.example', { name: 'Wendy' })],
      });
      assert.deepEqual(await storage.keyValue('restart').get('victor@restart.example', 'k'), { kept: true });
      assert.equal(await storage.schemaVersion(), latestSchemaVersion);
      if (backend.config.type === 'sqlite') assert.ok(existsSync(join(backend.dataDir, 'switchboard.sqlite')));
    });

    it('opens an up-to-date database again without migrating it twice', async () => {
      const second = await openStorage(backend.config, backend.dataDir);
      try {
        assert.equal(await second.schemaVersion(), latestSchemaVersion);
        assert.equal(await second.users.exists('restart.example', 'victor'), true);
      } finally {
        await second.close();
      }
      assert.equal(await storage.schemaVersion(), latestSchemaVersion);
    });

    it('migrates a new database once when servers open it at the same time', async () => {
      const config = await backend.newDatabase();
      const opened = await Promise.all([openStorage(config, backend.dataDir), openStorage(config, backend.dataDir)]);
      try {
        for (const each of opened) assert.equal(await each.schemaVersion(), latestSchemaVersion);
        assert.equal(await opened[0]!.users.create('example.org', 'xena', credentials('xena')), true);
        assert.equal(await opened[1]!.users.exists('example.org', 'xena'), true);
      } finally {
        for (const each of opened) await each.close();
      }
    });

    it('refuses a database written by a newer version', async () => {
      const config = await backend.newDatabase();
      await (await openStorage(config, backend.dataDir)).close();
      await backend.executeRaw(config, `INSERT INTO schema_version (version) VALUES (${latestSchemaVersion + 1})`);
      await assert.rejects(openStorage(config, backend.dataDir), /newer than this Switchboard knows/);
    });

    it('can be closed twice', async () => {
      const config = await backend.newDatabase();
      const extra = await openStorage(config, backend.dataDir);
      await extra.close();
      await extra.close();
    });
  });
}

describe('SQLite storage', () => storageContract(sqliteBackend));

const postgresUrl = process.env.SWITCHBOARD_TEST_PG_URL;
if (postgresUrl) {
  describe('PostgreSQL storage', () => storageContract(() => postgresBackend(postgresUrl)));
} else if (process.env.CI) {
  describe('PostgreSQL storage', () => {
    it('runs in CI', () => {
      assert.fail('SWITCHBOARD_TEST_PG_URL is not set: CI must test the PostgreSQL backend (.ci/run starts one)');
    });
  });
} else {
  describe('PostgreSQL storage', { skip: 'set SWITCHBOARD_TEST_PG_URL=postgres://user:pass@host:port/db to run it' }, () => undefined);
}

describe('openStorage', () => {
  it('names the PostgreSQL server it cannot reach, without the password', async () => {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    await assert.rejects(openStorage({ type: 'postgres', url: 'postgres://someone:hunter2@127.0.0.1:1/switchboard' }, tmpdir()), (error: Error) => {
      assert.match(error.message, /PostgreSQL at someone@127\.0\.0\.1:1\/switchboard/);
      assert.doesNotMatch(error.message, /hunter2/);
      return true;
    });
  });
});
