// The core configuration schema. Modules declare their own options (see core/modules.ts);
// config/load.ts merges them under each module's name. Every option has a default and a
// one-line description: config/example.yaml and `switchboard dump-config` are generated from here.
import { z } from 'zod';

const port = z.number().int().min(0).max(65535);

const vhostOptions = z.object({
  'anonymous-login': z.boolean().default(false).describe('Allow SASL ANONYMOUS on this virtual host'),
  'in-band-registration': z.boolean().default(false).describe('Allow account creation over XMPP (XEP-0077) on this virtual host'),
}).strict();

export const coreSchema = z.object({
  'virtual-hosts': z.array(z.string().min(1)).min(1).default(['localhost']).describe('Domains served by this server'),
  admins: z.array(z.string()).default([]).describe('Bare JIDs with administrator rights'),
  'data-dir': z.string().default('./data').describe('Directory for the SQLite database, generated certificates and other state'),
  'vhost-options': z.record(z.string(), vhostOptions).default({}).describe('Per virtual host settings, keyed by domain'),
  storage: z.discriminatedUnion('type', [
    z.object({
      type: z.literal('sqlite'),
      path: z.string().optional().describe('SQLite database file (default: <data-dir>/switchboard.sqlite)'),
    }).strict(),
    z.object({
      type: z.literal('postgres'),
      url: z.string().describe('PostgreSQL connection URL, e.g. postgres://user:pass@127.0.0.1/switchboard'),
    }).strict(),
  ]).default({ type: 'sqlite' }).describe('Where accounts, rosters and module data are kept'),
  c2s: z.object({
    host: z.string().default('0.0.0.0').describe('Address the client listeners bind to'),
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
  }).strict().prefault({}).describe('Client-to-server connections'),
  tls: z.object({
    certificates: z.record(z.string(), z.object({
      cert: z.string().describe('PEM certificate chain file'),
      key: z.string().describe('PEM private key file'),
    }).strict()).default({}).describe('Certificate and key per virtual host (chosen by SNI); hosts without one use the generated self-signed certificate'),
  }).strict().prefault({}).describe('TLS certificates'),
  log: z.object({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Log level'),
    file: z.string().optional().describe('Log to this file instead of standard output'),
  }).strict().prefault({}).describe('Logging'),
}).strict();

export type CoreConfig = z.infer<typeof coreSchema>;
