import { expect } from 'vitest';
import type { TestApp } from './test-app.js';

export const USER_ID = '5f1c1c8e-4a3b-4c7d-9e2f-0a1b2c3d4e5f';

export async function registerAgent(t: TestApp, characterJson: Record<string, unknown> = {}): Promise<string> {
  const response = await t.request({ method: 'POST', url: '/api/agents', body: { characterJson: { name: 'Eliza', ...characterJson } } });
  expect(response.status).toBe(201);
  return response.body.data.character.id;
}

export async function createSession(t: TestApp, body: Record<string, unknown>) {
  const response = await t.request({ method: 'POST', url: '/api/messaging/sessions', body: { userId: USER_ID, ...body } });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return response.body;
}
