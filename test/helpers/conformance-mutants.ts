// The faults the conformance suite must catch (its mutation score), each injected on the
// wire by a proxy in front of our server, with the check expected to catch it. The
// README's table of faults is checked against this list.
import { expect } from 'vitest';
import type { CheckName } from '../../src/conformance/check.js';
import { runConformance } from '../../src/conformance/run.js';
import { specPath } from '../../src/spec.js';
import { type Fault, faultProxy, type ProxiedAnswer, type ProxiedRequest } from './conformance-target.js';

const SESSION = /^\/api\/messaging\/sessions\/[^/]+$/;
const MESSAGES = /^\/api\/messaging\/sessions\/[^/]+\/messages$/;
const is = (request: ProxiedRequest, method: string, path: RegExp | string) =>
  request.method === method && (typeof path === 'string' ? request.path === path : path.test(request.path));
const withJson = (answer: ProxiedAnswer, change: (json: any) => void): ProxiedAnswer => {
  change(answer.json);
  return answer;
};
const plusMs = (iso: string, ms: number) => new Date(Date.parse(iso) + ms).toISOString();

/** Remembers the last page per session, to repeat its oldest message at the top of the next. */
const lastPages = new Map<string, any[]>();

export interface Mutant {
  name: string;
  caughtBy: CheckName;
  /** Checks whose cases the catching check needs to have run first. */
  after?: CheckName[];
  /** The one operation whose answers a response check sees changed: only its cases run. */
  operation?: string;
  fault: Fault;
}

