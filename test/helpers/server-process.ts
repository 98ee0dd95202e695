// The server as a real child process on a free port, and requests to it whose
// responses are checked against the spec like every other test's.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtFile } from './built.js';
import { operationFor, responseViolations, specBackend } from './spec-validator.js';

const directories: string[] = [];
const children: ChildProcess[] = [];

/** For afterEach: kills what is still running and removes the temporary folders. */
export function cleanUpServerProcesses(): void {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
}

/**
 * The server as `npm start` runs it (dist/main.js). `preload`: modules imported before it
 * (test instruments, see crash-before-answer.ts): written in TypeScript against src/, they
 * run with the server from src/ through tsx.
 */
export function startServer(
  env: Record<string, string>,
  { preload = [], wrap = [], stdout: stdoutTo = 'pipe' }: { preload?: string[]; wrap?: string[]; stdout?: number | 'pipe' } = {},
) {
  const args = preload.length === 0 ? [builtFile('main.js')] : ['--import', 'tsx', ...preload.flatMap((module) => ['--import', module]), 'src/main.ts'];
  // `wrap`: a command the server runs under (`unshare … --`), its stdout a descriptor (a file, /dev/full) or a pipe.
  const [command, ...commandArgs] = [...wrap, process.execPath, ...args];
  const child = spawn(command!, commandArgs, {
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', stdoutTo, 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const listening = new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', () => {
      const match = /listening on (http:\/\/\S+)/.exec(stderr);
      if (match) resolve(match[1]!);
    });
    void exited.then((code) => reject(new Error(`exited ${code}: ${stderr}`)));
  });
  listening.catch(() => undefined); // a test that expects the process to fail never awaits it
  return { child, listening, exited, output: () => ({ stdout, stderr }) };
}

export function tempDatabase(): string {
  const directory = mkdtempSync(join(tmpdir(), 'sessions-api-process-'));
  directories.push(directory);
  return join(directory, 'data', 'sessions.db');
}

/** fetch, then the response checked against the spec: a violation throws. */
export async function fetchChecked(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : undefined;
  const api = await specBackend();
  const violations = responseViolations(api, operationFor(api, method, path), response.status, parsed);
  if (violations.length > 0) throw new Error(`${method} ${path}: ${violations.join('; ')}`);
  return { status: response.status, body: parsed, headers: response.headers };
}
