// The cluster options (core schema keys `cluster-mode` and `cluster`), declared beside the code
// that uses them.
import { z } from 'zod';
import { parseTrafficThrottling } from '../core/traffic-limits.js';

export const clusterModeSchema = z.boolean().default(false)
  .describe('Run as one node of a cluster (seed 001 section 11.12): sessions, routing and cluster-wide requests are shared with the other nodes over NATS (cluster.nats-url); needs storage type postgres, the same database for every node');

export const clusterSchema = z.object({
  'nats-url': z.string().regex(/^(nats|tls):\/\/[^\s,]+(\s*,\s*(nats|tls):\/\/[^\s,]+)*$/, { message: 'must be nats://host:port (several separated by commas)' })
    .default('nats://127.0.0.1:4222').describe('NATS server(s) the nodes talk through, e.g. nats://10.0.0.5:4222 (comma-separated for a NATS cluster)'),
  'node-name': z.string().min(1).max(200).optional()
    .describe('This node\'s name in the cluster status, unique per node (default: this machine\'s hostname); also the BOSH host attribute unless bosh.node-hostname is set'),
  'subject-prefix': z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, { message: 'must be dot-separated words of letters, digits, _ and -' })
    .default('switchboard').describe('Prefix of the NATS subjects; clusters sharing one NATS server need different prefixes'),
  'heartbeat-interval': z.number().min(0.1).max(60).default(1).describe('Seconds between two heartbeats of a node'),
  'max-inactivity-time': z.number().min(0.5).default(180)
    .describe('Seconds without a heartbeat after which a node is dead: its sessions end cluster-wide and their contacts get unavailable presence. Shorter (e.g. 3) notices crashes within seconds'),
  'request-timeout': z.number().min(0.05).max(60).default(2)
    .describe('Seconds a cluster-wide request (locate a user, bans, script events) waits for the other nodes\' replies by default'),
  'cm-ht-traffic-throttling': z.string().default('').superRefine((value, ctx) => {
    try {
      parseTrafficThrottling(value);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
    }
  }).describe('Limits on what this node sends to the other nodes, {xmpp|bin}:{per-minute}:{lifetime}:{action} as in seed 11.12, e.g. xmpp:25k:0:drop,bin:200m:0:drop; over a limit, stanzas to other nodes are dropped with a log line (disc acts as drop: cutting the NATS link would drop the node from the cluster). Empty: none'),
}).strict().prefault({}).describe('Cluster settings, used when cluster-mode is true');

export type ClusterConfig = z.infer<typeof clusterSchema>;
