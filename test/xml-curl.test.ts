// FreeSWITCH mod_xml_curl against Switchboard's xml-curl endpoint, with the exact requests
// mod_xml_curl makes: its fixed fields unencoded, then the event headers URL-encoded as
// switch_url_encode does (SWITCH_URL_UNSAFE), as mod_callcenter asks at load (no event: all
// queues) and for `callcenter_config queue load <name>` (CC-Queue). The queues table has seed
// 004's columns, in Switchboard's own database (SQLite, and PostgreSQL when configured).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { SaxesParser } from 'saxes';
import { startTestServer, type TestServer } from './support/server.js';
import { backends } from './support/postgres.js';
import { startFromFile, apiClient, type FileServer } from './support/http-api.js';
import { TokenStore } from '../src/modules/http-api/tokens.js';

interface Node { name: string; attrs: Record<string, string>; children: Node[] }

function parseXml(text: string): Node {
  const parser = new SaxesParser();
  const stack: Node[] = [];
  let root: Node | undefined;
  parser.on('opentag', (tag) => {
    const node: Node = { name: tag.name, attrs: tag.attributes as Record<string, string>, children: [] };
    if (stack.length) stack[stack.length - 1]!.children.push(node); else root = node;
    stack.push(node);
  });
  parser.on('closetag', () => { stack.pop(); });
  parser.write(text).close();
  return root!;
}

const child = (n: Node, name: string, attr?: [string, string]) => n.children.find((c) => c.name === name && (!attr || c.attrs[attr[0]] === attr[1]));
const params = (n: Node) => Object.fromEntries(n.children.filter((c) => c.name === 'param').map((p) => [p.attrs.name, p.attrs.value]));

/** switch_url_encode: bytes below space, above ~, and SWITCH_URL_UNSAFE become %XX (upper-case hex). */
function fsEncode(value: string): string {
  const unsafe = '\r\n #%&+:;<=>?@[\\]^`{|}"';
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += byte < 0x20 || byte > 0x7e || unsafe.includes(c) ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}` : c;
  }
  return out;
}

/** The body mod_xml_curl posts (xml_url_fetch + switch_event_build_param_string). */
function fsBody(key: string, event?: Record<string, string>, section = 'configuration'): string {
  const basic = `hostname=fs1&section=${section}&tag_name=configuration&key_name=name&key_value=${key}`;
  if (!event) return basic;
  const headers = {
    'Event-Name': 'REQUEST_PARAMS', 'Core-UUID': '3f1f4c3e-64b2-4b8e-9d1b-9b8f0e2d7a11', 'FreeSWITCH-Hostname': 'fs1.example.com',
    'FreeSWITCH-Switchname': 'fs1', 'FreeSWITCH-IPv4': '192.0.2.10', 'FreeSWITCH-IPv6': '::1',
    'Event-Date-Local': '2016-03-28 19:32:21', 'Event-Date-GMT': 'Mon, 28 Mar 2016 17:32:21 GMT', 'Event-Date-Timestamp': '1459186341128783',
    'Event-Calling-File': 'mod_callcenter.c', 'Event-Calling-Function': 'load_queue', 'Event-Calling-Line-Number': '731', 'Event-Sequence': '523',
    ...event,
  };
  return `${basic}&${Object.entries(headers).map(([k, v]) => `${k}=${fsEncode(v)}`).join('&')}`;
}

const SPECIAL = `sales & <support> "vip" 'x'@default`;

/** The README's CREATE TABLE (seed 004's columns); SQLite has no serial type. */
function createTable(kind: 'sqlite' | 'postgres'): string {
  return `CREATE TABLE callcenter_queues (
    queue_id ${kind === 'postgres' ? 'serial primary key' : 'INTEGER PRIMARY KEY'},
    name VARCHAR(255) not null,
    strategy VARCHAR(100) default 'longest-idle-agent',
    moh_sound VARCHAR(255) default 'local_stream://moh',
    announce_sound VARCHAR(255) default NULL,
    announce_frequency VARCHAR(5) default NULL,
    time_base_score VARCHAR(255) DEFAULT 'queue',
    tier_rules_apply VARCHAR(25) DEFAULT 'false',
    tier_rule_wait_second VARCHAR(4) DEFAULT '300',
    tier_rule_wait_multiply_level VARCHAR(5) DEFAULT 'true',
    tier_rule_no_agent_no_wait VARCHAR(255) DEFAULT 'false',
    discard_abandoned_after VARCHAR(5) DEFAULT '60',
    abandoned_resume_allowed VARCHAR(5) DEFAULT 'false',
    max_wait_time VARCHAR(25) DEFAULT '0',
    max_wait_time_with_no_agent VARCHAR(10) DEFAULT '0',
    max_wait_time_with_no_agent_time_reached VARCHAR(10) DEFAULT '0',
    record_template VARCHAR(255) DEFAULT NULL
  )`;
}

const INSERTS = [
  `INSERT INTO callcenter_queues (name) VALUES ('support@default')`,
  `INSERT INTO callcenter_queues (name, strategy, announce_sound, announce_frequency, max_wait_time, record_template)
     VALUES ('${SPECIAL.replaceAll("'", "''")}', 'ring-all', '/sounds/please-hold.wav', '30', '120', '$\${base_dir}/recordings/\${strftime(%Y-%m-%d-%H-%M-%S)}.\${destination_number}.wav')`,
];

