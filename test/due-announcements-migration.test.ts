// SQLite migration 18 moves the due announcements out of the session rows into a table of
// their own: sessions stored before it announce what they had left, once each, in order.
// Migration 20 names each entry's session by rowid instead of id: the entries stored before
// it (due, and moved on to the expiry by a warning) keep pointing at their own sessions.
import { expect, it } from 'vitest';
import { announce } from '../src/events/due-events.js';
import { withMigratedStore } from './helpers/old-sqlite-database.js';

// Warning at 1000, expiry at 2000 (ms).
const session = (id: string, announced: string, dueAt: number | null, status = 'active') => `INSERT INTO sessions (id, agent_id, user_id, created_at,
  last_activity, anchor_at, expires_at, warns_at, timeout_minutes, auto_renew, max_duration_minutes, warning_threshold_minutes, renewal_count,
  status, metadata, announced, due_at, first_event_id) VALUES ('${id}', 'a', 'u', 0, 0, 0, 2000, 1000, 30, 1, 720, 5, 0, '${status}', '{}', '${announced}', ${dueAt}, 1)`;

it('SQLite: migration 18 keeps what each session stored before it has left to announce', () =>
  withMigratedStore(
    17,
    (old) => {
      old.exec(session('fresh', 'nothing', 1000));
      old.exec(session('warned', 'warning', 2000));
      old.exec(session('done', 'expiry', null, 'expired'));
    },
    async (store) => {
      expect(await store.getSession('warned')).toMatchObject({ announced: 'warning' });
      expect(await store.announceDue(1500, 10, announce)).toBe(1);
      expect(await store.announceDue(5000, 10, announce)).toBe(2);
      expect(await store.announceDue(5000, 10, announce)).toBe(0);
      const log = (await store.listEvents({ limit: 10 })).map((e) => `${e.type}:${e.sessionId}@${e.occurredAt}`);
      expect(log.slice(0, 1)).toEqual(['session.warning:fresh@1000']);
      expect(log.slice(1).sort()).toEqual(['session.expired:fresh@2000', 'session.expired:warned@2000']);
      for (const id of ['fresh', 'warned', 'done']) expect(await store.getSession(id)).toMatchObject({ status: 'expired', announced: 'expiry' });
    },
  ));

it('SQLite: migration 20 keeps each due entry with its session, by rowid', () =>
  withMigratedStore(
    19,
    (old) => {
      // Rowids not in id order, and a warned session whose entry moved on to its expiry.
      old.exec(session('zeta', 'nothing', 1000));
      old.exec(session('alpha', 'nothing', 1000));
      old.exec(session('moved', 'nothing', 1000));
      old.exec("DELETE FROM due_announcements WHERE session_id = 'moved'");
      old.exec("INSERT INTO due_announcements (due_at, session_id) VALUES (2000, 'moved')");
    },
    async (store) => {
      expect(await store.getSession('moved')).toMatchObject({ announced: 'warning' });
      expect(await store.getSession('zeta')).toMatchObject({ announced: 'nothing' });
      expect(await store.announceDue(1500, 10, announce)).toBe(2);
      expect(await store.announceDue(5000, 10, announce)).toBe(3);
      expect(await store.announceDue(5000, 10, announce)).toBe(0);
      const log = (await store.listEvents({ limit: 10 })).map((e) => `${e.type}:${e.sessionId}`);
      expect(log.slice(0, 2).sort()).toEqual(['session.warning:alpha', 'session.warning:zeta']);
      expect(log.slice(2).sort()).toEqual(['session.expired:alpha', 'session.expired:moved', 'session.expired:zeta']);
      for (const id of ['zeta', 'alpha', 'moved']) expect(await store.getSession(id)).toMatchObject({ status: 'expired', announced: 'expiry' });
    },
  ));
