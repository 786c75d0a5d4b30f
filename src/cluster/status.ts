// `switchboard cluster status`: asks the running nodes over NATS, as a cluster-wide request,
// for their view of the cluster (the cluster module answers 'cluster/status'), and lays it out.
// Needs no node on this machine: only the configuration's NATS URL and subject prefix.
import { pino } from 'pino';
import type { CoreConfig } from '../config/schema.js';
import { connectNatsBus } from './nats-bus.js';
import { ClusterRequests } from './requests.js';
import type { NodeInfo } from './membership.js';

/** The cluster-wide request every node answers with its list of nodes. */
export const STATUS_REQUEST = 'cluster/status';

export interface ClusterStatus {
  /** Every node any node knows: connected when it answered. */
  nodes: { name: string; state: 'connected' | 'disconnected'; sessions: number; since: number; answered: boolean }[];
}

export async function clusterStatus(config: CoreConfig): Promise<ClusterStatus> {
  const options = config.cluster;
  const log = pino({ level: 'silent' });
  const bus = await connectNatsBus({ url: options['nats-url'], name: 'switchboard cluster status', log });
  try {
    const requests = new ClusterRequests({
      bus, prefix: options['subject-prefix'], nodeName: 'cli', log, timeout: options['request-timeout'] * 1000,
      // Nobody tells us how many nodes there are: wait for the whole timeout.
      expectedReplies: () => Number.POSITIVE_INFINITY,
    });
    const replies = await requests.request<NodeInfo[]>(STATUS_REQUEST);
    const answered = new Set(replies.map((r) => r.node));
    const byName = new Map<string, ClusterStatus['nodes'][number]>();
    for (const reply of replies) {
      for (const n of Array.isArray(reply.value) ? reply.value : []) {
        if (typeof n?.name !== 'string' || typeof n.since !== 'number') continue;
        // A node that answered is connected, as its own entry says; one that did not is not,
        // since the latest change any node saw.
        if (answered.has(n.name)) {
          if (n.name === reply.node) byName.set(n.name, { name: n.name, state: 'connected', sessions: n.sessions, since: n.since, answered: true });
        } else {
          const seen = byName.get(n.name);
          if (!seen || n.since > seen.since) byName.set(n.name, { name: n.name, state: 'disconnected', sessions: 0, since: n.since, answered: false });
        }
      }
    }
    return { nodes: [...byName.values()].sort((a, b) => a.name.localeCompare(b.name)) };
  } finally {
    await bus.close();
  }
}

/** One line per node: name, state, sessions, since. */
export function formatClusterStatus(status: ClusterStatus): string[] {
  if (status.nodes.length === 0) return ['no node answered'];
  const width = Math.max(4, ...status.nodes.map((n) => n.name.length));
  return [
    `${'NODE'.padEnd(width)}  STATE         SESSIONS  SINCE`,
    ...status.nodes.map((n) => `${n.name.padEnd(width)}  ${n.state.padEnd(12)}  ${String(n.state === 'connected' ? n.sessions : '-').padStart(8)}  ${new Date(n.since).toISOString()}`),
  ];
}
