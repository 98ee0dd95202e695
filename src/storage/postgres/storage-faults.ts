// PostgreSQL failures that are the database's, not the request's: the store turns them
// into StorageFault (503 STORAGE_UNAVAILABLE, retry later), never a generic 500.
import { StorageFault, type Store } from '../store.js';

/** SQLSTATE classes and codes (https://www.postgresql.org/docs/15/errcodes-appendix.html). */
const SQLSTATE_FAULTS: [prefix: string, cause: string][] = [
  ['08', 'the connection to the database failed'],
  ['53', 'the database is out of resources'],
  ['57014', 'the statement took longer than the statement timeout'],
  ['57P', 'the database is shutting down or starting'],
  ['40001', 'a serialization failure'],
  ['40P01', 'a deadlock'],
  ['55P03', 'a lock could not be had'],
  ['58', 'a system error in the database'],
  ['XX', 'an internal error in the database'],
  // The database changed under the server: what an operator does, not what a request asks.
  ['28', 'the database refused the server its login'],
  ['3D000', 'the database does not exist'],
  ['42501', 'the database refused the server a privilege'],
  ['42P01', 'a table is missing from the database'],
  ['25006', 'the database is read-only (default_transaction_read_only, or a standby)'],
];

/** Socket errors, and the driver's own words for a connection lost or never made. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const DRIVER_MESSAGES = [/^Connection terminated/, /timeout exceeded when trying to connect/, /^Client has encountered a connection error/, /Connection ended/];

/** The fault's cause in words; undefined for an error that is not a storage fault. */
export function postgresFaultCause(error: unknown): string | undefined {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string') {
    if (SOCKET_CODES.has(code)) return `the database cannot be reached (${code})`;
    const fault = /^[0-9A-Z]{5}$/.test(code) ? SQLSTATE_FAULTS.find(([prefix]) => code.startsWith(prefix)) : undefined;
    if (fault) return `${fault[1]} (SQLSTATE ${code})`;
  }
  if (error instanceof AggregateError) return error.errors.map(postgresFaultCause).find(Boolean);
  if (typeof message === 'string' && DRIVER_MESSAGES.some((pattern) => pattern.test(message))) return `the database connection was lost (${message})`;
  return undefined;
}

/** The store with every storage fault its methods raise turned into a StorageFault. */
export function withPostgresFaults(store: Store): Store {
  const wrapped = {} as Record<string, unknown>;
  for (const [name, method] of Object.entries(store) as [string, (...args: unknown[]) => unknown][]) {
    // A synchronous method (onEventsWritten) stays synchronous: its result is no promise.
    wrapped[name] = (...args: unknown[]) => {
      const result = method(...args);
      if (!(result instanceof Promise)) return result;
      return result.catch((error: unknown) => {
        const cause = postgresFaultCause(error);
        throw cause === undefined ? error : new StorageFault(cause, { cause: error });
      });
    };
  }
  return wrapped as unknown as Store;
}
