// The ceiling: a bare Fastify route answering a constant small JSON, the most this
// stack can do on this machine. GET answers 200, POST 201, like the scenarios.
import Fastify from 'fastify';

const app = Fastify({ logger: false });
const answer = { sessionId: '9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d', status: 'active' };
app.get('/ceiling', async () => answer);
app.post('/ceiling', async (_request, reply) => {
  reply.code(201);
  return answer;
});
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
console.log(`ceiling listening on http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`);
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
