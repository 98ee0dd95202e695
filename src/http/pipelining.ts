// Pipelined requests (sent one after another without waiting for the answers) are
// answered in order, so every answer behind one not yet sent waits in memory. A client
// that pipelines many requests and never reads would make the server hold them all (a
// few connections reached gigabytes); such a connection is closed once the answers
// waiting on it pass MAX_QUEUED_BYTES, or the requests waiting MAX_QUEUED_REQUESTS.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

export const MAX_QUEUED_BYTES = 8 * 1024 * 1024;
export const MAX_QUEUED_REQUESTS = 1024;

/** The answers waiting behind the one a connection is sending, by connection. */
const queues = new WeakMap<Socket, Set<ServerResponse>>();

const answerInProgress = (socket: Socket) => (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;

export function limitPipelining(app: FastifyInstance): void {
  // Callback hooks: every request passes here; one that is not pipelined reads one property.
  app.addHook('onRequest', (request, reply, done) => {
    const socket = request.raw.socket;
    const sending = answerInProgress(socket);
    if (sending === undefined || sending === reply.raw) return done();
    let queue = queues.get(socket);
    if (!queue) queues.set(socket, (queue = new Set()));
    queue.add(reply.raw);
    reply.raw.once('close', () => queue.delete(reply.raw));
    if (queue.size > MAX_QUEUED_REQUESTS) close(socket, request.log, `${queue.size} pipelined requests waiting`);
    done();
  });
  app.addHook('onSend', (request, reply, payload, done) => {
    const socket = request.raw.socket;
    const queue = queues.get(socket);
    if (queue?.has(reply.raw)) {
      let queued = socket.writableLength + (typeof payload === 'string' ? payload.length : Buffer.isBuffer(payload) ? payload.length : 0);
      for (const waiting of queue) queued += waiting.writableLength;
      if (queued > MAX_QUEUED_BYTES) close(socket, request.log, `${queued} bytes of answers waiting for a client that does not read them`);
    }
    done(null, payload);
  });
}

function close(socket: Socket, log: FastifyInstance['log'], why: string): void {
  if (socket.destroyed) return;
  log.warn({ pipelining: why }, 'connection closed: its pipelined answers are not being read');
  socket.destroy();
}
