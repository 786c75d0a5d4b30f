// The admin web UI's request handling: login and logout, the session and CSRF checks every page
// and form goes through, the static assets, and dispatch to the pages (pages/*.ts).
//
// Logging in checks an administrator's JID and password exactly as SASL PLAIN does (stored SCRAM
// keys, verifyPasswordAsync, a decoy for unknown accounts so both take as long), then asks the
// modules whether the account may log in (a disabled account may not), then that the JID is in
// `admins`. Failures are counted per client address and per account; at the limit the password
// is not even checked. Unknown account and wrong password get the same answer.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { ModuleContext } from '../../core/modules.js';
import { deriveCredentials, verifyPasswordAsync } from '../../auth/credentials.js';
import type { Credentials } from '../../storage/types.js';
import { parseJid, tryParseJid, type JID } from '../../jid.js';
import { readBody, sendJson } from '../../http/server.js';
import { html, page, type Flash, type Html } from './html.js';
import { LoginLimiter } from './login-limiter.js';
import { LOGIN_COOKIE, SESSION_COOKIE, WebSessions, cookie, randomToken, readCookies, sameToken, type WebSession } from './web-sessions.js';

export interface AdminWebOptions {
  enabled: boolean;
  'session-timeout': number;
  'login-attempts': number;
  'login-window': number;
}

/** A request from a logged-in administrator. */
export interface AdminRequest {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  session: WebSession;
  /** The administrator as the commands see them: bare JID with the resource `admin-web`. */
  admin: JID;
  /** The posted form (POST only). */
  body: URLSearchParams;
}

export type PageHandler = (rq: AdminRequest) => Promise<void> | void;

/** Resource of the requester JID that commands run by the web UI carry (in their logs). */
const WEB_RESOURCE = 'admin-web';
const MAX_FORM_BYTES = 64 * 1024;
const ASSETS_DIR = fileURLToPath(new URL('../../../src/modules/admin-web/assets/', import.meta.url));
const ASSET_TYPES: Record<string, string> = { 'admin.css': 'text/css; charset=utf-8', 'admin.js': 'text/javascript; charset=utf-8' };

