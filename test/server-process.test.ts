// `npm start`'s entry point as a real process: banner, serving, graceful stop, bad config.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const directories: string[] = [];
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

function startServer(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const listening = new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', () => {
      const match = /listening on (http:\/\/\S+)/.exec(stdout);
      if (match) resolve(match[1]!);
    });
    void exited.then((code) => reject(new Error(`exited ${code}: ${stderr}`)));
  });
  listening.catch(() => undefined); // a test that expects the process to fail never awaits it
  return { child, listening, exited, output: () => ({ stdout, stderr }) };
}

function tempDatabase(): string {
  const directory = mkdtempSync(join(tmpdir(), 'sessions-api-process-'));
  directories.push(directory);
  return join(directory, 'data', 'sessions.db');
}

describe('the server process', () => {
  it('prints one line with the URL and database path, serves, and stops on SIGTERM with exit 0', async () => {
    const databasePath = tempDatabase();
    const server = startServer({ DATABASE_PATH: databasePath });
    const baseUrl = await server.listening;
    expect(server.output().stdout.trim().split('\n')).toEqual([`Sessions API listening on ${baseUrl} (database: ${databasePath})`]);
    const response = await fetch(`${baseUrl}/api/agents`);
    expect(response.status).toBe(200);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(server.output().stdout).toContain('Sessions API stopped (SIGTERM)');
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
    expect(answer).toContain('"name":"In flight"');
    expect(await server.exited).toBe(0);
  });

  it('refuses to start on a bad environment value, saying which', async () => {
    const server = startServer({ DATABASE_PATH: tempDatabase(), SESSION_DEFAULT_TIMEOUT_MINUTES: '4' });
    expect(await server.exited).toBe(1);
    expect(server.output().stderr).toContain('invalid configuration: SESSION_DEFAULT_TIMEOUT_MINUTES=4 must be >= 5');
  });
});
