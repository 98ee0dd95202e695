// The run as Markdown, for a CI job's summary page: the verdict, the table per
// operation, and each failure with what broke and how to reproduce it.
import { describeViolation, operationSummaries } from './report.js';
import type { Report } from './run.js';

const SHOWN_FAILURES = 50;
const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const fence = (text: string) => `\`\`\`text\n${text.replace(/```/g, "'''")}\n\`\`\``;

export function formatMarkdown(report: Report): string {
  const verdict = report.failed === 0 ? '✅ conforms' : `❌ ${report.failed} failure(s)`;
  const lines = [
    `## Conformance of ${report.baseUrl}: ${verdict}`,
    '',
    `${report.passed} passed, ${report.failed} failed; seed ${report.seed}, ${report.validCases} generated cases per operation, ${(report.durationMs / 1000).toFixed(1)} s.${report.interrupted ? ' **Interrupted**: not every case ran.' : ''}`,
    '',
    '| operation | cases | passed | failed |',
    '|---|---:|---:|---:|',
    ...operationSummaries(report).map((row) => `| ${cell(row.operationId)} | ${row.cases} | ${row.passed} | ${row.failed} |`),
  ];
  const failures = report.cases.filter((c) => !c.passed);
  if (failures.length > 0) {
    lines.push('', '### Failures', '');
    for (const failure of failures.slice(0, SHOWN_FAILURES)) {
      lines.push(`- **${cell(failure.operationId)}** [${failure.kind}] ${cell(failure.title)} (\`${failure.key}\`)`);
      for (const violation of failure.violations) lines.push(`  - \`${violation.check}\`: ${cell(describeViolation(violation).slice(violation.check.length + 2))}`);
      lines.push(`  - status ${failure.status}`, '', fence([`body: ${failure.body}`, ...failure.requests].join('\n')).replace(/^/gm, '    '), '');
    }
    if (failures.length > SHOWN_FAILURES) lines.push(`…and ${failures.length - SHOWN_FAILURES} more (see the JSON or JUnit report).`);
  }
  lines.push('', report.cleanup.kept > 0 ? `Kept ${report.cleanup.kept} created resource(s) (\`--keep-data\`).` : `Deleted the ${report.cleanup.deleted} resource(s) it created.`, '');
  return lines.join('\n');
}
