// The module host: builds each module's context and runs its lifecycle. (Filled in with the core.)
export interface ModuleContext<C = unknown> {
  config: C;
}
