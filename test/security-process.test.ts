// Against the real server process: a crash (SIGKILL) between a keyed write and its
// answer, then the client's retry; a client sending its key the way the elizaOS client
// does; the keys CLI on the same database; WEBHOOK_PRIVATE_ADDRESSES=deny.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { CRASH_HEADER } from './helpers/crash-before-answer.js';
import { ElizaStyleError, elizaStyleClient } from './helpers/eliza-style-client.js';
import { builtFile } from './helpers/built.js';
import { cleanUpServerProcesses, fetchChecked, startServer, tempDatabase } from './helpers/server-process.js';
import { receiver } from './helpers/webhook-receiver.js';

afterEach(cleanUpServerProcesses);

const ADMIN_KEY = 'process-admin-key-0123456789';
const USER_ID = '5f1c1c8e-4a3b-4c7d-9e2f-0a1b2c3d4e5f';
const crashPreload = new URL('./helpers/crash-before-answer.ts', import.meta.url).href;

function sessionsIn(databasePath: string): string[] {
  const db = new Database(databasePath, { readonly: true });
  try {
    return db.prepare('SELECT id FROM sessions').pluck().all() as string[];
  } finally {
    db.close();
  }
}

describe('an idempotent create, the server killed between the write and the answer', () => {
  it('the retry gets the session the first attempt wrote: one session, not two', async () => {
    const databasePath = tempDatabase();
    const env = { DATABASE_PATH: databasePath, LOG_LEVEL: 'silent', API_KEYS: ADMIN_KEY };
    const auth = { 'x-api-key': ADMIN_KEY };
    const first = startServer(env, { preload: [crashPreload] });
    const firstUrl = await first.listening;
    const agent = await fetchChecked(firstUrl, 'POST', '/api/agents', { characterJson: { name: 'Crashy' } }, auth);
    const body = { agentId: agent.body.data.character.id, userId: USER_ID };
    const keyed = { ...auth, 'idempotency-key': 'create-once-7f3a' };

    await expect(fetch(`${firstUrl}/api/messaging/sessions`, {
      method: 'POST',
      headers: { ...keyed, 'content-type': 'application/json', [CRASH_HEADER]: '1' },
      body: JSON.stringify(body),
    })).rejects.toThrow(); // no answer: the connection died with the process
    expect(await first.exited).toBe(null); // killed by the signal
    const written = sessionsIn(databasePath);
    expect(written).toHaveLength(1); // the write committed before the crash

    const second = startServer(env);
    const retry = await fetchChecked(await second.listening, 'POST', '/api/messaging/sessions', body, keyed);
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body.sessionId).toBe(written[0]);
    expect(sessionsIn(databasePath)).toEqual(written);
  });
});

describe('a client sending its key the way the elizaOS client does (X-API-KEY on every request)', () => {
  it('works against a server with keys on; without its apiKey it gets 401', async () => {
    const server = startServer({ DATABASE_PATH: tempDatabase(), LOG_LEVEL: 'silent', API_KEYS: ADMIN_KEY });
    const baseUrl = await server.listening;
    const client = elizaStyleClient({ baseUrl, apiKey: ADMIN_KEY });
    const { character } = await client.createAgent({ name: 'Eliza' });
    expect((await client.listAgents()).agents).toHaveLength(1);
    const session = await client.createSession({ agentId: character.id, userId: USER_ID, metadata: { platform: 'discord' } });
    expect((await client.getSession(session.sessionId)).status).toBe('active');
    expect((await client.sendMessage(session.sessionId, { content: 'Hello' })).content).toBe('Hello');
    expect((await client.getMessages(session.sessionId)).messages).toHaveLength(1);
    expect((await client.listSessions()).total).toBe(1);
    expect((await client.checkHealth()).status).toBe('healthy');

    // sendMessageSync waits for the agent's reply, which the agent backend posts through the API.
    const synced = client.sendMessageSync(session.sessionId, { content: 'What can you do?' });
    while ((await client.getMessages(session.sessionId)).messages.length < 2) await new Promise((resolve) => setTimeout(resolve, 20));
    await client.sendMessage(session.sessionId, { content: 'I can help.', authorId: character.id, metadata: { thought: 'a question' } });
    const result = await synced;
    expect(result.success).toBe(true);
    expect(result.userMessage.content).toBe('What can you do?');
    expect(result.agentResponse).toEqual({ text: 'I can help.', thought: 'a question' });
    expect(result.sessionStatus.renewalCount).toBeGreaterThan(0);
    await client.deleteSession(session.sessionId);

    const anonymous = elizaStyleClient({ baseUrl });
    await expect(anonymous.listSessions()).rejects.toMatchObject({ code: 'UNAUTHORIZED', status: 401 });
    await expect(anonymous.listSessions()).rejects.toBeInstanceOf(ElizaStyleError);
    expect((await anonymous.checkHealth()).status).toBe('healthy'); // the health check stays open
  });
});

