#!/usr/bin/env node
// sessions-api-conformance --base-url http://127.0.0.1:3000 [options]   (--help lists them)
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { callersFolder } from './callers-folder.js';
import { formatJunit } from './junit.js';
import { formatMarkdown } from './markdown.js';
import { parseCli, USAGE } from './options.js';
import { formatReport } from './report.js';
import { type Report, runConformance, UnreachableError, UsageError } from './run.js';

const DEFAULT_SPEC = fileURLToPath(new URL('../../openapi/sessions-api.yaml', import.meta.url));
const BAR_WIDTH = 30;

function fail(message: string): never {
  console.error(`sessions-api-conformance: ${message}`);
  process.exit(2);
}

// Relative paths (--spec, --json, --replay, …) are the caller's, also under `npm run conformance`.
process.chdir(callersFolder());
let options;
try {
  options = parseCli(process.argv.slice(2), DEFAULT_SPEC);
} catch (error) {
  if (error instanceof UsageError) fail(error.message);
  throw error;
}
if (options.help) {
  console.log(USAGE);
  process.exit(0);
}
if (options.nothingToReplay) {
  console.log('The report has no failed case: nothing to replay.');
  process.exit(0);
}

// A progress bar only on a terminal; a line per operation as it finishes, always.
const tty = process.stdout.isTTY === true;
let barShown = false;
const clearBar = () => {
  if (barShown) process.stdout.write('\r\x1b[2K');
  barShown = false;
};
const controller = new AbortController();
process.on('SIGINT', () => {
  if (controller.signal.aborted) process.exit(130);
  controller.abort();
  clearBar();
  console.error('Interrupted: finishing the requests in flight, then deleting what the suite created (Ctrl-C again to quit at once).');
});

console.log(`Checking ${options.run.baseUrl} (seed ${options.run.seed}, spec ${options.run.specPath})`);
let report: Report;
try {
  report = await runConformance({
    ...options.run,
    signal: controller.signal,
    onCase: (_result, done, total) => {
      if (!tty) return;
      const filled = Math.round((done / Math.max(total, 1)) * BAR_WIDTH);
      process.stdout.write(`\r[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${done}/${total}`);
      barShown = true;
    },
    onOperation: (summary) => {
      clearBar();
      console.log(`${summary.failed === 0 ? '✓' : '✗'} ${summary.operationId}: ${summary.cases} cases, ${summary.passed} passed, ${summary.failed} failed`);
    },
  });
} catch (error) {
  clearBar();
  if (error instanceof UsageError || error instanceof UnreachableError) fail(error.message);
  // The suite's own fault: no verdict on the server (exit 1 would say it failed).
  fail(`the run stopped on an error of its own (please report it): ${(error as Error).stack ?? String(error)}`);
}
clearBar();
console.log('');
console.log(formatReport(report));
const reports = options.reports;
// Each report written, or the reason it could not be, and exit 2: a report missing is no verdict on the server.
let unwritten = false;
for (const [path, text] of [
  [reports.json, () => `${JSON.stringify(report, null, 2)}\n`],
  [reports.junit, () => formatJunit(report)],
  [reports.markdown, () => formatMarkdown(report)],
] as const) {
  if (path === undefined) continue;
  try {
    writeFileSync(path, text());
  } catch (error) {
    unwritten = true;
    console.error(`sessions-api-conformance: cannot write ${path}: ${(error as Error).message}`);
  }
}
if (unwritten) process.exit(2);
if (report.lostTarget) fail(report.lostTarget);
// Nothing checked is no verdict either (--checks or --exclude-operation leaving nothing to run, an empty --api-key).
if (!report.interrupted && report.cases.length === 0) fail('no case ran: the options leave nothing to check');
process.exit(report.interrupted ? 130 : report.failed === 0 ? 0 : 1);
