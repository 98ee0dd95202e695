/** Resolves once `condition` holds, checking every `everyMs` (0: after each turn of the event loop); throws after `ms`. */
export async function until(what: string, condition: () => boolean | Promise<boolean>, { ms = 10_000, everyMs = 0 } = {}): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => (everyMs === 0 ? setImmediate(resolve) : setTimeout(resolve, everyMs)));
  }
}
