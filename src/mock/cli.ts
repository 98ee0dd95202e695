// `npm run mock [-- --spec <file> --port N --host H]`: serves an OpenAPI document's
// examples (default: ours) until Ctrl-C.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { callersFolder } from '../conformance/callers-folder.js';
import { listenUrl } from '../listen-url.js';
import { specPath } from '../spec-path.js';

const USAGE = `usage: npm run mock [-- --spec <file> --port <n> --host <address>]
  --spec   the OpenAPI 3.0 or 3.1 document to mock (default: this server's, ${specPath})
  --port   default 4010 (0: any free port)
  --host   default 127.0.0.1
exit status: 2 for a usage error or a document it cannot serve, 1 when it cannot listen`;

function parsedArguments() {
  try {
    return parseArgs({
      options: {
        spec: { type: 'string', default: specPath },
        port: { type: 'string', default: '4010' },
        host: { type: 'string', default: '127.0.0.1' },
        help: { type: 'boolean' },
      },
    });
  } catch (error) {
    console.error(`sessions-api mock: ${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }
}
const { values } = parsedArguments();
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
// Digits only, as every other option of this project: `0x10`, `1e3` and an empty value are mistakes.
const port = /^\d{1,5}$/.test(values.port) ? Number(values.port) : Number.NaN;
if (!(port >= 0 && port <= 65535)) {
  console.error(`sessions-api mock: --port ${values.port} must be an integer between 0 and 65535`);
  process.exit(2);
}

const spec = resolve(callersFolder(), values.spec);
const fail = (error: unknown, status: number): never => {
  console.error(`sessions-api mock: ${(error as Error).message}`);
  process.exit(status);
};
// Loaded once the arguments are good: the server and the spec's validators take most of a second (a usage error 0.5 s, now 0.13).
const { createMockServer } = await import('./mock-server.js');
const app = await createMockServer({ specPath: spec }).catch((error: unknown) => fail(error, 2));
await app.listen({ host: values.host, port }).catch((error: unknown) => fail(error, 1));
const address = app.server.address();
const actualPort = typeof address === 'object' && address ? address.port : port;
console.log(`Mock of ${spec} listening on ${listenUrl(values.host, actualPort)} (Prefer: code=<status> or example=<name> to choose an answer)`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void app.close().then(() => process.exit(0)));
}