export const mutants: Mutant[] = [
  {
    name: 'undocumented status (listAgents 200 → 202)',
    caughtBy: 'status-documented',
    operation: 'listAgents',
    fault: { response: (r, a) => (is(r, 'GET', '/api/agents') && a.status === 200 ? { ...a, status: 202 } : undefined) },
  },
  {
    name: 'wrong success status (createSession 201 → 200)',
    caughtBy: 'status-documented',
    operation: 'createSession',
    fault: { response: (r, a) => (is(r, 'POST', '/api/messaging/sessions') && a.status === 201 ? { ...a, status: 200 } : undefined) },
  },
  {
    name: 'extra field (getSession adds `debug`)',
    caughtBy: 'response-schema',
    operation: 'getSession',
    fault: { response: (r, a) => (is(r, 'GET', SESSION) && a.status === 200 ? withJson(a, (j) => (j.debug = true)) : undefined) },
  },
  {
    name: 'missing field (getSession without `lastActivity`)',
    caughtBy: 'response-schema',
    operation: 'getSession',
    fault: { response: (r, a) => (is(r, 'GET', SESSION) && a.status === 200 ? withJson(a, (j) => delete j.lastActivity) : undefined) },
  },
  {
    name: 'wrong type (renewalCount as a string)',
    caughtBy: 'response-schema',
    operation: 'renewSession',
    fault: {
      response: (r, a) => (r.method === 'POST' && r.path.endsWith('/renew') && a.status === 200 ? withJson(a, (j) => (j.renewalCount = String(j.renewalCount))) : undefined),
    },
  },
  {
    name: 'wrong format (createdAt without a time zone)',
    caughtBy: 'response-schema',
    operation: 'createSession',
    fault: { response: (r, a) => (is(r, 'POST', '/api/messaging/sessions') && a.status === 201 ? withJson(a, (j) => (j.createdAt = j.createdAt.replace('Z', ''))) : undefined) },
  },
  {
    name: 'wrong content type (listSessions as text/plain)',
    caughtBy: 'content-type',
    operation: 'listSessions',
    fault: { response: (r, a) => (is(r, 'GET', '/api/messaging/sessions') ? { ...a, contentType: 'text/plain' } : undefined) },
  },
  {
    name: '500 on bad input (createSession 400 → 500)',
    caughtBy: 'invalid-input-refused',
    fault: {
      response: (r, a) =>
        is(r, 'POST', '/api/messaging/sessions') && a.status === 400
          ? { ...a, status: 500, json: { success: false, error: { code: 'INTERNAL_ERROR', message: 'Internal server error', details: 'boom' } } }
          : undefined,
    },
  },
  {
    name: 'a 400 that does not name the field (PATCH …/timeout)',
    caughtBy: 'invalid-input-refused',
    fault: { response: (r, a) => (r.method === 'PATCH' && a.status === 400 ? withJson(a, (j) => (j.error.details = 'bad request')) : undefined) },
  },
  {
    name: 'invalid input accepted (out-of-range timeoutMinutes clamped instead of refused)',
    caughtBy: 'invalid-input-refused',
    fault: {
      request: (r) => {
        if (r.method !== 'PATCH' || typeof r.body?.timeoutMinutes !== 'number') return undefined;
        return { body: { ...r.body, timeoutMinutes: Math.min(1440, Math.max(5, Math.round(r.body.timeoutMinutes))) } };
      },
    },
  },
  {
    name: 'valid input refused (a message naming its authorId → 400)',
    caughtBy: 'valid-input-accepted',
    fault: {
      request: (r) =>
        is(r, 'POST', MESSAGES) && typeof r.body?.authorId === 'string' && r.raw.length < 10_000
          ? { status: 400, contentType: 'application/json', json: { success: false, error: { code: 'INVALID_REQUEST', message: 'Invalid request', details: 'body/authorId not supported' } }, text: '' }
          : undefined,
    },
  },
  {
    name: 'an unknown id answered 200 (getAgent invents the agent)',
    caughtBy: 'unknown-id-refused',
    fault: {
      response: (r, a) =>
        r.method === 'GET' && /^\/api\/agents\/[^/]+$/.test(r.path) && a.status === 404
          ? { ...a, status: 200, json: { success: true, data: { id: r.path.split('/').pop(), name: 'Invented', status: 'active', createdAt: new Date().toISOString(), settings: {} } } }
          : undefined,
    },
  },
  {
    name: 'delete that deletes nothing (deleteAgent answers 200 without forwarding)',
    caughtBy: 'deleted-resource-gone',
    fault: {
      request: (r) =>
        r.method === 'DELETE' && /^\/api\/agents\/[0-9a-f-]{36}$/.test(r.path)
          ? { status: 200, contentType: 'application/json', json: { success: true, data: { message: 'Agent deleted', deletedSessions: 0 } }, text: '' }
          : undefined,
    },
  },
  {
    name: 'an ended session still answers (endSession not forwarded)',
    caughtBy: 'sessions-flows',
    fault: {
      request: (r) => (is(r, 'DELETE', SESSION) ? { status: 200, contentType: 'application/json', json: { success: true, message: 'Session ended' }, text: '' } : undefined),
    },
  },
  {
    name: 'off-by-one expiry (createSession expiresAt + 1 ms)',
    caughtBy: 'sessions-flows',
    fault: { response: (r, a) => (is(r, 'POST', '/api/messaging/sessions') && a.status === 201 ? withJson(a, (j) => (j.expiresAt = plusMs(j.expiresAt, 1))) : undefined) },
  },
  {
    name: 'off-by-one-minute expiry after PATCH',
    caughtBy: 'sessions-flows',
    fault: { response: (r, a) => (r.method === 'PATCH' && a.status === 200 ? withJson(a, (j) => (j.expiresAt = plusMs(j.expiresAt, 60_000))) : undefined) },
  },
  {
    name: 'PATCH resets the fields it was not given (to the defaults)',
    caughtBy: 'sessions-flows',
    fault: {
      request: (r) =>
        r.method === 'PATCH' && r.body && typeof r.body === 'object' && !Array.isArray(r.body)
          ? { body: { autoRenew: true, maxDurationMinutes: 720, warningThresholdMinutes: 5, ...r.body } }
          : undefined,
    },
  },
  {
    name: 'the maximum is not raised to the timeout (maxDurationMinutes echoed as asked)',
    caughtBy: 'sessions-flows',
    fault: {
      response: (r, a) =>
        is(r, 'POST', '/api/messaging/sessions') && a.status === 201 && typeof r.body?.timeoutConfig?.maxDurationMinutes === 'number'
          ? withJson(a, (j) => (j.timeoutConfig.maxDurationMinutes = r.body.timeoutConfig.maxDurationMinutes))
          : undefined,
    },
  },
  {
    name: 'a renewal that does not count (renewalCount unchanged)',
    caughtBy: 'sessions-flows',
    fault: { response: (r, a) => (r.method === 'POST' && r.path.endsWith('/renew') && a.status === 200 ? withJson(a, (j) => (j.renewalCount = Math.max(0, j.renewalCount - 1))) : undefined) },
  },
  {
    name: 'a heartbeat that is not activity (answered as a read)',
    caughtBy: 'sessions-flows',
    fault: {
      response: (r, a) =>
        r.method === 'POST' && r.path.endsWith('/heartbeat') && a.status === 200
          ? withJson(a, (j) => {
              j.renewalCount = Math.max(0, j.renewalCount - 1);
              j.lastActivity = j.createdAt;
            })
          : undefined,
    },
  },
  {
    name: 'a message lost from a page (the second of each page dropped)',
    caughtBy: 'sessions-flows',
    fault: { response: (r, a) => (is(r, 'GET', MESSAGES) && a.status === 200 && a.json.messages.length > 2 ? withJson(a, (j) => j.messages.splice(1, 1)) : undefined) },
  },
  {
    name: 'a message repeated (the last of the previous page again on the next)',
    caughtBy: 'sessions-flows',
    fault: {
      response: (r, a) => {
        if (!is(r, 'GET', MESSAGES) || a.status !== 200) return undefined;
        const previous = lastPages.get(r.path);
        lastPages.set(r.path, [...a.json.messages]);
        return r.query.has('before') && previous?.length ? withJson(a, (j) => j.messages.unshift(previous.at(-1))) : undefined;
      },
    },
  },
  {
    name: 'hasMore always false',
    caughtBy: 'sessions-flows',
    fault: { response: (r, a) => (is(r, 'GET', MESSAGES) && a.status === 200 ? withJson(a, (j) => (j.hasMore = false)) : undefined) },
  },
  {
    name: 'messages oldest first',
    caughtBy: 'sessions-flows',
    fault: { response: (r, a) => (is(r, 'GET', MESSAGES) && a.status === 200 ? withJson(a, (j) => j.messages.reverse()) : undefined) },
  },
  {
    name: 'getSession disagrees with createSession (metadata dropped)',
    caughtBy: 'sessions-flows',
    fault: { response: (r, a) => (is(r, 'GET', SESSION) && a.status === 200 ? withJson(a, (j) => (j.metadata = {})) : undefined) },
  },
  {
    name: '404 where 410 is due (an expired session answers SESSION_NOT_FOUND)',
    caughtBy: 'sessions-flows',
    fault: {
      response: (_r, a) =>
        a.status === 410 ? { ...a, status: 404, json: { success: false, error: { code: 'SESSION_NOT_FOUND', message: 'Session not found', details: 'sessionId' } } } : undefined,
    },
  },
  {
    name: 'unhealthy after hostile input (health answers 503 once a body over 1 MB came)',
    caughtBy: 'still-healthy',
    after: ['no-server-error'],
    fault: (() => {
      let hurt = false;
      return {
        request: (r: ProxiedRequest) => {
          if (r.raw.length > 1_000_000) hurt = true;
          return hurt && is(r, 'GET', '/api/messaging/sessions/health')
            ? { status: 503, contentType: 'application/json', json: { success: false, error: { code: 'SERVICE_UNAVAILABLE', message: 'Service unavailable', details: 'db' }, status: 'unhealthy', timestamp: new Date().toISOString() }, text: '' }
            : undefined;
        },
      };
    })(),
  },
];

