// The conformance suite as a command: the built bin (dist/, no tsx) against a real server
// process on a temporary database. It leaves every table as it found it (also when
// interrupted), keeps data only when asked, validates its options, writes JSON, JUnit
// and Markdown reports, and replays only the failed cases of an earlier run.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseCli } from '../src/conformance/options.js';
import { type Report, UsageError } from '../src/conformance/run.js';
import { specPath } from '../src/spec.js';
import { faultProxy, type ProxiedRequest, rowCounts, serveOurs } from './helpers/conformance-target.js';
import { builtFile } from './helpers/built.js';
import { cleanUpServerProcesses, fetchChecked, startServer, tempDatabase } from './helpers/server-process.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = builtFile('conformance/cli.js');
const folder = mkdtempSync(join(tmpdir(), 'sessions-api-conformance-cli-'));
const children: ChildProcess[] = [];
const closers: Array<{ close(): Promise<void> }> = [];

afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  for (const server of closers.splice(0)) await server.close();
  cleanUpServerProcesses();
});
afterAll(() => rmSync(folder, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The built bin run with plain node: no tsx anywhere. Without the INIT_CWD of the `npm test`
 * running this (run from a subfolder, it would be where relative paths are taken from).
 */
function cli(args: string[], onStdout?: (text: string, child: ChildProcess) => void, cwd = root, initCwd?: string): Promise<Run> {
  const { INIT_CWD: _npmTest, ...env } = process.env;
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd, env: initCwd === undefined ? env : { ...env, INIT_CWD: initCwd } });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => {
    stdout += chunk;
    onStdout?.(stdout, child);
  });
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  // 'close', not 'exit': the last of stdout may come after the exit (a --help under load arrived empty).
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A server process with data of its own: an agent, a session and a message. */
async function serverWithData() {
  const databasePath = tempDatabase();
  return withData(await startServer({ DATABASE_PATH: databasePath }).listening, databasePath);
}

async function withData(url: string, databasePath: string) {
  const agent = await fetchChecked(url, 'POST', '/api/agents', { characterJson: { name: 'Not the suite’s' } });
  const agentId = agent.body.data.character.id;
  const session = await fetchChecked(url, 'POST', '/api/messaging/sessions', { agentId, userId: '5f1c1c8e-4a3b-4c7d-9e2f-0a1b2c3d4e5f' });
  await fetchChecked(url, 'POST', `/api/messaging/sessions/${session.body.sessionId}/messages`, { content: 'mine' });
  return { url, databasePath, agentId, sessionId: session.body.sessionId as string };
}

