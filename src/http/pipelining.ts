// Pipelined requests (sent one after another without waiting for the answers) are
// answered in order; Node reads and starts them all at once, so every answer behind one
// not yet sent waits in memory, and a client that pipelines many requests and never reads
// made the server build and hold them all (ten connections reached gigabytes). Here a
// pipelined request is carried out only once the answer before it on its connection has
// been written out: at most one answer waits beyond the socket's buffers, and a client
// that reads gets every answer, in order, as before.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

/** The answer to the latest request read on a connection. */
const kLastAnswer = Symbol('lastAnswer');
type Connection = Socket & { [kLastAnswer]?: ServerResponse };

export function serializePipelining(app: FastifyInstance): void {
  // A callback hook: every request passes here; one not pipelined sets one property.
  app.addHook('onRequest', (request, reply, done) => {
    const connection = request.raw.socket as Connection;
    const before = connection[kLastAnswer];
    connection[kLastAnswer] = reply.raw;
    if (before === undefined || before.writableFinished || before.destroyed) return done();
    let waited = false;
    const go = () => {
      if (waited) return;
      waited = true;
      before.off('finish', go);
      before.off('close', go);
      done();
    };
    before.once('finish', go);
    before.once('close', go);
  });
}
