// The command line, parsed and validated: a bad value is a UsageError with one line
// that names the option (the CLI prints it and exits 2).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CHECKS, type CheckName, isCheckName } from './check.js';
import { type ConformanceOptions, type Report, UsageError } from './run.js';

export interface CliOptions {
  help: boolean;
  run: Omit<ConformanceOptions, 'signal' | 'onCase' | 'onOperation'>;
  reports: { json?: string; junit?: string; markdown?: string };
  /** Set with --replay when the earlier run had no failure: nothing to run. */
  nothingToReplay?: boolean;
}

export const USAGE = `Usage: sessions-api-conformance --base-url <url> [options]

Drives a running server over HTTP and reports where it breaks its OpenAPI document.
Deletes everything it created when it ends (also on failure and Ctrl-C).

Target
  --base-url <url>             the server, e.g. http://127.0.0.1:3000 (required)
  --spec <file>                OpenAPI 3.x document (default: the Sessions API's own);
                               the Sessions-specific flows run only against ours
  --api-key <key>              sent as x-api-key
  --header 'Name: value'       sent with every request (repeatable)
  --timeout <ms>               per request (default 10000)

Selection
  --include-operation <id>     only this operation (repeatable, or comma-separated)
  --exclude-operation <id>     not this operation (repeatable, or comma-separated)
  --checks <list>              only these checks, comma-separated (default: all):
${Object.entries(CHECKS)
  .map(([name, text]) => `                                 ${name.padEnd(22)} ${text}`)
  .join('\n')}
  --cases <n>                  generated valid requests per operation (default 10)
  --seed <n>                   makes a run repeatable (default: random, printed)
  --workers <n>                cases run at once (default 1); flows keep their order
  --expiry-wait <ms>           wait up to this long for a 5-minute session to expire and
                               check the 410s (default 0: not checked)
  --replay <report.json>       only the failed cases of an earlier --json report, with
                               the same seed, case count and spec

Output
  --json <file>                the full report as JSON (what --replay reads)
  --junit <file>               JUnit XML: a testsuite per operation, a testcase per case
  --markdown <file>            a summary for a CI job page
  --keep-data                  keep what the run created (default: delete it)
  --help                       this text

Exit status: 0 conforms, 1 conformance failures, 2 usage error or unreachable target,
130 interrupted.`;

function integer(option: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^-?\d+$/.test(text.trim())) throw new UsageError(`--${option} must be an integer, not "${text}"`);
  const value = Number(text);
  if (value < min || value > max) throw new UsageError(`--${option} must be between ${min} and ${max}, not ${value}`);
  return value;
}

function outputFile(option: string, path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  const folder = dirname(resolve(path));
  if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new UsageError(`--${option}: the folder ${folder} does not exist`);
  // Found now, not after the whole run.
  if ((existsSync(path) && !statSync(path).isFile()) || /[/\\]$/.test(path)) throw new UsageError(`--${option}: ${path} is not a file`);
  return path;
}

const list = (values: string[] | undefined) => (values ?? []).flatMap((value) => value.split(',')).map((value) => value.trim()).filter(Boolean);

function readReport(path: string): Report {
  let report: Report;
  try {
    report = JSON.parse(readFileSync(path, 'utf8')) as Report;
  } catch (error) {
    throw new UsageError(`--replay: cannot read ${path}: ${(error as Error).message.split('\n')[0]}`);
  }
  if (report?.tool !== 'sessions-api-conformance' || !Array.isArray(report.cases) || !Number.isInteger(report.seed)) {
    throw new UsageError(`--replay: ${path} is not a report written by --json`);
  }
  return report;
}

const OPTIONS = {
  'base-url': { type: 'string' },
  spec: { type: 'string' },
  'api-key': { type: 'string' },
  header: { type: 'string', multiple: true },
  timeout: { type: 'string' },
  'include-operation': { type: 'string', multiple: true },
  'exclude-operation': { type: 'string', multiple: true },
  checks: { type: 'string' },
  cases: { type: 'string' },
  seed: { type: 'string' },
  workers: { type: 'string' },
  'expiry-wait': { type: 'string' },
  replay: { type: 'string' },
  json: { type: 'string' },
  junit: { type: 'string' },
  markdown: { type: 'string' },
  'keep-data': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const STRING_OPTIONS = new Set(Object.entries(OPTIONS).filter(([, option]) => option.type === 'string').map(([name]) => name));

/**
 * `--cases -1` as `--cases=-1`: parseArgs takes a value starting with `-` for an option
 * and calls the pair "ambiguous"; written out, the value's own check names the problem.
 */
function withNegativeValues(argv: string[]): string[] {
  const joined: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]!;
    const next = argv[i + 1];
    if (/^--[a-z-]+$/.test(arg) && STRING_OPTIONS.has(arg.slice(2)) && next !== undefined && /^-\d/.test(next)) {
      joined.push(`${arg}=${next}`);
      i += 1;
    } else joined.push(arg);
  }
  return joined;
}

