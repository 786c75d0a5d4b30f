// SIP presence bridge (seed 003, perl-bosh): SIP registrations and calls, reported by the SIP
// proxy through a database table or an HTTP endpoint, become the XMPP presence of the account a
// CSV mapping file names for each phone, following the seed's state model (state-machine.ts).
// Output "internal" gives the local account one resource per phone (internal-output.ts); output
// "external" logs in to another XMPP server over BOSH for each phone (external-output.ts).
// Off unless `enabled`. In a cluster (or with `workers`) the bridge runs on the node that serves
// the domain services only, so that one node polls the table and holds the phones' sessions; it
// moves when that node stops, and the HTTP input of the other nodes forwards to it (forward.ts).
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { z } from 'zod';
import { defineModule } from '../../core/module-definition.js';
import type { ModuleContext } from '../../core/modules.js';
import { parseMapping, type Mapping } from './mapping.js';
import { applyReports, EVENTS_PATH, registerHttpInput } from './http-input.js';
import { checkBridge } from './check.js';
import { startBridge, type RunningBridge } from './running.js';
import { answerForwardedReports, forwardReports } from './forward.js';

/** How often a node checks whether it still serves the domain services (cluster, workers). */
const SERVING_CHECK_MS = 5000;

const tableName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/, 'a table name: letters, digits and _, optionally schema.table');

const configSchema = z.object({
  enabled: z.boolean().default(false).describe('Turn SIP registrations and calls into XMPP presence (seed 003, perl-bosh)'),
  mapping: z.string().optional().describe('The CSV mapping file, one phone per line: SIP URI, XMPP username, XMPP password, RID [, SID [, presenceId]]; required when enabled'),
  'reload-interval': z.number().int().min(1).default(5).describe('Seconds between checks of the mapping file for changes; a changed file is read again as a whole'),
  output: z.enum(['internal', 'external']).default('internal')
    .describe('internal: the mapped local account gets a resource per phone; external: a BOSH session per phone to another XMPP server (external.url)'),
  domain: z.string().optional().describe('Domain of XMPP usernames written without one (default: the first virtual host; external: the host of external.url)'),
  'resource-prefix': z.string().min(1).default('phone/').describe('Resource of a phone: this prefix and the phone\'s SIP URI (user@host)'),
  expiry: z.number().int().min(1).default(3600).describe('Seconds without a report after which a phone is offline (a report\'s own expires takes precedence)'),
  'available-status': z.string().default('').describe('Status text of a registered phone (none when empty)'),
  'busy-show': z.enum(['dnd', 'away', 'xa']).default('dnd').describe('Presence <show/> of a phone in a call (dnd: busy at the phone)'),
  'busy-status': z.string().default('On the phone').describe('Status text of a phone in a call'),
  table: z.object({
    enabled: z.boolean().default(false).describe('Poll a table the SIP proxy writes (columns id, uri, state, expires; see the README)'),
    driver: z.enum(['sqlite', 'postgres']).default('sqlite').describe('Database of the table'),
    path: z.string().optional().describe('SQLite database file (driver sqlite)'),
    url: z.string().optional().describe('PostgreSQL connection URL, e.g. postgres://user:pass@host/db (driver postgres)'),
    name: tableName.default('sip_presence').describe('Name of the table'),
    interval: z.number().min(0.1).default(1).describe('Seconds between polls'),
  }).strict().prefault({}).describe('Input: a database table polled like the seed\'s daemon'),
  http: z.object({
    enabled: z.boolean().default(false).describe(`Accept reports as JSON at POST ${EVENTS_PATH} on the HTTP listeners`),
    token: z.string().min(16).optional().describe('Bearer token callers must send (Authorization: Bearer ...), at least 16 characters'),
    allow: z.array(z.string()).default([]).describe('Addresses allowed to post reports (empty: any address that has the token)'),
  }).strict().prefault({}).describe('Input: an HTTP endpoint; needs a token, an address list or both'),
  external: z.object({
    url: z.url().optional().describe('BOSH URL of the other XMPP server, e.g. https://xmpp.example.com/http-bind/ (output external)'),
    wait: z.number().int().min(5).max(300).default(60).describe('Longest time, in seconds, the server may hold a BOSH request'),
    retry: z.number().int().min(1).default(10).describe('Seconds before logging in again after a session was lost'),
  }).strict().prefault({}).describe('Output external: a BOSH client per phone'),
}).strict().superRefine((c, check) => {
  if (!c.enabled) return;
  const issue = (path: (string | number)[], message: string) => check.addIssue({ code: 'custom', path, message });
  if (!c.mapping) issue(['mapping'], 'the mapping file is required when sip-presence is enabled');
  if (!c.table.enabled && !c.http.enabled) issue(['enabled'], 'enable at least one input: table or http');
  if (c.table.enabled && c.table.driver === 'sqlite' && !c.table.path) issue(['table', 'path'], 'the SQLite file is required for driver sqlite');
  if (c.table.enabled && c.table.driver === 'postgres' && !c.table.url) issue(['table', 'url'], 'the connection URL is required for driver postgres');
  if (c.http.enabled && !c.http.token && c.http.allow.length === 0) issue(['http'], 'the HTTP input needs a token or an allow list');
  if (c.output === 'external' && !c.external.url) issue(['external', 'url'], 'the BOSH URL is required for output external');
});

