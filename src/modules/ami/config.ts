// The relay's options, under `ami:` in the YAML; the seed's config.ini in our terms
// (`switchboard import zmq-ami-broker config.ini` converts one, see ini-import.ts).
import { createHash } from 'node:crypto';
import { z } from 'zod';

const EID = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

const serverSchema = z.object({
  name: z.string().min(1).describe('Name of the server in logs, statistics and check (the seed\'s name)'),
  host: z.string().min(1).describe('Address of the Asterisk server (the seed\'s addr)'),
  port: z.number().int().min(1).max(65535).default(5038).describe('AMI TCP port (manager.conf [general] port)'),
  username: z.string().min(1).optional().describe('AMI user (a section of manager.conf); needed for the tcp transport'),
  secret: z.string().min(1).optional().describe('Its secret'),
  'ami-trace': z.boolean().default(false).describe('Log every AMI message to and from this server (the seed\'s ami_trace)'),
  eid: z.string().regex(EID, 'an entity id like 00:11:22:33:44:55').optional()
    .describe('Entity id its states are published under over XMPP: the Asterisk\'s own (core show settings) if it also uses res_xmpp; default derived from the name'),
  transport: z.enum(['tcp', 'zmq']).default('tcp').describe('tcp: standard AMI over TCP; zmq: res_zmq_manager\'s ZeroMQ sockets (needs the zeromq package)'),
  'cmd-port': z.number().int().min(1).max(65535).optional().describe('zmq: the REQ/REP port for actions (zmq_manager.conf addr_cmd)'),
  'evt-port': z.number().int().min(1).max(65535).optional().describe('zmq: the PUB/SUB port for events (zmq_manager.conf addr_evt)'),
}).strict().superRefine((server, ctx) => {
  if (server.transport === 'tcp') {
    if (!server.username) ctx.addIssue({ code: 'custom', path: ['username'], message: 'required for the tcp transport' });
    if (!server.secret) ctx.addIssue({ code: 'custom', path: ['secret'], message: 'required for the tcp transport' });
  } else {
    if (!server['cmd-port']) ctx.addIssue({ code: 'custom', path: ['cmd-port'], message: 'required for the zmq transport' });
    if (!server['evt-port']) ctx.addIssue({ code: 'custom', path: ['evt-port'], message: 'required for the zmq transport' });
  }
});

export const amiConfigSchema = z.object({
  'device-state': z.boolean().default(true).describe('Relay device states (DeviceStateChange), the seed\'s device_state'),
  presence: z.boolean().default(false).describe('Relay presence states (PresenceStateChange), the seed\'s presence'),
  'request-timeout': z.number().int().min(50).default(1000).describe('Milliseconds an action may wait for its response (the seed\'s request_timeout)'),
  'connect-timeout': z.number().int().min(50).default(5000).describe('Milliseconds a connection attempt may take until the banner'),
  'keepalive-interval': z.number().int().min(100).default(20000)
    .describe('Milliseconds of silence after which a Ping checks the link (an unanswered Ping ends it: half-open TCP)'),
  'reconnect-initial': z.number().int().min(10).default(1000).describe('Milliseconds before the first reconnection attempt; doubles at each failure'),
  'reconnect-max': z.number().int().min(10).default(60000).describe('Longest wait between reconnection attempts, in milliseconds'),
  'virtual-host': z.string().min(1).optional()
    .describe('Virtual host whose PubSub service shares states with XMPP (Asterisk res_xmpp, the device-state view); default the first one'),
  xmpp: z.boolean().default(true).describe('Share device states with the PubSub service: publish AMI states as res_xmpp would, write XMPP states to AMI'),
  servers: z.array(serverSchema).default([]).describe('Asterisk servers to relay between; none: the relay is off')
    .refine((servers) => new Set(servers.map((s) => s.name)).size === servers.length, 'server names must be unique'),
}).strict();

export type AmiConfig = z.infer<typeof amiConfigSchema>;
export type AmiServerConfig = AmiConfig['servers'][number];

/**
 * A stable entity id for a server whose own is not configured: locally administered (02:...),
 * from its name, so it stays the same across restarts and the XMPP side keeps one report per server.
 */
export function eidOf(server: Pick<AmiServerConfig, 'name' | 'eid'>): string {
  if (server.eid) return server.eid.toLowerCase();
  const bytes = createHash('sha256').update(`switchboard-ami:${server.name}`).digest().subarray(0, 5);
  return ['02', ...[...bytes].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}
