// Pipelined requests (sent one after another without waiting for the answers) are
// answered in order; Node reads and starts them all at once, so every answer behind one
// not yet sent waits in memory, and a client that pipelines many requests and never reads
// made the server build and hold them all (ten connections reached gigabytes). Here a
// pipelined request is carried out only once the answer before it on its connection has
// been written out: at most one answer waits beyond the socket's buffers, and a client
// that reads gets every answer, in order, as before.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';

/**
 * The answer to the latest pipelined request read on a connection. A WeakMap, not a
 * property of the socket: a property added to Node's sockets changes their shape, and
 * every access Node's HTTP code makes to any socket slowed down (a few per cent of the
 * quick reads' throughput).
 */
const lastPipelined = new WeakMap<Socket, ServerResponse>();
const NOT_CARRIED_OUT = "the connection closed before this pipelined request's turn: it was not carried out";
type Answering = Socket & { _httpMessage?: ServerResponse | null };
/**
 * The requests waiting for their turn on each connection, woken when it closes: an answer
 * queued behind another gets no 'close' of its own then (Node never wrote it). One
 * listener a connection, not one a request.
 */
const waitingOn = new WeakMap<Socket, Set<() => void>>();
function wakeOnClose(connection: Socket, wake: () => void): () => void {
  let waiting = waitingOn.get(connection);
  if (!waiting) {
    const all = new Set<() => void>();
    waitingOn.set(connection, all);
    connection.once('close', () => {
      for (const waiter of [...all]) waiter();
    });
    waiting = all;
  }
  waiting.add(wake);
  const mine = waiting;
  return () => void mine.delete(wake);
}

/**
 * Calls `done` once the answer before this request on its connection is written: at once
 * for a request not pipelined (Node is writing no other answer on its connection). Called
 * by the server's own onRequest hook (src/http/server-options.ts), last: no hook of its own.
 */
export function afterAnswerBefore(request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void {
  const connection = request.raw.socket as Answering;
  const sending = connection._httpMessage;
  if (!sending || sending === reply.raw) return done();
  const queued = lastPipelined.get(connection);
  lastPipelined.set(connection, reply.raw);
  const before = queued && !queued.writableFinished && !queued.destroyed ? queued : sending;
  // Its turn came on a connection closed (by the client) or ended (by the server, stopping,
  // with the answer before it): nobody reads its answer, and it is not carried out (as one
  // with a body is not: its body can no longer be read).
  const proceed = () => (connection.destroyed || connection.writableEnded ? done(new ApiError('SERVICE_UNAVAILABLE', NOT_CARRIED_OUT)) : done());
  if (before.writableFinished || before.destroyed) return proceed();
  let waited = false;
  const go = () => {
    if (waited) return;
    waited = true;
    before.off('finish', go);
    before.off('close', go);
    forget();
    proceed();
  };
  before.once('finish', go);
  before.once('close', go);
  const forget = wakeOnClose(connection, go);
}
