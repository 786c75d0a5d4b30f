// `switchboard dump-config`: every option with the value in effect and where it came from.
import { describeSchema, formatPath, optionValues } from './describe.js';
import { configSchema, type LoadedConfig } from './load.js';

/** One line per option: `c2s.port = 5222   (default)` or `... (/etc/switchboard.yaml)`. */
export function dumpConfig({ config, file, sources }: LoadedConfig): string[] {
  const rows = optionValues(describeSchema(configSchema()), config).map(({ path, value }) => {
    const key = formatPath(path);
    return { setting: `${key} = ${formatValue(value)}`, source: sources.get(key) === 'file' ? file! : 'default' };
  });
  const width = Math.max(...rows.map((row) => row.setting.length));
  return rows.map(({ setting, source }) => `${setting.padEnd(width)}   (${source})`);
}

function formatValue(value: unknown): string {
  if (value === undefined) return '(not set)';
  if (typeof value === 'string') return value === '' || value.trim() !== value ? JSON.stringify(value) : maskPassword(value);
  return JSON.stringify(value);
}

/** A URL with its password replaced by ***, for output that may end up in tickets and chats. */
export function maskPassword(text: string): string {
  if (!URL.canParse(text)) return text;
  const url = new URL(text);
  if (!url.password) return text;
  url.password = '***';
  return url.href;
}
