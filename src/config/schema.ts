// The core configuration schema. Modules declare their own options (see core/module-definition.ts);
// config/load.ts merges them under each module's name. Every option has a default (or is
// optional) and a one-line description: config/example.yaml, `switchboard dump-config` and
// `switchboard check` are generated from here, so describe options for the person editing the file.
//
// Titles (`meta({ title })`) name a kind of value in the generated documentation ("list of domains").
//
// Defaults that go through a transform are `prefault`s: they are parsed like user input (so
// './data' becomes an absolute path too) and stay visible to z.toJSONSchema, which drops plain
// defaults of transformed schemas.
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';
import { normaliseDomain, parseJid } from '../jid.js';
import { clusterModeSchema, clusterSchema } from '../cluster/config.js';
import { workersSchema } from '../cluster/workers.js';
import { parseTrafficThrottling } from '../core/traffic-limits.js';

const port = z.number().int().min(0).max(65535);

/** A domain name, normalised as routing compares it (lowercase, no trailing dot). */
const domain = z.string().transform((value, ctx) => {
  try {
    return normaliseDomain(value);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a valid domain name: ${(e as Error).message}` });
    return z.NEVER;
  }
}).meta({ title: 'domain' });

/** A bare JID with a localpart (user@domain), normalised. */
const bareJid = z.string().transform((value, ctx) => {
  try {
    const jid = parseJid(value);
    if (jid.local && jid.isBare()) return jid.bare;
  } catch {
    // reported below, with the expected form
  }
  ctx.addIssue({ code: 'custom', message: `"${value}" is not a bare JID of the form user@domain` });
  return z.NEVER;
}).meta({ title: 'bare JID' });

/** An IP address or a network in CIDR notation (10.0.0.0/8, fd00::/8). */
const addressOrNetwork = z.string().refine((value) => {
  const [address, prefix, extra] = value.split('/');
  const family = isIP(address ?? '');
  if (family === 0 || extra !== undefined) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}, { message: 'expected an IP address or a network such as 10.0.0.0/8' }).meta({ title: 'address or network' });

/** A file or directory path; made absolute against the working directory at load time. */
const filePath = z.string().min(1).transform((value) => resolve(value)).meta({ title: 'path' });

/** Traffic limits in the seed's format (core/traffic-limits.ts); kept as written, parsed where used. */
const trafficThrottling = z.string().superRefine((value, ctx) => {
  try {
    parseTrafficThrottling(value);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
}).meta({ title: 'traffic limits' });

const seconds = z.number().positive();
const pingType = z.enum(['whitespace', 'xmpp']);

/** A listener's own watchdog settings (seed 11.8: "if any settings are not set, the global settings are used"). */
const watchdogOverrides = {
  'watchdog-delay': seconds.optional().describe('This listener\'s watchdog-delay (default: the global one)'),
  'watchdog-timeout': seconds.optional().describe('This listener\'s watchdog-timeout (default: the global one)'),
  'watchdog-ping-type': pingType.optional().describe('This listener\'s watchdog-ping-type (default: the global one)'),
};

/** Debug categories that name a core component's logger (`log.child({ component })`), besides modules and xmpp.io. */
export const LOG_COMPONENTS: readonly string[] = ['router', 'http', 'vhosts', 'watchdog'];

export const vhostOptionsSchema = z.object({
  'anonymous-login': z.boolean().default(false).describe('Allow SASL ANONYMOUS on this virtual host'),
  'in-band-registration': z.boolean().default(false).describe('Allow account creation over XMPP (XEP-0077) on this virtual host'),
}).strict();

export const coreSchema = z.object({
  'virtual-hosts': z.array(domain).min(1).prefault(['localhost'])
    .describe('Domains served by this server; the first one is the default host'),
  admins: z.array(bareJid).prefault([]).describe('Bare JIDs (user@domain) with administrator rights'),
  'data-dir': filePath.prefault('./data')
    .describe('Directory for the SQLite database, generated certificates and other state; a relative path is resolved against the working directory'),
  'vhost-options': z.record(domain, vhostOptionsSchema).prefault({})
    .describe('Per virtual host settings, keyed by domain (each must be one of virtual-hosts)'),
  storage: z.discriminatedUnion('type', [
    z.object({
      type: z.literal('sqlite'),
      path: filePath.optional()
        .describe('SQLite database file, relative to the working directory (default: <data-dir>/switchboard.sqlite)'),
    }).strict(),
    z.object({
      type: z.literal('postgres'),
      url: z.string().regex(/^postgres(ql)?:\/\//, { message: 'must be a postgres:// or postgresql:// URL' })
        .describe('PostgreSQL connection URL, e.g. postgres://user:pass@127.0.0.1/switchboard'),
    }).strict(),
  ]).prefault({ type: 'sqlite' }).describe('Where accounts, rosters and module data are kept: sqlite or postgres'),
  c2s: z.object({
    host: z.string().min(1).default('0.0.0.0').describe('Address the client listeners bind to'),
    port: port.default(5222).describe('Client port (STARTTLS); 0 disables it'),
    'tls-port': port.default(5223).describe('Client port with direct TLS (XEP-0368); 0 disables it'),
    'plaintext-auth': z.enum(['loopback', 'always', 'never']).default('loopback')
      .describe('When PLAIN may be used on an unencrypted stream: loopback connections only, always, or never'),
    'require-encryption': z.boolean().default(false).describe('Refuse to authenticate clients that did not negotiate TLS (loopback excepted)'),
    'legacy-auth': z.boolean().default(false).describe('Offer jabber:iq:auth (XEP-0078), needed by Asterisk with usesasl=no'),
    'max-unauthenticated-per-ip': z.number().int().min(1).default(10).describe('Connections from one address that may be negotiating at once'),
    'negotiation-timeout': z.number().min(1).default(30).describe('Seconds a connection has to authenticate and bind before it is closed'),
    'max-stanza-size': z.number().int().min(1024).default(262144).describe('Largest stanza accepted, in bytes; larger ones end the stream with policy-violation'),
    'max-depth': z.number().int().min(4).default(32).describe('Deepest element nesting accepted in a stanza'),
    'max-inactivity-time': seconds.default(86400)
      .describe('Seconds without traffic after which the watchdog closes a client TCP connection; its session ends with unavailable presence'),
    ...watchdogOverrides,
    'traffic-throttling': trafficThrottling.default('')
      .describe('Traffic limits of every client connection (TCP, WebSocket, BOSH): {type}:{per-minute}:{lifetime}:{action},... with type xmpp (stanzas) or bin (bytes), 0 for no limit, k/m/g = thousand/million/billion, action disc or drop, e.g. xmpp:2500:0:disc,bin:20m:0:disc; empty: none'),
    'max-stanzas-per-second': z.number().min(0).default(0)
      .describe('Stanzas per second a client connection may send on average (a token bucket); 0: no cap'),
    'stanza-burst': z.number().int().min(1).optional()
      .describe('Stanzas a client may send at once before max-stanzas-per-second applies (default: twice the rate, at least 1)'),
    'stanza-rate-action': z.enum(['drop', 'disc']).default('drop')
      .describe('A stanza over max-stanzas-per-second: drop (refused with a policy-violation error) or disc (the stream ends with policy-violation)'),
  }).strict().prefault({}).describe('Client-to-server connections'),
  tls: z.object({
    certificates: z.record(domain, z.object({
      cert: filePath.describe('PEM certificate chain file, relative to the working directory'),
      key: filePath.describe('PEM private key file, relative to the working directory'),
    }).strict()).prefault({})
      .describe('Certificate and key per virtual host (chosen by SNI); hosts without one use a self-signed certificate generated into <data-dir>/certs'),
  }).strict().prefault({}).describe('TLS certificates'),
  http: z.object({
    host: z.string().min(1).default('0.0.0.0').describe('Address the HTTP listeners (main HTTP port, BOSH port, WebSocket ports) bind to'),
    port: port.default(8080)
      .describe('Main HTTP port: operator panel at /panel/, BOSH at /http-bind/, WebSocket at /xmpp-websocket and module APIs; 0 disables it'),
    'cors-origins': z.array(z.string().min(1)).prefault(['*'])
      .describe('Origins (e.g. https://panel.example.com) whose pages may use BOSH, WebSocket and the HTTP APIs; * allows any'),
    'metrics-allow': z.array(addressOrNetwork).prefault(['127.0.0.0/8', '::1'])
      .describe('Addresses or networks allowed to read GET /metrics (Prometheus); others get 403. [] closes it, 0.0.0.0/0 and ::/0 open it to all'),
    'drain-time': z.number().min(0).default(0)
      .describe('Seconds a graceful stop keeps serving while GET /health answers 503, so that load balancers send new clients elsewhere first; 0: stop at once'),
  }).strict().prefault({}).describe('HTTP listeners (every one serves every HTTP route)'),
  bosh: z.object({
    port: port.default(5280).describe('BOSH port (XEP-0124/XEP-0206, path /http-bind/); 0 disables it, BOSH stays on the main HTTP port'),
    'send-node-hostname': z.boolean().default(true)
      .describe('Name the node serving the session in the host attribute of the session creation response, so a client can reach the same cluster node again'),
    'node-hostname': z.string().min(1).optional().describe('The name sent in the host attribute (default: this machine\'s hostname)'),
    'max-inactivity-time': z.number().min(1).default(600)
      .describe('Seconds a BOSH session may go without a request before it ends, with unavailable presence (the inactivity attribute)'),
    'max-wait': z.number().int().min(1).default(60).describe('Longest time, in seconds, a request is held waiting for data (caps the client\'s wait)'),
    'max-hold': z.number().int().min(0).default(1).describe('Most requests held at once per session (caps the client\'s hold)'),
    'max-pause': z.number().int().min(1).default(300).describe('Longest pause, in seconds, a client may ask for (the maxpause attribute)'),
    'max-request-size': z.number().int().min(1024).default(1048576)
      .describe('Largest HTTP request body, in bytes; larger ones end the session with policy-violation (each stanza is also limited by c2s.max-stanza-size)'),
  }).strict().prefault({}).describe('BOSH: XMPP over HTTP long polling for browsers and server-side bridges'),
  websocket: z.object({
    port: port.default(5290).describe('Plain WebSocket port (RFC 7395, any path); 0 disables it, WebSocket stays on the main HTTP port'),
    'tls-port': port.default(5291).describe('WebSocket port with TLS (wss:), using the server certificate; 0 disables it'),
    'max-inactivity-time': seconds.default(86400)
      .describe('Seconds without traffic after which the watchdog closes a WebSocket connection; its session ends with unavailable presence'),
    ...watchdogOverrides,
  }).strict().prefault({}).describe('XMPP over WebSocket'),
  'watchdog-delay': seconds.default(600).describe('Seconds between two watchdog checks of the client connections (seed 11.8)'),
  'watchdog-timeout': seconds.default(1740)
    .describe('Seconds a connection may stay silent before the watchdog pings it; each listener\'s max-inactivity-time must be longer'),
  'watchdog-ping-type': pingType.default('xmpp')
    .describe('The watchdog\'s ping: xmpp (an XEP-0199 ping from the server; only stanzas from the client count as activity) or whitespace (a space, a ping frame on WebSocket; data either way counts)'),
  'cluster-mode': clusterModeSchema,
  workers: workersSchema,
  cluster: clusterSchema,
  log: z.object({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Log level'),
    file: filePath.optional()
      .describe('Main log file (JSON lines, relative to the working directory), rotated by size; the console then shows the start-up environment, warnings and errors only. Without it everything goes to standard output'),
    'max-size': z.number().int().min(1024).default(10 * 1024 * 1024).describe('Size in bytes at which the main log file is rotated (10 MB)'),
    'max-files': z.number().int().min(2).default(10)
      .describe('Main log files kept, the current one included: <file> (always the newest), <file>.1 (the most recent rotated) ... <file>.<max-files - 1>'),
    dir: filePath.optional()
      .describe('Directory for the pid file (switchboard.pid), the configuration dump written at start (config-dump.txt) and the statistics written at graceful shutdown (statistics.json); default: data-dir'),
    'pid-file': z.boolean().default(true).describe('Write switchboard.pid (the process id) into log.dir at start and remove it at stop'),
    debug: z.array(z.string().min(1)).prefault([])
      .describe(`Debug categories logged at debug level whatever log.level is: xmpp.io (every byte sent and received, per connection), a module's name (pubsub, roster, ...) or a core component (${LOG_COMPONENTS.join(', ')})`),
  }).strict().prefault({}).describe('Logging'),
}).strict();