for (const backend of backends()) {
  describe(`FreeSWITCH mod_xml_curl (${backend.name})`, () => {
    let t: TestServer;
    let sql: (statement: string) => Promise<void>;
    let closeSql: () => Promise<void>;
    const post = (body: string, headers: Record<string, string> = {}) => fetch(`http://127.0.0.1:${t.httpPort}/freeswitch/xml-curl`, {
      method: 'POST',
      // What libcurl sends for mod_xml_curl: its user agent, the form content type.
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'freeswitch-xml/1.0', ...headers },
      body,
    });

    before(async () => {
      t = await startTestServer({ storage: await backend.storage(), 'xml-curl': { enabled: true, settings: { 'cc-instance-id': 'single_box', 'truncate-agents-on-load': 'false' } } });
      if (t.config.storage.type === 'postgres') {
        const client = new pg.Client({ connectionString: t.config.storage.url });
        await client.connect();
        sql = async (s) => { await client.query(s); };
        closeSql = () => client.end();
      } else {
        const db = new Database(join(t.dataDir, 'switchboard.sqlite'));
        sql = async (s) => { db.exec(s); };
        closeSql = async () => { db.close(); };
      }
      await sql(createTable(backend.name));
      for (const insert of INSERTS) await sql(insert);
    });
    after(async () => {
      await closeSql();
      await t.stop(true);
      await backend.cleanup();
    });

    it('answers the request of mod_callcenter at load with every queue and the settings', async () => {
      const res = await post(fsBody('callcenter.conf'));
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/xml/);
      const text = await res.text();
      assert.ok(text.startsWith('<?xml version="1.0" encoding="UTF-8" standalone="no"?>'));
      const doc = parseXml(text);
      assert.equal(doc.name, 'document');
      assert.equal(doc.attrs.type, 'freeswitch/xml');
      const configuration = child(child(doc, 'section', ['name', 'configuration'])!, 'configuration')!;
      assert.equal(configuration.attrs.name, 'callcenter.conf');
      assert.deepEqual(params(child(configuration, 'settings')!), { 'cc-instance-id': 'single_box', 'truncate-agents-on-load': 'false' });
      const queues = child(configuration, 'queues')!.children;
      assert.deepEqual(queues.map((q) => q.attrs.name), [SPECIAL, 'support@default'].sort());
      assert.deepEqual(params(queues.find((q) => q.attrs.name === 'support@default')!), {
        strategy: 'longest-idle-agent', 'moh-sound': 'local_stream://moh', 'time-base-score': 'queue', 'tier-rules-apply': 'false',
        'tier-rule-wait-second': '300', 'tier-rule-wait-multiply-level': 'true', 'tier-rule-no-agent-no-wait': 'false',
        'discard-abandoned-after': '60', 'abandoned-resume-allowed': 'false', 'max-wait-time': '0', 'max-wait-time-with-no-agent': '0',
        'max-wait-time-with-no-agent-time-reached': '0',
      }, 'NULL columns (announce-sound, record-template) are left out');
    });

    it('answers `callcenter_config queue load` (CC-Queue) with that queue, XML special characters escaped', async () => {
      const res = await post(fsBody('callcenter.conf', { 'CC-Queue': SPECIAL }));
      assert.equal(res.status, 200);
      const text = await res.text();
      assert.ok(text.includes(`name='sales &amp; &lt;support&gt; &quot;vip&quot; &apos;x&apos;@default'`), text);
      const queues = child(child(child(parseXml(text), 'section')!, 'configuration')!, 'queues')!.children;
      assert.equal(queues.length, 1);
      assert.equal(queues[0]!.attrs.name, SPECIAL);
      const p = params(queues[0]!);
      assert.equal(p.strategy, 'ring-all');
      assert.equal(p['announce-sound'], '/sounds/please-hold.wav');
      assert.equal(p['announce-frequency'], '30');
      assert.equal(p['max-wait-time'], '120');
      assert.equal(p['record-template'], '$${base_dir}/recordings/${strftime(%Y-%m-%d-%H-%M-%S)}.${destination_number}.wav');
    });

    it('answers an unknown queue, another file and another section with the "not found" document', async () => {
      const bodies = [
        fsBody('callcenter.conf', { 'CC-Queue': 'nosuch@default' }),
        fsBody('sofia.conf', {}),
        fsBody('', { user: '1000', domain: 'example.com' }, 'directory'),
      ];
      for (const body of bodies) {
        const res = await post(body);
        assert.equal(res.status, 200);
        const doc = parseXml(await res.text());
        assert.equal(doc.attrs.type, 'freeswitch/xml');
        const section = child(doc, 'section')!;
        assert.equal(section.attrs.name, 'result');
        assert.deepEqual(section.children.map((c) => [c.name, c.attrs.status]), [['result', 'not found']]);
      }
    });

    it('answers 503 while the table is missing, with the reason, and serves again once it is back', async () => {
      await sql('ALTER TABLE callcenter_queues RENAME TO callcenter_queues_away');
      const res = await post(fsBody('callcenter.conf'));
      assert.equal(res.status, 503);
      assert.match(await res.text(), /the queues table callcenter_queues does not exist/);
      await sql('ALTER TABLE callcenter_queues_away RENAME TO callcenter_queues');
      assert.equal((await post(fsBody('callcenter.conf'))).status, 200);
    });

    it('refuses what mod_xml_curl never sends: another content type (415), no section (400), PUT (405)', async () => {
      assert.equal((await post(fsBody('callcenter.conf'), { 'content-type': 'text/plain' })).status, 415);
      assert.equal((await post('hostname=fs1')).status, 400);
      const put = await fetch(`http://127.0.0.1:${t.httpPort}/freeswitch/xml-curl`, { method: 'PUT' });
      assert.equal(put.status, 405);
    });

    if (backend.name === 'postgres') {
      it('survives a restart of the database connections', async () => {
        const admin = new pg.Client({ connectionString: t.config.storage.type === 'postgres' ? t.config.storage.url : '' });
        await admin.connect();
        try {
          const killed = await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'switchboard-xml-curl'");
          assert.ok(killed.rowCount! >= 1);
        } finally {
          await admin.end();
        }
        // The pool drops the dead connection and opens another; at worst one request gets 503.
        let status = 0;
        for (let i = 0; i < 3 && status !== 200; i++) status = (await post(fsBody('callcenter.conf'))).status;
        assert.equal(status, 200);
      });
    }
  });
}

