// The ceiling: a bare Fastify route answering a constant small JSON, the most this
// stack can do on this machine. GET answers 200, POST 201, like the scenarios.
// GET /ceiling/sized?bytes=N answers a constant JSON body of N bytes, sent as made once:
// the size-matched ceiling of a scenario whose answers are that large.
import Fastify from 'fastify';

const app = Fastify({ logger: false });
const answer = { sessionId: '9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d', status: 'active' };
app.get('/ceiling', async () => answer);
app.post('/ceiling', async (_request, reply) => {
  reply.code(201);
  return answer;
});
const sized = new Map<number, string>();
/** `{"data":"xx…"}`, N bytes long. */
function bodyOf(bytes: number): string {
  let body = sized.get(bytes);
  if (body === undefined) sized.set(bytes, (body = `{"data":"${'x'.repeat(Math.max(0, bytes - 11))}"}`));
  return body;
}
app.get<{ Querystring: { bytes?: string } }>('/ceiling/sized', async (request, reply) => {
  return reply.type('application/json; charset=utf-8').send(bodyOf(Number(request.query.bytes ?? 0)));
});
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
console.error(`ceiling listening on http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`);
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
