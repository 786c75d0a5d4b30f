// Every module the server can load, in load order. Adding a XEP is one file and one line here.
import type { ModuleDefinition } from '../core/module-definition.js';

export const allModules: ModuleDefinition[] = [];
