// /docs in a real browser (Debian's Chromium driven by playwright-core): the page shows
// every operation, sends a createSession from its "Test Request" panel and gets a 201,
// and never asks anything of a host other than this server.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { chromium } from 'playwright-core';
import { specDocument, specOperations } from '../src/spec.js';
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
});