describe('npm run keys, on the database of a running server', () => {
  const keysCli = (databasePath: string, ...args: string[]) =>
    execFileSync(process.execPath, [builtFile('keys-cli.js'), ...args], { env: { ...process.env, DATABASE_PATH: databasePath }, encoding: 'utf8', stdio: 'pipe', timeout: 30_000 });

  // Each run of the command a process, all at once: a few seconds, more on a loaded machine.
  it('checks the command before it opens (and so migrates) the database', { timeout: 75_000 }, async () => {
    const databasePath = tempDatabase();
    const refusals: Array<[string[], RegExp]> = [
      [['bogus'], /usage/],
      [[], /usage/],
      [['revoke'], /usage/],
      [['create', '--name', 'x'], /either --admin/],
      [['create', '--name', 'x', '--admin', '--agent', '5f1c1c8e-4a3b-4c7d-9e2f-0a1b2c3d4e5f'], /--admin \(every agent\) or --agent <agentId> \(those agents\), not both/],
      [['create', '--name', 'x', '--agent', 'not-a-uuid'], /not a UUID/],
      [['create', '--nmae', 'x', '--admin'], /Unknown option '--nmae'[\s\S]*usage/],
      [['create', '--name', '--admin'], /ambiguous[\s\S]*usage/],
      [['create', '--name', 'ops\nrevoked', '--admin'], /control or format characters/],
      [['create', '--name', 'ops\u2028revoked', '--admin'], /control or format characters/],
      [['create', '--name', 'bot\u202e1-nimda', '--admin'], /control or format characters/],
      [['create', '--name', 'o\u200bps', '--admin'], /control or format characters/],
      [['create', '--name', 'k'.repeat(101), '--admin'], /--name is 101 characters; at most 100/],
      [['list'], /no database at .* \(DATABASE_PATH\); nothing to list/],
      [['list', 'extra', '--admin'], /list does not take extra --admin\n[\s\S]*usage/],
      [['create', '--name', 'x', '--admin', 'stray'], /create does not take stray/],
      [['revoke', 'ops', '--agent', '5f1c1c8e-4a3b-4c7d-9e2f-0a1b2c3d4e5f'], /revoke does not take --agent/],
      [['list', '--name', 'ops'], /list does not take --name\n[\s\S]*usage/],
      [['revoke', 'ops', '--name', 'ops'], /revoke does not take --name/],
      [['revoke', 'ops'], /no database at .*; nothing to revoke/],
    ];
    const runs = refusals.map(([args]) =>
      promisify(execFile)(process.execPath, [builtFile('keys-cli.js'), ...args], { env: { ...process.env, DATABASE_PATH: databasePath }, timeout: 30_000 }).then(
        () => undefined, // it should have refused
        (error: { stderr?: string }) => String(error.stderr),
      ),
    );
    for (const [[args, refusal], stderr] of refusals.map((refused, i) => [refused, runs[i]!] as const)) {
      expect(await stderr, args.join(' ')).toMatch(refusal);
      expect(await stderr, args.join(' ')).toMatch(/^sessions-api keys: /);
      expect(await stderr, args.join(' ')).not.toMatch(/To specify a positional/); // parseArgs' advice, beside the point
      expect(await stderr, args.join(' ')).not.toMatch(/\n\s+at /); // no stack trace
    }
    expect(keysCli(databasePath, '--help')).toMatch(/^usage: npm run keys -- create/);
    expect(existsSync(databasePath)).toBe(false);
    // An empty file (touched, say) is no database either: list leaves it empty.
    mkdirSync(dirname(databasePath), { recursive: true });
    writeFileSync(databasePath, '');
    expect(() => keysCli(databasePath, 'list')).toThrow(/no database at .* \(DATABASE_PATH: an empty file\); nothing to list/);
    expect(statSync(databasePath).size).toBe(0);
  });

  it('refuses DATABASE_PATH=:memory:, where a key vanished as the command exited (create printed it "live" and exited 0)', () => {
    for (const args of [['create', '--name', 'x', '--admin'], ['list'], ['revoke', 'x']]) {
      let refusal: { status?: number; stderr?: string; stdout?: string } = {};
      try {
        keysCli(':memory:', ...args);
      } catch (error) {
        refusal = error as typeof refusal;
      }
      expect([refusal.status, String(refusal.stderr).trim(), String(refusal.stdout)], args.join(' ')).toEqual([
        1,
        'sessions-api keys: DATABASE_PATH=:memory: is a database of this process alone, gone when it exits; name the file (or DATABASE_URL) the server uses',
        '',
      ]);
    }
  });

  it('counts a name in characters, not UTF-16 units, and stores an agent given twice once', () => {
    const databasePath = tempDatabase();
    const agentId = '3c90c3cc-0d44-4b50-8888-8dd25736052a';
    expect(keysCli(databasePath, 'create', '--name', '🔑'.repeat(100), '--agent', agentId, '--agent', agentId)).toContain(`agents: ${agentId}  created`);
    expect(keysCli(databasePath, 'list')).toContain(`${'🔑'.repeat(100)}  agents: ${agentId}  created`);
    // Refused after the database was opened, it is closed first: nothing left beside the file.
    expect(() => keysCli(databasePath, 'revoke', 'nobody')).toThrow(/no live key with id or name nobody/);
    expect(() => keysCli(databasePath, 'create', '--name', '🔑'.repeat(100), '--admin')).toThrow(/a live key is already named/);
    expect([existsSync(`${databasePath}-wal`), existsSync(`${databasePath}-shm`)]).toEqual([false, false]);
  });

  it('holds a key bound to agents to EVENT_STREAMS_PER_KEY_MAX open event streams (429) and WEBHOOKS_PER_KEY_MAX webhooks (403); the admin key is not', async () => {
    const databasePath = tempDatabase();
    const server = startServer({ DATABASE_PATH: databasePath, LOG_LEVEL: 'silent', API_KEYS: ADMIN_KEY, EVENT_STREAMS_PER_KEY_MAX: '1', WEBHOOKS_PER_KEY_MAX: '1' });
    const baseUrl = await server.listening;
    const admin = { 'x-api-key': ADMIN_KEY };
    const agentId = (await fetchChecked(baseUrl, 'POST', '/api/agents', { characterJson: { name: 'Bound' } }, admin)).body.data.character.id as string;
    const key = /key \(shown once, store it now\): (sk_\S+)/.exec(keysCli(databasePath, 'create', '--name', 'bot', '--agent', agentId))![1]!;
    const open = new AbortController();
    try {
      for (const headers of [{ 'x-api-key': key }, admin, admin]) {
        expect((await fetch(`${baseUrl}/api/messaging/sessions/events`, { headers, signal: open.signal })).status).toBe(200);
      }
      const refused = await fetchChecked(baseUrl, 'GET', '/api/messaging/sessions/events', undefined, { 'x-api-key': key });
      expect(refused.status).toBe(429);
      expect(refused.body.error.details).toMatch(/EVENT_STREAMS_PER_KEY_MAX=1\)/);
      const webhook = (headers: Record<string, string>) => fetchChecked(baseUrl, 'POST', '/api/webhooks', { url: 'https://hooks.example.com/x' }, headers);
      expect((await webhook({ 'x-api-key': key })).status).toBe(201);
      const secondWebhook = await webhook({ 'x-api-key': key });
      expect(secondWebhook.status).toBe(403);
      expect(secondWebhook.body.error.details).toMatch(/WEBHOOKS_PER_KEY_MAX=1\)/);
      expect((await webhook(admin)).status).toBe(201);
    } finally {
      open.abort();
    }
  });

  it('turns keys on with the first key, prints each key once, stores only its hash, and a revoke counts at once', async () => {
    const databasePath = tempDatabase();
    const server = startServer({ DATABASE_PATH: databasePath, LOG_LEVEL: 'silent' });
    const baseUrl = await server.listening;
    expect((await fetchChecked(baseUrl, 'GET', '/api/agents')).status).toBe(200);

    const created = keysCli(databasePath, 'create', '--name', 'ops', '--admin');
    const key = /key \(shown once, store it now\): (sk_\S+)/.exec(created)?.[1];
    expect(key).toMatch(/^sk_[A-Za-z0-9_-]{43}$/);
    expect((await fetchChecked(baseUrl, 'GET', '/api/agents')).status).toBe(401);
    expect((await fetchChecked(baseUrl, 'GET', '/api/agents', undefined, { authorization: `Bearer ${key}` })).status).toBe(200);

    const db = new Database(databasePath, { readonly: true });
    const stored = db.prepare('SELECT * FROM api_keys').all() as Array<Record<string, unknown>>;
    db.close();
    expect(stored).toHaveLength(1);
    expect(JSON.stringify(stored)).not.toContain(key!.slice(3));

    expect(keysCli(databasePath, 'list')).toMatch(/ops {2}admin .* live/);
    expect(keysCli(databasePath, 'revoke', 'ops')).toMatch(/^revoked .* ops .* revoked \d{4}-\d\d-\d\dT\S+Z$/m);
    expect(keysCli(databasePath, 'list')).toMatch(/ops {2}admin {2}created \S+ {2}revoked \d{4}-\d\d-\d\dT\S+Z$/m);
    expect((await fetchChecked(baseUrl, 'GET', '/api/agents', undefined, { 'x-api-key': key! })).status).toBe(401);
    expect(() => keysCli(databasePath, 'create', '--name', 'nothing')).toThrow(/either --admin or at least one --agent/);
  });
});