describe('the built sessions-api-conformance command', () => {
  it('is the package bin: a node shebang file in dist/', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(pkg.bin['sessions-api-conformance']).toBe('dist/conformance/cli.js');
    expect(readFileSync(bin, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
  });

  it('prints its usage with --help, naming every option', { timeout: 60_000 }, async () => {
    const run = await cli(['--help']);
    expect(run.code).toBe(0);
    for (const option of ['--base-url', '--spec', '--api-key', '--header', '--timeout', '--include-operation', '--exclude-operation', '--checks', '--cases', '--seed', '--workers', '--replay', '--json', '--junit', '--markdown', '--keep-data']) {
      expect(run.stdout).toContain(option);
    }
  });

  it.each([
    [[], /--base-url is required/],
    [['--base-url', 'localhost:3000'], /--base-url must be an http:\/\/ or https:\/\/ URL, not "localhost:3000"/],
    [['--base-url', 'http://127.0.0.1:1', '--cases', 'abc'], /--cases must be an integer, not "abc"/],
    [['--base-url', 'http://127.0.0.1:1', '--workers', '0'], /--workers must be between 1 and 64, not 0/],
    [['--base-url', 'http://127.0.0.1:1', '--timeout=-5'], /--timeout must be between 1 and 600000, not -5/],
    [['--base-url', 'http://127.0.0.1:1', '--timeout', '-5'], /--timeout must be between 1 and 600000, not -5/],
    [['--base-url', 'http://127.0.0.1:1', '--cases', '-1'], /--cases must be between 1 and 10000, not -1/],
    [['--base-url', 'http://127.0.0.1:1', '--keep-data', '-1'], /Unknown option '-1'/],
    [['--base-url', 'http://127.0.0.1:1', '--checks', 'response-schema,nonsense'], /--checks: unknown check "nonsense"/],
    [['--base-url', 'http://127.0.0.1:1', '--header', 'no colon'], /--header must be 'Name: value'/],
    [['--base-url', 'http://127.0.0.1:1', '--frobnicate'], /Unknown option '--frobnicate'/],
    [['--base-url', 'http://127.0.0.1:1', '--junit', '/no/such/folder/r.xml'], /--junit: the folder \/no\/such\/folder does not exist/],
    [['--base-url', 'http://127.0.0.1:1', '--replay', '/no/such/report.json'], /--replay: cannot read/],
    [['--base-url', 'http://127.0.0.1:1', '--json', tmpdir()], /--json: .* is not a file/],
    [['--base-url', 'http://127.0.0.1:1', '--json', 'out/'], /--json: out\/ is not a file/],
    [['--base-url', 'http://127.0.0.1:1/?x=1'], /--base-url must have no query/],
    [['--base-url', 'http://127.0.0.1:1/#top'], /--base-url must have no query \(\?…\) or fragment/],
    [['--base-url', 'http://user:secret@127.0.0.1:1'], /--base-url must not carry credentials/],
  ])('refuses %j with a usage error', (args, message) => {
    expect(() => parseCli(args, specPath)).toThrow(UsageError);
    expect(() => parseCli(args, specPath)).toThrow(message);
  });

  it('takes each integer option at its bounds, and reads the base URL and headers as given (no trailing slash, names in lower case)', () => {
    const at = (...args: string[]) => parseCli(['--base-url', 'http://127.0.0.1:1/v1/', ...args], specPath).run;
    expect(at('--cases', '1', '--workers', '1', '--timeout', '1', '--expiry-wait', '0', '--seed', '0')).toMatchObject({ validCases: 1, workers: 1, timeoutMs: 1, expiryWaitMs: 0, seed: 0 });
    expect(at('--cases', '10000', '--workers', '64', '--timeout', '600000', '--expiry-wait', '3600000', '--seed', '2147483647')).toMatchObject({
      validCases: 10_000,
      workers: 64,
      timeoutMs: 600_000,
      expiryWaitMs: 3_600_000,
      seed: 2 ** 31 - 1,
    });
    for (const [option, over] of [['--cases', '10001'], ['--workers', '65'], ['--timeout', '600001'], ['--expiry-wait', '3600001'], ['--seed', '2147483648']]) {
      expect(() => at(option!, over!), `${option} ${over}`).toThrow(`${option} must be between`);
    }
    expect(at()).toMatchObject({ baseUrl: 'http://127.0.0.1:1/v1', validCases: 10, workers: 1, timeoutMs: 10_000, expiryWaitMs: 0, headers: {} });
    expect(at('--header', 'X-Trace: abc ')).toMatchObject({ headers: { 'x-trace': 'abc' } });
    expect(() => parseCli(['--base-url', 'http://:secret@127.0.0.1:1'], specPath)).toThrow(/must not carry credentials/);
    expect(() => parseCli(['--base-url', 'http://127.0.0.1:1', '--checks', ' , '], specPath)).toThrow('--checks needs at least one check');
    // Only a number is taken as the value of the option before it: `--spec -x` is a forgotten value.
    expect(() => parseCli(['--base-url', 'http://127.0.0.1:1', '--spec', '-x'], specPath)).toThrow("Option '--spec' argument is ambiguous");
  });

  it('takes the seed, case count and failed cases of a --replay report, refusing a --seed or --cases beside it; a report without a failure leaves nothing to replay', () => {
    const reportOf = (name: string, cases: Array<{ key: string; passed: boolean }>) => {
      const file = join(folder, name);
      writeFileSync(file, JSON.stringify({ tool: 'sessions-api-conformance', specPath, seed: 5, validCases: 3, cases }));
      return file;
    };
    const failed = reportOf('replay-failed.json', [{ key: 'a', passed: true }, { key: 'b', passed: false }]);
    const replay = parseCli(['--base-url', 'http://127.0.0.1:1', '--replay', failed], specPath);
    expect(replay.nothingToReplay).toBe(false);
    expect(replay.run).toMatchObject({ seed: 5, validCases: 3, specPath });
    expect([...replay.run.only!]).toEqual(['b']);
    for (const extra of [['--seed', '1'], ['--cases', '2']]) {
      expect(() => parseCli(['--base-url', 'http://127.0.0.1:1', '--replay', failed, ...extra], specPath), extra[0]).toThrow('--replay takes the seed and case count from the report');
    }
    const passed = reportOf('replay-passed.json', [{ key: 'a', passed: true }]);
    expect(parseCli(['--base-url', 'http://127.0.0.1:1', '--replay', passed], specPath).nothingToReplay).toBe(true);
  });

  it('under npm run conformance, takes a relative path from where npm was run (INIT_CWD), not the package folder it starts in', { timeout: 60_000 }, async () => {
    const elsewhere = join(folder, 'caller');
    mkdirSync(elsewhere, { recursive: true });
    const run = await cli(['--base-url', 'http://127.0.0.1:1', '--spec', 'spec.yaml'], undefined, root, elsewhere);
    expect([run.code, run.stderr]).toEqual([2, `sessions-api-conformance: --spec: no file at ${join(elsewhere, 'spec.yaml')}\n`]);
    // Run from another folder (the bin in another project's script), that folder is the caller's.
    const other = await cli(['--base-url', 'http://127.0.0.1:1', '--spec', 'spec.yaml'], undefined, elsewhere, root);
    expect(other.stderr).toBe(`sessions-api-conformance: --spec: no file at ${join(elsewhere, 'spec.yaml')}\n`);
  });

  it('answers a usage error in one line, exit 2', { timeout: 60_000 }, async () => {
    const run = await cli(['--base-url', 'http://127.0.0.1:1', '--workers', '0']);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe('sessions-api-conformance: --workers must be between 1 and 64, not 0\n');
  });

  it('reports an unreachable target as one error, exit 2', { timeout: 60_000 }, async () => {
    const port = await closedPort();
    const run = await cli(['--base-url', `http://127.0.0.1:${port}`]);
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toBe(`sessions-api-conformance: cannot reach http://127.0.0.1:${port}: ECONNREFUSED`);
  });

  it('stops when the target hangs (10 answers in a row time out), exit 2, not a run through every case', { timeout: 60_000 }, async () => {
    let answered = 0;
    const hanging = createHttpServer((_request, response) => {
      if (answered++ === 0) response.writeHead(404).end(); // the probe; then nothing, ever
    });
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    closers.push({ close: () => new Promise<void>((resolve) => (hanging.closeAllConnections(), hanging.close(() => resolve()))) });
    const port = (hanging.address() as { port: number }).port;
    // 1 s: the probe's 404 must come back within it also on a loaded machine (200 ms did not, at times).
    const run = await cli(['--base-url', `http://127.0.0.1:${port}`, '--timeout', '1000', '--workers', '4', '--cases', '2']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(`sessions-api-conformance: http://127.0.0.1:${port} stopped answering (no answer within 1000 ms)`);
    expect(answered).toBeLessThan(30);
  });

  it('refuses an unknown operation before any request, exit 2', { timeout: 60_000 }, async () => {
    const run = await cli(['--base-url', `http://127.0.0.1:${await closedPort()}`, '--include-operation', 'getSession,noSuchOperation']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/unknown operation "noSuchOperation"/);
  });

  it('passes against a server process, leaves every table as it was, and writes its three reports', { timeout: 120_000 }, async () => {
    const server = await serverWithData();
    const before = rowCounts(server.databasePath);
    const files = { json: join(folder, 'pass.json'), junit: join(folder, 'pass.xml'), markdown: join(folder, 'pass.md') };
    const run = await cli(['--base-url', server.url, '--cases', '3', '--workers', '4', '--seed', '5', '--json', files.json, '--junit', files.junit, '--markdown', files.markdown]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(rowCounts(server.databasePath)).toEqual(before);
    expect((await fetchChecked(server.url, 'GET', `/api/messaging/sessions/${server.sessionId}/messages`)).body.messages).toHaveLength(1);
    expect((await fetchChecked(server.url, 'GET', `/api/agents/${server.agentId}`)).status).toBe(200);

    // A line per operation as it finishes, no progress bar (stdout is not a terminal), the table.
    expect(run.stdout).toMatch(/^✓ createAgent: \d+ cases, \d+ passed, 0 failed$/m);
    expect(run.stdout).toMatch(/^✓ stateful: \d+ cases, \d+ passed, 0 failed$/m);
    expect(run.stdout).not.toContain('\r');
    expect(run.stdout).toMatch(/^operation +cases +passed +failed$/m);
    expect(run.stdout).toMatch(/Deleted the \d+ resource\(s\) it created\.\n\d+ passed, 0 failed\n$/);

    const report = JSON.parse(readFileSync(files.json, 'utf8')) as Report;
    expect(report.failed).toBe(0);
    const xml = readFileSync(files.junit, 'utf8');
    expect(XMLValidator.validate(xml)).toBe(true);
    const junit = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (name) => name === 'testsuite' || name === 'testcase' }).parse(xml);
    const suites = junit.testsuites.testsuite as Array<{ name: string; tests: string; failures: string; testcase: unknown[] }>;
    expect(Number(junit.testsuites.tests)).toBe(report.cases.length);
    expect(suites.map((s) => s.name)).toEqual([...new Set(report.cases.map((c) => c.operationId))]);
    for (const suite of suites) expect(suite.testcase).toHaveLength(Number(suite.tests));
    expect(readFileSync(files.markdown, 'utf8')).toMatch(/^## Conformance of http:\/\/127\.0\.0\.1:\d+: ✅ conforms\n[\s\S]*\| operation \| cases \| passed \| failed \|/);
  });

  it('exits 2 when the options leave no case to run (--checks auth-required without an --api-key): no verdict, not "conforms"', { timeout: 60_000 }, async () => {
    const server = await serveOurs();
    try {
      const report = join(folder, 'nothing.xml');
      const run = await cli(['--base-url', server.url, '--checks', 'auth-required', '--junit', report]);
      expect(run.code).toBe(2);
      expect(run.stderr).toBe('sessions-api-conformance: no case ran: the options leave nothing to check\n');
      expect(readFileSync(report, 'utf8')).toContain('tests="0"'); // the report says so too
    } finally {
      await server.close();
    }
  });

  it('exits 2 when a report cannot be written, naming it, though the run conformed (a report missing is no verdict)', { timeout: 60_000 }, async () => {
    const server = await serveOurs();
    try {
      const reports = join(folder, 'reports-gone');
      mkdirSync(reports);
      const missing = join(reports, 'report.json');
      const markdown = join(folder, 'written.md');
      // The folder the options found is gone by the time the report is written.
      const run = await cli(['--base-url', server.url, '--cases', '1', '--include-operation', 'createAgent', '--json', missing, '--markdown', markdown], (stdout) => {
        if (stdout.startsWith('Checking')) rmSync(reports, { recursive: true, force: true });
      });
      expect(run.code).toBe(2);
      expect(run.stderr).toBe(`sessions-api-conformance: cannot write ${missing}: ENOENT: no such file or directory, open '${missing}'\n`);
      expect(readFileSync(markdown, 'utf8')).toContain('✅ conforms'); // the others are still written
    } finally {
      await server.close();
    }
  });

  it('keeps what it created with --keep-data', { timeout: 60_000 }, async () => {
    const server = await serveOurs();
    try {
      const before = rowCounts(server.databasePath);
      const run = await cli(['--base-url', server.url, '--cases', '2', '--include-operation', 'createAgent', '--keep-data']);
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/Kept \d+ created resource\(s\) \(--keep-data\)\./);
      expect(rowCounts(server.databasePath).agents).toBeGreaterThan(before.agents!);
    } finally {
      await server.close();
    }
  });

  it('on Ctrl-C (SIGINT) stops, deletes what it created, and exits 130', { timeout: 60_000 }, async () => {
    const ours = await serveOurs();
    closers.push(ours);
    const server = await withData(ours.url, ours.databasePath);
    const before = rowCounts(server.databasePath);
    let interrupted = false;
    const run = await cli(['--base-url', server.url, '--cases', '10'], (stdout, child) => {
      if (!interrupted && /^✓ createSession/m.test(stdout)) {
        interrupted = true;
        child.kill('SIGINT');
      }
    });
    expect(interrupted).toBe(true);
    expect(run.code).toBe(130);
    expect(run.stderr).toMatch(/Interrupted: finishing the requests in flight, then deleting what the suite created/);
    expect(run.stdout).toMatch(/Interrupted: not every case ran\./);
    expect(run.stdout).not.toMatch(/✓ sendSessionMessage/);
    expect(rowCounts(server.databasePath)).toEqual(before);
  });
});

describe('failures, reported and replayed', () => {
  it('replays failed valid cases without adding "no valid request succeeded" (the cases that succeeded are not replayed)', { timeout: 120_000 }, async () => {
    const server = await serveOurs();
    // Some valid creates refused: those whose name has an odd length (the fixtures' own agent goes through).
    const refused = (request: ProxiedRequest) =>
      request.method === 'POST' && request.path === '/api/agents' && typeof request.body?.characterJson?.name === 'string' && request.body.characterJson.name !== 'Conformance agent' && request.body.characterJson.name.length % 2 === 1;
    const proxy = await faultProxy(server.url, {
      request: (request) => (refused(request) ? { status: 400, contentType: 'application/json', json: { success: false, error: { code: 'INVALID_REQUEST', message: 'Invalid request', details: 'refused by the test' } }, text: '' } : undefined),
    });
    try {
      const first = join(folder, 'some-refused.json');
      const run = await cli(['--base-url', proxy.url, '--include-operation', 'createAgent', '--checks', 'valid-input-accepted', '--cases', '8', '--seed', '3', '--json', first]);
      expect(run.code).toBe(1);
      const report = JSON.parse(readFileSync(first, 'utf8')) as Report;
      const failedKeys = report.cases.filter((c) => !c.passed).map((c) => c.key);
      expect(failedKeys.length).toBeGreaterThan(0);
      expect(failedKeys).not.toContain('createAgent/valid/coverage');
      const replayFile = join(folder, 'some-refused-replay.json');
      const again = await cli(['--base-url', proxy.url, '--replay', first, '--json', replayFile]);
      expect(again.code).toBe(1);
      expect((JSON.parse(readFileSync(replayFile, 'utf8')) as Report).cases.map((c) => c.key).sort()).toEqual([...failedKeys].sort());
    } finally {
      await proxy.close();
      await server.close();
    }
  });

  it('names the check, path and property with status, body and curl; exit 1; --replay runs only the failed cases', { timeout: 120_000 }, async () => {
    const server = await serveOurs();
    const proxy = await faultProxy(server.url, {
      response: (request, answer) =>
        request.method === 'GET' && /^\/api\/messaging\/sessions\/[0-9a-f-]{36}$/.test(request.path) && answer.status === 200 ? { ...answer, json: { ...answer.json, debug: true } } : undefined,
    });
    try {
      const files = { json: join(folder, 'fail.json'), junit: join(folder, 'fail.xml'), markdown: join(folder, 'fail.md') };
      // Only the operation at fault: its cases show every part of a failure's report.
      // The spec named relative to the project: the report records where it is, for a replay from anywhere.
      const run = await cli(['--base-url', proxy.url, '--spec', 'openapi/sessions-api.yaml', '--include-operation', 'getSession', '--cases', '3', '--seed', '5', '--workers', '2', '--json', files.json, '--junit', files.junit, '--markdown', files.markdown]);
      expect(run.code).toBe(1);
      expect(run.stdout).toMatch(/^✗ getSession: \d+ cases, \d+ passed, [1-9]\d* failed$/m);
      expect(run.stdout).toContain('✗ response-schema: 200 body at $.debug must NOT have additional properties: "debug"\n');
      expect(run.stdout).toMatch(/status 200, body: \{"sessionId":"[^"]+",/);
      expect(run.stdout).toMatch(new RegExp(`curl -X GET '${proxy.url}/api/messaging/sessions/[0-9a-f-]{36}'`));

      const report = JSON.parse(readFileSync(files.json, 'utf8')) as Report;
      const failed = report.cases.filter((c) => !c.passed);
      expect(failed.length).toBeGreaterThan(0);
      expect(failed.every((c) => c.violations.every((v) => v.check === 'response-schema'))).toBe(true);
      expect(failed[0]!.violations[0]).toMatchObject({ check: 'response-schema', path: '$.debug', property: 'debug' });
      const junit = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(readFileSync(files.junit, 'utf8'));
      const suites = [junit.testsuites.testsuite].flat() as Array<{ name: string; failures: string; testcase: any }>;
      const getSession = suites.find((s) => s.name === 'getSession')!;
      expect(Number(getSession.failures)).toBeGreaterThan(0);
      const failure = [getSession.testcase].flat().find((c: any) => c.failure)!.failure;
      expect(failure.type).toBe('response-schema');
      expect(failure['#text']).toContain('curl -X GET');
      expect(readFileSync(files.markdown, 'utf8')).toMatch(/❌ \d+ failure\(s\)[\s\S]*`response-schema`/);

      // The same failed cases again, and nothing else.
      const replayFile = join(folder, 'replay.json');
      const again = await cli(['--base-url', proxy.url, '--replay', files.json, '--json', replayFile]);
      expect(again.code).toBe(1);
      const replayed = JSON.parse(readFileSync(replayFile, 'utf8')) as Report;
      expect(replayed.seed).toBe(report.seed);
      expect(replayed.cases.map((c) => c.key).sort()).toEqual(failed.map((c) => c.key).sort());
      expect(replayed.failed).toBe(failed.length);
      // With the fault fixed (no proxy), the replay passes.
      const fixed = await cli(['--base-url', server.url, '--replay', files.json], undefined, folder);
      expect(fixed.code).toBe(0);
      expect(fixed.stdout).toContain(`${failed.length} passed, 0 failed`);
    } finally {
      await proxy.close();
      await server.close();
    }
  });
});
