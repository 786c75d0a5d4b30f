// One running SIP presence bridge: its output (internal sessions or external BOSH clients), the
// phones' states and the table poller. index.ts starts it on the node that serves the domain
// services and stops it when another node does, so that one node polls the table and holds the
// phones' sessions.
import type { ModuleContext } from '../../core/modules.js';
import type { Mapping } from './mapping.js';
import { Bridge, checkReport, type PresenceOutput } from './bridge.js';
import { InternalOutput } from './internal-output.js';
import { ExternalOutput } from './external-output.js';
import { PostgresTable, SqliteTable, TablePoller, type TableRow } from './table-poller.js';
import type { SipPresenceOptions } from './index.js';

export interface RunningBridge {
  bridge: Bridge;
  /** Stops polling, then ends the phones' presence (internal) or leaves their BOSH sessions to be resumed (external). */
  stop(): Promise<void>;
}

export async function startBridge(ctx: ModuleContext<SipPresenceOptions>, mapping: Mapping): Promise<RunningBridge> {
  const o = ctx.config;
  const presence = { resourcePrefix: o['resource-prefix'], availableStatus: o['available-status'], busyShow: o['busy-show'], busyStatus: o['busy-status'] };
  let bridge: Bridge | undefined;
  let output: PresenceOutput;
  let external: ExternalOutput | undefined;
  if (o.output === 'internal') {
    output = new InternalOutput(ctx, { ...presence, domain: o.domain ?? ctx.core['virtual-hosts'][0]! }, (uri) => bridge?.lost(uri));
  } else {
    const url = o.external.url!;
    output = external = new ExternalOutput(ctx, { ...presence, url, domain: o.domain ?? new URL(url).hostname, wait: o.external.wait, retry: o.external.retry }, (uri) => bridge?.lost(uri));
  }
  const running = new Bridge(output, o.expiry, ctx.log);
  bridge = running;
  running.setMapping(mapping);
  if (external) {
    await external.start(mapping.phones.values());
    running.restore(external.restored());
  }

  let poller: TablePoller | undefined;
  if (o.table.enabled) {
    const t = o.table;
    const source = t.driver === 'sqlite' ? new SqliteTable(t.path!, t.name) : new PostgresTable(t.url!, t.name, ctx.log);
    const where = t.driver === 'sqlite' ? `${t.path}:${t.name}` : t.name;
    const onRow = (row: TableRow) => {
      const report = checkReport(row);
      if (typeof report === 'string') {
        ctx.log.warn({ table: where, id: row.id }, `SIP presence row ${row.id}: ${report}; row dropped`);
        return;
      }
      running.report(report, `table row ${row.id}`);
    };
    poller = new TablePoller(source, t.interval * 1000, where, onRow, ctx.log, () => ctx.cluster.serving());
    poller.start();
  }
  return {
    bridge: running,
    async stop() {
      await poller?.stop();
      await running.stop();
    },
  };
}
