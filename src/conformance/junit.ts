// The run as JUnit XML: a testsuite per operation, a testcase per case, each failure
// with its check, JSON path, property, status, body and curl line.
import { describeViolation } from './report.js';
import { type CaseResult, pseudoRowName, type Report } from './run.js';

/** Characters XML 1.0 cannot carry (NUL, most control characters, lone surrogates) are dropped. */
const xmlText = (text: string) =>
  text
    .replace(/[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');

const seconds = (ms: number) => (ms / 1000).toFixed(3);

function testcase(result: CaseResult): string {
  const open = `    <testcase name="${xmlText(`[${result.kind}] ${result.title} (${result.key})`)}" classname="${xmlText(`conformance.${result.operationId}`)}" time="${seconds(result.durationMs)}"`;
  if (result.passed) return `${open}/>`;
  const first = result.violations[0];
  const details = [
    ...result.violations.map(describeViolation),
    `status: ${result.status}`,
    `body: ${result.body}`,
    ...result.requests,
  ].join('\n');
  return [
    `${open}>`,
    `      <failure type="${xmlText(first?.check ?? 'failure')}" message="${xmlText(first ? describeViolation(first) : 'failed')}">${xmlText(details)}</failure>`,
    '    </testcase>',
  ].join('\n');
}

export function formatJunit(report: Report): string {
  const byOperation = new Map<string, CaseResult[]>();
  for (const result of report.cases) byOperation.set(result.operationId, [...(byOperation.get(result.operationId) ?? []), result]);
  const suites = [...byOperation].map(([operationId, results]) => {
    const failures = results.filter((r) => !r.passed).length;
    const time = results.reduce((sum, r) => sum + r.durationMs, 0);
    return [
      `  <testsuite name="${xmlText(operationId)}" tests="${results.length}" failures="${failures}" errors="0" skipped="0" time="${seconds(time)}">`,
      ...results.map(testcase),
      '  </testsuite>',
    ].join('\n');
  });
  // A run cut short is an error of its own, not a row of passes: CI shows it as the run's.
  const cutShort = report.lostTarget ?? (report.interrupted ? 'interrupted: not every case ran' : undefined);
  if (cutShort !== undefined) {
    suites.push(
      [
        `  <testsuite name="${xmlText(pseudoRowName('run', report.cases.map((c) => c.operationId)))}" tests="1" failures="0" errors="1" skipped="0" time="0.000">`,
        '    <testcase name="every case ran" classname="conformance.run" time="0.000">',
        `      <error type="stopped" message="${xmlText(cutShort)}">${xmlText(cutShort)}</error>`,
        '    </testcase>',
        '  </testsuite>',
      ].join('\n'),
    );
  }
  const tests = report.cases.length + (cutShort === undefined ? 0 : 1);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="sessions-api-conformance" tests="${tests}" failures="${report.failed}" errors="${cutShort === undefined ? 0 : 1}" time="${seconds(report.durationMs)}">`,
    ...suites,
    '</testsuites>',
    '',
  ].join('\n');
}
