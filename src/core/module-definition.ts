// What a module declares. The module host (core/modules.ts) runs `setup` with a context of
// named services; config/load.ts reads `config` to validate and document the module's options,
// found in the YAML under the module's name.
import type { z } from 'zod';
import type { ModuleContext } from './modules.js';

export type Disposer = () => void | Promise<void>;

export interface ModuleDefinition<C extends z.ZodObject = z.ZodObject> {
  /** Also the key of the module's options in the configuration file. */
  name: string;
  /** One line for `dump-config` and the generated documentation. */
  description: string;
  /** Specifications implemented, e.g. ['XEP-0199']. */
  specs?: string[];
  /** disco#info features advertised on every virtual host. */
  features?: string[];
  /** Options, each with a default and a description. */
  config?: C;
  setup(ctx: ModuleContext<z.infer<C>>): void | Disposer | Promise<void | Disposer>;
  /** What `switchboard check` shows for this module, which it works out without the server running (e.g. probing its peers). */
  check?(options: z.infer<C>): Promise<ModuleCheck | undefined>;
}

/** A module's part of `switchboard check`: lines under its name; problems fail the check, warnings do not. */
export interface ModuleCheck {
  lines: string[];
  problems?: string[];
  warnings?: string[];
}

export function defineModule<C extends z.ZodObject>(def: ModuleDefinition<C>): ModuleDefinition<C> {
  return def;
}
