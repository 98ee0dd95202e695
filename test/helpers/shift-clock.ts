// Preloaded into a server process by a test (`startServer(env, { preload })`): the
// process's clock (Date.now, which systemClock reads) runs ahead by the milliseconds a
// request's header below says, from that request on. How a process test moves time for
// the timeout rules, the pump and the webhook leases without sleeping.
import { Server } from 'node:http';

export const CLOCK_OFFSET_HEADER = 'x-test-clock-offset-ms';
/** With `true`, the move is the wall clock set (stepped), not time passing: the monotonic clock stays. */
export const CLOCK_STEP_HEADER = 'x-test-clock-step';

const realNow = Date.now;
let offsetMs = 0;
Date.now = () => realNow() + offsetMs;
// A move forward is time passing: the monotonic clock (systemClock.monotonic) moves with it,
// so it is not taken for a clock set wrong (steadyWallTime). A move back is the wall clock
// stepped back: the monotonic clock never goes back.
const realPerformanceNow = performance.now.bind(performance);
let passedMs = 0;
performance.now = () => realPerformanceNow() + passedMs;

const emit = Server.prototype.emit;
Server.prototype.emit = function (this: Server, event: string, ...args: unknown[]) {
  if (event === 'request') {
    const header = (args[0] as { headers: Record<string, string | undefined> }).headers[CLOCK_OFFSET_HEADER];
    if (header !== undefined) {
      offsetMs = Number(header);
      const stepped = (args[0] as { headers: Record<string, string | undefined> }).headers[CLOCK_STEP_HEADER] === 'true';
      if (!stepped) passedMs = Math.max(passedMs, offsetMs);
    }
  }
  return (emit as (...a: unknown[]) => boolean).call(this, event, ...args);
} as typeof emit;
