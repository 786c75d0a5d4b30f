// A browser-less client of the admin web UI (/admin/): keeps its cookies, reads the CSRF token
// from the pages, and can come from any loopback address (127.0.0.x), so tests of per-address
// limits need no second machine.
import { request } from 'node:http';

export interface WebResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** Set-Cookie headers of this response. */
  setCookies: string[];
}

export class AdminWebClient {
  readonly cookies = new Map<string, string>();
  /** The last CSRF token seen on a page. */
  csrf?: string;

  constructor(private readonly port: number, private readonly localAddress = '127.0.0.1') {}

  send(method: 'GET' | 'POST', path: string, body?: string, headers: Record<string, string> = {}): Promise<WebResponse> {
    return new Promise((resolve, reject) => {
      const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      const req = request({
        host: '127.0.0.1', port: this.port, localAddress: this.localAddress, method, path,
        headers: { ...(cookie ? { cookie } : {}), ...(body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) } : {}), ...headers },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const setCookies = ([] as string[]).concat(res.headers['set-cookie'] ?? []);
          for (const c of setCookies) {
            const [pair] = c.split(';');
            const eq = pair!.indexOf('=');
            const name = pair!.slice(0, eq);
            const value = pair!.slice(eq + 1);
            if (value === '' || /Max-Age=0/i.test(c)) this.cookies.delete(name);
            else this.cookies.set(name, value);
          }
          const text = Buffer.concat(chunks).toString('utf8');
          const token = /name="_csrf" value="([^"]+)"/.exec(text);
          if (token) this.csrf = token[1];
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, setCookies });
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  get(path: string): Promise<WebResponse> {
    return this.send('GET', path);
  }

  /** Posts a form; `_csrf` is the last token seen unless the fields give one (or `csrf: false`). */
  post(path: string, fields: Record<string, string | string[]>, options: { csrf?: string | false } = {}): Promise<WebResponse> {
    const body = new URLSearchParams();
    const token = options.csrf === undefined ? this.csrf : options.csrf;
    if (token !== false && token !== undefined) body.append('_csrf', token);
    for (const [k, v] of Object.entries(fields)) for (const one of Array.isArray(v) ? v : [v]) body.append(k, one);
    return this.send('POST', path, body.toString());
  }

  /** Opens the login page (for its token) and submits the form. */
  async login(jid: string, password: string): Promise<WebResponse> {
    await this.get('/admin/login');
    return this.post('/admin/login', { jid, password });
  }
}

/** The text of the page's flash message (success or error), without tags. */
export function flash(text: string): string | undefined {
  const m = /<p class="flash [a-z]+"[^>]*>([\s\S]*?)<\/p>/.exec(text);
  return m?.[1]!.replace(/<[^>]+>/g, '').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&').trim();
}
