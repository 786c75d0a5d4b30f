// The software's version, as package.json gives it: one read for everything that shows it
// (XEP-0092, XEP-0485 server information, GET /health).
import { readFileSync } from 'node:fs';

export const VERSION: string = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;
