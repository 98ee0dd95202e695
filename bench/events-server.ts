// The server the event benchmarks run: the app as main.ts wires it (store, due-event
// pump, streams, reply waits), with three bench-only controls:
// - EVENT_LOG=off: the store drops the events writes carry (the event log off), so the
//   same process can be measured with and without it;
// - stdin `jump <ms>`: moves the server's clock forward (warnings fall due at once);
// - stdin `report`: prints one JSON line: the longest event-loop delay since the last
//   `report` (perf_hooks.monitorEventLoopDelay) and the RSS.
// Prints "listening on http://…" like the real server.
import { createInterface } from 'node:readline';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { buildApp } from '../src/app.js';
import { createEventPump } from '../src/events/due-events.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import type { Store } from '../src/storage/store.js';
import { createSweeper } from '../src/sweeper.js';

/** The store with every write's `events` dropped: what the writes cost without the event log. */
function withoutEventLog(store: Store): Store {
  const dropEvents = (argument: unknown) =>
    argument && typeof argument === 'object' && typeof (argument as { events?: unknown }).events === 'function' ? { ...argument, events: undefined } : argument;
  return new Proxy(store, {
    get(target, key) {
      const value = Reflect.get(target, key);
      return typeof value === 'function' ? (...args: unknown[]) => value.apply(target, args.map(dropEvents)) : value;
    },
  });
}

let offset = 0;
const clock = { now: () => Date.now() + offset };
const plain = openSqliteStore(process.env.DATABASE_PATH!);
const store = process.env.EVENT_LOG === 'off' ? withoutEventLog(plain) : plain;
const sweeper = createSweeper({ store, clock, retentionMs: 86_400_000, intervalMs: 3_600_000, batchSize: 100 });
const pump = createEventPump({ store, clock });
const app = buildApp({ store, clock, sessionDefaults: {}, retentionMs: 86_400_000, sweeper });
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();

createInterface({ input: process.stdin }).on('line', (line) => {
  const [command, argument] = line.trim().split(/\s+/);
  if (command === 'jump') offset += Number(argument);
  if (command === 'report') {
    console.log(JSON.stringify({ maxEventLoopDelayMs: Math.round((delay.max / 1e6) * 10) / 10, rssMb: Math.round(process.memoryUsage().rss / 2 ** 20) }));
    delay.reset();
  }
});
process.on('SIGTERM', () => {
  void pump.stop().then(() => app.close()).then(() => process.exit(0));
});

await app.listen({ host: '127.0.0.1', port: 0 });
pump.start();
console.log(`listening on http://127.0.0.1:${(app.server.address() as { port: number }).port}`);
