// Session creates arriving together (batches.ts) go to PostgreSQL as one statement: their
// sessions, their events and one commit. Alone, each create cost PostgreSQL a transaction, a parse
// and a plan: 270-376 µs of its CPU a create under the bench's load, 29-41 µs batched
// (README, PostgreSQL). The statement is prepared once per connection and takes its rows
// as arrays.
//
// A batch that fails answers none of its creates. A storage fault (a timeout, a lost
// connection) fails them all; anything else has each tried again alone by the store's own
// insert, which tells whose agent was gone (and reports anything else as it would have). The statement takes the locks the lone insert takes, in the same order:
// the agents' key-share locks, then the event log's advisory lock.
import type pg from 'pg';
import { dataJson } from '../../events/event-records.js';
import type { AgentRecord, EventInput, SessionRecord } from '../store.js';
import { batched } from './batches.js';
import { postgresFault } from './storage-faults.js';
import { SESSION_COLUMN_TYPES, SESSION_COLUMNS, sessionValues } from './rows.js';
import { addToBucketsSql, COUNTED_SETTING, deltasOf } from './session-buckets.js';

export interface BatchedCreate {
  session: SessionRecord;
  events: EventInput[];
  /** The agent the session was built from, when this instance keeps it: checked to still be the stored one. */
  kept: AgentRecord | undefined;
}

export interface CreateBatchOptions {
  /** The advisory lock that orders the event log (postgres-store.ts). */
  eventsLock: number;
  eventsChannel: string;
}

/** Creates in one statement at most. */
const MAX_BATCH = 100;

/** Adds a create to the next batch: true once committed with it, false when its batch failed (try it alone). */
export type CreateBatcher = (create: BatchedCreate) => Promise<boolean>;

const SESSIONS_AT = 1;
const AGENT_IDS_AT = SESSIONS_AT + SESSION_COLUMNS.length;
/** The events' columns but their data, which goes as one JSON array (its texts are JSON already: no escaping as array elements). */
const EVENT_COLUMNS = [
  ['type', 'text'],
  ['occurred_at', 'bigint'],
  ['agent_id', 'text'],
  ['session_id', 'text'],
  ['user_id', 'text'],
] as const;
const EVENTS_AT = AGENT_IDS_AT + 3;
const EVENT_DATA_AT = EVENTS_AT + EVENT_COLUMNS.length;

const arrays = (columns: ReadonlyArray<readonly [string, string]>, from: number) => columns.map(([, type], i) => `$${from + i}::${type}[]`).join(', ');

/**
 * The batch's statement. `agent` locks every agent of the batch (key share, as the
 * foreign key would at the statement's end) and counts those still stored with the kept
 * creation time: a kept agent deleted, or deleted and created again, divides by zero.
 * The sessions go in, then their counts into the buckets (`counted`, which the insert
 * trigger then leaves: COUNTED_SETTING), then the event log's lock is taken: agents,
 * buckets, the log, the order every writer takes them in.
 */
function createBatchSql(eventsLock: number, eventsChannel: string): string {
  const sessionColumns = SESSION_COLUMNS.map((column) => [column, SESSION_COLUMN_TYPES[column]] as const);
  const kept = `unnest($${AGENT_IDS_AT + 1}::text[], $${AGENT_IDS_AT + 2}::bigint[])`;
  // The check is a condition of the insert: a column nothing reads would be planned away.
  return `WITH agent AS MATERIALIZED (
      SELECT count(*) FILTER (WHERE (a.id, a.created_at) IN (SELECT * FROM ${kept})) = cardinality($${AGENT_IDS_AT + 1}::text[]) AS unchanged
        FROM (SELECT id, created_at FROM agents WHERE id = ANY($${AGENT_IDS_AT}::text[]) FOR KEY SHARE) AS a),
    s AS (
      INSERT INTO sessions (${SESSION_COLUMNS.join(', ')})
      SELECT row.* FROM agent, unnest(${arrays(sessionColumns, SESSIONS_AT)}) AS row WHERE 1 / agent.unchanged::int = 1
      RETURNING agent_id, user_id, expires_at, warns_at),
    counted AS (${addToBucketsSql(`SELECT * FROM (SELECT set_config('${COUNTED_SETTING}', 'on', true)) AS skip_trigger, (${deltasOf('s', 1)}) AS d`)}
      RETURNING 1),
    e AS (
      INSERT INTO events (${EVENT_COLUMNS.map(([column]) => column).join(', ')}, data)
      SELECT row.type, row.occurred_at, row.agent_id, row.session_id, row.user_id, data.value
        FROM (SELECT pg_advisory_xact_lock(${eventsLock}) FROM (SELECT count(*) FROM counted) AS inserted) AS locked,
          unnest(${arrays(EVENT_COLUMNS, EVENTS_AT)}) WITH ORDINALITY AS row (${EVENT_COLUMNS.map(([column]) => column).join(', ')}, n)
          JOIN json_array_elements($${EVENT_DATA_AT}::json) WITH ORDINALITY AS data (value, n) ON data.n = row.n
        ORDER BY row.n
      RETURNING pg_notify('${eventsChannel}', ''))
    SELECT (SELECT count(*) FROM s)::int AS sessions, (SELECT count(*) FROM e)::int AS events`;
}

/** The statement's parameters for these creates. */
function parametersOf(creates: BatchedCreate[]): unknown[] {
  const sessionColumns: unknown[][] = SESSION_COLUMNS.map(() => []);
  const agentIds = new Set<string>();
  const kept = new Map<string, number>();
  const events: unknown[][] = EVENT_COLUMNS.map(() => []);
  const data: string[] = [];
  for (const { session, events: sessionEvents, kept: agent } of creates) {
    sessionValues(session).forEach((value, i) => sessionColumns[i]!.push(value));
    agentIds.add(session.agentId);
    if (agent) kept.set(agent.id, agent.createdAt);
    for (const event of sessionEvents) {
      events[0]!.push(event.type);
      events[1]!.push(Math.trunc(event.occurredAt));
      events[2]!.push(event.agentId);
      events[3]!.push(event.sessionId ?? null);
      events[4]!.push(event.userId ?? null);
      data.push(dataJson(event));
    }
  }
  return [...sessionColumns, [...agentIds], [...kept.keys()], [...kept.values()], ...events, `[${data.join(',')}]`];
}

export function createBatcher(pool: pg.Pool, options: CreateBatchOptions, committedEvents: () => void): CreateBatcher {
  const statement = { name: 'sessions_api_create_batch', text: createBatchSql(options.eventsLock, options.eventsChannel) };
  return batched(async (creates: BatchedCreate[]) => {
    try {
      await pool.query({ ...statement, values: parametersOf(creates) });
    } catch (error) {
      // A storage fault (a timeout, a lost connection) fails them all at once: alone, each
      // would wait for it again. Else each is tried alone, which tells whose agent was gone.
      if (postgresFault(error) !== undefined) throw error;
      return creates.map(() => false);
    }
    if (creates.some((create) => create.events.length > 0)) committedEvents();
    return creates.map(() => true);
  }, MAX_BATCH);
}