export type CoreConfig = z.infer<typeof coreSchema>;

/** `log.debug` names only categories that exist: xmpp.io, a core component or a module. */
export function checkDebugCategories(config: CoreConfig, moduleNames: readonly string[], ctx: z.RefinementCtx): void {
  const known = new Set(['xmpp.io', ...LOG_COMPONENTS, ...moduleNames]);
  config.log.debug.forEach((category, index) => {
    if (!known.has(category)) ctx.addIssue({ code: 'custom', path: ['log', 'debug', index], message: `"${category}" is not a debug category (xmpp.io, ${[...LOG_COMPONENTS, ...moduleNames].join(', ')})` });
  });
}

/**
 * Checks between options, which single-option schemas cannot express. Kept apart from coreSchema
 * because zod refuses to `.extend()` a refined object; load.ts applies it to the full schema.
 */
export function checkCoreReferences(config: CoreConfig, ctx: z.RefinementCtx): void {
  if (config['cluster-mode'] && config.storage.type !== 'postgres') {
    ctx.addIssue({ code: 'custom', path: ['storage', 'type'], message: 'cluster-mode needs storage type postgres: every node must share one database' });
  }
  if (config.cluster['max-inactivity-time'] < 2 * config.cluster['heartbeat-interval']) {
    ctx.addIssue({ code: 'custom', path: ['cluster', 'max-inactivity-time'], message: 'must be at least twice cluster.heartbeat-interval, or live nodes would be taken for dead' });
  }
  const hosts = config['virtual-hosts'];
  hosts.forEach((host, index) => {
    if (hosts.indexOf(host) !== index) ctx.addIssue({ code: 'custom', path: ['virtual-hosts', index], message: `"${host}" is listed twice` });
  });
  const known = new Set(hosts);
  const perHost: [path: string[], byHost: Record<string, unknown>][] = [
    [['vhost-options'], config['vhost-options']],
    [['tls', 'certificates'], config.tls.certificates],
  ];
  for (const [path, byHost] of perHost) {
    for (const host of Object.keys(byHost)) {
      if (!known.has(host)) ctx.addIssue({ code: 'custom', path: [...path, host], message: `"${host}" is not one of virtual-hosts (${[...known].join(', ')})` });
    }
  }
  // Seed 11.8: max-inactivity-time MUST be longer than watchdog-timeout, or nothing is ever pinged.
  for (const section of ['c2s', 'websocket'] as const) {
    const timeout = config[section]['watchdog-timeout'] ?? config['watchdog-timeout'];
    if (config[section]['max-inactivity-time'] <= timeout) {
      ctx.addIssue({ code: 'custom', path: [section, 'max-inactivity-time'], message: `must be longer than the watchdog timeout (${timeout} s), or connections are cut without ever being pinged` });
    }
  }
  const listeners = listenerPorts(config);
  listeners.forEach((listener, index) => {
    const clash = listeners.slice(0, index).find((earlier) => earlier.port === listener.port && sameAddress(earlier.host, listener.host));
    if (clash) ctx.addIssue({ code: 'custom', path: listener.path, message: `must differ from ${clash.path.join('.')} (both are ${listener.port})` });
  });
}

