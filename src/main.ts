// The `switchboard` command line (bin/switchboard.js runs the compiled copy). `main` returns the
// exit code instead of exiting, so tests and embedders can call it.
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { deriveCredentials, PasswordError } from './auth/credentials.js';
import { checkEnvironment } from './config/check.js';
import { dumpConfig } from './config/dump.js';
import { ConfigError, DEFAULT_CONFIG_FILE, loadConfig, type Config, type LoadedConfig } from './config/load.js';
import { createLogging, type Logging } from './core/log.js';
import { formatSample } from './core/metrics.js';
import { removePidFile, runFilePaths, writeConfigDump, writePidFile, writeStatistics, type RunFilePaths } from './core/run-files.js';
import { startServer } from './core/server.js';
import { parseJid, JidError, normaliseDomain } from './jid.js';
import { VERSION } from './modules/version.js';
import { clusterStatus, formatClusterStatus, type ClusterStatus } from './cluster/status.js';
import { IniImportError, importZmqAmiBroker } from './modules/ami/ini-import.js';
import { openStorage } from './storage/index.js';
import type { Credentials, Storage } from './storage/types.js';
import { TokenError, TokenStore } from './modules/http-api/tokens.js';
import type { ApiScope } from './http/api-registry.js';
import { WorkerSupervisor, workerCount } from './cluster/workers.js';

export const USAGE = `Usage: switchboard <command> [options]

Commands:
  start                            Run the server; SIGINT or SIGTERM stops it cleanly
  check                            Show the resolved environment and whether it is ready to start
  dump-config                      Print every option with its value in effect and its origin
  user add JID [--password P]      Create an account
  user passwd JID [--password P]   Change an account's password
  user delete JID                  Delete an account and everything stored for it
  user list [DOMAIN]               List the accounts of a virtual host (default: all of them)
  token create [--admin JID] [--scope admin|read] [--days N] [--name TEXT]
                                   Create an API token for the HTTP management API (printed once)
  token list                       List the API tokens (never their secrets)
  token revoke ID                  Revoke an API token
  cluster status                   List the cluster's nodes, connected or not, as the running
                                   nodes see them (asked over the configuration's NATS)
  import zmq-ami-broker FILE [--username U --secret S]
                                   Print the ami: section of the configuration for a
                                   zmq-ami-broker config.ini (with --username and --secret
                                   its servers move from ZeroMQ to AMI over TCP, port 5038)

Options:
  -c, --config FILE   Configuration file (default: $SWITCHBOARD_CONFIG, else
                      ${DEFAULT_CONFIG_FILE} if it exists, else built-in defaults)
  --password P        Password for user add and user passwd; without it, one line is read
                      from standard input (safer: command lines are visible to other users)
  --admin JID         token create: the administrator the token acts for (default: the first
                      of admins in the configuration)
  --scope S           token create: admin (read and change, the default) or read (GET only)
  --days N            token create: days until the token expires (default 90)
  --name TEXT         token create: what the token is for
  -h, --help          Show this help
  -v, --version       Show the version

Exit status: 0 on success, 1 when the command failed, 2 for a usage error.`;

/** A failure the user can fix; printed without a stack trace, exit status 1. */
class CommandError extends Error {}

/** The command line itself is wrong; exit status 2. */
class UsageError extends Error {}

interface Options {
  config?: string;
  password?: string;
  username?: string;
  secret?: string;
  admin?: string;
  scope?: string;
  days?: string;
  name?: string;
}

