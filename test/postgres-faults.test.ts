// Which PostgreSQL failures are storage faults (503), in which words, and which may have
// left a write applied (a connection lost with a statement, perhaps a COMMIT, under way).
import { describe, expect, it } from 'vitest';
import { postgresFault } from '../src/storage/postgres/storage-faults.js';

const coded = (code: string) => Object.assign(new Error(code), { code });

describe('postgresFault', () => {
  it.each([
    [coded('ECONNREFUSED'), /^the database cannot be reached \(ECONNREFUSED\)$/, false],
    [coded('ECONNRESET'), /^the database connection was lost \(ECONNRESET\)$/, true],
    [coded('EPIPE'), /^the database connection was lost \(EPIPE\)$/, true],
    [coded('ETIMEDOUT'), /^the database cannot be reached \(ETIMEDOUT\)$/, true],
    [coded('EHOSTUNREACH'), /^the database cannot be reached \(EHOSTUNREACH\)$/, false],
    [coded('ENETUNREACH'), /^the database cannot be reached \(ENETUNREACH\)$/, false],
    [coded('ENOTFOUND'), /^the database cannot be reached \(ENOTFOUND\)$/, false],
    [coded('EAI_AGAIN'), /^the database cannot be reached \(EAI_AGAIN\)$/, false],
    [coded('57P01'), /^the database ended the connection \(an administrator terminated it, or the database is shutting down\) \(SQLSTATE 57P01\)$/, true],
    [coded('57P02'), /^the database crashed and ended the connection \(SQLSTATE 57P02\)$/, true],
    [coded('57P03'), /^the database is starting or shutting down \(SQLSTATE 57P03\)$/, false],
    [coded('57014'), /statement timeout/, false],
    [coded('25006'), /read-only/, false],
    [coded('26000'), /^a prepared statement of the server's connection is gone \(a pooler in transaction mode\?\) \(SQLSTATE 26000\)$/, false],
    [coded('42P05'), /^a prepared statement of the server's connection is there already \(a pooler in transaction mode\?\) \(SQLSTATE 42P05\)$/, false],
    [new Error('Connection terminated due to connection timeout'), /^the database did not accept a connection in time/, false],
    [new Error('timeout exceeded when trying to connect'), /^the database did not accept a connection in time/, false],
    [new Error('Connection terminated unexpectedly'), /^the database connection was lost \(Connection terminated unexpectedly\)$/, true],
    [new Error('Query read timeout'), /^the database did not answer, not even with its statement timeout/, true],
  ])('%s: a storage fault in words, outcome unknown: %s', (error, cause, outcomeUnknown) => {
    const fault = postgresFault(error);
    expect(fault?.cause).toMatch(cause);
    expect(fault?.outcomeUnknown).toBe(outcomeUnknown);
  });

  it("is no storage fault for the request's own errors", () => {
    expect(postgresFault(coded('23505'))).toBeUndefined();
    expect(postgresFault(new Error('something else'))).toBeUndefined();
  });
});
