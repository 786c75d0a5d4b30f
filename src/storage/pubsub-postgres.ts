// The PubSub store (types.ts) on PostgreSQL. Hot statements (publish, item reads) are named so
// each pooled connection plans them once; writes that belong together are one transaction or
// one statement.
import type pg from 'pg';
import type { PubSubAffiliation, PubSubItemRecord, PubSubStore, PubSubSubscriptionRecord } from './types.js';

interface ItemRow { item_id: string; publisher: string; published_at: Date; payload: string }

const itemColumns = 'item_id, publisher, published_at, payload';

function itemFromRow(row: ItemRow): PubSubItemRecord {
  return { id: row.item_id, publisher: row.publisher, payload: row.payload, publishedAt: row.published_at };
}

type Transaction = <T>(work: (client: pg.PoolClient) => Promise<T>) => Promise<T>;

export function postgresPubSubStore(pool: pg.Pool, transaction: Transaction): PubSubStore {
  const named = <R extends pg.QueryResultRow>(name: string, text: string, values: unknown[]) => pool.query<R>({ name, text, values });

  return {
    async loadService(service) {
      const [nodes, affiliations, subscriptions] = await Promise.all([
        pool.query<{ node: string; config_json: string; creator: string | null; created_at: Date }>(
          'SELECT node, config_json, creator, created_at FROM pubsub_nodes WHERE service = $1 ORDER BY node', [service]),
        pool.query<{ node: string; jid: string; affiliation: PubSubAffiliation }>(
          'SELECT node, jid, affiliation FROM pubsub_affiliations WHERE service = $1 ORDER BY node, jid', [service]),
        pool.query<{ node: string; subid: string; jid: string; state: PubSubSubscriptionRecord['state']; options_json: string }>(
          'SELECT node, subid, jid, state, options_json FROM pubsub_subscriptions WHERE service = $1 ORDER BY node, subid', [service]),
      ]);
      return {
        nodes: nodes.rows.map((row) => ({
          service, node: row.node, config: JSON.parse(row.config_json) as Record<string, unknown>,
          ...(row.creator !== null ? { creator: row.creator } : {}), createdAt: row.created_at,
        })),
        affiliations: affiliations.rows,
        subscriptions: subscriptions.rows.map((row) => ({
          node: row.node, subid: row.subid, jid: row.jid, state: row.state, options: JSON.parse(row.options_json) as Record<string, unknown>,
        })),
      };
    },
    async createNode(record, owner) {
      return transaction(async (client) => {
        const { rowCount } = await client.query(
          'INSERT INTO pubsub_nodes (service, node, config_json, creator, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING',
          [record.service, record.node, JSON.stringify(record.config), record.creator ?? null, record.createdAt]);
        if (rowCount !== 1) return false;
        if (owner) {
          await client.query('INSERT INTO pubsub_affiliations (service, node, jid, affiliation) VALUES ($1, $2, $3, $4)',
            [record.service, record.node, owner, 'owner']);
        }
        return true;
      });
    },
    async setNodeConfig(service, node, config) {
      await pool.query('UPDATE pubsub_nodes SET config_json = $3 WHERE service = $1 AND node = $2', [service, node, JSON.stringify(config)]);
    },
    async deleteNode(service, node) {
      return transaction(async (client) => {
        for (const table of ['pubsub_affiliations', 'pubsub_subscriptions', 'pubsub_items']) {
          await client.query(`DELETE FROM ${table} WHERE service = $1 AND node = $2`, [service, node]);
        }
        const { rowCount } = await client.query('DELETE FROM pubsub_nodes WHERE service = $1 AND node = $2', [service, node]);
        return rowCount === 1;
      });
    },
    async setAffiliation(service, node, jid, affiliation) {
      if (affiliation === 'none') {
        await pool.query('DELETE FROM pubsub_affiliations WHERE service = $1 AND node = $2 AND jid = $3', [service, node, jid]);
        return;
      }
      await pool.query(`
        INSERT INTO pubsub_affiliations (service, node, jid, affiliation) VALUES ($1, $2, $3, $4)
        ON CONFLICT (service, node, jid) DO UPDATE SET affiliation = excluded.affiliation`, [service, node, jid, affiliation]);
    },
    async setSubscription(service, sub) {
      await named('pubsub-set-subscription', `
        INSERT INTO pubsub_subscriptions (service, node, subid, jid, state, options_json) VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (service, node, subid) DO UPDATE SET jid = excluded.jid, state = excluded.state, options_json = excluded.options_json`,
      [service, sub.node, sub.subid, sub.jid, sub.state, JSON.stringify(sub.options)]);
    },
    async deleteSubscription(service, node, subid) {
      await named('pubsub-delete-subscription', 'DELETE FROM pubsub_subscriptions WHERE service = $1 AND node = $2 AND subid = $3', [service, node, subid]);
    },
    async publishItem(service, node, item, maxItems) {
      // A new seq from the sequence on insert and on replace: the item becomes the newest.
      const upsert = `
        INSERT INTO pubsub_items (service, node, item_id, publisher, published_at, payload) VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (service, node, item_id) DO UPDATE SET
          seq = nextval('pubsub_item_seq'), publisher = excluded.publisher, published_at = excluded.published_at, payload = excluded.payload`;
      const values = [service, node, item.id, item.publisher, item.publishedAt, item.payload];
      if (maxItems === undefined) {
        await named('pubsub-publish', upsert, values);
        return;
      }
      await transaction(async (client) => {
        // Under READ COMMITTED two trims could each keep a different newest set: locking the
        // node's row makes concurrent publishes to one node take turns.
        await client.query({ name: 'pubsub-lock-node', text: 'SELECT 1 FROM pubsub_nodes WHERE service = $1 AND node = $2 FOR UPDATE', values: [service, node] });
        await client.query({ name: 'pubsub-publish', text: upsert, values });
        await client.query({
          name: 'pubsub-trim',
          // Everything at or below the seq of the first item past max_items, found on the age index.
          text: `DELETE FROM pubsub_items WHERE service = $1 AND node = $2 AND seq <= (
                   SELECT seq FROM pubsub_items WHERE service = $1 AND node = $2 ORDER BY seq DESC LIMIT 1 OFFSET $3)`,
          values: [service, node, maxItems],
        });
      });
    },
    async getItems(service, node, query = {}) {
      if (query.ids) {
        const { rows } = await named<ItemRow>('pubsub-items-by-id',
          `SELECT ${itemColumns} FROM pubsub_items WHERE service = $1 AND node = $2 AND item_id = ANY($3) ORDER BY seq DESC`,
          [service, node, query.ids]);
        return rows.map(itemFromRow);
      }
      // LIMIT NULL is no limit.
      const { rows } = await named<ItemRow>('pubsub-items',
        `SELECT ${itemColumns} FROM pubsub_items WHERE service = $1 AND node = $2 ORDER BY seq DESC LIMIT $3`,
        [service, node, query.max ?? null]);
      return rows.map(itemFromRow);
    },
    async retractItem(service, node, id) {
      const { rowCount } = await pool.query('DELETE FROM pubsub_items WHERE service = $1 AND node = $2 AND item_id = $3', [service, node, id]);
      return rowCount === 1;
    },
    async purgeItems(service, node) {
      await pool.query('DELETE FROM pubsub_items WHERE service = $1 AND node = $2', [service, node]);
    },
  };
}
