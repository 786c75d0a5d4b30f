// Storage backends for end-to-end tests: SQLite always, PostgreSQL when SWITCHBOARD_TEST_PG_URL
// names a database (each use gets a fresh schema). In CI a missing PostgreSQL is a failure.
import pg from 'pg';

export interface Backend {
  name: 'sqlite' | 'postgres';
  storage(): Promise<Record<string, unknown>>;
  cleanup(): Promise<void>;
}

export function backends(): Backend[] {
  const list: Backend[] = [{ name: 'sqlite', storage: async () => ({ type: 'sqlite' }), cleanup: async () => {} }];
  const url = process.env.SWITCHBOARD_TEST_PG_URL;
  if (!url) {
    if (process.env.CI) throw new Error('SWITCHBOARD_TEST_PG_URL must be set in CI: the PostgreSQL backend is part of the suite');
    return list;
  }
  const schemas: string[] = [];
  list.push({
    name: 'postgres',
    async storage() {
      const schema = `switchboard_e2e_${process.pid}_${Date.now()}_${schemas.length}`;
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      try { await admin.query(`CREATE SCHEMA ${schema}`); } finally { await admin.end(); }
      schemas.push(schema);
      const u = new URL(url);
      u.searchParams.set('options', `-c search_path=${schema}`);
      return { type: 'postgres', url: u.toString() };
    },
    async cleanup() {
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      try { for (const s of schemas.splice(0)) await admin.query(`DROP SCHEMA ${s} CASCADE`); } finally { await admin.end(); }
    },
  });
  return list;
}
