// What the conformance suite writes about a run: the JUnit XML of a run cut short, the
// curl line of a request too long to show, and the list of what it deletes at the end.
import { fileURLToPath } from 'node:url';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { asCurl } from '../src/conformance/http.js';
import { formatJunit } from '../src/conformance/junit.js';
import { formatMarkdown } from '../src/conformance/markdown.js';
import { formatReport } from '../src/conformance/report.js';
import type { RequestValues } from '../src/conformance/requests.js';
import type { CaseResult, Report } from '../src/conformance/run.js';
import { loadSpec, type Operation } from '../src/conformance/spec-model.js';
import { ResourceTracker } from '../src/conformance/tracker.js';

const passedCase: CaseResult = { key: 'listPets/valid/0', operationId: 'listPets', kind: 'valid', title: 'valid', passed: true, violations: [], requests: [], status: 200, body: '', durationMs: 3 };
const report = (changes: Partial<Report>): Report => ({
  tool: 'sessions-api-conformance',
  baseUrl: 'http://127.0.0.1:1',
  specPath: 'x.yaml',
  seed: 1,
  validCases: 1,
  checks: [],
  cases: [passedCase],
  passed: 1,
  failed: 0,
  interrupted: false,
  cleanup: { deleted: 0, left: [], kept: 0 },
  durationMs: 10,
  ...changes,
});
const parseXml = (xml: string) => new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (name) => name === 'testsuite' }).parse(xml);

describe('the JUnit report', () => {
  it('shows a run whose target stopped answering as an error (it showed only the cases that ran, all passed)', () => {
    const xml = parseXml(formatJunit(report({ lostTarget: 'http://127.0.0.1:1 stopped answering (ECONNREFUSED)' })));
    expect(xml.testsuites).toMatchObject({ tests: '2', failures: '0', errors: '1' });
    const run = xml.testsuites.testsuite.find((suite: { name: string }) => suite.name === 'run');
    expect(run.testcase.error).toMatchObject({ type: 'stopped', message: 'http://127.0.0.1:1 stopped answering (ECONNREFUSED)' });
  });

  it("names the run's own testsuite apart from an operation named run", () => {
    const runCase: CaseResult = { ...passedCase, key: 'run/valid/0', operationId: 'run' };
    const xml = parseXml(formatJunit(report({ cases: [runCase], interrupted: true })));
    expect(xml.testsuites.testsuite.map((suite: { name: string }) => suite.name)).toEqual(['run', 'run (suite)']);
  });

  it('counts the failures of each operation in its testsuite', () => {
    const failed: CaseResult = { ...passedCase, key: 'listPets/valid/1', passed: false, violations: [{ check: 'response-schema', message: 'bad' }] };
    const xml = parseXml(formatJunit(report({ cases: [passedCase, failed, passedCase], passed: 2, failed: 1 })));
    expect(xml.testsuites).toMatchObject({ tests: '3', failures: '1' });
    expect(xml.testsuites.testsuite[0]).toMatchObject({ name: 'listPets', tests: '3', failures: '1' });
  });

  it('drops the characters XML cannot carry (a body with control characters is still a report)', () => {
    const failed: CaseResult = { ...passedCase, key: 'listPets/hostile/0', kind: 'hostile', passed: false, violations: [{ check: 'no-server-error', message: 'answered 500' }], status: 500, body: 'a\u0000b\u0001c\u001fd <&>' };
    const xml = formatJunit(report({ cases: [failed], passed: 0, failed: 1 }));
    expect(XMLValidator.validate(xml)).toBe(true);
    expect(xml).toContain('body: abcd &lt;&amp;&gt;');
  });

  it('shows an interrupted run as an error, and a whole run without one', () => {
    expect(parseXml(formatJunit(report({ interrupted: true }))).testsuites).toMatchObject({ tests: '2', errors: '1' });
    const whole = parseXml(formatJunit(report({})));
    expect(whole.testsuites).toMatchObject({ tests: '1', errors: '0' });
    expect(whole.testsuites.testsuite.map((suite: { name: string }) => suite.name)).toEqual(['listPets']);
  });
});

