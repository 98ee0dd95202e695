// SQLite migration 17 drops the log's index by session: sessions stored before it get the
// id of their oldest event still in the log (or the next id, when none is left), from
// which the replay of one session reads; their replay stays exact.
import { expect, it } from 'vitest';
import { sessionEvent } from '../src/events/event-records.js';
import { withMigratedStore } from './helpers/old-sqlite-database.js';

const session = (id: string) => `INSERT INTO sessions (id, agent_id, user_id, created_at, last_activity, anchor_at, expires_at, warns_at,
  timeout_minutes, auto_renew, max_duration_minutes, warning_threshold_minutes, renewal_count, status, metadata, announced, due_at)
  VALUES ('${id}', 'a', 'u', 0, 0, 0, 9000000000000, 8000000000000, 30, 1, 720, 5, 0, 'active', '{}', 'nothing', NULL)`;

it('SQLite: migration 17 keeps the replay of sessions stored before it exact', () =>
  withMigratedStore(
    15,
    (old) => {
      for (const id of ['early', 'late', 'trimmed', 'quiet']) old.exec(session(id));
      const event = old.prepare("INSERT INTO events (type, occurred_at, agent_id, session_id, user_id, data) VALUES ('session.renewed', 0, 'a', ?, 'u', '{}')");
      // ids 1..6: trimmed, early, late, early, late, trimmed; then 1 and 6 are trimmed away.
      for (const id of ['trimmed', 'early', 'late', 'early', 'late', 'trimmed']) event.run(id);
      old.exec('DELETE FROM events WHERE id IN (1, 6)');
    },
    async (store) => {
      const ids = async (sessionId: string, after = '0') => (await store.listEvents({ sessionId, after, limit: 10 })).map((e) => e.id);
      expect(await ids('early')).toEqual(['2', '4']);
      expect(await ids('late')).toEqual(['3', '5']);
      expect(await ids('late', '3')).toEqual(['5']);
      expect(await ids('trimmed')).toEqual([]);
      await store.modifySession('quiet', (current) => current!, { events: (s) => [sessionEvent('session.activity', s, 1)] });
      await store.modifySession('early', (current) => current!, { events: (s) => [sessionEvent('session.activity', s, 1)] });
      expect(await ids('quiet')).toEqual(['7']);
      expect(await ids('early')).toEqual(['2', '4', '8']);
    },
  ));
