// /docs in a real browser (Debian's Chromium driven by playwright-core): the page shows
// every operation, sends a createSession from its "Test Request" panel and gets a 201,
// and never asks anything of a host other than this server. And a page on another origin
// builds against mock mode: its calls, preflighted, get their answers.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { chromium } from 'playwright-core';
import { createMockServer } from '../src/mock/mock-server.js';
import { specDocument, specOperations, specPath } from '../src/spec.js';
import { cleanUpServerProcesses, fetchChecked, startServer, tempDatabase } from './helpers/server-process.js';

const ARTIFACTS = 'test-artifacts';

function findChromium(): string | undefined {
  try {
    return execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

const chromiumPath = findChromium();
if (!chromiumPath) {
  console.warn(
    '\n!!! SKIPPING the /docs browser test: no `chromium` on PATH. Install it with `apt-get install -y chromium`\n' +
      '!!! (.ci/run does so); the docs page is NOT tested in a browser on this machine.\n',
  );
}

afterEach(cleanUpServerProcesses);

const EXAMPLE_AGENT_ID = '3c90c3cc-0d44-4b50-8888-8dd25736052a'; // the createSession example's agentId

describe.skipIf(!chromiumPath)('/docs in Chromium', () => {
  it('shows every operation and sends a createSession that gets a 201, all from this server', { timeout: 90_000 }, async () => {
    const baseUrl = await startServer({ DATABASE_PATH: tempDatabase() }).listening;
    const agent = await fetchChecked(baseUrl, 'POST', '/api/agents', { characterJson: { id: EXAMPLE_AGENT_ID, name: 'Eliza' } });
    expect(agent.status).toBe(201);

    const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox', '--disable-background-networking'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      const elsewhere: string[] = [];
      await page.route('**/*', (route) => {
        const url = new URL(route.request().url());
        if (url.hostname !== '127.0.0.1') {
          elsewhere.push(url.href);
          return route.abort();
        }
        return route.continue();
      });

      await page.goto(`${baseUrl}/docs`);
      await page.getByText('Create Session').first().waitFor();
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: `${ARTIFACTS}/docs.png` });

      for (const group of ['Events', 'Agents', 'Operations']) await page.getByRole('button', { name: `Open Group - ${group}` }).click();
      const sidebar = await page.locator('body').innerText();
      const summaries = Object.values(specDocument().paths).flatMap((item) =>
        Object.values(item as Record<string, { summary?: string }>).flatMap((operation) => (operation.summary ? [operation.summary] : [])),
      );
      expect(summaries.length).toBe(specOperations().length);
      for (const summary of summaries) expect(sidebar, summary).toContain(summary);

      // Scalar renders operations as they scroll into view: go to the operation first.
      await page.getByText('Create Session').first().click();
      await page.getByRole('button', { name: /Test Request\s*\(post \/api\/messaging\/sessions\)/ }).click();
      await page.getByRole('button', { name: /^Send/ }).first().click();
      await page.getByText('201 Created').first().waitFor();
      await page.screenshot({ path: `${ARTIFACTS}/docs-test-request.png` });

      const sessions = await fetchChecked(baseUrl, 'GET', `/api/messaging/sessions?agentId=${EXAMPLE_AGENT_ID}`);
      expect(sessions.body.total).toBe(1);
      expect(elsewhere).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it('lets a page on another origin call mock mode, preflights and errors included', { timeout: 60_000 }, async () => {
    const mock = await createMockServer({ specPath });
    const mockUrl = await mock.listen({ host: '127.0.0.1', port: 0 });
    const pages = createServer((_request, response) => response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>app</title>'));
    await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
    const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox', '--disable-background-networking'] });
    try {
      const page = await browser.newPage();
      await page.goto(`http://localhost:${(pages.address() as AddressInfo).port}/`);
      const answers = await page.evaluate(async (base) => {
        const call = async (path: string, init: RequestInit = {}) => {
          const response = await fetch(`${base}${path}`, init);
          const header = (name: string) => response.headers.get(name) ?? undefined;
          return { status: response.status, code: (await response.json()).error?.code, requestId: header('x-request-id'), retryAfter: header('retry-after') };
        };
        const json = { 'content-type': 'application/json', 'x-api-key': 'any' };
        const id = '3f1c2a4e-8b7d-4c6e-9a15-2d4b6e8f0a31';
        return [
          await call('/api/messaging/sessions', { method: 'POST', headers: json, body: JSON.stringify({ agentId: id, userId: id }) }),
          await call(`/api/messaging/sessions/${id}`, { headers: { prefer: 'code=410' } }),
          await call(`/api/messaging/sessions/${id}`, { method: 'DELETE', headers: { 'x-api-key': 'any' } }),
          await call('/api/messaging/sessions', { method: 'POST', headers: json, body: '{}' }),
          await call('/api/agents', { headers: { prefer: 'code=429' } }),
        ];
      }, mockUrl);
      // The headers the spec's examples give, read by the page as a client of the server would read them.
      const requestId = '5f0c6f2e-3b1d-4a8e-9c27-6d4b1e0a9f13';
      expect(answers).toEqual([
        { status: 201, code: undefined, requestId, retryAfter: undefined },
        { status: 410, code: 'SESSION_EXPIRED', requestId, retryAfter: undefined },
        { status: 200, code: undefined, requestId, retryAfter: undefined },
        { status: 400, code: 'INVALID_REQUEST', requestId, retryAfter: undefined },
        { status: 429, code: 'RATE_LIMITED', requestId, retryAfter: '30' },
      ]);
    } finally {
      await browser.close();
      pages.close();
      await mock.close();
    }
  });
});
