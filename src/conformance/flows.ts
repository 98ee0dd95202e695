// Flows: several requests in order, checking what the operations mean beyond their
// shapes. Generic ones for any spec (what is created and deleted is gone); the Sessions
// API's own (expiry arithmetic, renewals, PATCH, exactly-once paging, 410 after expiry)
// only when the spec is ours. Each runs only when the spec has the operations it needs.
import type { CheckName } from './check.js';
import { bound, findId, fitsParameter, type FixtureMaker, substitute } from './fixtures.js';
import { samples } from './generate.js';
import type { RequestValues } from './requests.js';
import type { SpecModel } from './spec-model.js';

export type Step = (operationId: string, values: RequestValues) => Promise<{ status: number; body: any; text: string }>;

/**
 * Opens a stream of Server-Sent Events, reads until `frames` events came (or a short
 * deadline), closes it; `problems` says where its frames or events broke the spec.
 */
export type StreamStep = (
  operationId: string,
  values: RequestValues,
  frames: number,
) => Promise<{ events: Array<{ id?: string; event?: string; data: any }>; problems: string[] }>;

export interface Flow {
  key: string;
  title: string;
  check: CheckName;
  /** The operations it uses: it runs only when all are selected. */
  operations: string[];
  /** The problems found; empty when the flow passed. */
  run(step: Step, stream: StreamStep): Promise<string[]>;
}

interface Context {
  spec: SpecModel;
  sessions: boolean;
  fixtures: FixtureMaker;
  expiryWaitMs: number;
}

const MINUTE = 60_000;
const ms = (iso: unknown) => Date.parse(String(iso));
const ok = (status: number) => status >= 200 && status < 300;

/** POST X, DELETE X/{id}, GET X/{id}: once deleted, the member is gone (404, or 410). */
function deletedResourceFlows({ spec, fixtures }: Context): Flow[] {
  const result: Flow[] = [];
  for (const remove of spec.operations.filter((o) => o.method === 'DELETE')) {
    const match = /^(.*)\/\{([^}]+)\}$/.exec(remove.path);
    if (!match) continue;
    const [, collection, parameter] = match as unknown as [string, string, string];
    const create = spec.operations.find((o) => o.method === 'POST' && o.path === collection);
    const read = spec.operations.find((o) => o.method === 'GET' && o.path === remove.path);
    if (!create || !read) continue;
    result.push({
      key: `flow/deleted/${remove.operationId}`,
      title: `after ${remove.operationId}, ${read.operationId} answers 404 or 410`,
      check: 'deleted-resource-gone',
      operations: [create.operationId, remove.operationId, read.operationId],
      async run(step) {
        const fixture = fixtures.names.size > 0 ? await fixtures.fresh() : {};
        const body = create.body ? substitute({ body: bound(samples(create.body.schema, 1, 7)[0], fixtures.names) }, fixture).body : undefined;
        const created = await step(create.operationId, { body });
        if (!ok(created.status)) return [`${create.operationId} answered ${created.status}: ${created.text.slice(0, 200)}`];
        const id = findId(created.body, [parameter, 'id']);
        if (id === undefined) return [`the answer to ${create.operationId} names no "${parameter}" or "id"`];
        const schema = remove.parameters.find((p) => p.in === 'path' && p.name === parameter)?.schema ?? {};
        if (!fitsParameter(schema, id)) return [`the answer to ${create.operationId} names ${parameter} ${JSON.stringify(id)}, which its schema refuses`];
        const force = remove.parameters.some((p) => p.in === 'query' && p.name === 'force');
        const deleted = await step(remove.operationId, { path: { [parameter]: id }, query: force ? { force: true } : {} });
        if (!ok(deleted.status)) return [`${remove.operationId} answered ${deleted.status}`];
        const after = await step(read.operationId, { path: { [parameter]: id } });
        return after.status === 404 || after.status === 410 ? [] : [`${read.operationId} after ${remove.operationId} answered ${after.status}, not 404 or 410`];
      },
    });
  }
  return result;
}

