// Server-side sessions of the admin web UI, in memory (a restart logs everyone out). The browser
// holds only a random id in an HttpOnly, SameSite=Strict cookie; each session has its own CSRF
// token, which every form carries and every POST must send back. The login form, before there is a
// session, uses a double-submit token: a random cookie that the form repeats.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Flash } from './html.js';

export const SESSION_COOKIE = 'switchboard_admin';
export const LOGIN_COOKIE = 'switchboard_admin_login';
const COOKIE_PATH = '/admin/';

export interface WebSession {
  id: string;
  /** The administrator's bare JID. */
  admin: string;
  csrf: string;
  lastSeen: number;
  /** Shown once on the next page (the outcome of a command). */
  flash?: Flash;
}

export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Constant-time comparison of two tokens; false when either is missing. */
export function sameToken(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function readCookies(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    // Our values are base64url; anything else is not ours and is ignored.
    const value = part.slice(eq + 1).trim();
    if (name !== '' && /^[A-Za-z0-9_-]+$/.test(value) && !out.has(name)) out.set(name, value);
  }
  return out;
}

/** A Set-Cookie value: HttpOnly, SameSite=Strict, limited to /admin/, Secure on TLS listeners. */
export function cookie(req: IncomingMessage, name: string, value: string, clear = false): string {
  const secure = (req.socket as TLSSocket).encrypted ? '; Secure' : '';
  return `${name}=${clear ? '' : value}; Path=${COOKIE_PATH}; HttpOnly; SameSite=Strict${secure}${clear ? '; Max-Age=0' : ''}`;
}

export class WebSessions {
  private readonly sessions = new Map<string, WebSession>();

  constructor(private readonly idleMs: number, private readonly now: () => number = Date.now, private readonly maxSessions = 1000) {}

  create(admin: string): WebSession {
    this.sweep();
    // Beyond the cap the least recently used session ends (Map order follows touch()).
    while (this.sessions.size >= this.maxSessions) this.sessions.delete(this.sessions.keys().next().value!);
    const session: WebSession = { id: randomToken(), admin, csrf: randomToken(), lastSeen: this.now() };
    this.sessions.set(session.id, session);
    return session;
  }

  /** The live session named by the request's cookie, touched; undefined when none or expired. */
  find(req: IncomingMessage): WebSession | undefined {
    const id = readCookies(req).get(SESSION_COOKIE);
    const session = id === undefined ? undefined : this.sessions.get(id);
    if (!session) return undefined;
    this.sessions.delete(session.id);
    if (this.now() - session.lastSeen > this.idleMs) return undefined;
    session.lastSeen = this.now();
    this.sessions.set(session.id, session);
    return session;
  }

  end(session: WebSession): void {
    this.sessions.delete(session.id);
  }

  /** Ends every session of an administrator (account deleted, password changed elsewhere). */
  endAllOf(admin: string): void {
    for (const [id, s] of this.sessions) if (s.admin === admin) this.sessions.delete(id);
  }

  sweep(): void {
    const cutoff = this.now() - this.idleMs;
    for (const [id, s] of this.sessions) if (s.lastSeen < cutoff) this.sessions.delete(id);
  }

  clear(): void {
    this.sessions.clear();
  }
}