export async function main(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        password: { type: 'string' },
        username: { type: 'string' },
        secret: { type: 'string' },
        admin: { type: 'string' },
        scope: { type: 'string' },
        days: { type: 'string' },
        name: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
    if (values.version) {
      console.log(VERSION);
      return 0;
    }
    const [command, ...args] = positionals;
    if (values.help || command === undefined) {
      console.log(USAGE);
      return 0;
    }
    if (values.password !== undefined && !(command === 'user' && (args[0] === 'add' || args[0] === 'passwd'))) {
      throw new UsageError('--password only goes with user add and user passwd');
    }
    if ((values.username !== undefined || values.secret !== undefined) && command !== 'import') {
      throw new UsageError('--username and --secret only go with import zmq-ami-broker');
    }
    if ([values.admin, values.scope, values.days, values.name].some((v) => v !== undefined) && !(command === 'token' && args[0] === 'create')) {
      throw new UsageError('--admin, --scope, --days and --name only go with token create');
    }
    return await run(command, args, values);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      return 1;
    }
    if (e instanceof CommandError) {
      console.error(`switchboard: ${e.message}`);
      return 1;
    }
    // parseArgs reports unknown options and missing option values as TypeErrors with an ERR_PARSE_ARGS code.
    if (e instanceof UsageError || (e as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`switchboard: ${(e as Error).message}\nRun switchboard --help for usage.`);
      return 2;
    }
    throw e;
  }
}

function run(command: string, args: string[], options: Options): Promise<number> {
  switch (command) {
    case 'start':
      expectArguments(args, 0, 0, 'start');
      return start(options);
    case 'check':
      expectArguments(args, 0, 0, 'check');
      return check(options);
    case 'dump-config':
      expectArguments(args, 0, 0, 'dump-config');
      return printConfig(options);
    case 'user':
      return user(args, options);
    case 'token':
      return token(args, options);
    case 'import':
      return importConfig(args, options);
    case 'cluster':
      return cluster(args, options);
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

function expectArguments(args: string[], min: number, max: number, usage: string): void {
  if (args.length < min || args.length > max) throw new UsageError(`usage: switchboard ${usage}`);
}

async function start(options: Options): Promise<number> {
  const loaded = await loadConfig({ file: options.config });
  const { config, file } = loaded;
  let logging: Logging;
  try {
    logging = createLogging(config.log);
  } catch (e) {
    throw new CommandError(`cannot open the log file: ${(e as Error).message}`);
  }
  const { log } = logging;
  try {
    return await serve(loaded, logging);
  } finally {
    await logging.close();
  }

  async function serve(loaded: LoadedConfig, logging: Logging): Promise<number> {
    // Seed 001 11.3.7: the console starts with the environment the server runs in.
    logging.announce({
      version: VERSION, node: process.version, platform: `${process.platform} ${process.arch}`, pid: process.pid,
      config: file ?? 'built-in defaults', dataDir: config['data-dir'], logFile: config.log.file ?? 'standard output',
    }, 'starting Switchboard');
    const files = runFilePaths(config);
    try {
      writeConfigDump(files.configDump, dumpConfig(loaded), `Switchboard ${VERSION}, effective configuration at ${new Date().toISOString()}`);
      if (config.log['pid-file']) {
        const other = writePidFile(files.pid);
        if (other !== undefined) log.warn({ pid: other, pidFile: files.pid }, 'the pid file names a process that is still running: is another Switchboard using the same files?');
      }
    } catch (e) {
      log.fatal({ err: e }, 'cannot write the run files');
      throw new CommandError(`cannot write ${files.configDump} or ${files.pid}: ${(e as Error).message}`);
    }
    // Listening from the outset: a signal that arrives while starting stops the server once it is up.
    const stopRequest = nextStopSignal();
    const workers = workerCount(config.workers);
    if (workers > 1) return supervise(workers, stopRequest, files);
    let server: Awaited<ReturnType<typeof startServer>>;
    try {
      server = await startServer(config, { configFile: file, log });
    } catch (e) {
      stopRequest.cancel();
      removeOwnPidFile(files);
      log.fatal({ err: e }, 'cannot start');
      throw new CommandError(`cannot start: ${(e as Error).message}`);
    }
    logging.announce({ modules: server.moduleNames, listeners: server.addresses.map((a) => `${a.name} ${a.host}:${a.port}`), configDump: files.configDump }, 'started');
    // SIGHUP reads the configuration file again, as POST /api/v1/config/reload does (core/reload.ts).
    await untilStopped(stopRequest, {
      reload: () => { server.reload().catch((e: unknown) => log.error({ err: e }, 'configuration reload refused; nothing changed')); },
      stop: () => server.stop(),
    });
    // Seed 001 11.3.7: a graceful stop leaves the statistics of the run behind.
    try {
      const statistics = await writeStatistics(files.statistics, server.metrics, { startedAt: server.startedAt, version: VERSION });
      const own = statistics.samples.filter((s) => s.name.startsWith('switchboard_')).map(formatSample);
      logging.console.info({ uptimeSeconds: statistics.uptimeSeconds, statisticsFile: files.statistics, statistics: own }, 'statistics of this run');
    } catch (e) {
      log.error({ err: e, file: files.statistics }, 'cannot write the statistics');
    }
    removeOwnPidFile(files);
    log.info('stopped');
    return 0;
  }

  /** `workers` above 1: this process forks and watches the workers (cluster/workers.ts), which serve. */
  async function supervise(count: number, stopRequest: ReturnType<typeof nextStopSignal>, files: RunFilePaths): Promise<number> {
    const supervisor = new WorkerSupervisor({ count, configFile: file, log, nodeName: config.cluster['node-name'], subjectPrefix: config.cluster['subject-prefix'] });
    let listeners: string[];
    try {
      listeners = await supervisor.start();
    } catch (e) {
      stopRequest.cancel();
      await supervisor.stop();
      removeOwnPidFile(files);
      log.fatal({ err: e }, 'cannot start');
      throw new CommandError(`cannot start: ${(e as Error).message}`);
    }
    logging.announce({ workers: Object.fromEntries(supervisor.pids()), listeners, configDump: files.configDump }, 'started');
    await untilStopped(stopRequest, { reload: () => supervisor.reload(), stop: () => supervisor.stop(), kill: () => supervisor.kill() });
    removeOwnPidFile(files);
    log.info('stopped');
    return 0;
  }

  function removeOwnPidFile(files: RunFilePaths): void {
    if (config.log['pid-file']) removePidFile(files.pid);
  }

  /**
   * Until SIGINT or SIGTERM, SIGHUP runs `reload`; then `stop`. A second stop signal while
   * stopping means "stop now" (people press Ctrl-C again when a stop hangs): `kill`, exit.
   */
  async function untilStopped(stopRequest: ReturnType<typeof nextStopSignal>, run: { reload: () => void; stop: () => Promise<void>; kill?: () => void }): Promise<void> {
    process.on('SIGHUP', run.reload);
    const signal = await stopRequest.received;
    process.off('SIGHUP', run.reload);
    log.info({ signal }, 'stopping');
    const impatience = nextStopSignal();
    void impatience.received.then(() => { run.kill?.(); process.exit(1); });
    try {
      await run.stop();
    } finally {
      impatience.cancel();
    }
  }
}

/** The next SIGINT or SIGTERM; `cancel` stops listening (and `received` then never settles). */
function nextStopSignal(): { received: Promise<NodeJS.Signals>; cancel(): void } {
  let cancel = () => {};
  const received = new Promise<NodeJS.Signals>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      cancel();
      resolve(signal);
    };
    cancel = () => { process.off('SIGINT', onSignal).off('SIGTERM', onSignal); };
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  });
  return { received, cancel };
}

