// A logged-in @xmpp/client (over TCP or WebSocket) that records what it receives, so a test
// can wait for a stanza. Credentials pick the mechanism the test names, else the first offered
// (SCRAM-SHA-1 preferred); no username means ANONYMOUS.
import assert from 'node:assert/strict';
import { client } from '@xmpp/client';
import type { Element as XmppElement } from '@xmpp/xml';

// The server's certificate is the self-signed one generated for the test.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

export type Client = ReturnType<typeof client>;

export interface ClientOptions {
  /** Defaults to TCP on the given port; e.g. `ws://127.0.0.1:PORT/xmpp-websocket`. */
  service?: string;
  domain?: string;
  resource?: string;
  password?: string;
  /** SASL mechanism to use; the test fails if the server does not offer it. */
  mechanism?: string;
}

export interface LiveClient {
  xmpp: Client;
  jid: string;
  received: XmppElement[];
  /** Waits for a received stanza that matches; removes and returns it. */
  waitFor(match: (s: XmppElement) => boolean, what?: string, timeoutMs?: number): Promise<XmppElement>;
}

export async function startClient(port: number, username: string | undefined, options: ClientOptions = {}): Promise<LiveClient> {
  const xmpp = client({
    service: options.service ?? `xmpp://127.0.0.1:${port}`,
    domain: options.domain ?? 'localhost',
    resource: options.resource,
    credentials: async (authenticate: (c: object, m: string) => Promise<void>, mechanisms: string[]) => {
      if (username === undefined) return authenticate({}, 'ANONYMOUS');
      const mechanism = options.mechanism ?? (mechanisms.includes('SCRAM-SHA-1') ? 'SCRAM-SHA-1' : mechanisms[0]!);
      assert.ok(mechanisms.includes(mechanism), `${mechanism} offered (${mechanisms.join(' ')})`);
      await authenticate({ username, password: options.password ?? 'secret' }, mechanism);
    },
  } as never);
  xmpp.reconnect.stop();
  xmpp.on('error', () => {});
  const received: XmppElement[] = [];
  const waiters: (() => void)[] = [];
  xmpp.on('stanza', (s: XmppElement) => { received.push(s); for (const w of waiters.splice(0)) w(); });
  await xmpp.start();
  return {
    xmpp,
    jid: xmpp.jid!.toString(),
    received,
    async waitFor(match, what = 'stanza', timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const i = received.findIndex(match);
        if (i >= 0) return received.splice(i, 1)[0]!;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${received.map(String).join('\n')}`);
        await new Promise<void>((r) => { const tm = setTimeout(r, 100); waiters.push(() => { clearTimeout(tm); r(); }); });
      }
    },
  };
}
