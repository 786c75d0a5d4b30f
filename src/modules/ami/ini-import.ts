// `switchboard import zmq-ami-broker config.ini`: the seed broker's configuration (Python
// ConfigParser dialect) as the `ami:` section of our YAML. Its servers speak res_zmq_manager's
// ZeroMQ sockets (addr, cmd_port, evt_port), which the zmq transport keeps; given --username and
// --secret (a manager.conf user), every server is moved to standard AMI over TCP instead.
import { stringify } from 'yaml';
import { amiConfigSchema } from './config.js';

export class IniImportError extends Error {}

type Sections = Map<string, Map<string, string>>;

/**
 * ConfigParser's dialect, which the npm `ini` package does not follow: `key = value` or
 * `key: value`, comments on their own line with `;` or `#`, option names case-insensitive,
 * continuation lines indented.
 */
export function parseIni(text: string): Sections {
  const sections: Sections = new Map();
  let current: Map<string, string> | undefined;
  let lastKey: string | undefined;
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.replace(/\s+$/, '');
    if (line.trim() === '' || /^\s*[;#]/.test(line)) return;
    if (/^\s/.test(line) && current && lastKey !== undefined) {
      current.set(lastKey, `${current.get(lastKey)}\n${line.trim()}`);
      return;
    }
    const section = /^\[([^\]]+)\]$/.exec(line.trim());
    if (section) {
      const name = section[1]!.trim();
      current = sections.get(name) ?? new Map();
      sections.set(name, current);
      lastKey = undefined;
      return;
    }
    const option = /^([^=:]+?)\s*[=:]\s*(.*)$/.exec(line);
    if (!option) throw new IniImportError(`line ${index + 1}: "${line}" is neither [section] nor key = value`);
    if (!current) throw new IniImportError(`line ${index + 1}: an option before any [section]`);
    lastKey = option[1]!.trim().toLowerCase();
    current.set(lastKey, option[2]!);
  });
  return sections;
}

/** ConfigParser.getboolean. */
function boolean(value: string | undefined, where: string): boolean | undefined {
  if (value === undefined) return undefined;
  const v = value.trim().toLowerCase();
  if (['1', 'yes', 'true', 'on'].includes(v)) return true;
  if (['0', 'no', 'false', 'off'].includes(v)) return false;
  throw new IniImportError(`${where}: "${value}" is not a boolean (yes/no)`);
}

function integer(value: string | undefined, where: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\s*\d+\s*$/.test(value)) throw new IniImportError(`${where}: "${value}" is not a number`);
  return Number(value);
}

export interface ImportOptions {
  /** Move every server to AMI over TCP with this manager.conf user. */
  username?: string;
  secret?: string;
  /** AMI port for --username/--secret (default 5038). */
  port?: number;
}

export interface ImportResult {
  yaml: string;
  /** What the seed had that has no counterpart (printed as comments too). */
  notes: string[];
}

export function importZmqAmiBroker(text: string, options: ImportOptions = {}): ImportResult {
  if ((options.username === undefined) !== (options.secret === undefined)) throw new IniImportError('--username and --secret go together');
  const sections = parseIni(text);
  const general = sections.get('general') ?? new Map<string, string>();
  const list = sections.get('servers')?.get('sections');
  if (list === undefined) throw new IniImportError('no [servers] section with "sections = server-1, server-2, ..."');
  const notes: string[] = [];
  const defaults = sections.get('DEFAULT') ?? new Map<string, string>();
  const servers = list.split(',').map((s) => s.trim()).filter((s) => s !== '').map((id) => {
    const section = sections.get(id);
    if (!section) throw new IniImportError(`[servers] names "${id}" but there is no [${id}] section`);
    const get = (key: string) => section.get(key) ?? defaults.get(key);
    const host = get('addr') ?? get('host');
    if (!host) throw new IniImportError(`[${id}] has no addr`);
    const server: Record<string, unknown> = { name: get('name')?.trim() || id, host: host.trim() };
    const trace = boolean(get('ami_trace'), `[${id}] ami_trace`);
    const username = options.username ?? get('username');
    const secret = options.secret ?? get('secret');
    if (username !== undefined && secret !== undefined) {
      server.port = options.username !== undefined ? options.port ?? 5038 : integer(get('port'), `[${id}] port`) ?? 5038;
      server.username = username.trim();
      server.secret = secret.trim();
    } else {
      server.transport = 'zmq';
      server['cmd-port'] = integer(get('cmd_port'), `[${id}] cmd_port`);
      server['evt-port'] = integer(get('evt_port'), `[${id}] evt_port`);
    }
    if (trace !== undefined) server['ami-trace'] = trace;
    return server;
  });
  const ami: Record<string, unknown> = {};
  const deviceState = boolean(general.get('device_state'), '[general] device_state');
  const presence = boolean(general.get('presence'), '[general] presence');
  const timeout = integer(general.get('request_timeout'), '[general] request_timeout');
  if (deviceState !== undefined) ami['device-state'] = deviceState;
  if (presence !== undefined) ami.presence = presence;
  if (timeout !== undefined) ami['request-timeout'] = timeout;
  ami.servers = servers;
  if (general.has('log_level')) notes.push(`log_level = ${general.get('log_level')}: the server's log.level applies`);
  if (boolean(general.get('verbose_messages'), '[general] verbose_messages')) notes.push('verbose_messages: set ami-trace on the servers to log their messages');
  if (boolean(general.get('count_messages'), '[general] count_messages')) notes.push('count_messages: the relay always counts, per link (GET /metrics)');
  const checked = amiConfigSchema.safeParse(ami);
  if (!checked.success) {
    throw new IniImportError(checked.error.issues.map((i) => `ami.${i.path.join('.')}: ${i.message}`).join('\n'));
  }
  const header = ['# Converted from a zmq-ami-broker config.ini by `switchboard import zmq-ami-broker`.',
    ...notes.map((n) => `# ${n}`)].join('\n');
  return { yaml: `${header}\n${stringify({ ami })}`, notes };
}