export type SipPresenceOptions = z.infer<typeof configSchema>;

function readMapping(ctx: ModuleContext<SipPresenceOptions>, path: string): Mapping {
  const mapping = parseMapping(readFileSync(path, 'utf8'));
  for (const p of mapping.problems) ctx.log.warn({ file: path, line: p.line }, `mapping file ${path} line ${p.line}: ${p.message}; line skipped`);
  ctx.log.info({ file: path, phones: mapping.phones.size, skipped: mapping.problems.length }, 'SIP presence mapping loaded');
  return mapping;
}

export default defineModule({
  name: 'sip-presence',
  description: 'SIP presence bridge (seed 003): phone registrations and calls from a database table or HTTP become XMPP presence, inside Switchboard or over BOSH to another server',
  specs: ['XEP-0124', 'XEP-0206'],
  config: configSchema,
  check: (o) => (o.enabled ? checkBridge(o) : Promise.resolve(undefined)),
  async setup(ctx) {
    const o = ctx.config;
    if (!o.enabled) return;
    const mappingPath = o.mapping!;
    // At start an unreadable file is a configuration error; later, a bad reload keeps the old mapping.
    let mapping: Mapping;
    try {
      mapping = readMapping(ctx, mappingPath);
    } catch (e) {
      throw new Error(`sip-presence: cannot read the mapping file: ${(e as Error).message}`);
    }
    let running: RunningBridge | undefined;
    const reload = () => {
      try {
        mapping = readMapping(ctx, mappingPath);
        running?.bridge.setMapping(mapping);
      } catch (e) {
        ctx.log.error({ file: mappingPath, error: (e as Error).message }, 'cannot read the mapping file: the previous mapping stays');
      }
    };
    watchFile(mappingPath, { interval: o['reload-interval'] * 1000 }, (now, before) => {
      if (now.mtimeMs !== before.mtimeMs || now.size !== before.size || now.ino !== before.ino) reload();
    });

    // Alone, this node always serves. In a cluster, gaining the service is announced
    // (services/reload) and losing it (an older node came back) is found by looking; the steps
    // run one after the other, so a start under way is never doubled.
    let stopped = false;
    const step = async () => {
      const serve = !stopped && ctx.cluster.serving();
      if (serve && !running) {
        if (ctx.cluster.enabled) ctx.log.info('SIP presence bridge starting: this node serves the domain services now');
        running = await startBridge(ctx, mapping);
      } else if (!serve && running) {
        const before = running;
        running = undefined;
        if (!stopped) ctx.log.info('SIP presence bridge stopped: this node no longer serves the domain services (another node runs the bridge, or this one is leaving)');
        await before.stop();
      }
    };
    let changing = step();
    await changing;
    if (!running) ctx.log.info('SIP presence bridge idle: another cluster node serves the domain services and runs it');
    const follow = () => {
      changing = changing.then(step).catch((err: unknown) => ctx.log.error({ err }, 'starting or stopping the SIP presence bridge failed'));
    };
    const unhookServing = ctx.hooks.on('services/reload', () => follow());
    const watch = setInterval(follow, SERVING_CHECK_MS);
    watch.unref();

    let unanswer: (() => void) | undefined;
    if (o.http.enabled) {
      // A node that no longer serves applies nothing more, even before its next check stops the bridge.
      const here = () => (running && ctx.cluster.serving() ? running.bridge : undefined);
      unanswer = answerForwardedReports(ctx, here);
      registerHttpInput(ctx.http, async (reports, source) => {
        // A start under way here is waited for rather than forwarded to nobody.
        if (!running && ctx.cluster.serving()) await changing;
        const bridge = here();
        return bridge ? applyReports(bridge, reports, source) : forwardReports(ctx, reports, source);
      }, { token: o.http.token, allow: o.http.allow });
    }

    return async () => {
      stopped = true;
      clearInterval(watch);
      unhookServing();
      unanswer?.();
      unwatchFile(mappingPath);
      follow();
      await changing;
    };
  },
});
