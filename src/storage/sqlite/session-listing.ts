// The SQLite store's listing and counts of sessions: a prepared statement per combination
// of filters, and exact totals from the count index ranges (never by visiting the matches).
import type Database from 'better-sqlite3';
import { agentsOfQuery, type SessionQuery, type SessionRecord } from '../store.js';
import { listSessionsSql } from './queries.js';
import { type SessionTuple, sessionFromTuple } from './rows.js';
import type { prepareStatements } from './statements.js';

export function sessionListing(db: Database.Database, statements: ReturnType<typeof prepareStatements>) {
  const expiringAfter = (after: number) => statements.countExpiringAfter.get({ after, key: '' })?.n ?? 0;
  const agentExpiringAfter = (after: number, key: string) => statements.countAgentExpiringAfter.get({ after, key })?.n ?? 0;
  /** The counter of a query's sessions: one per agent it is limited to; none for agents and a user at once. */
  function counterFor(query: SessionQuery): ((after: number) => number) | undefined {
    const { userId } = query;
    const agents = agentsOfQuery(query);
    if (agents !== undefined && userId !== undefined) return undefined;
    if (agents !== undefined) return (after) => agents.reduce((sum, agent) => sum + agentExpiringAfter(after, agent), 0);
    if (userId !== undefined) return (after) => statements.countUserExpiringAfter.get({ after, key: userId })?.n ?? 0;
    return expiringAfter;
  }
  function totalOfStatus(query: SessionQuery, countAfter: (after: number) => number): number {
    const { status, now, purgeCutoff } = query;
    if (status === 'active') return countAfter(now);
    if (status === 'all') return countAfter(purgeCutoff);
    return countAfter(purgeCutoff) - countAfter(now);
  }

  // One prepared statement per combination of filters, made on first use.
  const listStatements = new Map<string, { page: Database.Statement; count: Database.Statement }>();
  function listStatementsFor(query: SessionQuery) {
    const key = `${query.agentId !== undefined}/${query.agentIds !== undefined}/${query.userId !== undefined}/${query.after !== undefined}/${query.status}`;
    let prepared = listStatements.get(key);
    if (!prepared) {
      const sql = listSessionsSql(query);
      prepared = { page: db.prepare(sql.page).raw(true), count: db.prepare(sql.count) };
      listStatements.set(key, prepared);
    }
    return prepared;
  }

  function listSessions(query: SessionQuery): { sessions: SessionRecord[]; total: number | undefined; hasMore: boolean } {
    const { page, count } = listStatementsFor(query);
    const { now, purgeCutoff, status, limit, offset, after, count: counted } = query;
    // Not `...query`: a spread of an object holding doubles is slow in V8 (see sessionWith in store.ts).
    const parameters = {
      now,
      purgeCutoff,
      status,
      limit,
      offset,
      agentId: query.agentId ?? null,
      agentIds: query.agentIds === undefined ? null : JSON.stringify(query.agentIds),
      userId: query.userId ?? null,
      afterCreatedAt: after?.createdAt ?? null,
      afterId: after?.id ?? null,
    };
    const rows = page.all(parameters) as SessionTuple[];
    const hasMore = rows.length > query.limit;
    if (hasMore) rows.pop();
    let total: number | undefined;
    if (counted !== false) {
      // Both filters at once: the user's sessions of that agent, counted in an index range.
      const counter = counterFor(query);
      total = counter ? totalOfStatus(query, counter) : (count.get(parameters) as { n: number }).n;
    }
    return { sessions: rows.map(sessionFromTuple), total, hasMore };
  }

  function countSessions({ now, purgeCutoff }: { now: number; purgeCutoff: number }): { total: number; active: number; expiringSoon: number } {
    const active = expiringAfter(now);
    // warns_at < expires_at always, so "warns_at <= now < expires_at" is a difference of two counts.
    const warningAfterNow = statements.countWarningAfter.get({ after: now, key: '' })?.n ?? 0;
    return { total: expiringAfter(purgeCutoff), active, expiringSoon: active - warningAfterNow };
  }

  return { listSessions, countSessions };
}
