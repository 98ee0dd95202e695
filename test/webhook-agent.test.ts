// Under WEBHOOK_PRIVATE_ADDRESSES=deny, deliveries go through one connection pool of the
// dispatcher's (its lookup refuses private addresses), made on first use and closed by
// stop(). The receiver is on 127.0.0.1: the test's lookup resolves its name there.
import { createServer, type Server } from 'node:http';
import type { AddressInfo, LookupFunction, Socket } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { createWebhookDispatcher } from '../src/events/webhook-delivery.js';
import { fakeClock } from './helpers/fake-clock.js';
import { createSession, registerAgent } from './helpers/fixtures.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';
import { until } from './helpers/until.js';

const toThisMachine: LookupFunction = (_hostname, options, callback) =>
  (options as { all?: boolean }).all
    ? (callback as unknown as (error: null, addresses: Array<{ address: string; family: number }>) => void)(null, [{ address: '127.0.0.1', family: 4 }])
    : callback(null, '127.0.0.1', 4);

let t: TestApp | undefined;
let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  await t?.close();
});

it('posts every delivery through one kept-alive connection, and closes it on stop()', async () => {
  const sockets: Socket[] = [];
  let received = 0;
  server = createServer((request, response) => {
    request.resume().on('end', () => (received++, response.end()));
  }).on('connection', (socket: Socket) => sockets.push(socket));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const url = `http://receiver.test:${(server.address() as AddressInfo).port}/hook`;

  t = await startTestApp({ clock: fakeClock(Date.now()) });
  const agentId = await registerAgent(t);
  expect((await t.request({ method: 'POST', url: '/api/webhooks', body: { url, types: ['session.created'] } })).status).toBe(201);
  const send = createWebhookDispatcher({ store: t.store, clock: t.clock, random: () => 0.5, privateAddresses: 'deny', publicLookup: toThisMachine });
  await createSession(t, { agentId });
  await send.tick();
  await createSession(t, { agentId });
  await send.tick();
  expect(received).toBe(2);
  expect(sockets).toHaveLength(1);
  expect(sockets[0]!.destroyed).toBe(false);
  await send.stop();
  // Well before the receiver's own keep-alive timeout (5 s) would close it.
  await until('the connection is closed', () => sockets[0]!.destroyed, { ms: 1000 });
});
