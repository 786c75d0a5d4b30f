// docs/openapi.yaml against the server. The file is a valid OpenAPI 3.1 document; with every HTTP
// API of the server on (management API, SIP presence bridge, FreeSWITCH xml-curl, the Asterisk
// views, health and metrics) it documents exactly the operations the server's routing table
// serves (HttpService.servedRoutes(), which each route declares where it is registered), and
// every documented operation, called over HTTP with its credentials, without them and with wrong
// ones, answers a status and content type the file documents for it, with a JSON body its schema
// accepts.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { parse } from 'yaml';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { startTestServer, type TestServer } from './support/server.js';
import { TokenStore } from '../src/modules/http-api/tokens.js';
import { QUEUE_COLUMNS } from '../src/modules/xml-curl/queues.js';
import type { ServedRoute } from '../src/http/server.js';

const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete'] as const;

interface MediaType { example?: unknown }
interface Response { $ref?: string; content?: Record<string, MediaType> }
interface Parameter { name: string; in: string; required?: boolean; example?: unknown; schema?: { examples?: unknown[] } }
interface Operation {
  responses: Record<string, Response>;
  requestBody?: { content: Record<string, MediaType> };
  parameters?: Parameter[];
  security?: Record<string, string[]>[];
}
const document = parse(readFileSync(new URL('../docs/openapi.yaml', import.meta.url), 'utf8')) as {
  openapi: string;
  security: Record<string, string[]>[];
  paths: Record<string, Partial<Record<(typeof METHODS)[number], Operation>>>;
  components: { securitySchemes: Record<string, unknown>; responses: Record<string, Response> };
};

/** "GET /api/v1/users/{jid}" for every operation of the file. */
function documented(): string[] {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    METHODS.filter((m) => item[m] !== undefined).map((m) => `${m.toUpperCase()} ${path}`)).sort();
}

function operationOf(method: string, path: string): Operation {
  return document.paths[path]![method.toLowerCase() as (typeof METHODS)[number]]!;
}

/** A response, with a `$ref` to components/responses followed. */
function resolved(response: Response): Response {
  const ref = response.$ref;
  if (!ref) return response;
  const name = /^#\/components\/responses\/(.+)$/.exec(ref)?.[1];
  assert.ok(name && document.components.responses[name], `unresolvable ${ref}`);
  return document.components.responses[name]!;
}

// OpenAPI 3.1 schemas are JSON Schema 2020-12; the document is added whole so that their
// `#/components/schemas/...` references resolve. Not strict: OpenAPI adds its own keywords.
const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
addFormats.default(ajv);
ajv.addSchema(document, 'openapi.json');
const pointer = (...parts: string[]) => parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');

/** "GET /x" for every operation the server's routing table declares. */
function served(routes: readonly ServedRoute[]): string[] {
  return routes.flatMap((r) => ('operations' in r ? r.operations.map((o) => `${o.method} ${o.path}`) : [])).sort();
}

/** A value for a path parameter that names nothing, so that no request changes anything. */
const SAMPLE: Record<string, string> = { jid: 'nobody@localhost', domain: 'none.example' };

