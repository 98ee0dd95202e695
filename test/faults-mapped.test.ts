// The one store wrapper every backend maps its faults through.
import { describe, expect, it } from 'vitest';
import { withFaultsMapped } from '../src/storage/faults-mapped.js';
import type { Store } from '../src/storage/store.js';

const mapped = (error: unknown) => new Error(`mapped: ${(error as Error).message}`);

describe('withFaultsMapped', () => {
  const store = {
    purgesOffEventLoop: true,
    hasApiKeys: () => false,
    throwsAtOnce: () => {
      throw new Error('sync');
    },
    rejects: async () => {
      throw new Error('async');
    },
    resolves: async (value: number) => value * 2,
  } as unknown as Store;
  const wrapped = withFaultsMapped(store, mapped) as unknown as Record<string, any>;

  it('keeps a property as it is and a synchronous result synchronous', () => {
    expect(wrapped.purgesOffEventLoop).toBe(true);
    expect(wrapped.hasApiKeys()).toBe(false);
  });

  it('maps what a method throws, at once or by rejecting, and passes a result through', async () => {
    expect(() => wrapped.throwsAtOnce()).toThrow('mapped: sync');
    await expect(wrapped.rejects()).rejects.toThrow('mapped: async');
    await expect(wrapped.resolves(21)).resolves.toBe(42);
  });
});
