// Command-line options every load benchmark shares (bench/run.ts, bench/http-transports.ts).

/** parseArgs entries for the load shape: accounts, duration, messages in flight, logins at once. */
export const LOAD_OPTIONS = {
  domain: { type: 'string', default: 'localhost' },
  users: { type: 'string', default: '200' },
  password: { type: 'string', default: 'bench' },
  'user-prefix': { type: 'string', default: 'bench' },
  duration: { type: 'string', default: '10' },
  'in-flight': { type: 'string', default: '10' },
  concurrency: { type: 'string', default: '50' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', default: false },
} as const;

/**
 * `--target host:port[,host:port...]`: several targets are the nodes of one cluster, and the
 * accounts are spread over them in turn (account n on target (n - 1) mod count).
 */
export function parseTargets(value: string): { host: string; port: number }[] {
  return value.split(',').map((t) => {
    const [host, port] = t.trim().split(/:(?=\d+$)/);
    if (!host || !port) throw new Error(`--target must be host:port (several separated by commas), not "${value}"`);
    return { host, port: positiveInteger('target port', port) };
  });
}

export function positiveInteger(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, not "${value}"`);
  return n;
}
