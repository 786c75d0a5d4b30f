// What the relay knows of the values it writes on one Asterisk (DEVICE_STATE(Custom:...) or
// PRESENCE_STATE(CustomPresence:...)): Asterisk reports every write back as an event, and those
// echoes must not be taken for the server's own reports, or states would loop between servers.

interface Holding {
  /** What the server holds now, as far as we know (its events and our writes). */
  known?: string;
  /** The last value we wrote; kept across reconnects, to recognise our own write in a resync list. */
  lastSet?: string;
  /** Values written whose echo has not come yet, oldest first, with when they were sent. */
  pending: { value: string; at: number }[];
}

/** How long an echo may take before we stop expecting it (Asterisk may coalesce quick changes). */
const ECHO_WINDOW_MS = 10_000;
/** Echoes expected at most per name: a server that never echoes must not make the list grow. */
const MAX_PENDING = 32;

export class Holdings {
  private readonly byName = new Map<string, Holding>();

  constructor(private readonly now: () => number = Date.now) {}

  private holding(name: string): Holding {
    let h = this.byName.get(name);
    if (!h) this.byName.set(name, (h = { pending: [] }));
    return h;
  }

  known(name: string): string | undefined {
    return this.byName.get(name)?.known;
  }

  /** We wrote `value`: expect its echo (unless `echoed` is false: names whose events are ignored anyway). */
  wrote(name: string, value: string, echoed = true): void {
    const h = this.holding(name);
    h.known = value;
    h.lastSet = value;
    if (!echoed) return;
    this.prune(h);
    h.pending.push({ value, at: this.now() });
    if (h.pending.length > MAX_PENDING) h.pending.shift();
  }

  private prune(h: Holding): void {
    const cutoff = this.now() - ECHO_WINDOW_MS;
    while (h.pending.length > 0 && h.pending[0]!.at < cutoff) h.pending.shift();
  }

  /**
   * The server reported `value` for `name` in a live event. Returns true when it is the echo of a
   * write of ours: one still expected, or the last value we wrote (a repeat). Either way the
   * server holds it now.
   */
  heardLive(name: string, value: string): boolean {
    const h = this.holding(name);
    h.known = value;
    this.prune(h);
    const index = h.pending.findIndex((p) => p.value === value);
    if (index >= 0) {
      h.pending.splice(0, index + 1);
      return true;
    }
    return value === h.lastSet;
  }

  /** The server listed `value` for `name` when resynchronising: true when that is what we wrote last. */
  heardInList(name: string, value: string): boolean {
    const h = this.holding(name);
    h.known = value;
    return value === h.lastSet;
  }

  /** The connection ended: what the server holds is unknown until it tells us again. */
  forgetKnown(): void {
    for (const h of this.byName.values()) {
      h.known = undefined;
      h.pending = [];
    }
  }
}
