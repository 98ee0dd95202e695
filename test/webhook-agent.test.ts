// Under WEBHOOK_PRIVATE_ADDRESSES=deny, deliveries go through one connection pool of the
// dispatcher's (its lookup refuses private addresses), made on first use and closed by
// stop(). The receiver is on 127.0.0.1, so the URL check is made to let it through here.
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, expect, it, vi } from 'vitest';
import { createWebhookDispatcher } from '../src/events/webhook-delivery.js';
import { fakeClock } from './helpers/fake-clock.js';
import { createSession, registerAgent } from './helpers/fixtures.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';
import { until } from './helpers/until.js';

vi.mock('../src/events/private-addresses.js', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../src/events/private-addresses.js')>()),
  privateAddressIn: () => undefined,
}));

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
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;

  t = await startTestApp({ clock: fakeClock(Date.now()) });
  const agentId = await registerAgent(t);
  expect((await t.request({ method: 'POST', url: '/api/webhooks', body: { url, types: ['session.created'] } })).status).toBe(201);
  const send = createWebhookDispatcher({ store: t.store, clock: t.clock, random: () => 0.5, privateAddresses: 'deny' });
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
