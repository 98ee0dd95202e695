// SIGTERM against a real process: requests in flight on warm keep-alive sockets are all
// answered, idle sockets do not hold the exit up, and the process exits 0 in time.
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanUpServerProcesses, fetchChecked, startServer, tempDatabase } from './helpers/server-process.js';
import { operationFor, responseViolations, specBackend } from './helpers/spec-validator.js';

afterEach(cleanUpServerProcesses);

const IN_FLIGHT = 200;
const GRACE_SECONDS = 10;

interface Answer {
  status: number;
  body: string;
}

/** A POST whose body is sent in two parts: `finish()` sends the rest. */
function slowPost(agent: Agent, baseUrl: string, path: string, body: string) {
  let finish!: () => void;
  const answered = new Promise<Answer>((resolve, reject) => {
    const url = new URL(path, baseUrl);
    const req = request(
      { agent, host: url.hostname, port: url.port, path, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      },
    );
    req.on('error', reject);
    req.write(body.slice(0, 1));
    finish = () => req.end(body.slice(1));
  });
  return { answered, finish: () => finish() };
}

function post(agent: Agent, baseUrl: string, path: string, body: string): Promise<Answer> {
  const slow = slowPost(agent, baseUrl, path, body);
  slow.finish();
  return slow.answered;
}

describe('SIGTERM', () => {
  it(`answers all ${IN_FLIGHT} requests in flight on warm keep-alive sockets, then exits 0 within the grace period`, { timeout: 60_000 }, async () => {
    const databasePath = tempDatabase();
    const server = startServer({ DATABASE_PATH: databasePath, SHUTDOWN_GRACE_SECONDS: String(GRACE_SECONDS) });
    const baseUrl = await server.listening;
    const agentId = (await fetchChecked(baseUrl, 'POST', '/api/agents', { characterJson: { name: 'Eliza' } })).body.data.character.id;
    const sessionBody = JSON.stringify({ agentId, userId: '5f1c1c8e-4a3b-4c7d-9e2f-0a1b2c3d4e5f' });

    const agent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
    const warm = await Promise.all(Array.from({ length: IN_FLIGHT }, () => post(agent, baseUrl, '/api/messaging/sessions', sessionBody)));
    expect(warm.every((answer) => answer.status === 201)).toBe(true);

    // Every request has its headers and part of its body on the server when the signal comes.
    const inFlight = Array.from({ length: IN_FLIGHT }, () => slowPost(agent, baseUrl, '/api/messaging/sessions', sessionBody));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const signalledAt = performance.now();
    server.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));
    inFlight.forEach((slow) => slow.finish());
    const answers = await Promise.all(inFlight.map((slow) => slow.answered));
    const exitCode = await server.exited;
    const exitSeconds = (performance.now() - signalledAt) / 1000;
    agent.destroy();

    const api = await specBackend();
    expect(answers.map((answer) => answer.status)).toEqual(Array(IN_FLIGHT).fill(201));
    for (const answer of answers) {
      expect(responseViolations(api, operationFor(api, 'POST', '/api/messaging/sessions'), answer.status, JSON.parse(answer.body))).toEqual([]);
    }
    expect(exitCode).toBe(0);
    expect(exitSeconds).toBeLessThan(GRACE_SECONDS);
    expect(server.output().stderr).toContain('Sessions API stopped (SIGTERM)');

    const db = new Database(databasePath, { readonly: true });
    expect(db.prepare('SELECT count(*) AS n FROM sessions').get()).toEqual({ n: 2 * IN_FLIGHT });
    db.close();
  });

  it('does not wait for idle keep-alive sockets to time out', { timeout: 30_000 }, async () => {
    const server = startServer({ DATABASE_PATH: tempDatabase(), HTTP_KEEP_ALIVE_TIMEOUT_SECONDS: '60' });
    const baseUrl = await server.listening;
    const agent = new Agent({ keepAlive: true, maxSockets: 20 });
    await Promise.all(Array.from({ length: 20 }, () => post(agent, baseUrl, '/api/agents', '{"characterJson":{"name":"Eliza"}}')));
    const signalledAt = performance.now();
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    // The keep-alive timeout is 60 s: exiting within a few seconds means idle sockets were closed.
    expect((performance.now() - signalledAt) / 1000).toBeLessThan(5);
    agent.destroy();
  });
});

describe('through npm', () => {
  const root = fileURLToPath(new URL('..', import.meta.url));
  // A supervisor (systemd, a container runtime) stops `npm start` by signalling npm's pid:
  // npm passes the signal to its child, which must be the server (the script execs it), not a
  // shell that keeps it and leaves the server running, its port and database held.
  it.each([
    ['npm start', ['start']],
    ['npm run mock', ['run', 'mock', '--', '--port', '0']],
  ])('%s hands a SIGTERM sent to npm to the server, which stops and frees its port', { timeout: 30_000 }, async (_name, args) => {
    // A process group of its own: a server left running by a failure is killed with it.
    const npm = spawn('npm', args, { cwd: root, detached: true, env: { ...process.env, HOST: '127.0.0.1', PORT: '0', DATABASE_PATH: tempDatabase() }, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let output = '';
      const listening = new Promise<string>((resolve, reject) => {
        const read = (chunk: Buffer) => {
          output += chunk.toString();
          const match = /listening on (http:\/\/\S+)/.exec(output);
          if (match) resolve(match[1]!);
        };
        npm.stdout.on('data', read);
        npm.stderr.on('data', read);
        npm.once('exit', (code) => reject(new Error(`npm exited ${code}: ${output}`)));
      });
      const url = await listening;
      // Serving, its answer checked against the spec (the mock serves this same spec).
      expect((await fetchChecked(url, 'GET', '/api/agents')).status).toBe(200);
      const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)));
      process.kill(npm.pid!, 'SIGTERM');
      await exited;
      await expect(fetch(url)).rejects.toThrow();
    } finally {
      try {
        process.kill(-npm.pid!, 'SIGKILL');
      } catch {
        // the group is gone
      }
    }
  });
});
