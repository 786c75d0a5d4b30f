// The ephemeral-account overlay: data of accounts marked ephemeral (anonymous logins) stays in
// memory and is forgotten at their end; everyone else's goes to the database as before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStorage } from './sqlite.js';
import { withEphemeralAccounts } from './ephemeral.js';
import type { RosterItem } from './types.js';

const item = (jid: string): RosterItem => ({ jid, groups: ['g'], subscription: 'none', ask: false, pendingIn: false, approved: false, visible: true });

test('ephemeral accounts never reach the database; others do', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-ephemeral-'));
  const database = await openSqliteStorage(join(dir, 'db.sqlite'));
  try {
    const { storage, ephemeral } = withEphemeralAccounts(database);
    const anon = 'a1b2@guest.example';
    ephemeral.begin(anon);
    assert.equal(await storage.roster.setItem(anon, item('bob@example.com')), 1);
    assert.equal((await storage.roster.get(anon)).items.length, 1);
    await storage.keyValue('last-activity').set(anon, 'last', { at: 1 });
    assert.deepEqual(await storage.keyValue('last-activity').get(anon, 'last'), { at: 1 });
    assert.equal(await storage.offline.append(anon, { sender: 'bob@example.com', stamp: new Date(), stanza: '<message/>' }), undefined);
    assert.equal(await storage.pubsub.createNode({ service: anon, node: 'urn:xmpp:avatar:data', config: {}, createdAt: new Date() }), true);
    await storage.pubsub.publishItem(anon, 'urn:xmpp:avatar:data', { id: 'i1', publisher: anon, payload: '<data/>', publishedAt: new Date() }, 1);
    assert.equal((await storage.pubsub.getItems(anon, 'urn:xmpp:avatar:data')).length, 1);

    assert.deepEqual((await database.roster.get(anon)).items, []);
    assert.equal(await database.keyValue('last-activity').get(anon, 'last'), undefined);
    assert.deepEqual((await database.pubsub.loadService(anon)).nodes, []);

    await storage.roster.setItem('carol@example.com', item('bob@example.com'));
    assert.equal((await database.roster.get('carol@example.com')).items.length, 1, 'a registered account is stored');
    assert.equal(storage.type, 'sqlite');

    ephemeral.end(anon, 10);
    assert.deepEqual((await storage.roster.get(anon)).items, [], 'forgotten at the end');
    await storage.keyValue('last-activity').set(anon, 'late', 1);
    assert.equal(await database.keyValue('last-activity').get(anon, 'late'), undefined, 'a late write stays out of the database');
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(ephemeral.has(anon), false);
  } finally {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
