// Preloaded into a server process by a test (`startServer(env, { preload })`): the process
// kills itself with SIGKILL when it is about to answer a request that carries the header
// below, that is after the handler ran and its write committed, before a byte of the
// answer leaves. What a crash between the write and the answer looks like to a client.
import { ServerResponse } from 'node:http';

export const CRASH_HEADER = 'x-test-crash-before-answer';

const writeHead = ServerResponse.prototype.writeHead;
ServerResponse.prototype.writeHead = function (this: ServerResponse, ...args: unknown[]) {
  if (this.req?.headers[CRASH_HEADER] !== undefined) process.kill(process.pid, 'SIGKILL');
  return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
} as typeof writeHead;
