// Preloaded into a server process by a test (`startServer(env, { preload })`): the
// process's clock (Date.now, which systemClock reads) runs ahead by the milliseconds a
// request's header below says, from that request on. How a process test moves time for
// the timeout rules, the pump and the webhook leases without sleeping.
import { Server } from 'node:http';

export const CLOCK_OFFSET_HEADER = 'x-test-clock-offset-ms';

const realNow = Date.now;
let offsetMs = 0;
Date.now = () => realNow() + offsetMs;

const emit = Server.prototype.emit;
Server.prototype.emit = function (this: Server, event: string, ...args: unknown[]) {
  if (event === 'request') {
    const header = (args[0] as { headers: Record<string, string | undefined> }).headers[CLOCK_OFFSET_HEADER];
    if (header !== undefined) offsetMs = Number(header);
  }
  return (emit as (...a: unknown[]) => boolean).call(this, event, ...args);
} as typeof emit;
