// Input "http": POST /sip-presence/events with one report or an array of them, as JSON:
//
//   {"uri": "sip:100@pbx.example.com", "state": "onthephone", "expires": 3600}
//
// Allowed to callers with the configured bearer token and/or from the configured addresses.
// A batch is checked as a whole before anything is applied: one bad report (unknown state, a
// SIP URI not in the mapping, bad JSON) answers 4xx with a message and changes nothing.
// The answer lists each phone's transition: {"applied": [{"uri", "from", "reported", "to", "valid"}]}.
// The checked reports go to `deliver`, which applies them here or, in a cluster, on the node
// that runs the bridge (index.ts).
import { timingSafeEqual, createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody, sendJson, type HttpRoutes } from '../../http/server.js';
import { checkReport, type Bridge, type PhoneReport } from './bridge.js';

export const EVENTS_PATH = '/sip-presence/events';
const MAX_BODY = 64 * 1024;
const MAX_REPORTS = 1000;

/** An HTTP answer as status and JSON body, so that another cluster node can give it. */
export interface HttpAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** Applies checked reports to the bridge: 404 (nothing applied) when one names a phone not mapped. */
export function applyReports(bridge: Bridge, reports: PhoneReport[], source: string): HttpAnswer {
  const unknown = reports.filter((r) => !bridge.isMapped(r.uri)).map((r) => r.uri);
  if (unknown.length > 0) return { status: 404, body: { error: `not in the mapping file: ${unknown.join(', ')}`, unknown } };
  const applied = reports.map((r) => bridge.report(r, source)!);
  return { status: 200, body: { applied: applied.map((t, i) => ({ uri: reports[i]!.uri, from: t.from, reported: t.reported, to: t.to, valid: t.valid })) } };
}

export type DeliverReports = (reports: PhoneReport[], source: string) => Promise<HttpAnswer>;

export interface HttpInputOptions {
  /** Bearer token callers must present; undefined: no token needed. */
  token?: string;
  /** Addresses allowed to call; empty: any. */
  allow: string[];
}

function sameSecret(given: string, expected: string): boolean {
  // Hashes have equal lengths, so the comparison's time does not tell the token's length.
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The caller's address without the IPv4-mapped prefix. */
function callerAddress(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

export function registerHttpInput(http: HttpRoutes, deliver: DeliverReports, options: HttpInputOptions): void {
  const allowed = new Set(options.allow.map((a) => (a.startsWith('::ffff:') ? a.slice(7) : a)));
  const fail = (res: ServerResponse, status: number, error: string, extra: Record<string, unknown> = {}) => sendJson(res, status, { error, ...extra });

  http.route(EVENTS_PATH, async (req, res, url) => {
    if (url.pathname !== EVENTS_PATH) return fail(res, 404, 'not found');
    if (allowed.size > 0 && !allowed.has(callerAddress(req))) return fail(res, 403, `address ${callerAddress(req)} may not report SIP presence`);
    if (options.token !== undefined) {
      const header = req.headers.authorization ?? '';
      const given = header.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
      if (given === undefined || !sameSecret(given, options.token)) {
        res.setHeader('WWW-Authenticate', 'Bearer realm="sip-presence"');
        return fail(res, 401, 'a valid bearer token is required');
      }
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      return fail(res, 405, 'use POST');
    }
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) return fail(res, 415, 'the body must be application/json');
    const body = await readBody(req, MAX_BODY);
    if (body === undefined) return fail(res, 413, `the body is larger than ${MAX_BODY} bytes`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch (e) {
      return fail(res, 400, `the body is not valid JSON: ${(e as Error).message}`);
    }
    const items = Array.isArray(parsed) ? parsed : [parsed];
    if (items.length === 0 || items.length > MAX_REPORTS) return fail(res, 400, `send 1 to ${MAX_REPORTS} reports`);
    const reports: PhoneReport[] = [];
    for (const [i, item] of items.entries()) {
      const where = Array.isArray(parsed) ? `report ${i}: ` : '';
      if (!item || typeof item !== 'object' || Array.isArray(item)) return fail(res, 400, `${where}a report is an object with uri and state`);
      const report = checkReport(item as Record<string, unknown>);
      if (typeof report === 'string') return fail(res, 400, where + report);
      reports.push(report);
    }
    const answer = await deliver(reports, `http ${callerAddress(req)}`);
    sendJson(res, answer.status, answer.body);
  }, { operations: [{ method: 'POST', path: EVENTS_PATH }] });
}
