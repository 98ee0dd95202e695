// A 201 means the session is on disk: the server is killed with SIGKILL while creates
// are in flight, and every session it acknowledged is in the file afterwards, with its
// session.created event (written in the same transaction: neither is ever alone).
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanUpServerProcesses, fetchChecked, startServer, tempDatabase } from './helpers/server-process.js';

afterEach(cleanUpServerProcesses);

const CLIENTS = 16;
const ACKNOWLEDGED_BEFORE_KILL = 400;

describe.each(['normal', 'full'])('SQLITE_SYNCHRONOUS=%s', (synchronous) => {
  it('keeps every acknowledged create when the server is killed under load', async () => {
    const databasePath = tempDatabase();
    const server = startServer({ DATABASE_PATH: databasePath, SQLITE_SYNCHRONOUS: synchronous, LOG_LEVEL: 'silent' });
    const baseUrl = await server.listening;
    const agent = await fetchChecked(baseUrl, 'POST', '/api/agents', { characterJson: { name: 'Durable' } });
    const agentId = agent.body.data.character.id as string;

    const acknowledged: string[] = [];
    let inFlight = 0;
    let killed = false;
    let inFlightAtKill = 0;
    let reachedTarget: () => void;
    const enough = new Promise<void>((resolve) => (reachedTarget = resolve));
    const client = async () => {
      while (!killed) {
        inFlight += 1;
        try {
          const response = await fetchChecked(baseUrl, 'POST', '/api/messaging/sessions', { agentId, userId: crypto.randomUUID() });
          expect(response.status).toBe(201);
          acknowledged.push(response.body.sessionId);
          if (acknowledged.length >= ACKNOWLEDGED_BEFORE_KILL) reachedTarget();
        } catch (error) {
          if (!killed) throw error; // after the kill, a refused or reset connection is expected
        } finally {
          inFlight -= 1;
        }
      }
    };
    const clients = Array.from({ length: CLIENTS }, client);
    await enough;
    inFlightAtKill = inFlight;
    killed = true;
    server.child.kill('SIGKILL');
    await Promise.all(clients);
    expect(await server.exited).toBe(null); // died by the signal, no clean shutdown ran
    expect(inFlightAtKill).toBeGreaterThan(0);

    // A response that reached us after the kill was sent before it: it counts too.
    const db = new Database(databasePath);
    const stored = new Set(db.prepare('SELECT id FROM sessions').pluck().all() as string[]);
    const created = new Set(
      db
        .prepare("SELECT json_extract(event.value, '$[3]') FROM event_log, json_each(event_log.events) AS event WHERE json_extract(event.value, '$[0]') = 'session.created'")
        .pluck()
        .all() as string[],
    );
    db.close();
    expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
    expect(acknowledged.filter((id) => !created.has(id))).toEqual([]);
    expect([...stored].filter((id) => !created.has(id))).toEqual([]);
    expect([...created].filter((id) => !stored.has(id))).toEqual([]);
  });
});