describe('FreeSWITCH mod_xml_curl: gateway-credentials and a database of its own', () => {
  let t: TestServer;
  before(async () => {
    const dir = (await import('node:fs')).mkdtempSync(join((await import('node:os')).tmpdir(), 'switchboard-fs-'));
    const file = join(dir, 'queues.sqlite');
    const db = new Database(file);
    db.exec(createTable('sqlite').replace('callcenter_queues', 'fs_queues'));
    db.exec("INSERT INTO fs_queues (name) VALUES ('billing@default')");
    db.close();
    t = await startTestServer({ 'xml-curl': { enabled: true, path: '/fs', database: file, table: 'fs_queues', username: 'freeswitch', password: 'works' } });
  });
  after(async () => { await t.stop(true); });

  const post = (auth?: string) => fetch(`http://127.0.0.1:${t.httpPort}/fs`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(auth ? { authorization: `Basic ${Buffer.from(auth).toString('base64')}` } : {}) },
    body: fsBody('callcenter.conf'),
  });

  it('needs the credentials of gateway-credentials, and reads the configured table', async () => {
    assert.equal((await post()).status, 401);
    assert.equal((await post('freeswitch:wrong')).status, 401);
    const res = await post('freeswitch:works');
    assert.equal(res.status, 200);
    assert.match(await res.text(), /<queue name='billing@default'>/);
  });
});

describe('FreeSWITCH mod_xml_curl: options changed by a configuration reload', () => {
  let s: FileServer;
  before(async () => {
    s = await startFromFile({ admins: ['admin@localhost'], 'http-api': { enabled: true }, 'xml-curl': { enabled: true, settings: { 'cc-instance-id': 'one' } } });
    const db = new Database(join(s.dir, 'data', 'switchboard.sqlite'));
    db.exec(createTable('sqlite'));
    db.exec(createTable('sqlite').replace('callcenter_queues', 'night_queues'));
    db.exec("INSERT INTO callcenter_queues (name) VALUES ('day@default')");
    db.exec("INSERT INTO night_queues (name) VALUES ('night@default')");
    db.close();
  });
  after(async () => { await s.stop(); });

  const queueNames = async () => {
    const res = await fetch(`http://127.0.0.1:${s.httpPort}/freeswitch/xml-curl`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: fsBody('callcenter.conf') });
    const configuration = child(child(parseXml(await res.text()), 'section')!, 'configuration')!;
    return { queues: child(configuration, 'queues')!.children.map((q) => q.attrs.name), settings: params(child(configuration, 'settings')!) };
  };

  it('reads another table and settings after a reload, without a restart; path waits for one', async () => {
    assert.deepEqual(await queueNames(), { queues: ['day@default'], settings: { 'cc-instance-id': 'one' } });
    s.rewrite({ ...s.options, 'xml-curl': { enabled: true, table: 'night_queues', path: '/elsewhere', settings: { 'cc-instance-id': 'two' } } });
    const { token } = await new TokenStore(s.server.storage).create({ admin: 'admin@localhost', scope: 'admin', days: 1 });
    const r = await apiClient(s.httpPort, token)('POST', '/config/reload');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.applied.sort(), ['xml-curl.settings', 'xml-curl.table']);
    assert.deepEqual(r.body.restartRequired, ['xml-curl.path']);
    assert.deepEqual(await queueNames(), { queues: ['night@default'], settings: { 'cc-instance-id': 'two' } });
  });
});
