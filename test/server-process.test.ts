// `npm start`'s entry point as a real process: banner, serving, graceful stop, bad config.
import { type AddressInfo, connect, createServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { responseViolations, specBackend } from './helpers/spec-validator.js';
import { specSchemaValidator } from '../src/spec.js';
import { cleanUpServerProcesses, fetchChecked, startServer, tempDatabase } from './helpers/server-process.js';
import { parsePrometheusText } from './helpers/prometheus-text.js';
import { CLOCK_OFFSET_HEADER, CLOCK_STEP_HEADER } from './helpers/shift-clock.js';
import { until } from './helpers/until.js';

const shiftClock = new URL('./helpers/shift-clock.ts', import.meta.url).href;
const pauseAfterListening = new URL('./helpers/pause-after-listening.ts', import.meta.url).href;
const MINUTE = 60_000;
const hasIpv6Loopback = Object.values(networkInterfaces()).some((addresses) => addresses?.some((address) => address.address === '::1'));

afterEach(cleanUpServerProcesses);

describe('the server process', () => {
  it('prints one line with the URL and database path (on stderr: stdout carries only the logs), serves, and stops on SIGTERM with exit 0', async () => {
    const databasePath = tempDatabase();
    const server = startServer({ DATABASE_PATH: databasePath });
    const baseUrl = await server.listening;
    expect(server.output().stderr.trim().split('\n')).toEqual([`Sessions API listening on ${baseUrl} (database: ${databasePath})`]);
    const response = await fetchChecked(baseUrl, 'GET', '/api/agents');
    expect(response.status).toBe(200);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(server.output().stderr).toContain('Sessions API stopped (SIGTERM)');
  });

  it.skipIf(!hasIpv6Loopback)('prints an IPv6 address it listens on in brackets, a URL that reaches it', async () => {
    const server = startServer({ DATABASE_PATH: tempDatabase(), HOST: '::1' });
    const baseUrl = await server.listening;
    expect(baseUrl).toMatch(/^http:\/\/\[::1\]:\d+$/);
    expect((await fetchChecked(baseUrl, 'GET', '/api/agents')).status).toBe(200);
  });

  it('stops gracefully on a SIGTERM sent the moment it says it listens (its signal handlers are in place before)', async () => {
    const server = startServer({ DATABASE_PATH: tempDatabase() }, { preload: [pauseAfterListening] });
    server.child.stderr!.on('data', (chunk) => {
      if (String(chunk).includes('listening on')) server.child.kill('SIGTERM');
    });
    expect(await server.exited).toBe(0);
    expect(server.output().stderr).toContain('Sessions API stopped (SIGTERM)');
  });

  it('finishes a request in flight before stopping on SIGINT', async () => {
    const server = startServer({ DATABASE_PATH: tempDatabase() });
    const { port } = new URL(await server.listening);
    const body = JSON.stringify({ characterJson: { name: 'In flight' } });
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    socket.on('data', (chunk) => (answer += chunk));
    const closed = new Promise((resolve) => socket.on('close', resolve));
    await new Promise((resolve) => socket.once('connect', resolve));
    // Headers and half the body now; the rest after the signal.
    socket.write(`POST /api/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    server.child.kill('SIGINT');
    await new Promise((resolve) => setTimeout(resolve, 100));
    socket.end(body.slice(10));
    await closed;
    expect(answer).toMatch(/^HTTP\/1.1 201/);
    const created = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
    const api = await specBackend();
    expect(responseViolations(api, 'createAgent', 201, created)).toEqual([]);
    expect(created.data.character.name).toBe('In flight');
    expect(await server.exited).toBe(0);
  });

  it('gives sessions the session defaults and the retention its environment sets', async () => {
    const server = startServer(
      {
        DATABASE_PATH: tempDatabase(),
        SESSION_DEFAULT_TIMEOUT_MINUTES: '45',
        SESSION_AUTO_RENEW: 'false',
        SESSION_MAX_DURATION_MINUTES: '90',
        SESSION_WARNING_THRESHOLD_MINUTES: '7',
        SESSION_RETENTION_MINUTES: '10',
      },
      { preload: [shiftClock] },
    );
    const baseUrl = await server.listening;
    const agentId = (await fetchChecked(baseUrl, 'POST', '/api/agents', { characterJson: { name: 'Defaults' } })).body.data.character.id;
    const created = await fetchChecked(baseUrl, 'POST', '/api/messaging/sessions', { agentId, userId: '5f1c1c8e-4a3b-4c7d-9e2f-0a1b2c3d4e5f' });
    expect(created.body.timeoutConfig).toEqual({ timeoutMinutes: 45, autoRenew: false, maxDurationMinutes: 90, warningThresholdMinutes: 7 });
    const session = `/api/messaging/sessions/${created.body.sessionId}`;
    const at = async (minutes: number) => (await fetchChecked(baseUrl, 'GET', session, undefined, { [CLOCK_OFFSET_HEADER]: String(minutes * MINUTE) })).status;
    // Expired 45 minutes in; kept 10 minutes more (not the default 1,440), then gone.
    expect(await at(44)).toBe(200);
    expect(await at(46)).toBe(410);
    expect(await at(54)).toBe(410);
    expect(await at(56)).toBe(404);
  });

  it('keeps at most EVENT_STREAMS_MAX event streams open', async () => {
    const server = startServer({ DATABASE_PATH: tempDatabase(), EVENT_STREAMS_MAX: '1' });
    const baseUrl = await server.listening;
    const open = new AbortController();
    const first = await fetch(`${baseUrl}/api/messaging/sessions/events`, { signal: open.signal });
    try {
      expect(first.status).toBe(200);
      const second = await fetchChecked(baseUrl, 'GET', '/api/messaging/sessions/events');
      expect(second.status).toBe(503);
      expect(second.body.error.details).toMatch(/EVENT_STREAMS_MAX=1\)/);
    } finally {
      open.abort();
    }
  });

  it('counts its uptime on a clock that does not step: the wall clock set back or forward leaves it as it was', async () => {
    const server = startServer({ DATABASE_PATH: tempDatabase() }, { preload: [shiftClock] });
    const baseUrl = await server.listening;
    const uptimeAt = async (offsetMs: number) =>
      (await fetchChecked(baseUrl, 'GET', '/api/messaging/sessions/health', undefined, { [CLOCK_OFFSET_HEADER]: String(offsetMs), [CLOCK_STEP_HEADER]: 'true' })).body.uptime as number;
    const before = await uptimeAt(0);
    const setBack = await uptimeAt(-MINUTE);
    const setForward = await uptimeAt(24 * 60 * MINUTE);
    // Seconds the process has run (a few, for the test): not less than before, and not a day more.
    expect(setBack).toBeGreaterThanOrEqual(before);
    expect(setForward).toBeGreaterThanOrEqual(setBack);
    expect(setForward).toBeLessThan(before + 60);
  });

  it('keeps sweeping while a forward jump of the wall clock is held back: the time it acts on is whole milliseconds', async () => {
    const server = startServer({ DATABASE_PATH: tempDatabase(), SESSION_SWEEP_INTERVAL_SECONDS: '1' }, { preload: [shiftClock] });
    const baseUrl = await server.listening;
    const agentId = (await fetchChecked(baseUrl, 'POST', '/api/agents', { characterJson: { name: 'Jumped' } })).body.data.character.id;
    expect((await fetchChecked(baseUrl, 'POST', '/api/messaging/sessions', { agentId, userId: '5f1c1c8e-4a3b-4c7d-9e2f-0a1b2c3d4e5f' })).status).toBe(201);
    const sweeps = async () => {
      const response = await fetch(`${baseUrl}/metrics`);
      expect(response.status).toBe(200);
      const runs = parsePrometheusText(await response.text()).get('sessions_api_sweeper_runs_total')?.samples ?? [];
      const of = (result: string) => runs.find((sample) => sample.labels.result === result)?.value ?? 0;
      return { ok: of('ok'), failed: of('failed') };
    };
    // Stepped two hours ahead: for a minute the sweeper acts on where the clock was plus the time that passed.
    await fetchChecked(baseUrl, 'GET', '/api/messaging/sessions/health', undefined, { [CLOCK_OFFSET_HEADER]: String(120 * MINUTE), [CLOCK_STEP_HEADER]: 'true' });
    const before = await sweeps();
    await until('two more sweeps', async () => {
      const now = await sweeps();
      return now.ok + now.failed >= before.ok + before.failed + 2;
    }, { everyMs: 100 });
    expect((await sweeps()).failed).toBe(0);
    expect(server.output().stdout).toContain('the wall clock jumped ahead');
  });

  it.skipIf(!hasIpv6Loopback)('refuses to start on a port taken, naming where it would listen (an IPv6 host in brackets)', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '::1', resolve));
    try {
      const { port } = taken.address() as AddressInfo;
      const server = startServer({ DATABASE_PATH: tempDatabase(), HOST: '::1', PORT: String(port) });
      expect(await server.exited).toBe(1);
      expect(server.output().stderr).toMatch(new RegExp(`^sessions-api: cannot listen on http://\\[::1\\]:${port}: .*EADDRINUSE`, 'm'));
    } finally {
      taken.close();
    }
  });

  it("answers 431 naming Node's header limit as set (--max-http-header-size), not its default", async () => {
    const server = startServer({ DATABASE_PATH: tempDatabase(), NODE_OPTIONS: '--max-http-header-size=32768' });
    const baseUrl = await server.listening;
    expect((await fetchChecked(baseUrl, 'GET', '/api/agents', undefined, { 'x-big': 'a'.repeat(20_000) })).status).toBe(200);
    // Answered by Node's parser before any route: in the error envelope, as every refusal.
    const refused = await fetch(`${baseUrl}/api/agents`, { headers: { 'x-big': 'a'.repeat(40_000) } });
    expect(refused.status).toBe(431);
    const body = await refused.json();
    expect(specSchemaValidator('ErrorEnvelope')(body)).toBe(true);
    expect(body.error).toMatchObject({ code: 'HEADERS_TOO_LARGE', details: 'the request line and headers must be at most 32 KB' });
  });

  it('refuses to start on a bad environment value, saying which', async () => {
    const server = startServer({ DATABASE_PATH: tempDatabase(), SESSION_DEFAULT_TIMEOUT_MINUTES: '4' });
    expect(await server.exited).toBe(1);
    expect(server.output().stderr).toContain('invalid configuration: SESSION_DEFAULT_TIMEOUT_MINUTES=4 must be >= 5');
  });
});
