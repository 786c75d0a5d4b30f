// Named events with prioritised handlers (higher priority runs first). A handler returning
// true claims the event and stops the chain; that is how modules take over routing steps
// (e.g. the presence module handles 'presence/bare') without the core knowing them.
type Handler<T> = (payload: T) => boolean | void | Promise<boolean | void>;

interface Entry<T> {
  handler: Handler<T>;
  priority: number;
}

export class Hooks<Events extends { [K in keyof Events]: unknown }> {
  private readonly handlers = new Map<keyof Events, Entry<any>[]>();

  /** Registers a handler; returns a function that removes it. */
  on<K extends keyof Events>(event: K, handler: Handler<Events[K]>, priority = 0): () => void {
    const list = this.handlers.get(event) ?? [];
    const entry = { handler, priority };
    list.push(entry);
    list.sort((a, b) => b.priority - a.priority);
    this.handlers.set(event, list);
    return () => {
      const l = this.handlers.get(event);
      if (l) l.splice(l.indexOf(entry), 1);
    };
  }

  has(event: keyof Events): boolean {
    return (this.handlers.get(event)?.length ?? 0) > 0;
  }

  /** Runs handlers in priority order until one returns true; resolves to whether one did. */
  async fire<K extends keyof Events>(event: K, payload: Events[K]): Promise<boolean> {
    const list = this.handlers.get(event);
    if (!list) return false;
    for (const { handler } of list.slice()) {
      let r = handler(payload);
      if (r instanceof Promise) r = await r;
      if (r === true) return true;
    }
    return false;
  }
}