async function check(options: Options): Promise<number> {
  console.log(`Switchboard ${VERSION} on Node.js ${process.version} (${process.platform} ${process.arch})`);
  // An invalid configuration ends here, reported by main like for every command.
  const { lines, problems, warnings } = await checkEnvironment(await loadConfig({ file: options.config }));
  console.log(lines.join('\n') + '\n');
  for (const warning of warnings) console.log(`warning: ${warning}`);
  if (problems.length === 0) {
    console.log('Ready to start.');
    return 0;
  }
  console.log(`${problems.length} problem${problems.length === 1 ? '' : 's'}:`);
  for (const problem of problems) console.log(`  - ${problem}`);
  return 1;
}

async function printConfig(options: Options): Promise<number> {
  console.log(dumpConfig(await loadConfig({ file: options.config })).join('\n'));
  return 0;
}

/** `import zmq-ami-broker FILE`: the seed broker's config.ini as our YAML, on standard output. */
async function importConfig(args: string[], options: Options): Promise<number> {
  expectArguments(args, 2, 2, 'import zmq-ami-broker FILE [--username U --secret S]');
  if (args[0] !== 'zmq-ami-broker') throw new UsageError(`cannot import "${args[0]}": only zmq-ami-broker`);
  let text: string;
  try {
    text = await readFile(args[1]!, 'utf8');
  } catch (e) {
    throw new CommandError(`cannot read ${args[1]}: ${(e as Error).message}`);
  }
  try {
    process.stdout.write(importZmqAmiBroker(text, { username: options.username, secret: options.secret }).yaml);
  } catch (e) {
    if (e instanceof IniImportError) throw new CommandError(`${args[1]}: ${e.message}`);
    throw e;
  }
  return 0;
}