const SIP_TOKEN = 'openapi-check-sip-token-0123456789';
const XML_CURL = { username: 'freeswitch', password: 'xml-curl-secret' };
const ADMIN = { jid: 'admin@localhost', password: 'admin-secret' };

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('OpenAPI document of every HTTP API', () => {
  let t: TestServer;
  let dir: string;
  /** Authorization headers per security scheme of the file: right and wrong. */
  let credentials: Record<string, { right: string; wrong: string }>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'switchboard-openapi-'));
    const mapping = join(dir, 'phones.csv');
    writeFileSync(mapping, 'sip:100@pbx.example.com,alice,,123456\n');
    const queues = join(dir, 'queues.sqlite');
    const db = new Database(queues);
    db.exec(`CREATE TABLE callcenter_queues (queue_id INTEGER PRIMARY KEY, ${QUEUE_COLUMNS.map((c) => `${c} TEXT`).join(', ')})`);
    db.exec("INSERT INTO callcenter_queues (name, strategy) VALUES ('support@default', 'ring-all')");
    db.close();
    t = await startTestServer({
      admins: [ADMIN.jid],
      'http-api': { enabled: true },
      'sip-presence': { enabled: true, mapping, http: { enabled: true, token: SIP_TOKEN, allow: ['127.0.0.1', '::1'] } },
      'xml-curl': { enabled: true, database: queues, ...XML_CURL },
    });
    await t.addUser(ADMIN.jid, ADMIN.password);
    await t.addUser('alice@localhost');
    const { token } = await new TokenStore(t.server.storage).create({ admin: ADMIN.jid, scope: 'admin', days: 1 });
    credentials = {
      token: { right: `Bearer ${token}`, wrong: 'Bearer sbt_wrong_token' },
      sipPresenceToken: { right: `Bearer ${SIP_TOKEN}`, wrong: `Bearer ${SIP_TOKEN}x` },
      xmlCurlBasic: { right: basic(XML_CURL.username, XML_CURL.password), wrong: basic(XML_CURL.username, 'wrong') },
      adminBasic: { right: basic(ADMIN.jid, ADMIN.password), wrong: basic(ADMIN.jid, 'wrong') },
    };
  });
  after(async () => {
    await t.stop(true);
    rmSync(dir, { recursive: true, force: true });
  });

  /** Sends a documented operation: its example body (or an empty one) and query parameters with examples. */
  async function call(method: string, template: string, authorization?: string, port = t.httpPort): Promise<{ status: number; type: string; body: string }> {
    const operation = operationOf(method, template);
    const url = new URL(`http://127.0.0.1:${port}${template.replace(/\{(\w+)\}/g, (_m, name: string) => encodeURIComponent(SAMPLE[name] ?? 'x'))}`);
    for (const p of operation.parameters ?? []) {
      const value = p.example ?? p.schema?.examples?.[0];
      if (p.in === 'query' && value !== undefined) url.searchParams.set(p.name, String(value));
    }
    const headers: Record<string, string> = authorization ? { authorization } : {};
    let body: string | undefined;
    const [mediaType, media] = Object.entries(operation.requestBody?.content ?? {})[0] ?? [];
    if (mediaType) {
      headers['content-type'] = mediaType;
      if (mediaType === 'application/x-www-form-urlencoded') body = new URLSearchParams((media!.example ?? {}) as Record<string, string>).toString();
      else body = JSON.stringify(media!.example ?? {});
    }
    const res = await fetch(url, { method, headers, body });
    return { status: res.status, type: (res.headers.get('content-type') ?? '').split(';')[0]!.trim(), body: await res.text() };
  }

  /** The answer is documented for the operation: its status, and the content type (or no body) of that status. */
  function assertDocumented(operation: string, answer: { status: number; type: string; body: string }): void {
    const [method, template] = operation.split(' ') as [string, string];
    const responses = operationOf(method, template).responses;
    const response = responses[String(answer.status)];
    assert.ok(response, `${operation} answered ${answer.status} (${answer.body.slice(0, 200)}), not documented (${Object.keys(responses).join(', ')})`);
    const content = resolved(response).content;
    if (!content) {
      assert.equal(answer.body, '', `${operation} ${answer.status} has a body the file does not document`);
      return;
    }
    assert.ok(answer.type in content, `${operation} ${answer.status} answered ${answer.type}, documented ${Object.keys(content).join(', ')}`);
    if (answer.type !== 'application/json') return;
    const where = response.$ref
      ? `${response.$ref.slice(1)}/content/${pointer('application/json')}/schema`
      : `/paths/${pointer(template)}/${method.toLowerCase()}/responses/${answer.status}/content/${pointer('application/json')}/schema`;
    const validate = ajv.getSchema(`openapi.json#${where}`);
    assert.ok(validate, `no schema at ${where}`);
    assert.ok(validate(JSON.parse(answer.body)), `${operation} ${answer.status}: ${answer.body.slice(0, 300)} does not match its schema: ${ajv.errorsText(validate.errors)}`);
  }

  /** The security requirements of an operation: its own or the file's. */
  const securityOf = (operation: Operation) => operation.security ?? document.security;

  it('is a valid OpenAPI 3.1 document', async () => {
    assert.match(document.openapi, /^3\.1\./);
    const result = await new Validator().validate(document as never);
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
  });

  it('documents exactly the operations the server serves', () => {
    const routes = t.server.http.servedRoutes();
    const operations = served(routes);
    for (const expected of ['POST /sip-presence/events', 'POST /freeswitch/xml-curl', 'GET /api/v1/users', 'GET /api/device-states', 'GET /health']) {
      assert.ok(operations.includes(expected), `the server with every API on serves ${expected}: ${operations.join(', ')}`);
    }
    assert.deepEqual(operations.filter((o) => !documented().includes(o)), [], 'served but not in docs/openapi.yaml');
    assert.deepEqual(documented().filter((o) => !operations.includes(o)), [], 'in docs/openapi.yaml but not served');
  });

  it('reaches each declared operation through the route that declares it', () => {
    const routes = t.server.http.servedRoutes();
    // The table's own rule: the longest prefix serving a path wins.
    const routeFor = (path: string) => routes.filter((r) => path.startsWith(r.prefix) || (r.prefix.endsWith('/') && path === r.prefix.slice(0, -1)))
      .sort((a, b) => b.prefix.length - a.prefix.length)[0];
    for (const route of routes) {
      if (!('operations' in route)) {
        assert.ok(route.documentedIn.length > 0, `${route.prefix} says where it is specified`);
        continue;
      }
      assert.ok(route.operations.length > 0, `${route.prefix} declares its operations`);
      for (const o of route.operations) assert.equal(routeFor(o.path)?.prefix, route.prefix, `${o.method} ${o.path} is served by ${route.prefix}`);
    }
  });

  it('gives request examples its own schemas accept', () => {
    let examples = 0;
    for (const operation of documented()) {
      const [method, template] = operation.split(' ') as [string, string];
      for (const [type, media] of Object.entries(operationOf(method, template).requestBody?.content ?? {})) {
        if (media.example === undefined) continue;
        examples++;
        const validate = ajv.getSchema(`openapi.json#/paths/${pointer(template)}/${method.toLowerCase()}/requestBody/content/${pointer(type)}/schema`)!;
        assert.ok(validate(media.example), `${operation} example: ${ajv.errorsText(validate.errors)}`);
      }
    }
    assert.ok(examples >= 2);
  });

  it('has credentials in this test for every security scheme of the file', () => {
    assert.deepEqual(Object.keys(document.components.securitySchemes).sort(), Object.keys(credentials).sort());
  });

  it('answers every documented operation, with its credentials, with a documented status and content type', async () => {
    for (const operation of documented()) {
      const [method, template] = operation.split(' ') as [string, string];
      const scheme = securityOf(operationOf(method, template)).map((r) => Object.keys(r)[0]).find((s) => s !== undefined);
      const answer = await call(method, template, scheme ? credentials[scheme]!.right : undefined);
      assert.notEqual(answer.status, 405, `${operation}: method not allowed`);
      assert.ok(!(answer.status === 404 && answer.body.includes('no-such-endpoint')) && answer.body !== 'Not found\n', `${operation} is not routed`);
      assertDocumented(operation, answer);
    }
  });

  it('answers every documented operation without credentials and with wrong ones: 401 where credentials are configured', async () => {
    for (const operation of documented()) {
      const [method, template] = operation.split(' ') as [string, string];
      const schemes = securityOf(operationOf(method, template)).flatMap((r) => Object.keys(r));
      const none = await call(method, template);
      assertDocumented(operation, none);
      // Every scheme is configured on this server, so a secured operation refuses a caller without them.
      if (schemes.length > 0) {
        assert.equal(none.status, 401, `${operation} without credentials`);
        for (const scheme of schemes) {
          const wrong = await call(method, template, credentials[scheme]!.wrong);
          assert.equal(wrong.status, 401, `${operation} with wrong ${scheme} credentials`);
          assertDocumented(operation, wrong);
        }
      } else {
        assert.equal(none.status, 200, `${operation} is open`);
      }
    }
  });

  it('answers the example requests of the file with success', async () => {
    const sip = await call('POST', '/sip-presence/events', credentials.sipPresenceToken!.right);
    assert.equal(sip.status, 200, sip.body);
    assert.equal(JSON.parse(sip.body).applied[0].uri, '100@pbx.example.com');
    for (const method of ['POST', 'GET']) {
      const fs = await call(method, '/freeswitch/xml-curl', credentials.xmlCurlBasic!.right);
      assert.equal(fs.status, 200, fs.body);
      assert.match(fs.body, /<queue name=['"]support@default['"]><param name=['"]strategy['"] value=['"]ring-all['"]\/>/);
    }
  });

  it('answers 405 to every method a served path does not declare (so none is left out)', async () => {
    const byPath = new Map<string, string[]>();
    for (const o of served(t.server.http.servedRoutes())) {
      const [method, path] = o.split(' ') as [string, string];
      byPath.set(path, [...(byPath.get(path) ?? []), method]);
    }
    for (const [template, methods] of byPath) {
      assert.ok(document.paths[template], `${template} is served but not documented`);
      const scheme = securityOf(operationOf(methods[0]!, template)).map((r) => Object.keys(r)[0]).find((s) => s !== undefined);
      const path = template.replace(/\{(\w+)\}/g, (_m, name: string) => encodeURIComponent(SAMPLE[name] ?? 'x'));
      for (const method of METHODS.map((m) => m.toUpperCase()).filter((m) => !methods.includes(m))) {
        const res = await fetch(`http://127.0.0.1:${t.httpPort}${path}`, { method, headers: scheme ? { authorization: credentials[scheme]!.right } : {} });
        await res.arrayBuffer();
        assert.equal(res.status, 405, `${method} ${template} (declared: ${methods.join(', ')})`);
      }
    }
  });

  it('answers 403, as documented, to an address the allow lists leave out', async () => {
    const elsewhere = await startTestServer({
      http: { 'metrics-allow': ['192.0.2.7'] },
      'sip-presence': { enabled: true, mapping: join(dir, 'phones.csv'), http: { enabled: true, token: SIP_TOKEN, allow: ['192.0.2.7'] } },
    });
    try {
      for (const [operation, authorization] of [['POST /sip-presence/events', credentials.sipPresenceToken!.right], ['GET /metrics'], ['HEAD /metrics']] as const) {
        const [method, template] = operation.split(' ') as [string, string];
        const answer = await call(method, template, authorization, elsewhere.httpPort);
        assert.equal(answer.status, 403, operation);
        assertDocumented(operation, answer);
      }
    } finally {
      await elsewhere.stop(true);
    }
  });

  it('tells an undocumented path apart (the checks above can fail)', async () => {
    const api = await fetch(`http://127.0.0.1:${t.httpPort}/api/v1/users/nobody@localhost/whereabouts`, { headers: { authorization: credentials.token!.right } });
    assert.equal(api.status, 404);
    assert.equal((await api.json()).error, 'no-such-endpoint');
    const other = await fetch(`http://127.0.0.1:${t.httpPort}/sip-presence/event`, { method: 'POST' });
    assert.equal(other.status, 404);
    assert.equal(await other.text(), 'Not found\n');
  });
});

describe('HTTP APIs when not configured', () => {
  it('serves none of the optional ones (off by default), and documents what it does serve', async () => {
    const t = await startTestServer({});
    try {
      for (const path of ['/api/v1/vhosts', '/freeswitch/xml-curl', '/sip-presence/events']) {
        const res = await fetch(`http://127.0.0.1:${t.httpPort}${path}`, { method: 'POST' });
        assert.equal(res.status, 404, path);
        assert.equal(await res.text(), 'Not found\n');
      }
      const operations = served(t.server.http.servedRoutes());
      assert.deepEqual(operations, ['GET /api/device-states', 'GET /api/mailboxes', 'GET /health', 'GET /metrics', 'HEAD /health', 'HEAD /metrics']);
      assert.deepEqual(operations.filter((o) => !documented().includes(o)), []);
    } finally {
      await t.stop(true);
    }
  });
});
