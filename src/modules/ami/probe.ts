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

/** res_zmq_manager: one CoreStatus on its REQ/REP socket (ZeroMQ connects lazily: only an answer proves it there). */
async function probeZmq(server: AmiServerConfig, timeoutMs: number): Promise<ProbeResult> {
  let zmq: typeof import('zeromq');
  try {
    zmq = await import('zeromq');
  } catch {
    return { ok: false, detail: 'the zeromq package is not installed (npm install zeromq)' };
  }
  const socket = new zmq.Request({ receiveTimeout: timeoutMs, sendTimeout: timeoutMs, linger: 0 });
  try {
    socket.connect(`tcp://${server.host}:${server['cmd-port']}`);
    await socket.send(JSON.stringify({ Action: 'CoreStatus', ActionID: 'check-1' }));
    const [reply] = await socket.receive();
    const parsed = JSON.parse(reply!.toString('utf8')) as unknown;
    const first = (Array.isArray(parsed) ? parsed[0] : parsed) as Record<string, string> | undefined;
    if (first?.Response?.toLowerCase() !== 'success') return { ok: false, detail: `CoreStatus refused: ${first?.Message ?? 'no reason given'}` };
    return { ok: true, detail: `answering (up since ${first.CoreStartupDate ?? '?'} ${first.CoreStartupTime ?? '?'})` };
  } catch (e) {
    return { ok: false, detail: (e as { code?: string }).code === 'EAGAIN' ? `no answer within ${timeoutMs} ms` : (e as Error).message };
  } finally {
    socket.close();
  }
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
      const result = await probeZmq(server, timeout);
      if (result.detail.startsWith('the zeromq package')) problems.push(`AMI server ${server.name} uses the zmq transport but the zeromq package is not installed`);
      return { server, where, result };
    }
    return { server, where: `${server.host}:${server.port} as ${server.username}`, result: await probeAmi(server, timeout) };
  }));
  for (const { server, where, result } of results) {
    lines.push(`${server.name}: ${where}: ${result.detail}`);
    if (!result.ok) warnings.push(`AMI server ${server.name} (${where}): ${result.detail}; the relay will keep retrying`);
  }
  return { lines, warnings, problems };
}