const SECURITY_HEADERS = {
  'Content-Security-Policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

const WRONG_CREDENTIALS = 'Wrong JID or password.';

export class AdminWebApp {
  readonly sessions: WebSessions;
  private readonly limiter: LoginLimiter;
  private readonly pages = new Map<string, PageHandler>();
  private decoy?: Credentials;
  private readonly assets = new Map<string, Buffer>();

  constructor(readonly ctx: ModuleContext<AdminWebOptions>, now: () => number = Date.now) {
    this.sessions = new WebSessions(ctx.config['session-timeout'] * 1000, now);
    this.limiter = new LoginLimiter({ attempts: ctx.config['login-attempts'], windowMs: ctx.config['login-window'] * 1000, now });
  }

  /** Registers a page: `GET /admin/domains`, `POST /admin/domains/add`, ... */
  on(method: 'GET' | 'POST', path: string, handler: PageHandler): void {
    this.pages.set(`${method} ${path}`, handler);
  }

  // --- responses -------------------------------------------------------------------------------

  send(res: ServerResponse, status: number, body: string, headers: Record<string, string | string[]> = {}): void {
    res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...SECURITY_HEADERS, ...headers });
    res.end(body);
  }

  /** A page of the logged-in UI. */
  render(rq: AdminRequest, status: number, title: string, section: string, body: Html, flash?: Flash): void {
    const shown = flash ?? rq.session.flash;
    rq.session.flash = undefined;
    this.send(rq.res, status, page({ title, admin: rq.session.admin, csrf: rq.session.csrf, section, flash: shown, body }));
  }

  /** After a change: back to a page (303 See Other), with a message shown there once. */
  redirect(rq: AdminRequest, location: string, flash?: Flash): void {
    if (flash) rq.session.flash = flash;
    rq.res.writeHead(303, { Location: location, ...SECURITY_HEADERS }).end();
  }

  // --- dispatch --------------------------------------------------------------------------------

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname;
    if (path === '/admin') return void res.writeHead(301, { Location: '/admin/' }).end();
    if (path.startsWith('/admin/assets/')) return this.asset(req, res, path.slice('/admin/assets/'.length));
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    if (method !== 'GET' && method !== 'POST') {
      return this.send(res, 405, page({ title: 'Method not allowed', body: html`<p>Only GET and POST.</p>` }), { Allow: 'GET, POST' });
    }
    if (path === '/admin/login') return method === 'GET' ? this.loginPage(req, res, 200) : this.login(req, res);

    const session = this.sessions.find(req);
    const handler = this.pages.get(`${method} ${path}`);
    const live = session && (await this.stillAdmin(session));
    if (!live) {
      if (method === 'GET' && path.endsWith('.json')) return sendJson(res, 401, { error: 'not logged in to the admin UI' });
      if (method === 'GET') return void res.writeHead(303, { Location: '/admin/login', ...SECURITY_HEADERS }).end();
      return this.send(res, 401, page({ title: 'Not logged in', body: html`<p>Your admin session has ended; nothing was changed. <a href="/admin/login">Log in</a> again.</p>` }));
    }
    if (!handler) return this.send(res, 404, page({ title: 'Not found', admin: session.admin, csrf: session.csrf, body: html`<p>There is no such admin page.</p>` }));

    let body = new URLSearchParams();
    if (method === 'POST') {
      const form = await this.readForm(req, res);
      if (!form) return;
      // Every change needs the session's token: a page of another site cannot post here on the administrator's behalf.
      if (!sameToken(form.get('_csrf') ?? undefined, session.csrf)) {
        this.ctx.log.warn({ path, address: req.socket.remoteAddress, admin: session.admin }, 'admin web: form without the session\'s CSRF token refused');
        return this.send(res, 403, page({ title: 'Refused', admin: session.admin, csrf: session.csrf,
          body: html`<p class="flash error" role="alert">The form did not carry this session's security token (CSRF); nothing was changed. Reload the page and try again.</p>` }));
      }
      body = form;
    }
    const admin = parseJid(`${session.admin}/${WEB_RESOURCE}`);
    await handler({ req, res, url, session, admin, body });
  }

  /** The administrator still exists and is still in `admins` (their account may have been deleted meanwhile). */
  private async stillAdmin(session: WebSession): Promise<boolean> {
    const jid = parseJid(session.admin);
    if (this.ctx.isAdmin(session.admin) && (await this.ctx.storage.users.exists(jid.domain, jid.local))) return true;
    this.sessions.end(session);
    return false;
  }

  /** The posted urlencoded form; answers the error itself and returns undefined when there is none. */
  private async readForm(req: IncomingMessage, res: ServerResponse): Promise<URLSearchParams | undefined> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/x-www-form-urlencoded') {
      req.resume();
      this.send(res, 415, page({ title: 'Unsupported form', body: html`<p>Forms must be sent as application/x-www-form-urlencoded; nothing was changed.</p>` }));
      return undefined;
    }
    const raw = await readBody(req, MAX_FORM_BYTES);
    if (raw === undefined) {
      this.send(res, 413, page({ title: 'Form too large', body: html`<p>The form is larger than ${MAX_FORM_BYTES / 1024} KiB; nothing was changed.</p>` }), { Connection: 'close' });
      return undefined;
    }
    return new URLSearchParams(raw.toString('utf8'));
  }

  private asset(req: IncomingMessage, res: ServerResponse, name: string): void {
    const type = ASSET_TYPES[name];
    if (!type) return void res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Not found\n');
    let body = this.assets.get(name);
    if (!body) this.assets.set(name, (body = readFileSync(ASSETS_DIR + name)));
    res.writeHead(200, { 'Content-Type': type, 'Content-Length': body.length, 'Cache-Control': 'max-age=300', 'X-Content-Type-Options': 'nosniff' });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  // --- login -----------------------------------------------------------------------------------

  private loginPage(req: IncomingMessage, res: ServerResponse, status: number, message?: string, jid = ''): void {
    const token = randomToken();
    const body = html`
      <form method="post" action="/admin/login" class="login">
        <input type="hidden" name="_csrf" value="${token}">
        <div class="field"><label for="jid">Administrator JID</label><input id="jid" name="jid" type="text" autocomplete="username" value="${jid}" required placeholder="admin@example.com"></div>
        <div class="field"><label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required></div>
        <button type="submit">Log in</button>
      </form>
      <p class="hint">The JIDs listed in <code>admins</code> of the configuration log in with their XMPP password.</p>`;
    this.send(res, status, page({ title: 'Log in', flash: message ? { kind: 'error', text: message } : undefined, body }),
      { 'Set-Cookie': cookie(req, LOGIN_COOKIE, token) });
  }

  private async login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = await this.readForm(req, res);
    if (!form) return;
    const address = req.socket.remoteAddress ?? 'unknown';
    if (!sameToken(form.get('_csrf') ?? undefined, readCookies(req).get(LOGIN_COOKIE))) {
      return this.loginPage(req, res, 403, 'The login form expired or did not come from this page; please try again.');
    }
    const typed = (form.get('jid') ?? '').trim();
    const password = form.get('password') ?? '';
    const jid = tryParseJid(typed);
    const accountKey = `account:${jid?.bare ?? typed.toLowerCase()}`;
    const addressKey = `address:${address}`;
    const wait = Math.max(this.limiter.retryAfter(addressKey), this.limiter.retryAfter(accountKey));
    if (wait > 0) {
      this.ctx.log.warn({ address, account: typed }, 'admin web: login refused, too many failures');
      return this.loginPage(req, res, 429, `Too many failed logins. Try again in ${wait} s.`, typed);
    }
    const credentials = jid?.local ? await this.ctx.storage.users.get(jid.domain, jid.local) : undefined;
    // A decoy for unknown accounts: the answer takes as long as for a wrong password.
    const matches = await verifyPasswordAsync(credentials ?? (this.decoy ??= deriveCredentials(randomBytes(16).toString('hex'))), password).catch(() => false);
    if (!jid?.local || !credentials || !matches) {
      this.limiter.fail(addressKey);
      this.limiter.fail(accountKey);
      this.ctx.log.warn({ address, account: typed }, 'admin web: login failed');
      return this.loginPage(req, res, 401, WRONG_CREDENTIALS, typed);
    }
    const check = { domain: jid.domain, username: jid.local, anonymous: false, refusal: undefined as string | undefined };
    if (await this.ctx.hooks.fire('account/authenticating', check)) {
      return this.loginPage(req, res, 403, `${jid.bare} may not log in: ${check.refusal ?? 'refused'}.`, typed);
    }
    if (!this.ctx.isAdmin(jid.bare)) {
      this.ctx.log.warn({ address, account: jid.bare }, 'admin web: login of a user who is not an administrator refused');
      return this.loginPage(req, res, 403, `${jid.bare} is not an administrator of this server. The admin UI is for the JIDs listed in admins.`, typed);
    }
    this.limiter.reset(accountKey);
    const session = this.sessions.create(jid.bare);
    this.ctx.log.info({ address, admin: jid.bare }, 'admin web: administrator logged in');
    res.writeHead(303, { Location: '/admin/', ...SECURITY_HEADERS, 'Set-Cookie': [cookie(req, SESSION_COOKIE, session.id), cookie(req, LOGIN_COOKIE, '', true)] }).end();
  }

  /** POST /admin/logout (a page handler: it has passed the session and CSRF checks). */
  logout(rq: AdminRequest): void {
    this.sessions.end(rq.session);
    rq.res.writeHead(303, { Location: '/admin/login', ...SECURITY_HEADERS, 'Set-Cookie': cookie(rq.req, SESSION_COOKIE, '', true) }).end();
  }
}
