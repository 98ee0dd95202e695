// R50: Scalar imported as src/ops/docs.ts does (its resolved URL, then `?attempt=N` after a
// failure) with `free` descriptors left: prints the outcome of the first attempt and of 4 more
// once every descriptor is free again, and the heap after them.
import { openSync, closeSync } from 'node:fs';
const url = import.meta.resolve('@scalar/fastify-api-reference');
const free = Number(process.argv[2]);
const fds = [];
try { for (;;) fds.push(openSync('/dev/null', 'r')); } catch {}
for (let i = 0; i < free; i++) closeSync(fds.pop());
const outcome = async (attempt) => import(attempt === 0 ? url : `${url}?attempt=${attempt}`).then(() => 'ok', (error) => error.code ?? String(error));
const first = await outcome(0);
for (const fd of fds) closeSync(fd);
const later = [];
for (let attempt = 1; attempt <= 4; attempt++) later.push(await outcome(attempt));
console.log(JSON.stringify({ first, later }));