export function parseCli(argv: string[], defaultSpec: string): CliOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: withNegativeValues(argv),
      strict: true,
      allowPositionals: false,
      options: OPTIONS,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0]!.replace(/\. To specify a positional argument.*$/, ''));
  }
  if (values.help) return { help: true, run: { baseUrl: '', specPath: defaultSpec, seed: 0 }, reports: {} };

  const baseUrl = values['base-url'];
  if (!baseUrl) throw new UsageError('--base-url is required (e.g. --base-url http://127.0.0.1:3000); see --help');
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new UsageError(`--base-url must be an http:// or https:// URL, not "${baseUrl}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--base-url must be an http:// or https:// URL, not "${baseUrl}"`);
  // The operations' paths are appended to it: a query or fragment would end up before them.
  if (url.search !== '' || url.hash !== '') throw new UsageError('--base-url must have no query (?…) or fragment (#…): the paths are appended to it');
  if (url.username !== '' || url.password !== '') throw new UsageError('--base-url must not carry credentials: send them with --header (e.g. --header "Authorization: Basic …")');

  const headers: Record<string, string> = {};
  for (const header of values.header ?? []) {
    const match = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):\s*(.*)$/.exec(header);
    if (!match) throw new UsageError(`--header must be 'Name: value', not "${header}"`);
    headers[match[1]!.toLowerCase()] = match[2]!.trim();
  }
  const checks = values.checks === undefined ? undefined : list([values.checks]);
  if (checks !== undefined && checks.length === 0) throw new UsageError('--checks needs at least one check; see --help');
  for (const check of checks ?? []) if (!isCheckName(check)) throw new UsageError(`--checks: unknown check "${check}" (known: ${Object.keys(CHECKS).join(', ')})`);

  // Absolute: the report records it, and --replay may run from another folder.
  let specPath = resolve(values.spec ?? defaultSpec);
  let seed = integer('seed', values.seed, 0, 2 ** 31 - 1);
  let validCases = integer('cases', values.cases, 1, 10_000);
  let only: Set<string> | undefined;
  let nothingToReplay = false;
  if (values.replay !== undefined) {
    const earlier = readReport(values.replay);
    if (values.seed !== undefined || values.cases !== undefined) throw new UsageError('--replay takes the seed and case count from the report: leave out --seed and --cases');
    seed = earlier.seed;
    validCases = earlier.validCases;
    // Reports record an absolute path; an older one's relative path is tried from here, then from the report's folder.
    if (values.spec === undefined) specPath = existsSync(resolve(earlier.specPath)) ? resolve(earlier.specPath) : resolve(dirname(values.replay), earlier.specPath);
    only = new Set(earlier.cases.filter((c) => !c.passed).map((c) => c.key));
    nothingToReplay = only.size === 0;
  }
  if (!existsSync(specPath)) throw new UsageError(`${values.spec === undefined && values.replay !== undefined ? `--replay: the report's spec` : '--spec'}: no file at ${specPath}`);

  return {
    help: false,
    nothingToReplay,
    run: {
      baseUrl: url.toString().replace(/\/+$/, ''),
      specPath,
      seed: seed ?? Math.floor(Math.random() * 2 ** 31),
      apiKey: values['api-key'],
      headers,
      validCases: validCases ?? 10,
      timeoutMs: integer('timeout', values.timeout, 1, 600_000) ?? 10_000,
      workers: integer('workers', values.workers, 1, 64) ?? 1,
      expiryWaitMs: integer('expiry-wait', values['expiry-wait'], 0, 3_600_000) ?? 0,
      checks: checks as CheckName[] | undefined,
      includeOperations: list(values['include-operation']),
      excludeOperations: list(values['exclude-operation']),
      only,
      keepData: values['keep-data'] === true,
    },
    reports: { json: outputFile('json', values.json), junit: outputFile('junit', values.junit), markdown: outputFile('markdown', values.markdown) },
  };
}
