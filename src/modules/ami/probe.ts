// For `switchboard check`: one login attempt per configured AMI server, reported in a line
// (reachable, banner, login accepted or refused), without the relay's retries.
import { connect } from 'node:net';
import { AmiDecoder, encodeAction, type AmiMessage } from './codec.js';
import type { AmiConfig, AmiServerConfig } from './config.js';

export interface ProbeResult {
  ok: boolean;
  detail: string;
}

export function probeAmi(server: AmiServerConfig, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = connect({ host: server.host, port: server.port });
    let version = '';
    let settled = false;
    const done = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done({ ok: false, detail: `no answer within ${timeoutMs} ms` }), timeoutMs);
    socket.setEncoding('utf8');
    const decoder = new AmiDecoder({
      banner: (v) => {
        version = v;
        socket.write(encodeAction('Login', 'check-1', { Username: server.username ?? '', Secret: server.secret ?? '', Events: 'off' }));
      },
      message: (m: AmiMessage) => {
        if (m.actionId !== 'check-1') return;
        if (m.response?.toLowerCase() === 'success') {
          socket.write(encodeAction('Logoff', 'check-2', {}));
          done({ ok: true, detail: `login accepted (Asterisk Call Manager/${version})` });
        } else {
          done({ ok: false, detail: `login refused as "${server.username}": ${m.get('Message') ?? 'no reason given'}` });
        }
      },
      garbage: () => undefined,
      fatal: (reason) => done({ ok: false, detail: reason }),
    });
    socket.on('data', (chunk: string) => decoder.write(chunk));
    socket.on('error', (e) => done({ ok: false, detail: `unreachable: ${(e as NodeJS.ErrnoException).code ?? e.message}` }));
    socket.on('close', () => done({ ok: false, detail: 'connection closed before the login was answered' }));
  });
}

/** The lines of `check` for the relay: one per server, a warning for each that cannot be used now. */
export async function checkAmiLinks(config: AmiConfig): Promise<{ lines: string[]; warnings: string[]; problems: string[] }> {
  const lines: string[] = [];
  const warnings: string[] = [];
  const problems: string[] = [];
  if (config.servers.length === 0) return { lines: ['off (no servers configured)'], warnings, problems };
  const relayed = [config['device-state'] && 'device states', config.presence && 'presence states'].filter(Boolean).join(' and ') || 'nothing';
  lines.push(`relaying ${relayed}${config.xmpp ? ', shared with XMPP PubSub' : ''}`);
  const timeout = Math.min(config['connect-timeout'], 3000);
  const results = await Promise.all(config.servers.map(async (server) => {
    if (server.transport === 'zmq') {
      const where = `zmq ${server.host} cmd ${server['cmd-port']} evt ${server['evt-port']}`;
      try {
        await import('zeromq');
        return { server, where, result: { ok: true, detail: 'zeromq available (res_zmq_manager is not probed)' } };
      } catch {
        problems.push(`AMI server ${server.name} uses the zmq transport but the zeromq package is not installed`);
        return { server, where, result: { ok: false, detail: 'zeromq package missing' } };
      }
    }
    return { server, where: `${server.host}:${server.port} as ${server.username}`, result: await probeAmi(server, timeout) };
  }));
  for (const { server, where, result } of results) {
    lines.push(`${server.name}: ${where}: ${result.detail}`);
    if (!result.ok && server.transport === 'tcp') warnings.push(`AMI server ${server.name} (${server.host}:${server.port}): ${result.detail}; the relay will keep retrying`);
  }
  return { lines, warnings, problems };
}
