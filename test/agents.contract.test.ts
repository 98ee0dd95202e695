import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MINUTE, T0 } from './helpers/fake-clock.js';
import { USER_ID, createSession, registerAgent } from './helpers/fixtures.js';
import { DEFAULT_RETENTION_MS, startTestApp, type TestApp } from './helpers/test-app.js';

const AGENT_ID = '0b7b4c3e-1f2a-4d5e-8f90-a1b2c3d4e5f6';
let t: TestApp;

beforeEach(async () => {
  t = await startTestApp();
});
afterEach(() => t.close());

describe('createAgent', () => {
  it('registers an agent with a generated v4 id', async () => {
    const response = await t.request({ method: 'POST', url: '/api/agents', body: { characterJson: { name: 'Eliza', bio: 'Helpful.' } } });
    expect(response.status).toBe(201);
    expect(response.body).toEqual({
      success: true,
      data: { character: { id: expect.stringMatching(/^[0-9a-f-]{36}$/), name: 'Eliza', bio: 'Helpful.', settings: {} } },
    });
  });

  it('keeps a given id and answers 409 AGENT_ALREADY_EXISTS to a duplicate, changing nothing', async () => {
    const settings = { SESSION_TIMEOUT_MINUTES: 60, theme: { dark: true } };
    const first = await t.request({ method: 'POST', url: '/api/agents', body: { characterJson: { id: AGENT_ID, name: 'Eliza', settings } } });
    expect(first.body.data.character).toEqual({ id: AGENT_ID, name: 'Eliza', settings });
    const again = await t.request({ method: 'POST', url: '/api/agents', body: { characterJson: { id: AGENT_ID, name: 'Other' } } });
    expect(again.status).toBe(409);
    expect(again.body.error).toEqual({
      code: 'AGENT_ALREADY_EXISTS',
      message: 'Agent already exists',
      details: `body/characterJson/id ${AGENT_ID} is already registered`,
    });
    expect((await t.request({ method: 'GET', url: `/api/agents/${AGENT_ID}` })).body.data.name).toBe('Eliza');
  });

  it.each([
    [{}, /^body\/characterJson is required$/],
    [{ characterJson: {} }, /^body\/characterJson\/name is required$/],
    [{ characterJson: { name: '' } }, /^body\/characterJson\/name must NOT have fewer than 1 characters$/],
    [{ characterJson: { name: 'E', plugins: [] } }, /^body\/characterJson\/plugins is not allowed$/],
    [{ characterJson: { name: 'E', id: 'abc' } }, /^body\/characterJson\/id must match format "uuid"$/],
    [{ characterJson: { name: 'E', settings: { SESSION_TIMEOUT_MINUTES: '60' } } }, /^body\/characterJson\/settings\/SESSION_TIMEOUT_MINUTES must be integer$/],
    [{ characterJson: { name: 'E', settings: { SESSION_MAX_DURATION_MINUTES: 1 } } }, /^body\/characterJson\/settings\/SESSION_MAX_DURATION_MINUTES must be >= 5$/],
    [{ characterJson: { name: 'E', settings: { SESSION_AUTO_RENEW: 'no' } } }, /^body\/characterJson\/settings\/SESSION_AUTO_RENEW must be boolean$/],
    [{ characterJson: { name: 'E', settings: { blob: 'x'.repeat(11_000) } } }, /^body\/characterJson\/settings must be at most 10240 bytes serialized/],
  ])('refuses %j with 400 naming the field, storing nothing', async (body, detail) => {
    const response = await t.request({ method: 'POST', url: '/api/agents', body });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('INVALID_REQUEST');
    expect(response.body.error.details).toMatch(detail);
    expect(t.rowCounts().agents).toBe(0);
  });

  it('answers 415 and 413 like every body route, storing nothing', async () => {
    const unsupported = await t.request({ method: 'POST', url: '/api/agents', body: 'name=E', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(unsupported.status).toBe(415);
    expect(unsupported.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const tooLarge = await t.request({ method: 'POST', url: '/api/agents', body: { characterJson: { name: 'E', bio: 'x'.repeat(1_100_000) } } });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(t.rowCounts().agents).toBe(0);
  });
});

describe('listAgents and getAgent', () => {
  it('lists agents oldest first with their status', async () => {
    expect((await t.request({ method: 'GET', url: '/api/agents' })).body).toEqual({ success: true, data: { agents: [] } });
    const first = await registerAgent(t, { name: 'First' });
    t.clock.advance(1);
    const second = await registerAgent(t, { name: 'Second' });
    const response = await t.request({ method: 'GET', url: '/api/agents' });
    expect(response.status).toBe(200);
    expect(response.body.data.agents).toEqual([
      { id: first, name: 'First', status: 'active' },
      { id: second, name: 'Second', status: 'active' },
    ]);
  });

  it('gets one agent with its creation time and settings', async () => {
    const id = await registerAgent(t, { bio: 'Bio', settings: { SESSION_TIMEOUT_MINUTES: 60 } });
    const response = await t.request({ method: 'GET', url: `/api/agents/${id}` });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      success: true,
      data: { id, name: 'Eliza', bio: 'Bio', status: 'active', createdAt: new Date(T0).toISOString(), settings: { SESSION_TIMEOUT_MINUTES: 60 } },
    });
  });

  it('answers 404 AGENT_NOT_FOUND for an unknown id and 400 for a malformed one', async () => {
    const missing = await t.request({ method: 'GET', url: `/api/agents/${AGENT_ID}` });
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatchObject({ code: 'AGENT_NOT_FOUND', details: `params/agentId ${AGENT_ID} does not exist` });
    const malformed = await t.request({ method: 'GET', url: '/api/agents/not-a-uuid' });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toMatchObject({ code: 'INVALID_REQUEST', details: 'params/agentId must match format "uuid"' });
  });
});

describe('deleteAgent', () => {
  it('deletes an agent without sessions', async () => {
    const id = await registerAgent(t);
    const response = await t.request({ method: 'DELETE', url: `/api/agents/${id}` });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ success: true, data: { message: 'Agent deleted', deletedSessions: 0 } });
    expect((await t.request({ method: 'GET', url: `/api/agents/${id}` })).status).toBe(404);
    expect((await t.request({ method: 'DELETE', url: `/api/agents/${id}` })).status).toBe(404);
  });

  it('answers 409 AGENT_HAS_ACTIVE_SESSIONS while a session is active, changing nothing', async () => {
    const id = await registerAgent(t);
    await createSession(t, { agentId: id });
    await createSession(t, { agentId: id });
    const before = t.rowCounts();
    const response = await t.request({ method: 'DELETE', url: `/api/agents/${id}` });
    expect(response.status).toBe(409);
    expect(response.body.error).toEqual({
      code: 'AGENT_HAS_ACTIVE_SESSIONS',
      message: 'Agent has active sessions',
      details: '2 active session(s); retry with force=true to delete them',
    });
    expect(t.rowCounts()).toEqual(before);
  });

  it('deletes the agent with its sessions when force=true', async () => {
    const id = await registerAgent(t);
    const other = await registerAgent(t);
    const kept = await createSession(t, { agentId: other });
    await createSession(t, { agentId: id });
    await createSession(t, { agentId: id });
    const response = await t.request({ method: 'DELETE', url: `/api/agents/${id}?force=true` });
    expect(response.status).toBe(200);
    expect(response.body.data.deletedSessions).toBe(2);
    expect(t.rowCounts()).toMatchObject({ agents: 1, sessions: 1 });
    expect(await t.store.getSession(kept.sessionId)).toBeDefined();
  });

  it('is not blocked by sessions that have expired (exactly at expiresAt)', async () => {
    const id = await registerAgent(t);
    await createSession(t, { agentId: id, timeoutConfig: { timeoutMinutes: 5 } });
    t.clock.set(T0 + 5 * MINUTE - 1);
    expect((await t.request({ method: 'DELETE', url: `/api/agents/${id}` })).status).toBe(409);
    t.clock.set(T0 + 5 * MINUTE);
    const response = await t.request({ method: 'DELETE', url: `/api/agents/${id}` });
    expect(response.status).toBe(200);
    expect(response.body.data.deletedSessions).toBe(1);
  });

  it('does not count in deletedSessions a session past its retention, which no reader finds any more (the sweeper not run)', async () => {
    const older = await registerAgent(t);
    const newer = await registerAgent(t);
    await createSession(t, { agentId: older, timeoutConfig: { timeoutMinutes: 5 } });
    t.clock.set(T0 + 1);
    await createSession(t, { agentId: newer, timeoutConfig: { timeoutMinutes: 5 } });
    // The older session expired at T0 + 5 min and is past its retention exactly a retention later; the newer 1 ms after.
    t.clock.set(T0 + 5 * MINUTE + DEFAULT_RETENTION_MS);
    const [first, second] = await Promise.all([older, newer].map((id) => t.request({ method: 'DELETE', url: `/api/agents/${id}` })));
    expect(first!.body.data.deletedSessions).toBe(0);
    expect(second!.body.data.deletedSessions).toBe(1);
    expect(t.rowCounts().sessions).toBe(0);
  });

  it('refuses a force value that is not a boolean', async () => {
    const id = await registerAgent(t);
    const response = await t.request({ method: 'DELETE', url: `/api/agents/${id}?force=yes` });
    expect(response.status).toBe(400);
    expect(response.body.error.details).toBe('querystring/force must be boolean');
    expect(t.rowCounts().agents).toBe(1);
  });

  it('answers 400 for a malformed id and 404 for an unknown one', async () => {
    expect((await t.request({ method: 'DELETE', url: '/api/agents/123' })).status).toBe(400);
    expect((await t.request({ method: 'DELETE', url: `/api/agents/${AGENT_ID}?force=true` })).status).toBe(404);
  });
});

describe('deleteAgent of an unknown agent', () => {
  it('answers 404 AGENT_NOT_FOUND naming the id, with or without force', async () => {
    for (const query of ['', '?force=true']) {
      const response = await t.request({ method: 'DELETE', url: `/api/agents/${AGENT_ID}${query}` });
      expect(response.status).toBe(404);
      expect(response.body.error.code).toBe('AGENT_NOT_FOUND');
      expect(response.body.error.details).toBe(`params/agentId ${AGENT_ID} does not exist`);
    }
  });
});

describe('agent session defaults', () => {
  it('apply to sessions created later, field by field', async () => {
    const id = await registerAgent(t, { settings: { SESSION_MAX_DURATION_MINUTES: 10, SESSION_TIMEOUT_MINUTES: 60 } });
    const session = await createSession(t, { agentId: id, userId: USER_ID });
    // maxDuration 10 < timeout 60 is raised to 60.
    expect(session.timeoutConfig).toEqual({ timeoutMinutes: 60, autoRenew: true, maxDurationMinutes: 60, warningThresholdMinutes: 5 });
  });
});
