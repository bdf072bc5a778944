// Bounded waiting, shared by every test file (and nothing else in them waits unbounded).

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` (a throw counts as false) until it holds; rejects after `timeoutMs`. Bounded. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition', everyMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (
    !(await Promise.resolve()
      .then(check)
      .catch(() => false))
  ) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