const TIMEOUTS = { timeoutMinutes: 45, autoRenew: false, maxDurationMinutes: 600, warningThresholdMinutes: 7 };

function sessionsFlows({ fixtures, expiryWaitMs }: Context): Flow[] {
  const flow = (key: string, title: string, operations: string[], run: Flow['run']): Flow => ({ key: `flow/sessions/${key}`, title, check: 'sessions-flows', operations, run });
  const newSession = async (step: Step, timeoutConfig?: Record<string, unknown>) => {
    const { agentId, userId } = await fixtures.fresh();
    return step('createSession', { body: { agentId, userId, metadata: { platform: 'conformance' }, ...(timeoutConfig ? { timeoutConfig } : {}) } });
  };
  const list: Flow[] = [
    flow('create-get', 'what createSession returns, getSession returns', ['createSession', 'getSession'], async (step) => {
      const created = await newSession(step, { timeoutMinutes: 45 });
      const got = await step('getSession', { path: { sessionId: created.body?.sessionId } });
      const problems: string[] = [];
      for (const field of ['sessionId', 'agentId', 'userId', 'createdAt', 'expiresAt', 'metadata', 'timeoutConfig']) {
        if (JSON.stringify(got.body?.[field]) !== JSON.stringify(created.body?.[field])) {
          problems.push(`${field}: created ${JSON.stringify(created.body?.[field])}, got ${JSON.stringify(got.body?.[field])}`);
        }
      }
      return problems;
    }),
    flow('expiry', 'expiresAt is createdAt + timeoutMinutes, to the millisecond; the maximum is raised to the timeout', ['createSession', 'getSession'], async (step) => {
      const problems: string[] = [];
      const created = await newSession(step, TIMEOUTS);
      const lifetime = ms(created.body?.expiresAt) - ms(created.body?.createdAt);
      if (lifetime !== 45 * MINUTE) problems.push(`expiresAt − createdAt is ${lifetime} ms, not ${45 * MINUTE} (timeoutMinutes 45)`);
      if (JSON.stringify(created.body?.timeoutConfig) !== JSON.stringify(TIMEOUTS)) problems.push(`timeoutConfig ${JSON.stringify(created.body?.timeoutConfig)}, asked ${JSON.stringify(TIMEOUTS)}`);
      const got = await step('getSession', { path: { sessionId: created.body?.sessionId } });
      const remaining = got.body?.timeRemaining;
      if (!(typeof remaining === 'number' && remaining > 0 && remaining <= 45 * MINUTE)) problems.push(`timeRemaining ${remaining} is not within (0, ${45 * MINUTE}]`);
      const capped = await newSession(step, { timeoutMinutes: 60, maxDurationMinutes: 30 });
      if (capped.body?.timeoutConfig?.maxDurationMinutes !== 60) problems.push(`maxDurationMinutes 30 below timeoutMinutes 60 became ${capped.body?.timeoutConfig?.maxDurationMinutes}, not 60`);
      const cappedLifetime = ms(capped.body?.expiresAt) - ms(capped.body?.createdAt);
      if (cappedLifetime !== 60 * MINUTE) problems.push(`with the maximum raised, expiresAt − createdAt is ${cappedLifetime} ms, not ${60 * MINUTE}`);
      return problems;
    }),
    flow('renew', 'a renewal moves expiresAt forward and counts', ['createSession', 'renewSession'], async (step) => {
      const created = await newSession(step, { timeoutMinutes: 5, maxDurationMinutes: 600 });
      await new Promise((resolve) => setTimeout(resolve, 20));
      const renewed = await step('renewSession', { path: { sessionId: created.body?.sessionId } });
      if (renewed.status !== 200) return [`renew answered ${renewed.status}`];
      if (!(ms(renewed.body.expiresAt) > ms(created.body.expiresAt))) return [`expiresAt went from ${created.body.expiresAt} to ${renewed.body.expiresAt}`];
      if (renewed.body.renewalCount !== 1) return [`renewalCount is ${JSON.stringify(renewed.body.renewalCount)} after one renewal, not 1`];
      return [];
    }),
    flow('heartbeat', 'a heartbeat with autoRenew: expiresAt = lastActivity + timeoutMinutes, renewalCount + 1', ['createSession', 'sessionHeartbeat'], async (step) => {
      const created = await newSession(step, { timeoutMinutes: 20, autoRenew: true });
      await new Promise((resolve) => setTimeout(resolve, 20));
      const beat = await step('sessionHeartbeat', { path: { sessionId: created.body?.sessionId } });
      if (beat.status !== 200) return [`heartbeat answered ${beat.status}`];
      const problems: string[] = [];
      const lifetime = ms(beat.body.expiresAt) - ms(beat.body.lastActivity);
      if (lifetime !== 20 * MINUTE) problems.push(`after a heartbeat, expiresAt − lastActivity is ${lifetime} ms, not ${20 * MINUTE}`);
      if (beat.body.renewalCount !== 1) problems.push(`renewalCount is ${JSON.stringify(beat.body.renewalCount)} after one heartbeat, not 1`);
      if (!(ms(beat.body.lastActivity) > ms(created.body.createdAt))) problems.push(`lastActivity ${beat.body.lastActivity} did not move past createdAt ${created.body.createdAt}`);
      return problems;
    }),
    flow('patch', 'PATCH …/timeout changes only the fields given, from the same anchor', ['createSession', 'updateSessionTimeout', 'getSession'], async (step) => {
      const created = await newSession(step, TIMEOUTS);
      const sessionId = created.body?.sessionId;
      const patched = await step('updateSessionTimeout', { path: { sessionId }, body: { timeoutMinutes: 50 } });
      if (patched.status !== 200) return [`PATCH answered ${patched.status}`];
      const expected = { ...TIMEOUTS, timeoutMinutes: 50 };
      const problems: string[] = [];
      for (const answer of [patched, await step('getSession', { path: { sessionId } })]) {
        if (JSON.stringify(answer.body?.timeoutConfig) !== JSON.stringify(expected)) problems.push(`timeoutConfig ${JSON.stringify(answer.body?.timeoutConfig)}, expected ${JSON.stringify(expected)}`);
        const lifetime = ms(answer.body?.expiresAt) - ms(created.body?.createdAt);
        if (lifetime !== 50 * MINUTE) problems.push(`after PATCH timeoutMinutes 50, expiresAt − createdAt is ${lifetime} ms, not ${50 * MINUTE}`);
      }
      return problems;
    }),
    flow('end', 'an ended session answers 404', ['createSession', 'endSession', 'getSession'], async (step) => {
      const created = await newSession(step);
      const sessionId = created.body?.sessionId;
      const ended = await step('endSession', { path: { sessionId } });
      const after = await step('getSession', { path: { sessionId } });
      const problems: string[] = [];
      if (ended.status !== 200) problems.push(`endSession answered ${ended.status}`);
      if (after.status !== 404) problems.push(`getSession after endSession answered ${after.status}`);
      return problems;
    }),
    flow('newest', 'a sent message is the newest listed', ['sendSessionMessage', 'getSessionMessages'], async (step) => {
      const sessionId = String((await fixtures.fresh()).sessionId);
      const sent = await step('sendSessionMessage', { path: { sessionId }, body: { content: 'the newest' } });
      const page = await step('getSessionMessages', { path: { sessionId }, query: { limit: 1 } });
      return page.body?.messages?.[0]?.id === sent.body?.id ? [] : [`newest listed is ${JSON.stringify(page.body?.messages?.[0])}, sent ${JSON.stringify(sent.body?.id)}`];
    }),
    flow('paging', 'paging both ways returns every message exactly once, in order, and hasMore is exact', ['createSession', 'sendSessionMessage', 'getSessionMessages'], async (step) => {
      const created = await newSession(step);
      const sessionId = created.body?.sessionId;
      const sent: string[] = [];
      for (let i = 0; i < 7; i += 1) sent.push((await step('sendSessionMessage', { path: { sessionId }, body: { content: `message ${i}` } })).body?.id);
      const newestFirst = [...sent].reverse();
      const problems: string[] = [];
      const walk = async (direction: 'before' | 'after') => {
        const seen: string[] = [];
        let cursor: unknown = direction === 'after' ? 0 : undefined;
        for (let pages = 0; pages < 10; pages += 1) {
          const query: Record<string, unknown> = { limit: 3, ...(cursor === undefined ? {} : { [direction]: cursor }) };
          const page = await step('getSessionMessages', { path: { sessionId }, query });
          const ids: string[] = (page.body?.messages ?? []).map((m: any) => m.id);
          seen.push(...(direction === 'before' ? ids : ids.reverse()));
          const expectMore = (direction === 'before' ? seen.length : seen.length) < sent.length;
          if (page.body?.hasMore !== expectMore) problems.push(`${direction} paging: hasMore ${page.body?.hasMore} after ${seen.length} of ${sent.length} messages`);
          if (!page.body?.hasMore || ids.length === 0) break;
          cursor = page.body?.cursors?.[direction];
        }
        return seen;
      };
      const backwards = await walk('before');
      if (JSON.stringify(backwards) !== JSON.stringify(newestFirst)) problems.push(`paging back with before=: ${backwards.length} ids (${new Set(backwards).size} distinct), expected the ${sent.length} sent, newest first`);
      const forwards = await walk('after');
      if (JSON.stringify(forwards) !== JSON.stringify(sent)) problems.push(`paging forward with after=: ${forwards.length} ids (${new Set(forwards).size} distinct), expected the ${sent.length} sent, oldest first`);
      return problems;
    }),
  ];
  list.push(
    flow('agent-reply', 'a message sent with transport http is answered with the reply the agent then posts', ['createSession', 'sendSessionMessage', 'getSessionMessages'], async (step) => {
      const { agentId, userId } = await fixtures.fresh();
      const created = await step('createSession', { body: { agentId, userId } });
      const path = { sessionId: created.body?.sessionId };
      const answer = step('sendSessionMessage', { path, body: { content: 'waiting for you', transport: 'http' } });
      // Playing the agent: reply once the user's message is stored.
      const deadline = Date.now() + 5000;
      while ((await step('getSessionMessages', { path })).body?.messages?.length !== 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      const reply = await step('sendSessionMessage', { path, body: { content: 'here I am', authorId: agentId, metadata: { thought: 'a test' } } });
      const answered = await answer;
      const problems: string[] = [];
      if (!ok(reply.status)) problems.push(`the agent's reply answered ${reply.status}`);
      if (answered.status !== 201) return [...problems, `sendSessionMessage with transport http answered ${answered.status}, not 201: ${answered.text.slice(0, 200)}`];
      const data = answered.body?.data;
      if (data?.userMessage?.content !== 'waiting for you') problems.push(`data.userMessage is not the message sent: ${JSON.stringify(data?.userMessage)?.slice(0, 200)}`);
      if (data?.agentResponse?.text !== 'here I am' || data?.agentResponse?.thought !== 'a test') problems.push(`data.agentResponse is not the agent's reply: ${JSON.stringify(data?.agentResponse)}`);
      return problems;
    }),
  );
  if (expiryWaitMs > 0) {
    list.push(
      flow('expired', 'an expired session answers 410 SESSION_EXPIRED with its expiresAt, on every operation', ['createSession', 'getSession', 'sessionHeartbeat', 'sendSessionMessage'], async (step) => {
        const created = await newSession(step, { timeoutMinutes: 5, autoRenew: false, maxDurationMinutes: 5 });
        const sessionId = created.body?.sessionId;
        const deadline = Date.now() + expiryWaitMs;
        let got = await step('getSession', { path: { sessionId } });
        while (got.status === 200 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          got = await step('getSession', { path: { sessionId } });
        }
        if (got.status === 200) return []; // did not expire within the wait: nothing to judge
        const problems: string[] = [];
        const expiresAt = String(created.body?.expiresAt);
        for (const [operationId, answer] of [
          ['getSession', got],
          ['sessionHeartbeat', await step('sessionHeartbeat', { path: { sessionId } })],
          ['sendSessionMessage', await step('sendSessionMessage', { path: { sessionId }, body: { content: 'too late' } })],
        ] as const) {
          if (answer.status !== 410) problems.push(`${operationId} on an expired session answered ${answer.status}, not 410`);
          else if (answer.body?.error?.code !== 'SESSION_EXPIRED' || !String(answer.body?.error?.details).includes(expiresAt)) {
            problems.push(`${operationId}: the 410 is not SESSION_EXPIRED with expiresAt ${expiresAt}: ${answer.text.slice(0, 200)}`);
          }
        }
        return problems;
      }),
    );
  }
  return list;
}

/**
 * The Sessions API's event streams: a session with a few events, its stream (frames
 * parse, events validate), then replays from Last-Event-ID on the session's stream and
 * (filtered by the session's fresh agent) on the all-sessions stream: exactly the later events.
 */
function eventStreamFlows({ spec, fixtures }: Context): Flow[] {
  const names = new Set(spec.streams.map((operation) => operation.operationId));
  if (!names.has('streamSessionEvents')) return [];
  const withAll = names.has('streamEvents');
  const operations = ['createSession', 'sessionHeartbeat', 'sendSessionMessage', 'streamSessionEvents', ...(withAll ? ['streamEvents'] : [])];
  const idsOf = (events: Array<{ id?: string }>) => events.map((event) => event.id).join(', ');
  return [
    {
      key: 'flow/events/replay',
      title: "a session's events stream as valid frames, and a replay from Last-Event-ID gives exactly the later ones",
      check: 'event-stream',
      operations,
      async run(step, stream) {
        const { agentId, userId } = await fixtures.fresh();
        const created = await step('createSession', { body: { agentId, userId, metadata: { platform: 'conformance' } } });
        if (!ok(created.status)) return [`createSession answered ${created.status}: ${created.text.slice(0, 200)}`];
        const path = { sessionId: created.body?.sessionId };
        await step('sessionHeartbeat', { path });
        await step('sendSessionMessage', { path, body: { content: 'an event to stream' } });
        await step('sendSessionMessage', { path, body: { content: 'and another' } });

        const problems: string[] = [];
        // createSession, heartbeat and two messages: at least 4 events (a message may also record activity).
        const all = await stream('streamSessionEvents', { path }, 4);
        problems.push(...all.problems);
        if (all.events.length < 4) return [...problems, `streamSessionEvents sent ${all.events.length} events for a session with at least 4 (ids: ${idsOf(all.events)})`];
        const first = all.events[0]!.id!;
        const later = all.events.slice(1);
        const replay = await stream('streamSessionEvents', { path, headers: { 'Last-Event-ID': first } }, later.length);
        problems.push(...replay.problems);
        if (idsOf(replay.events) !== idsOf(later)) problems.push(`streamSessionEvents from Last-Event-ID ${first} sent [${idsOf(replay.events)}], not exactly the later events [${idsOf(later)}]`);
        if (withAll) {
          const everywhere = await stream('streamEvents', { query: { agentId }, headers: { 'Last-Event-ID': first } }, later.length);
          problems.push(...everywhere.problems);
          if (idsOf(everywhere.events) !== idsOf(later)) problems.push(`streamEvents?agentId (a fresh agent) from Last-Event-ID ${first} sent [${idsOf(everywhere.events)}], not exactly the session's later events [${idsOf(later)}]`);
        }
        return problems;
      },
    },
  ];
}

export function flows(context: Context): Flow[] {
  return [...deletedResourceFlows(context), ...(context.sessions ? [...sessionsFlows(context), ...eventStreamFlows(context)] : [])];
}
