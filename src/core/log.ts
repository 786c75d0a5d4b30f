// Logging: one pino logger for the server, configured by the `log` options, and a child per
// module so that every line says which module wrote it.
import { pino, type Logger } from 'pino';
import type { CoreConfig } from '../config/schema.js';

/** The server's logger: JSON lines to standard output, or appended to `log.file`. */
export function createLogger(options: CoreConfig['log']): Logger {
  if (!options.file) return pino({ level: options.level });
  // Synchronous, so that an unwritable file fails here, at start, rather than in an error event
  // later; and a crash cannot lose the last lines.
  return pino({ level: options.level }, pino.destination({ dest: options.file, mkdir: true, sync: true }));
}

export function moduleLogger(root: Logger, moduleName: string): Logger {
  return root.child({ module: moduleName });
}
