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

export function positiveInteger(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, not "${value}"`);
  return n;
}