const USER_USAGE: Record<string, string> = {
  add: 'user add JID [--password P]',
  passwd: 'user passwd JID [--password P]',
  delete: 'user delete JID',
  list: 'user list [DOMAIN]',
};

async function user([action, ...args]: string[], options: Options): Promise<number> {
  if (action === undefined || !(action in USER_USAGE)) {
    throw new UsageError(action === undefined ? 'usage: switchboard user add|passwd|delete|list ...' : `unknown user command "${action}"`);
  }
  expectArguments(args, action === 'list' ? 0 : 1, 1, USER_USAGE[action]!);
  const { config } = await loadConfig({ file: options.config });
  if (action === 'list') {
    const domains = args[0] === undefined ? config['virtual-hosts'] : [virtualHostOf(args[0], config)];
    return withStorage(config, async (storage) => {
      for (const domain of domains) {
        for (const username of await storage.users.list(domain)) console.log(`${username}@${domain}`);
      }
    });
  }
  const { jid, local, domain } = accountOf(args[0]!, config);
  return withStorage(config, async ({ users }) => {
    const exists = await users.exists(domain, local);
    // Checked before asking for a password, so that nobody types one for nothing.
    if (action === 'add' && exists) throw new CommandError(`${jid} already exists`);
    if (action !== 'add' && !exists) throw new CommandError(`${jid} does not exist`);
    switch (action) {
      case 'add':
        if (!(await users.create(domain, local, await newCredentials(options.password)))) throw new CommandError(`${jid} already exists`);
        console.log(`added ${jid}`);
        break;
      case 'passwd':
        if (!(await users.setCredentials(domain, local, await newCredentials(options.password)))) throw new CommandError(`${jid} does not exist`);
        console.log(`changed the password of ${jid}`);
        break;
      case 'delete':
        if (!(await users.delete(domain, local))) throw new CommandError(`${jid} does not exist`);
        console.log(`deleted ${jid}`);
        break;
    }
  });
}

/** `cluster status`: the nodes as the running nodes see them (cluster/status.ts). */
async function cluster(args: string[], options: Options): Promise<number> {
  if (args[0] !== 'status') throw new UsageError(args[0] === undefined ? 'usage: switchboard cluster status' : `unknown cluster command "${args[0]}"`);
  expectArguments(args.slice(1), 0, 0, 'cluster status');
  const { config } = await loadConfig({ file: options.config });
  if (!config['cluster-mode']) throw new CommandError('cluster-mode is off in this configuration: there is no cluster to ask');
  let status: ClusterStatus;
  try {
    status = await clusterStatus(config);
  } catch (e) {
    throw new CommandError((e as Error).message);
  }
  for (const line of formatClusterStatus(status)) console.log(line);
  return status.nodes.some((n) => n.answered) ? 0 : 1;
}

