// `switchboard check` for the SIP presence bridge, without the server running: the mapping file
// as the bridge would read it, the table reachable (counted, never taken), and for the external
// output the BOSH connection manager answering a session request.
import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { ModuleCheck } from '../../core/module-definition.js';
import { parseMapping } from './mapping.js';
import { NS_HTTPBIND } from './bosh-client.js';

export interface CheckOptions {
  mapping?: string;
  output: 'internal' | 'external';
  domain?: string;
  table: { enabled: boolean; driver: 'sqlite' | 'postgres'; path?: string; url?: string; name: string };
  http: { enabled: boolean };
  external: { url?: string };
}

async function waitingRows(t: CheckOptions['table']): Promise<number> {
  const sql = `SELECT count(*) AS n FROM ${t.name}`;
  if (t.driver === 'sqlite') {
    const db = new Database(t.path!, { fileMustExist: true, readonly: true });
    try {
      return Number(db.prepare<[], { n: number }>(sql).get()!.n);
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: t.url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return Number((await client.query<{ n: string }>(sql)).rows[0]!.n);
  } finally {
    await client.end();
  }
}

/** Opens a BOSH session and ends it at once: the other server answers BOSH at that URL. */
async function boshAnswers(url: string, domain: string): Promise<void> {
  const rid = 1_000_000 + Math.floor(Math.random() * 1_000_000);
  const post = async (attrs: string) => {
    const res = await fetch(url, {
      method: 'POST', headers: { 'Content-Type': 'text/xml; charset=utf-8' }, signal: AbortSignal.timeout(10_000),
      body: `<body xmlns='${NS_HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh' ${attrs}/>`,
    });
    return { status: res.status, text: await res.text() };
  };
  const created = await post(`rid='${rid}' to='${domain}' wait='1' hold='1' ver='1.6' xmpp:version='1.0'`);
  const sid = /\bsid=['"]([^'"]+)['"]/.exec(created.text)?.[1];
  if (created.status !== 200 || !sid) throw new Error(`HTTP ${created.status}, no BOSH session in the answer`);
  await post(`rid='${rid + 1}' sid='${sid}' type='terminate'`).catch(() => undefined);
}

export async function checkBridge(o: CheckOptions): Promise<ModuleCheck> {
  const lines: string[] = [];
  const problems: string[] = [];
  const warnings: string[] = [];
  try {
    const mapping = parseMapping(readFileSync(o.mapping!, 'utf8'));
    lines.push(`mapping ${o.mapping}: ${mapping.phones.size} phones, output ${o.output}`);
    for (const p of mapping.problems) warnings.push(`mapping ${o.mapping} line ${p.line}: ${p.message} (skipped)`);
  } catch (e) {
    problems.push(`mapping ${o.mapping}: ${(e as Error).message}`);
  }
  if (o.table.enabled) {
    const where = o.table.driver === 'sqlite' ? `${o.table.path} table ${o.table.name}` : `PostgreSQL table ${o.table.name}`;
    try {
      lines.push(`${where}: readable, ${await waitingRows(o.table)} rows waiting`);
    } catch (e) {
      problems.push(`${where}: ${(e as Error).message}`);
    }
  }
  if (o.http.enabled) lines.push('HTTP input: POST /sip-presence/events');
  if (o.output === 'external') {
    const url = o.external.url!;
    try {
      await boshAnswers(url, o.domain ?? new URL(url).hostname);
      lines.push(`BOSH ${url}: answers`);
    } catch (e) {
      problems.push(`BOSH ${url}: ${(e as Error).message}`);
    }
  }
  return { lines, problems, warnings };
}