describe('the text report', () => {
  it("counts each operation's failures, shows its first three, says how many more, and names a path or property once", () => {
    const failure = (n: number): CaseResult => ({
      ...passedCase,
      key: `listPets/invalid/${n}`,
      kind: 'invalid',
      title: `case ${n}`,
      passed: false,
      violations: [{ check: 'response-schema', message: '200 body at $.name must be string', path: '$.name', property: 'name' }],
      status: 200,
      body: '{}',
    });
    const text = formatReport(report({ cases: [passedCase, failure(1), failure(2), failure(3), failure(4)], passed: 1, failed: 4 }));
    expect(text).toMatch(/^listPets  +5  +1  +4$/m);
    expect(text.match(/listPets \[invalid\] case \d/g)).toEqual(['listPets [invalid] case 1', 'listPets [invalid] case 2', 'listPets [invalid] case 3']);
    expect(text).toContain('  listPets: 1 more failure(s) (see --json, --junit or --markdown)');
    // The path is in the message already: only the property is added.
    expect(text).toContain('✗ response-schema: 200 body at $.name must be string (property "name")\n');
    expect(text).toMatch(/\n1 passed, 4 failed$/);
  });
});

describe('the Markdown report', () => {
  const failure = (n: number, changes: Partial<CaseResult> = {}): CaseResult => ({
    ...passedCase,
    key: `listPets/hostile/${n}`,
    kind: 'hostile',
    title: `case ${n}`,
    passed: false,
    violations: [{ check: 'no-server-error', message: 'answered 500' }],
    status: 500,
    body: '{}',
    ...changes,
  });

  it('says the verdict, escapes a | of a table cell, keeps a ``` in a body inside its fence, and says what it deleted', () => {
    const odd = failure(1, { operationId: 'list|Pets', title: 'a | b', body: 'x```y', requests: ["curl -X GET 'http://127.0.0.1:1/pets'"] });
    const markdown = formatMarkdown(report({ cases: [passedCase, odd], passed: 1, failed: 1, cleanup: { deleted: 3, left: [], kept: 0 } }));
    expect(markdown).toMatch(/^## Conformance of http:\/\/127\.0\.0\.1:1: ❌ 1 failure\(s\)\n/);
    expect(markdown).toContain('| list\\|Pets | 1 | 0 | 1 |');
    expect(markdown).toContain('- **list\\|Pets** [hostile] a \\| b (`listPets/hostile/1`)');
    expect(markdown).toContain("    ```text\n    body: x'''y\n    curl -X GET 'http://127.0.0.1:1/pets'\n    ```");
    expect(markdown).toMatch(/\nDeleted the 3 resource\(s\) it created\.\n$/);
    expect(formatMarkdown(report({ cleanup: { deleted: 0, left: [], kept: 2 } }))).toMatch(/: ✅ conforms\n[\s\S]*\nKept 2 created resource\(s\) \(`--keep-data`\)\.\n$/);
  });

  it('lists the first 50 failures and says how many more', () => {
    const failures = Array.from({ length: 52 }, (_, n) => failure(n));
    const markdown = formatMarkdown(report({ cases: failures, passed: 0, failed: 52 }));
    expect(markdown.match(/^- \*\*listPets\*\*/gm)).toHaveLength(50);
    expect(markdown).toContain('- **listPets** [hostile] case 49 (`listPets/hostile/49`)');
    expect(markdown).toContain('…and 2 more (see the JSON or JUnit report).');
  });
});

describe('a curl line', () => {
  it('shows a secret header as an environment variable, never its value, and keeps the base URL path without doubling a slash', () => {
    const connection = { baseUrl: 'http://127.0.0.1:1/v1/', headers: { 'X-API-Key': 'sekret-key', Authorization: 'Bearer sekret-token' }, timeoutMs: 1000 };
    const line = asCurl(connection, { method: 'GET', url: '/pets', headers: { Cookie: 'sid=sekret-cookie', 'x-trace': 'visible' } });
    expect(line).toBe(`curl -X GET 'http://127.0.0.1:1/v1/pets' -H "Cookie: $CONFORMANCE_COOKIE" -H 'x-trace: visible' -H "X-API-Key: $CONFORMANCE_X_API_KEY" -H "Authorization: $CONFORMANCE_AUTHORIZATION"`);
    expect(line).not.toContain('sekret');
  });

  it('cuts a URL over 300 characters, saying its length, as it cuts a body', () => {
    const connection = { baseUrl: 'http://127.0.0.1:1', headers: {}, timeoutMs: 1000 };
    const line = asCurl(connection, { method: 'GET', url: `/pets/${'9'.repeat(5000)}`, headers: {} });
    expect(line).toContain(`'http://127.0.0.1:1/pets/${'9'.repeat(300 - '/pets/'.length - 'http://127.0.0.1:1'.length)}…(5024 chars)'`);
    expect(line.length).toBeLessThan(400);
    expect(asCurl(connection, { method: 'GET', url: '/pets/1', headers: {} })).toBe("curl -X GET 'http://127.0.0.1:1/pets/1'");
  });
});

describe('what the suite deletes at the end', () => {
  it('deletes an id learnt twice once (a mock answers every create with the same example id)', async () => {
    const spec = loadSpec(fileURLToPath(new URL('./fixtures/petstore.yaml', import.meta.url)));
    const create = spec.operations.find((o) => o.operationId === 'createPets')!;
    const tracker = new ResourceTracker(spec);
    for (const id of [7, 7, 8, 7]) tracker.learn(create, { status: 201, contentType: 'application/json', text: '', json: { id, name: 'Rex' } });
    const deletes: Array<[string, RequestValues]> = [];
    const cleanup = await tracker.cleanup(async (operation: Operation, values) => {
      deletes.push([operation.operationId, values]);
      return { status: 204, contentType: '', text: '' };
    });
    expect(deletes.map(([operationId, values]) => `${operationId} ${values.path?.petId}`)).toEqual(['deletePet 8', 'deletePet 7']);
    expect(cleanup).toEqual({ deleted: 2, left: [] });
  });

  it('deletes the kinds in the reverse order of their first creation: sessions before the agents they belong to, an agent with force=true', async () => {
    const spec = loadSpec(fileURLToPath(new URL('../openapi/sessions-api.yaml', import.meta.url)));
    const op = (id: string) => spec.operations.find((o) => o.operationId === id)!;
    const tracker = new ResourceTracker(spec);
    const agentId = '3c90c3cc-0d44-4b50-8888-8dd25736052a';
    tracker.learn(op('createAgent'), { status: 201, contentType: 'application/json', text: '', json: { success: true, data: { character: { id: agentId } } } });
    for (const sessionId of ['5f1c1c8e-4a3b-4c7d-9e2f-0a1b2c3d4e5f', '6f1c1c8e-4a3b-4c7d-9e2f-0a1b2c3d4e5f']) {
      tracker.learn(op('createSession'), { status: 201, contentType: 'application/json', text: '', json: { sessionId, agentId } });
    }
    const deletes: string[] = [];
    await tracker.cleanup(async (operation, values) => {
      deletes.push(`${operation.operationId} ${JSON.stringify(values.query)}`);
      return { status: 200, contentType: '', text: '' };
    });
    // force=true on the agent: a session the cleanup could not end must not keep it (409).
    expect(deletes).toEqual(['endSession {}', 'endSession {}', 'deleteAgent {"force":true}']);
  });

  it('deletes only what a 2xx created: not an id a refusal or a redirect names (a 409 naming the pet that exists)', async () => {
    const spec = loadSpec(fileURLToPath(new URL('./fixtures/petstore.yaml', import.meta.url)));
    const create = spec.operations.find((o) => o.operationId === 'createPets')!;
    const tracker = new ResourceTracker(spec);
    for (const [status, id] of [[199, 1], [200, 2], [299, 3], [300, 4], [303, 5], [409, 6], [500, 7]]) tracker.learn(create, { status: status!, contentType: 'application/json', text: '', json: { id } });
    const deleted: unknown[] = [];
    await tracker.cleanup(async (_operation, values) => (deleted.push(values.path?.petId), { status: 204, contentType: '', text: '' }));
    expect(deleted).toEqual(['3', '2']);
  });

  it('counts a delete answered 404 or 410 (gone already) as deleted, and names one refused', async () => {
    const spec = loadSpec(fileURLToPath(new URL('./fixtures/petstore.yaml', import.meta.url)));
    const create = spec.operations.find((o) => o.operationId === 'createPets')!;
    const tracker = new ResourceTracker(spec);
    for (const id of [1, 2, 3]) tracker.learn(create, { status: 201, contentType: 'application/json', text: '', json: { id, name: 'Rex' } });
    const answers: Record<string, number> = { '1': 404, '2': 410, '3': 500 };
    const cleanup = await tracker.cleanup(async (_operation, values) => ({ status: answers[String(values.path?.petId)]!, contentType: '', text: '' }));
    expect(cleanup).toEqual({ deleted: 2, left: ['deletePet 3: answered 500'] });
  });
});
