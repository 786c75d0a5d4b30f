// Placeholder, replaced by the operator panel.
import type { Server } from '../core/server.js';
import type { HttpRoutes } from '../http/server.js';

export function registerPanel(_server: Server, _http: HttpRoutes): void {}
