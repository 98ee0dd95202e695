// Run under `prlimit --nofile=64:64` by test/resource-limits.test.ts: the built server's
// loadDocsPages (argv[2]: dist/ops/docs.js) with `free` file descriptors left (argv[3]), then
// three times more with all of them free; prints the outcomes.
import { closeSync, openSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const { loadDocsPages } = await import(pathToFileURL(process.argv[2]).href);
const free = Number(process.argv[3]);
const held = [];
try {
  for (;;) held.push(openSync('/dev/null', 'r'));
} catch {}
for (let i = 0; i < free; i += 1) closeSync(held.pop());
const outcome = () => loadDocsPages().then((pages) => `ok ${pages.size}`, (error) => error.code ?? error.message);
const first = await outcome();
for (const fd of held) closeSync(fd);
const later = [];
for (let attempt = 0; attempt < 3; attempt += 1) later.push(await outcome());
console.log(JSON.stringify({ first, later }));
