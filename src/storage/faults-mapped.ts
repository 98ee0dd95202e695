// One wrapper for every backend: the store with each error its methods raise passed
// through the backend's own mapping (a storage fault to a StorageFault, anything else as it is).
import type { Store } from './store.js';

export function withFaultsMapped(store: Store, mapped: (error: unknown) => unknown): Store {
  const wrapped = {} as Record<string, unknown>;
  for (const [name, method] of Object.entries(store) as [string, (...args: unknown[]) => unknown][]) {
    // A property (purgesOffEventLoop) is no method: kept as it is.
    if (typeof method !== 'function') {
      wrapped[name] = method;
      continue;
    }
    // A synchronous method (onEventsWritten, hasApiKeys) stays synchronous: its result is no promise.
    wrapped[name] = (...args: unknown[]) => {
      let result: unknown;
      try {
        result = method(...args);
      } catch (error) {
        throw mapped(error);
      }
      if (!(result instanceof Promise)) return result;
      return result.catch((error: unknown) => {
        throw mapped(error);
      });
    };
  }
  return wrapped as unknown as Store;
}
