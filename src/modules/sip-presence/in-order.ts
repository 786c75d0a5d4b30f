// Work on one phone (its presence updates, its stored session record) runs one task after the
// other, in the order queued, while different phones proceed side by side. Both outputs use it.

export class InOrder {
  private readonly tails = new Map<string, Promise<void>>();

  /** Queues `work` behind what `key` already has; a failure goes to `failed` and the queue goes on. */
  run(key: string, work: () => Promise<void>, failed: (err: unknown) => void): void {
    const next = (this.tails.get(key) ?? Promise.resolve()).then(work).catch(failed);
    this.tails.set(key, next);
    void next.then(() => { if (this.tails.get(key) === next) this.tails.delete(key); });
  }

  /** Settles when what `key` has queued so far is done. */
  async done(key: string): Promise<void> {
    await this.tails.get(key);
  }

  /** Settles when everything queued so far is done. */
  async allDone(): Promise<void> {
    await Promise.all([...this.tails.values()]);
  }
}
