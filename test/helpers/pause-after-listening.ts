// Preloaded into a server process by a test (`startServer(env, { preload })`): the process
// stops for 300 ms right after it prints its "listening" line (stderr to a pipe is written
// at once), so that a signal sent on seeing the line arrives before any code
// after that line has run.
const say = console.error;
console.error = (...args: unknown[]) => {
  say(...args);
  if (String(args[0]).includes('listening on')) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
};
