// Validators and serializers compiled from the spec's schemas, kept by schema text for the
// process (the tests build hundreds of apps), and compiled when first used: a server
// process compiled every route's at start (about a fifth of its start-up CPU) for routes
// most processes never see.

export class CompiledOnFirstUse<T> {
  private readonly compiled = new Map<string, T>();
  /** Given to a route before it was compiled. */
  private readonly pending = new Map<string, () => T>();

  /** The compiled one for `key`, if there is one yet. */
  ready(key: string): T | undefined {
    return this.compiled.get(key);
  }

  /** A getter that compiles `key` with `compile` the first time any getter of it is called. */
  onFirstUse(key: string, compile: () => T): () => T {
    const get = () => {
      let made = this.compiled.get(key);
      if (made === undefined) this.compiled.set(key, (made = compile()));
      return made;
    };
    this.pending.set(key, get);
    return get;
  }

  /** Compiles one given to a route that no request has needed yet; false when there is none left. Throws as its compiler does. */
  compileNext(): boolean {
    for (const [key, get] of this.pending) {
      this.pending.delete(key);
      if (this.compiled.has(key)) continue;
      get();
      return true;
    }
    return false;
  }

  /** How many given to a route are not compiled yet. */
  waiting(): number {
    return [...this.pending.keys()].filter((key) => !this.compiled.has(key)).length;
  }

  /** Compiles every one given to a route so far (the tests: none of the spec's fails late); how many there are. */
  compileAll(): number {
    // Each tried once: one that throws is not tried again by a later call (another app's, in the tests).
    for (const [key, get] of this.pending) {
      this.pending.delete(key);
      get();
    }
    return this.compiled.size;
  }
}

/**
 * Runs `compileNext` of each in turn, one compile a turn of the event loop (requests go
 * between them), until none has one left. One that throws is passed over: its route
 * compiles it again on first use, and answers the failure.
 */
export function compileInTurns(...compilers: Array<() => boolean>): Promise<void> {
  return new Promise((resolve) => {
    const next = () => {
      let compiled = false;
      for (const compileNext of compilers) {
        try {
          compiled = compileNext();
        } catch {
          compiled = true;
        }
        if (compiled) break;
      }
      if (!compiled) return resolve();
      setImmediate(next);
    };
    setImmediate(next);
  });
}