describe('WEBHOOK_PRIVATE_ADDRESSES=deny, as npm start reads it', () => {
  it('refuses a webhook to a private address, and the deliveries of one made before to a name resolving inside', async () => {
    const databasePath = tempDatabase();
    const hook = await receiver(() => 200);
    try {
      const open = startServer({ DATABASE_PATH: databasePath, LOG_LEVEL: 'silent' });
      const openUrl = await open.listening;
      const made = await fetchChecked(openUrl, 'POST', '/api/webhooks', { url: hook.url.replace('127.0.0.1', 'localhost') });
      expect(made.status).toBe(201);
      open.child.kill('SIGTERM');
      await open.exited;

      const strict = startServer({ DATABASE_PATH: databasePath, LOG_LEVEL: 'silent', WEBHOOK_PRIVATE_ADDRESSES: 'deny' });
      const baseUrl = await strict.listening;
      const refused = await fetchChecked(baseUrl, 'POST', '/api/webhooks', { url: hook.url });
      expect(refused.status).toBe(400);
      expect(refused.body.error.details).toMatch(/WEBHOOK_PRIVATE_ADDRESSES=deny/);
      const agent = await fetchChecked(baseUrl, 'POST', '/api/agents', { characterJson: { name: 'Walled' } });
      expect(agent.status).toBe(201);
      let attempts: Array<{ error: string | null }> = [];
      for (let waited = 0; attempts.length === 0 && waited < 10_000; waited += 100) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        attempts = (await fetchChecked(baseUrl, 'GET', `/api/webhooks/${made.body.id}/deliveries`)).body.deliveries;
      }
      expect(attempts[0]?.error).toBe('fetch failed: localhost resolves to 127.0.0.1, a private or special address (WEBHOOK_PRIVATE_ADDRESSES=deny)');
      expect(hook.received).toEqual([]);
    } finally {
      await hook.close();
    }
  });
});
