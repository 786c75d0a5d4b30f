// In a cluster (or with `workers`) the bridge runs on one node, while the HTTP input may be
// reached on any: a node that does not run it hands the checked reports to the one that does
// with a cluster-wide request, and answers the caller with that node's answer.
import type { ModuleContext } from '../../core/modules.js';
import { checkReport, type Bridge, type PhoneReport } from './bridge.js';
import { applyReports, type HttpAnswer } from './http-input.js';

const REPORTS_REQUEST = 'sip-presence/reports';
/** How long a caller waits for the node running the bridge before getting 503. */
export const FORWARD_TIMEOUT_MS = 5000;

interface ForwardedReports {
  reports: PhoneReport[];
  source: string;
}

/** Answers forwarded reports while this node runs the bridge (`current` gives it); returns the remover. */
export function answerForwardedReports(ctx: ModuleContext, current: () => Bridge | undefined): () => void {
  return ctx.cluster.handle(REPORTS_REQUEST, (payload, from) => {
    const bridge = current();
    if (!bridge) return undefined;
    const { reports, source } = (payload ?? {}) as Partial<ForwardedReports>;
    if (!Array.isArray(reports) || typeof source !== 'string') throw new Error('forwarded SIP presence reports without reports or source');
    // Checked again: the bus is no reason to trust a shape.
    const checked: PhoneReport[] = [];
    for (const raw of reports as unknown[]) {
      const report = checkReport((raw ?? {}) as Record<string, unknown>);
      if (typeof report === 'string') return { status: 400, body: { error: report } } satisfies HttpAnswer;
      checked.push(report);
    }
    return applyReports(bridge, checked, `${source} via node ${from.node}`);
  });
}

/** Hands the reports to the node running the bridge; 503 when none answers in time. */
export async function forwardReports(ctx: ModuleContext, reports: PhoneReport[], source: string): Promise<HttpAnswer> {
  const payload: ForwardedReports = { reports, source };
  let replies: Awaited<ReturnType<typeof ctx.cluster.request<HttpAnswer>>> = [];
  try {
    replies = await ctx.cluster.request<HttpAnswer>(REPORTS_REQUEST, payload, { timeout: FORWARD_TIMEOUT_MS });
  } catch (e) {
    ctx.log.warn({ err: e }, 'forwarding SIP presence reports to the node running the bridge failed');
  }
  const reply = replies.find((r) => r.error !== undefined || isAnswer(r.value));
  if (!reply) {
    ctx.log.warn({ reports: reports.length, source }, 'SIP presence reports not applied: no cluster node runs the bridge now');
    return { status: 503, body: { error: `no cluster node running the SIP presence bridge answered within ${FORWARD_TIMEOUT_MS / 1000} s (the bridge moves to another node when its node stops): try again` } };
  }
  if (reply.error !== undefined) return { status: 502, body: { error: `the cluster node running the SIP presence bridge (${reply.node}) failed: ${reply.error}` } };
  return reply.value!;
}

function isAnswer(value: unknown): value is HttpAnswer {
  const v = value as HttpAnswer | undefined;
  return typeof v?.status === 'number' && typeof v.body === 'object' && v.body !== null;
}
