// Polling for a condition the tests cannot await directly (a session gone, a node seen).

/** Polls until `check` holds; the machine may be loaded, so the default wait is generous. */
export async function waitUntil(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
