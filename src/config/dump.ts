// `switchboard dump-config`: every option with the value in effect and where it came from.
import { describeSchema, formatPath, optionValues } from './describe.js';
import { configSchema, type LoadedConfig } from './load.js';

/** One line per option: `c2s.port = 5222   (default)` or `... (/etc/switchboard.yaml)`. */
export function dumpConfig({ config, file, sources }: LoadedConfig): string[] {
  const rows = optionValues(describeSchema(configSchema()), config).map(({ path, value }) => {
    const key = formatPath(path);
    const shown = isSecretKey(String(path[path.length - 1] ?? '')) && value !== undefined ? '***' : formatValue(maskSecrets(value));
    return { setting: `${key} = ${shown}`, source: sources.get(key) === 'file' ? file! : 'default' };
  });
  const width = Math.max(...rows.map((row) => row.setting.length));
  return rows.map(({ setting, source }) => `${setting.padEnd(width)}   (${source})`);
}

function formatValue(value: unknown): string {
  if (value === undefined) return '(not set)';
  if (typeof value === 'string') return value === '' || value.trim() !== value ? JSON.stringify(value) : maskPassword(value);
  return JSON.stringify(value);
}

/** Options named like a secret (password, secret, token) are never printed. */
function isSecretKey(key: string): boolean {
  return /password|secret|token/i.test(key);
}

/** The secrets inside a list or an object (e.g. the secret of each AMI server) replaced by ***. */
function maskSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(maskSecrets);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, isSecretKey(k) && v !== undefined ? '***' : typeof v === 'string' ? maskPassword(v) : maskSecrets(v)]));
  }
  return value;
}

/** A URL with its password replaced by ***, for output that may end up in tickets and chats. */
export function maskPassword(text: string): string {
  if (!URL.canParse(text)) return text;
  const url = new URL(text);
  if (!url.password) return text;
  url.password = '***';
  return url.href;
}
