// How a case's answer is judged beyond the response checks: by what the case expected
// of it (a valid request accepted, an invalid one refused naming its field, a request
// without credentials answered 401), and no 5xx whatever was sent.
import type { Violation } from './check.js';
import type { Answer } from './http.js';
import type { Expectation } from './plan.js';
import type { Operation } from './spec-model.js';

/** Statuses that say the request was bad: never the answer to a valid one. */
const NEVER_FOR_VALID_INPUT = new Set([400, 413, 415]);

/** A 5xx, but a 504 the operation documents: that is a wait for something outside the server (an agent's reply) running out. */
export const isServerError = (operation: Operation, status: number) => status >= 500 && !(status === 504 && '504' in operation.responses);

/** A success: a 2xx, or a 3xx the operation documents (a redirect is its answer). */
export const succeeds = (operation: Operation, status: number) => (status >= 200 && status < 300) || (status >= 300 && status < 400 && String(status) in operation.responses);

/** Whether a 400's body names the field: as a word of its own (`body/status`, `'status'`), not inside another (`400`). */
export function namesField(text: string, field: string): boolean {
  const escaped = field.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^A-Za-z0-9_])${escaped}($|[^A-Za-z0-9_])`).test(text);
}

/** What an answer (one that came) breaks of the case's expectation, and of no-server-error. */
export function expectationViolations(operation: Operation, expectation: Expectation, answer: Answer): Violation[] {
  const violations: Violation[] = [];
  if (isServerError(operation, answer.status)) violations.push({ check: 'no-server-error', message: `answered ${answer.status}` });
  if (expectation.type === 'valid') {
    if (NEVER_FOR_VALID_INPUT.has(answer.status)) violations.push({ check: 'valid-input-accepted', message: `a valid request was refused with ${answer.status}` });
    if (!expectation.realIds && answer.status < 400) violations.push({ check: 'unknown-id-refused', message: `a request for an unknown id answered ${answer.status}` });
  } else if (expectation.type === 'unauthenticated') {
    if (answer.status !== 401) violations.push({ check: 'auth-required', message: `without credentials, expected 401, got ${answer.status}` });
  } else if (expectation.type === 'invalid') {
    // An operation that documents no 400 but a 404 may answer a malformed id as one it does not have.
    const answeredAsUnknown = expectation.inPath && answer.status === 404 && '404' in operation.responses && !('400' in operation.responses || '4XX' in operation.responses);
    if (answer.status !== 400 && !answeredAsUnknown) violations.push({ check: 'invalid-input-refused', message: `expected 400, got ${answer.status}`, property: expectation.field });
    else if (answer.status === 400 && !namesField(answer.text, expectation.field)) {
      violations.push({ check: 'invalid-input-refused', message: `the 400 does not name "${expectation.field}"`, property: expectation.field });
    }
  }
  return violations;
}
