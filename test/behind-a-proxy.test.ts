// What a reverse proxy in front of the server depends on, checked without one (n18):
// nginx's default proxy_pass speaks HTTP/1.0 to the server, and a stream behind it ends
// when the proxy closes its connection; SSE frames are not buffered (X-Accel-Buffering);
// the server says how long it keeps an idle connection (a proxy's pool must keep it less).
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics } from '../src/ops/metrics.js';
import { createSession, registerAgent } from './helpers/fixtures.js';
import { logLines } from './helpers/log-lines.js';
import { parsePrometheusText } from './helpers/prometheus-text.js';
import { type TestApp, startTestApp } from './helpers/test-app.js';
import { until } from './helpers/until.js';

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const REQUESTS = 'sessions_api_http_request_duration_seconds';
async function count(app: TestApp, key: string): Promise<number> {
  const samples = parsePrometheusText((await app.requestText('/metrics')).text).get(REQUESTS)?.samples ?? [];
  return samples.filter((s) => s.name === `${REQUESTS}_count` && `${s.labels.operationId} ${s.labels.status}` === key).reduce((sum, s) => sum + s.value, 0);
}

/** Opens `path` over `version` on a raw socket, as a proxy does; resolves with the head once it came, and a way to close. */
function rawStream(port: number, path: string, version: '1.0' | '1.1', requestId: string, body?: string) {
  return new Promise<{ head: string; close: () => void }>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () =>
      socket.write(
        body === undefined
          ? `GET ${path} HTTP/${version}\r\nHost: 127.0.0.1\r\nX-Request-Id: ${requestId}\r\n\r\n`
          : `POST ${path} HTTP/${version}\r\nHost: 127.0.0.1\r\nX-Request-Id: ${requestId}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      ),
    );
    let text = '';
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      text += chunk;
      if (text.includes('\r\n\r\n')) resolve({ head: text.slice(0, text.indexOf('\r\n\r\n')), close: () => socket.destroy() });
    });
  });
}

describe('behind a reverse proxy', () => {
  for (const version of ['1.0', '1.1'] as const) {
    it(`counts and logs once an event stream and a sse wait whose HTTP/${version} client (a proxy) closed them`, async () => {
      const { lines, stream } = logLines();
      const app = (t = await startTestApp({ metrics: createMetrics(), app: { logger: { level: 'info', stream } } }));
      const port = Number(new URL(await app.listen()).port);
      const agentId = await registerAgent(app);
      const { sessionId } = await createSession(app, { agentId });

      const events = await rawStream(port, `/api/messaging/sessions/${sessionId}/events`, version, `stream-${version}`);
      expect(events.head).toMatch(/^HTTP\/1\.1 200/);
      expect(events.head.toLowerCase()).toContain('x-accel-buffering: no');
      expect(events.head.toLowerCase()).toContain(`x-request-id: stream-${version}`);
      const wait = await rawStream(port, `/api/messaging/sessions/${sessionId}/messages`, version, `wait-${version}`, JSON.stringify({ content: 'hi', transport: 'sse' }));
      expect(wait.head).toMatch(/^HTTP\/1\.1 201/);
      expect(wait.head.toLowerCase()).toContain('x-accel-buffering: no');
      events.close();
      wait.close();

      await until('both are counted', async () => (await count(app, 'streamSessionEvents 200')) === 1 && (await count(app, 'sendSessionMessage 201')) === 1);
      await new Promise((resolve) => setTimeout(resolve, 200)); // a second count would come by now
      expect(await count(app, 'streamSessionEvents 200')).toBe(1);
      expect(await count(app, 'sendSessionMessage 201')).toBe(1);
      const completed = (reqId: string) => lines.filter((line) => line.reqId === reqId && line.msg === 'request completed');
      expect(completed(`stream-${version}`)).toEqual([expect.objectContaining({ closedByClient: true })]);
      expect(completed(`wait-${version}`)).toEqual([expect.objectContaining({ closedByClient: true })]);
    });
  }

  it('advertises its keep-alive timeout (HTTP_KEEP_ALIVE_TIMEOUT_SECONDS, default 5) in Keep-Alive: timeout=', async () => {
    const app = (t = await startTestApp());
    const base = await app.listen();
    const response = await fetch(`${base}/api/messaging/sessions/health`);
    await response.arrayBuffer();
    expect(response.headers.get('keep-alive')).toBe('timeout=5');
  });
});