/** What a mutant's run selects: its checks, and its operation if it names one. */
export interface Selection {
  checks?: CheckName[];
  operation?: string;
}

/** The suite through a proxy injecting `fault`: every check and operation, or only those selected. */
export async function runThrough(upstream: string, fault: Fault, selection: Selection = {}) {
  const proxy = await faultProxy(upstream, fault);
  try {
    return await runConformance({
      baseUrl: proxy.url,
      specPath,
      seed: 20261126,
      validCases: 2,
      workers: 4,
      expiryWaitMs: 5_000,
      timeoutMs: 5_000,
      checks: selection.checks,
      includeOperations: selection.operation ? [selection.operation] : undefined,
    });
  } finally {
    await proxy.close();
  }
}

export const selectionOf = (mutant: Mutant): Selection => ({ checks: [mutant.caughtBy, ...(mutant.after ?? [])], operation: mutant.operation });

/**
 * The suite catches the fault with the check named. Only that check's cases run (and
 * those it needs run first), and of a response check only the cases of the operation
 * changed: a case failing among them fails the whole suite too, which runs them all,
 * and the run is much shorter.
 */
export async function expectCaught(upstream: string, mutant: Mutant): Promise<void> {
  const report = await runThrough(upstream, mutant.fault, selectionOf(mutant));
  const checks = new Set(report.cases.flatMap((c) => c.violations.map((v) => v.check)));
  expect(report.failed).toBeGreaterThan(0);
  expect([...checks]).toContain(mutant.caughtBy);
}
