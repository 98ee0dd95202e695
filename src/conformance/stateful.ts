// A few checks of what the operations mean, beyond their shapes: what create returns,
// get returns; a renewal moves expiresAt forward; an ended session is gone. Each runs
// only when the spec has the operations it needs.
import type { ResponseChecker } from './check.js';
import type { Fixtures } from './fixtures.js';
import type { Answer } from './http.js';
import type { RequestValues } from './requests.js';
import type { CaseResult } from './run.js';
import type { Operation } from './spec-model.js';

interface Context {
  byId: Map<string, Operation>;
  fixtures: Fixtures;
  exchange: (operation: Operation, values: RequestValues) => Promise<{ answer: Answer; request: string }>;
  checker: ResponseChecker;
}

export async function statefulChecks({ byId, fixtures, exchange, checker }: Context): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  const has = (...ids: string[]) => ids.every((id) => byId.has(id));

  async function check(title: string, steps: (step: (operationId: string, values: RequestValues) => Promise<any>) => Promise<string[]>) {
    const violations: string[] = [];
    const requests: string[] = [];
    let status = 0;
    const step = async (operationId: string, values: RequestValues) => {
      const operation = byId.get(operationId)!;
      const { answer, request } = await exchange(operation, values);
      requests.push(request);
      status = answer.status;
      violations.push(...checker.violations(operation, answer).map((v) => `${operationId}: ${v}`));
      return { status: answer.status, body: answer.json as any };
    };
    try {
      violations.push(...(await steps(step)));
    } catch (error) {
      violations.push(`the check broke: ${String(error)}`);
    }
    results.push({ operationId: 'stateful', kind: 'stateful', title, passed: violations.length === 0, violations, request: requests.join('\n      '), status });
  }

  if (has('createSession', 'getSession')) {
    await check('what createSession returns, getSession returns', async (step) => {
      const { agentId, userId } = await fixtures.fresh();
      const created = await step('createSession', { body: { agentId, userId, metadata: { platform: 'conformance' }, timeoutConfig: { timeoutMinutes: 45 } } });
      const got = await step('getSession', { path: { sessionId: created.body?.sessionId } });
      const problems: string[] = [];
      for (const field of ['sessionId', 'agentId', 'userId', 'createdAt', 'expiresAt', 'metadata', 'timeoutConfig']) {
        if (JSON.stringify(got.body?.[field]) !== JSON.stringify(created.body?.[field])) {
          problems.push(`${field}: created ${JSON.stringify(created.body?.[field])}, got ${JSON.stringify(got.body?.[field])}`);
        }
      }
      return problems;
    });
  }

  if (has('createSession', 'renewSession')) {
    await check('a renewal moves expiresAt forward and counts', async (step) => {
      const { agentId, userId } = await fixtures.fresh();
      const created = await step('createSession', { body: { agentId, userId, timeoutConfig: { timeoutMinutes: 5, maxDurationMinutes: 600 } } });
      await new Promise((resolve) => setTimeout(resolve, 20));
      const renewed = await step('renewSession', { path: { sessionId: created.body?.sessionId } });
      const problems: string[] = [];
      if (renewed.status !== 200) problems.push(`renew answered ${renewed.status}`);
      else if (!(Date.parse(renewed.body.expiresAt) > Date.parse(created.body.expiresAt))) {
        problems.push(`expiresAt went from ${created.body.expiresAt} to ${renewed.body.expiresAt}`);
      } else if (renewed.body.renewalCount !== 1) problems.push(`renewalCount is ${JSON.stringify(renewed.body.renewalCount)} after one renewal, not 1`);
      return problems;
    });
  }

  if (has('createSession', 'endSession', 'getSession')) {
    await check('an ended session answers 404', async (step) => {
      const { agentId, userId } = await fixtures.fresh();
      const created = await step('createSession', { body: { agentId, userId } });
      const sessionId = created.body?.sessionId;
      const ended = await step('endSession', { path: { sessionId } });
      const after = await step('getSession', { path: { sessionId } });
      const problems: string[] = [];
      if (ended.status !== 200) problems.push(`endSession answered ${ended.status}`);
      if (after.status !== 404) problems.push(`getSession after endSession answered ${after.status}`);
      return problems;
    });
  }

  if (has('sendSessionMessage', 'getSessionMessages')) {
    await check('a sent message is the newest listed', async (step) => {
      const { sessionId } = await fixtures.fresh();
      const sent = await step('sendSessionMessage', { path: { sessionId }, body: { content: 'the newest' } });
      const page = await step('getSessionMessages', { path: { sessionId }, query: { limit: 1 } });
      return page.body?.messages?.[0]?.id === sent.body?.id ? [] : [`newest listed is ${JSON.stringify(page.body?.messages?.[0])}`];
    });
  }

  return results;
}
