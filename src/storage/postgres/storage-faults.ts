// PostgreSQL failures that are the database's, not the request's: the store turns them
// into StorageFault (503 STORAGE_UNAVAILABLE, retry later), never a generic 500.
import { withFaultsMapped } from '../faults-mapped.js';
import { StorageFault, type Store } from '../store.js';

/** SQLSTATE classes and codes (https://www.postgresql.org/docs/15/errcodes-appendix.html), the most precise first. */
const SQLSTATE_FAULTS: [prefix: string, cause: string][] = [
  ['08', 'the connection to the database failed'],
  ['53', 'the database is out of resources'],
  ['57014', 'the statement took longer than the statement timeout'],
  ['57P01', 'the database ended the connection (an administrator terminated it, or the database is shutting down)'],
  ['57P02', 'the database crashed and ended the connection'],
  ['57P03', 'the database is starting or shutting down'],
  ['57P', 'the database ended the connection'],
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
  // What a pooler in transaction mode does to a connection's prepared statements (unsupported: see README).
  ['26000', "a prepared statement of the server's connection is gone (a pooler in transaction mode?)"],
  ['42P05', "a prepared statement of the server's connection is there already (a pooler in transaction mode?)"],
];

/** Socket errors (a connection never made, or one the database's side cut), and the driver's own words for either. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const CUT_CODES = new Set(['ECONNRESET', 'EPIPE']);
const NOT_CONNECTED = [/^Connection terminated due to connection timeout/, /timeout exceeded when trying to connect/];
const CONNECTION_LOST = [/^Connection terminated/, /^Client has encountered a connection error/, /Connection ended/];
/** The pool's `query_timeout`: no answer at all, not even the statement timeout's (a database frozen, a network partition). */
const NO_ANSWER = /^Query read timeout/;

/** The driver gave up waiting for an answer: the connection cannot be used again. */
export const isNoAnswer = (error: unknown): boolean => error instanceof Error && NO_ANSWER.test(error.message);

/**
 * Faults that can end a connection with a statement under way (a COMMIT among them): its
 * outcome is unknown. A connection never made, or a statement the database refused,
 * changed nothing.
 */
const MID_STATEMENT_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', '57P01', '57P02']);

export interface PostgresFault {
  cause: string;
  outcomeUnknown: boolean;
}

/** The fault's cause in words, and whether a write under way may have been applied; undefined for an error that is not a storage fault. */
export function postgresFault(error: unknown): PostgresFault | undefined {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string') {
    const outcomeUnknown = MID_STATEMENT_CODES.has(code);
    if (SOCKET_CODES.has(code)) return { cause: `the database cannot be reached (${code})`, outcomeUnknown };
    if (CUT_CODES.has(code)) return { cause: `the database connection was lost (${code})`, outcomeUnknown };
    const fault = /^[0-9A-Z]{5}$/.test(code) ? SQLSTATE_FAULTS.find(([prefix]) => code.startsWith(prefix)) : undefined;
    if (fault) return { cause: `${fault[1]} (SQLSTATE ${code})`, outcomeUnknown };
  }
  if (error instanceof AggregateError) return error.errors.map(postgresFault).find(Boolean);
  if (typeof message !== 'string') return undefined;
  if (NOT_CONNECTED.some((pattern) => pattern.test(message))) return { cause: `the database did not accept a connection in time (${message})`, outcomeUnknown: false };
  if (CONNECTION_LOST.some((pattern) => pattern.test(message))) return { cause: `the database connection was lost (${message})`, outcomeUnknown: true };
  if (NO_ANSWER.test(message)) return { cause: 'the database did not answer, not even with its statement timeout (frozen, or out of reach)', outcomeUnknown: true };
  return undefined;
}

/** The store with every storage fault its methods raise turned into a StorageFault. */
export function withPostgresFaults(store: Store): Store {
  return withFaultsMapped(store, (error) => {
    const fault = postgresFault(error);
    return fault === undefined ? error : new StorageFault(fault.cause, { cause: error }, fault.outcomeUnknown);
  });
}