/** API tokens of the HTTP management API (modules/http-api/tokens.ts), in the server's storage. */
async function token([action, ...args]: string[], options: Options): Promise<number> {
  const usage: Record<string, [number, string]> = {
    create: [0, 'token create [--admin JID] [--scope admin|read] [--days N] [--name TEXT]'],
    list: [0, 'token list'],
    revoke: [1, 'token revoke ID'],
  };
  if (action === undefined || !(action in usage)) {
    throw new UsageError(action === undefined ? 'usage: switchboard token create|list|revoke ...' : `unknown token command "${action}"`);
  }
  const [count, text] = usage[action]!;
  expectArguments(args, count, count, text);
  const { config } = await loadConfig({ file: options.config });
  if (action === 'create') {
    const admin = options.admin === undefined ? config.admins[0] : accountOf(options.admin, config).jid;
    if (admin === undefined) throw new CommandError('no administrator to create the token for: name one with --admin, or list one in admins');
    if (!config.admins.includes(admin)) throw new CommandError(`${admin} is not one of admins in the configuration: a token acts for a server administrator`);
    const days = options.days === undefined ? 90 : Number(options.days);
    return withStorage(config, async (storage) => {
      try {
        const { token: secret, info } = await new TokenStore(storage).create({ admin, scope: (options.scope ?? 'admin') as ApiScope, days, name: options.name });
        console.log(secret);
        console.error(`token ${info.id} (${info.scope}) acts for ${info.admin}, expires ${info.expiresAt}; it is not shown again`);
      } catch (e) {
        if (e instanceof TokenError) throw new CommandError(e.message);
        throw e;
      }
    });
  }
  return withStorage(config, async (storage) => {
    const tokens = new TokenStore(storage);
    if (action === 'revoke') {
      if (!(await tokens.revoke(args[0]!))) throw new CommandError(`there is no API token ${args[0]}`);
      console.log(`revoked ${args[0]}`);
      return;
    }
    for (const t of await tokens.list()) {
      console.log([t.id, t.scope, t.admin, `expires ${t.expiresAt}${t.expired ? ' (expired)' : ''}`, t.name].join('\t'));
    }
  });
}

async function withStorage(config: Config, work: (storage: Storage) => Promise<void>): Promise<number> {
  let storage: Storage;
  try {
    storage = await openStorage(config.storage, config['data-dir']);
  } catch (e) {
    throw new CommandError(`cannot open the ${config.storage.type} storage: ${(e as Error).message}`);
  }
  try {
    await work(storage);
    return 0;
  } finally {
    await storage.close();
  }
}

/** The account named on the command line: a bare JID on one of the configured virtual hosts. */
function accountOf(text: string, config: Config): { jid: string; local: string; domain: string } {
  let jid;
  try {
    jid = parseJid(text);
  } catch (e) {
    if (e instanceof JidError) throw new CommandError(`"${text}" is not a valid JID: ${e.message}`);
    throw e;
  }
  if (!jid.local || !jid.isBare()) throw new CommandError(`"${text}" is not an account: expected user@domain`);
  requireVirtualHost(jid.domain, config);
  return { jid: jid.bare, local: jid.local, domain: jid.domain };
}

function virtualHostOf(text: string, config: Config): string {
  let domain;
  try {
    domain = normaliseDomain(text);
  } catch (e) {
    if (e instanceof JidError) throw new CommandError(`"${text}" is not a valid domain: ${e.message}`);
    throw e;
  }
  requireVirtualHost(domain, config);
  return domain;
}

function requireVirtualHost(domain: string, config: Config): void {
  const hosts = config['virtual-hosts'];
  if (!hosts.includes(domain)) throw new CommandError(`${domain} is not a virtual host of this server (virtual-hosts: ${hosts.join(', ')})`);
}

/** Credentials for the password given with --password or on standard input. */
async function newCredentials(given: string | undefined): Promise<Credentials> {
  const password = await readPassword(given);
  try {
    return deriveCredentials(password);
  } catch (e) {
    if (e instanceof PasswordError) throw new CommandError(`unacceptable password: ${e.message}`);
    throw e;
  }
}

/** The --password value, else the first line of standard input (a pipe or, with a prompt, the terminal). */
async function readPassword(given: string | undefined): Promise<string> {
  let password = given;
  if (password === undefined) {
    if (process.stdin.isTTY) process.stderr.write('Password: ');
    const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
    for await (const line of lines) {
      password = line;
      break;
    }
    // Done with standard input: a pipe left open by the writer would otherwise keep the process alive.
    process.stdin.destroy();
  }
  if (!password) throw new CommandError('empty password: give one with --password or on standard input');
  return password;
}
