// npm run conformance -- --base-url http://127.0.0.1:3000 [--api-key K] [--seed N] [--json report.json] [--spec path]
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatReport } from './report.js';
import { runConformance } from './run.js';

const { values } = parseArgs({
  options: {
    'base-url': { type: 'string' },
    'api-key': { type: 'string' },
    seed: { type: 'string' },
    json: { type: 'string' },
    spec: { type: 'string' },
    cases: { type: 'string' },
  },
});

const baseUrl = values['base-url'];
if (!baseUrl) {
  console.error('usage: npm run conformance -- --base-url http://127.0.0.1:3000 [--api-key K] [--seed N] [--json report.json] [--spec openapi.yaml] [--cases N]');
  process.exit(2);
}
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!Number.isInteger(seed)) {
  console.error(`--seed must be an integer, not ${values.seed}`);
  process.exit(2);
}

const report = await runConformance({
  baseUrl,
  seed,
  apiKey: values['api-key'],
  specPath: values.spec ?? fileURLToPath(new URL('../../openapi/sessions-api.yaml', import.meta.url)),
  validCases: values.cases === undefined ? undefined : Number(values.cases),
});
console.log(formatReport(report));
if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
process.exit(report.failed === 0 ? 0 : 1);
