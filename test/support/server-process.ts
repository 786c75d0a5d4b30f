// A test server in a child process, so that a test can kill it without a clean shutdown: a crash.
// Argument: JSON { overrides, dataDir, port, tlsPort, users }. Prints "ready" once it listens.
import { startTestServer } from './server.js';

export interface ServerProcessSpec {
  overrides: Record<string, unknown>;
  dataDir: string;
  port: number;
  tlsPort: number;
  /** Accounts to create (password "secret"). */
  users: string[];
}

const spec = JSON.parse(process.argv[2]!) as ServerProcessSpec;
const t = await startTestServer(spec.overrides, spec.dataDir, { port: spec.port, tlsPort: spec.tlsPort });
for (const jid of spec.users) await t.addUser(jid);
process.stdout.write('ready\n');
