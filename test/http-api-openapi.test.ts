// docs/openapi.yaml against the server: the file is a valid OpenAPI 3.1 document, every route
// the server serves under /api/v1 is documented, and every documented operation is routed (it
// answers over HTTP with one of the status codes documented for it, never "no such endpoint").
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { Validator } from '@seriousme/openapi-schema-validator';
import { startTestServer, type TestServer } from './support/server.js';
import { apiClient } from './support/http-api.js';
import { apiRegistry } from '../src/http/api-registry.js';
import { TokenStore } from '../src/modules/http-api/tokens.js';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;
const document = parse(readFileSync(new URL('../docs/openapi.yaml', import.meta.url), 'utf8')) as {
  openapi: string;
  paths: Record<string, Record<string, { responses: Record<string, unknown>; requestBody?: unknown }>>;
};

/** "GET /users/{jid}" for every operation of the file. */
function documented(): string[] {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    METHODS.filter((m) => item[m] !== undefined).map((m) => `${m.toUpperCase()} ${path}`)).sort();
}

/** A value for a path parameter that names nothing, so that no request changes anything. */
const SAMPLE: Record<string, string> = { jid: 'nobody@localhost', domain: 'none.example' };

describe('OpenAPI document of the management API', () => {
  let t: TestServer;
  let api: ReturnType<typeof apiClient>;

  before(async () => {
    t = await startTestServer({ admins: ['admin@localhost'], 'http-api': { enabled: true } });
    api = apiClient(t.httpPort, (await new TokenStore(t.server.storage).create({ admin: 'admin@localhost', scope: 'admin', days: 1 })).token);
  });
  after(async () => { await t.stop(true); });

  it('is a valid OpenAPI 3.1 document', async () => {
    assert.match(document.openapi, /^3\.1\./);
    const result = await new Validator().validate(document as never);
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
  });

  it('documents exactly the routes the server serves', () => {
    const served = apiRegistry(t.server).routes().map((r) => `${r.method} ${r.path}`).sort();
    assert.ok(served.length >= 16, `routes: ${served.join(', ')}`);
    assert.deepEqual(served.filter((r) => !documented().includes(r)), [], 'served but not in docs/openapi.yaml');
    assert.deepEqual(documented().filter((r) => !served.includes(r)), [], 'in docs/openapi.yaml but not served');
  });

  it('answers every documented operation with one of its documented status codes', async () => {
    for (const operation of documented()) {
      const [method, template] = operation.split(' ') as [string, string];
      const path = template.replace(/\{(\w+)\}/g, (_m, name: string) => encodeURIComponent(SAMPLE[name] ?? 'x'));
      const spec = document.paths[template]![method.toLowerCase()]!;
      const r = await api(method, path, spec.requestBody ? {} : undefined);
      assert.notEqual(r.body?.error, 'no-such-endpoint', `${operation} is not routed`);
      assert.notEqual(r.status, 405, `${operation}: method not allowed`);
      assert.ok(String(r.status) in spec.responses, `${operation} answered ${r.status} (${JSON.stringify(r.body)}), not documented (${Object.keys(spec.responses).join(', ')})`);
    }
  });

  it('tells an undocumented path apart (the check above can fail)', async () => {
    const r = await api('GET', '/users/nobody@localhost/whereabouts');
    assert.equal(r.status, 404);
    assert.equal(r.body.error, 'no-such-endpoint');
  });
});

describe('Management API and xml-curl when not configured', () => {
  it('serves neither (off by default)', async () => {
    const t = await startTestServer({});
    try {
      for (const path of ['/api/v1/vhosts', '/freeswitch/xml-curl']) {
        const res = await fetch(`http://127.0.0.1:${t.httpPort}${path}`, { method: 'POST' });
        assert.equal(res.status, 404, path);
        assert.equal(await res.text(), 'Not found\n');
      }
    } finally {
      await t.stop(true);
    }
  });
});
