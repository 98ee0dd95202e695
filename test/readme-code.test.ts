// The README's code for integrators, run as written. Its webhook receiver (its port and log
// line aside) verifies a delivery whose body arrives in two pieces split inside a
// character, as a delivery over one TCP segment can (decoded chunk by chunk, the split
// character became two U+FFFD and the signature did not match). Its stream reader for a
// page with a key follows a session's events and stops at an expired session's 204.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Webhook } from 'standardwebhooks';
import { afterEach, expect, it } from 'vitest';
import { createEventPump } from '../src/events/due-events.js';
import { specSchemaValidator } from '../src/spec.js';
import { MINUTE } from './helpers/fake-clock.js';
import { USER_ID } from './helpers/fixtures.js';
import { startTestApp } from './helpers/test-app.js';

const readme = readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8');
const stops: Array<() => void> = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

/** The README's receiver, listening on a free port of 127.0.0.1; resolves to that port. */
function startReadmeReceiver(secret: string): Promise<number> {
  const intro = readme.indexOf('A receiver verifying the signature');
  expect(intro).toBeGreaterThan(0);
  const [, code] = /```js\n([\s\S]*?)```/.exec(readme.slice(intro)) ?? [];
  expect(code).toContain(".listen(8080);");
  const runnable = code!
    .replace("from 'standardwebhooks'", `from '${pathToFileURL(fileURLToPath(import.meta.resolve('standardwebhooks')))}'`)
    .replace(".listen(8080);", ".listen(0, '127.0.0.1', function () { console.log('port ' + this.address().port); });");
  const folder = mkdtempSync(join(tmpdir(), 'readme-receiver-'));
  const file = join(folder, 'receiver.mjs');
  writeFileSync(file, runnable);
  const child = spawn(process.execPath, [file], { env: { ...process.env, WEBHOOK_SECRET: secret }, stdio: ['ignore', 'pipe', 'inherit'] });
  stops.push(() => {
    child.kill();
    rmSync(folder, { recursive: true, force: true });
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const port = /port (\d+)/.exec(out)?.[1];
      if (port) resolve(Number(port));
    });
    child.on('exit', (code) => reject(new Error(`the README's receiver exited (${code})`)));
  });
}

/** A POST sent as two writes, the body cut at `cutAt` bytes; the status line answered. */
function postInTwoPieces(port: number, headers: Record<string, string>, body: Buffer, cutAt: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const head = [`POST / HTTP/1.1`, 'host: 127.0.0.1', 'content-type: application/json', `content-length: ${body.length}`, 'connection: close']
      .concat(Object.entries(headers).map(([name, value]) => `${name}: ${value}`))
      .join('\r\n');
    let answer = '';
    socket.on('data', (chunk) => (answer += chunk.toString()));
    socket.on('end', () => resolve(answer.split('\r\n')[0]!));
    socket.on('error', reject);
    socket.write(`${head}\r\n\r\n`);
    socket.write(body.subarray(0, cutAt), () => setTimeout(() => socket.write(body.subarray(cutAt)), 50));
  });
}

it("verifies a delivery whose body comes in two pieces split inside a character (the README's receiver answered 400)", { timeout: 20_000 }, async () => {
  const secret = `whsec_${randomBytes(24).toString('base64')}`;
  const port = await startReadmeReceiver(secret);
  const body = Buffer.from(JSON.stringify({ id: '86', type: 'message.created', data: { content: 'héllo wörld 👋' } }));
  const cutAt = body.indexOf(Buffer.from('é')) + 1; // between the two bytes of é
  const id = 'evt_86';
  const timestamp = new Date();
  const signature = new Webhook(secret).sign(id, timestamp, body.toString());
  const headers = { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)), 'webhook-signature': signature };
  expect(await postInTwoPieces(port, headers, body, cutAt)).toBe('HTTP/1.1 204 No Content');
  // And refuses a body that is not the one signed.
  const changed = Buffer.from(body.toString().replace('wörld', 'world'));
  expect(await postInTwoPieces(port, headers, changed, 10)).toBe('HTTP/1.1 400 Bad Request');
});

it("follows a session's events with the README's fetch reader and a key, resumes from the id it returns, and stops at an expired session's 204", async () => {
  const key = 'readme-reader-key-0123456789';
  const t = await startTestApp({ access: { apiKeys: [key] } });
  stops.push(() => void t.close());
  const base = await t.listen();
  const intro = readme.indexOf('A page follows a stream with `EventSource`');
  expect(intro).toBeGreaterThan(0);
  const [, code] = /```js\n([\s\S]*?)```/.exec(readme.slice(intro)) ?? [];
  const AsyncFunction = (async () => {}).constructor as new (...args: string[]) => (...values: unknown[]) => Promise<unknown>;
  type Follow = (sessionId: string, onEvent: (event: { type: string }, id: string) => void, lastEventId?: string) => Promise<string | undefined>;
  const follow = (await new AsyncFunction('apiKey', 'base', `${code}\nreturn follow;`)(key, base)) as Follow;

  const headers = { 'x-api-key': key };
  const agent = await t.request({ method: 'POST', url: '/api/agents', headers, body: { characterJson: { name: 'A' } } });
  const body = { agentId: agent.body.data.character.id, userId: USER_ID, timeoutConfig: { timeoutMinutes: 5, warningThresholdMinutes: 1 } };
  const { sessionId } = (await t.request({ method: 'POST', url: '/api/messaging/sessions', headers, body })).body;
  t.clock.advance(5 * MINUTE);
  await createEventPump({ store: t.store, clock: t.clock }).tick();
  const seen: string[] = [];
  const isEvent = specSchemaValidator('Event');
  const last = await follow(sessionId, (event, id) => {
    expect(isEvent(event), JSON.stringify(event)).toBe(true);
    seen.push(`${id} ${event.type}`);
  });
  expect(seen.map((line) => line.split(' ')[1])).toEqual(['session.created', 'session.warning', 'session.expired']);
  expect(last).toBe(seen.at(-1)!.split(' ')[0]);
  // Reconnecting from there: the 204, and the reader returns without an event.
  expect(await follow(sessionId, (event) => seen.push(event.type), last)).toBeUndefined();
  expect(seen).toHaveLength(3);
});