/** Every enabled listening port: what it serves, the option that sets it, and the address it binds to. */
export function listenerPorts(config: CoreConfig): { serves: string; path: string[]; host: string; port: number }[] {
  const { c2s, http, bosh, websocket } = config;
  return [
    { serves: 'XMPP clients (STARTTLS)', path: ['c2s', 'port'], host: c2s.host, port: c2s.port },
    { serves: 'XMPP clients (direct TLS)', path: ['c2s', 'tls-port'], host: c2s.host, port: c2s['tls-port'] },
    { serves: 'HTTP (panel, BOSH, WebSocket, APIs)', path: ['http', 'port'], host: http.host, port: http.port },
    { serves: 'BOSH', path: ['bosh', 'port'], host: http.host, port: bosh.port },
    { serves: 'WebSocket', path: ['websocket', 'port'], host: http.host, port: websocket.port },
    { serves: 'WebSocket (TLS)', path: ['websocket', 'tls-port'], host: http.host, port: websocket['tls-port'] },
  ].filter((listener) => listener.port !== 0);
}

/** Whether two bind addresses overlap: the same, or either one all addresses. */
function sameAddress(a: string, b: string): boolean {
  const any = (host: string) => host === '0.0.0.0' || host === '::';
  return a === b || any(a) || any(b);
}
