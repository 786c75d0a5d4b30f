// FreeSWITCH configuration over HTTP (seed 004): an endpoint for mod_xml_curl's `gateway-url`
// that answers `callcenter.conf` (mod_callcenter) from a queues table with the seed's columns, and
// the "not found" document for everything else (other sections, other files, unknown queues).
//
// What mod_xml_curl sends (xml_url_fetch in mod_xml_curl.c): POST, application/x-www-form-urlencoded,
// `hostname=<switchname>&section=configuration&tag_name=configuration&key_name=name&key_value=callcenter.conf`
// followed by the request's event headers when there are some. mod_callcenter asks with no event
// when it loads (all queues), and with `CC-Queue=<name>` for `callcenter_config queue load <name>`.
// A reply other than 200 counts as "no answer" there too, which is what a database failure gets (503).
import { z } from 'zod';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { defineModule } from '../../core/module-definition.js';
import type { ModuleContext } from '../../core/modules.js';
import { readBody } from '../../http/server.js';
import { callcenterConfiguration, notFound } from './callcenter.js';
import { QueueSourceError, TABLE_NAME, postgresQueues, sqliteQueues, type QueueSource } from './queues.js';

const MAX_REQUEST = 65536;

const configSchema = z.object({
  enabled: z.boolean().default(false).describe('Serve FreeSWITCH mod_xml_curl configuration requests (callcenter.conf) on the HTTP port'),
  path: z.string().regex(/^\/[^?#]*$/, 'must be a path starting with /').default('/freeswitch/xml-curl')
    .describe("Where mod_xml_curl's gateway-url points, on the HTTP listeners"),
  database: z.string().min(1).optional()
    .describe("Database with the queues table: a postgres:// URL or an SQLite file path (default: Switchboard's own storage database)"),
  table: z.string().regex(TABLE_NAME, 'must be a table name, optionally schema-qualified (schema.table)').default('callcenter_queues')
    .describe('The queues table, with the columns of seed 004 (CREATE TABLE in the README)'),
  settings: z.record(z.string(), z.string()).prefault({})
    .describe('Parameters of <settings> in callcenter.conf, e.g. odbc-dsn or cc-instance-id'),
  username: z.string().min(1).optional().describe("HTTP Basic user name mod_xml_curl must send (its gateway-credentials user:password); unset: no authentication"),
  password: z.string().min(1).optional().describe('HTTP Basic password, with username'),
}).strict().superRefine((options, ctx) => {
  if ((options.username === undefined) !== (options.password === undefined)) {
    ctx.addIssue({ code: 'custom', path: [options.username === undefined ? 'username' : 'password'], message: 'username and password go together (mod_xml_curl gateway-credentials user:password)' });
  }
});

type Options = z.infer<typeof configSchema>;

/** Where the queues are: the configured database, else Switchboard's own. */
function openSource(ctx: ModuleContext<Options>): QueueSource {
  const { database, table } = ctx.config;
  const onError = (e: Error) => ctx.log.warn({ err: e }, 'queues database connection lost; the next request reconnects');
  if (database !== undefined) {
    return /^postgres(ql)?:\/\//.test(database) ? postgresQueues(database, table, onError) : sqliteQueues(database, table);
  }
  const storage = ctx.core.storage;
  return storage.type === 'postgres'
    ? postgresQueues(storage.url, table, onError)
    : sqliteQueues(storage.path ?? join(ctx.core['data-dir'], 'switchboard.sqlite'), table);
}

function sendXml(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'text/xml; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(body);
}

function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...headers });
  res.end(`${text}\n`);
}

function authorised(req: IncomingMessage, options: Options): boolean {
  if (options.username === undefined) return true;
  const header = req.headers.authorization ?? '';
  if (!header.startsWith('Basic ')) return false;
  const expected = Buffer.from(`${options.username}:${options.password ?? ''}`);
  const given = Buffer.from(Buffer.from(header.slice(6), 'base64').toString('utf8'));
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The request's fields: the POST body (mod_xml_curl's default) or, for GET-style bindings, the query. */
async function requestFields(req: IncomingMessage, url: URL): Promise<URLSearchParams | 'too-large' | 'wrong-type'> {
  if (req.method === 'GET') return url.searchParams;
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    req.resume();
    return 'wrong-type';
  }
  const body = await readBody(req, MAX_REQUEST);
  if (body === undefined) return 'too-large';
  // mod_xml_curl's body ends with the last field (an old version added a newline): trim it.
  return new URLSearchParams(body.toString('utf8').trim());
}

export default defineModule({
  name: 'xml-curl',
  description: 'FreeSWITCH configuration over HTTP (seed 004): mod_xml_curl gets callcenter.conf from a queues table',
  config: configSchema,
  setup(ctx) {
    if (!ctx.config.enabled) return;
    let source = openSource(ctx);
    const path = ctx.config.path;
    ctx.http.route(path, async (req, res, url) => {
      if (url.pathname !== path && url.pathname !== `${path}/`) return sendText(res, 404, 'Not found');
      if (req.method !== 'POST' && req.method !== 'GET') return sendText(res, 405, 'mod_xml_curl requests are POST (or GET)', { Allow: 'POST, GET' });
      if (!authorised(req, ctx.config)) {
        ctx.log.warn({ address: req.socket.remoteAddress }, 'xml-curl request refused: wrong or missing credentials');
        return sendText(res, 401, 'credentials required', { 'WWW-Authenticate': 'Basic realm="Switchboard xml-curl"' });
      }
      const fields = await requestFields(req, url);
      if (fields === 'wrong-type') return sendText(res, 415, 'the request must be application/x-www-form-urlencoded, as mod_xml_curl sends it');
      if (fields === 'too-large') return sendText(res, 413, `the request is larger than ${MAX_REQUEST} bytes`);
      const section = fields.get('section');
      if (!section) return sendText(res, 400, 'no section field: this endpoint answers mod_xml_curl requests');
      const request = { host: fields.get('hostname') ?? fields.get('FreeSWITCH-Hostname') ?? undefined, section, key: fields.get('key_value') ?? undefined, queue: fields.get('CC-Queue') ?? undefined };
      if (section !== 'configuration' || fields.get('tag_name') !== 'configuration' || fields.get('key_name') !== 'name' || request.key !== 'callcenter.conf') {
        ctx.log.debug(request, 'xml-curl: not found (not callcenter.conf)');
        return sendXml(res, 200, notFound());
      }
      let queues;
      try {
        queues = await source.queues(request.queue);
      } catch (e) {
        if (!(e instanceof QueueSourceError)) throw e;
        ctx.log.error({ ...request, reason: e.message }, 'xml-curl: cannot read the queues; FreeSWITCH falls back to its own files');
        return sendText(res, 503, `cannot read the queues: ${e.message}`);
      }
      if (request.queue !== undefined && queues.length === 0) {
        ctx.log.info(request, 'xml-curl: unknown queue');
        return sendXml(res, 200, notFound());
      }
      ctx.log.debug({ ...request, queues: queues.length }, 'xml-curl: callcenter.conf');
      sendXml(res, 200, callcenterConfiguration(ctx.config.settings, queues));
    }, { operations: [{ method: 'POST', path }, { method: 'GET', path }] });
    // A reload may change the table, the database, the settings or the credentials.
    ctx.onReload(async () => {
      const previous = source;
      source = openSource(ctx);
      await previous.close();
    }, ['enabled', 'path']);
    ctx.log.info({ path, table: ctx.config.table, database: ctx.config.database ? 'configured' : ctx.core.storage.type }, 'FreeSWITCH xml-curl endpoint ready');
    return () => source.close();
  },
});
