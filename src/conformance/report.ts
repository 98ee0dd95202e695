// The run as text: a table per operation, the first failures with what broke (check,
// JSON path, property), the status and body, and the requests to reproduce them.
import type { Violation } from './check.js';
import type { CaseResult, OperationSummary, Report } from './run.js';

const SHOWN_FAILURES = 3;

export function describeViolation(violation: Violation): string {
  const where = [
    violation.path && !violation.message.includes(violation.path) && `at ${violation.path}`,
    violation.property && !violation.message.includes(`"${violation.property}"`) && `property "${violation.property}"`,
  ].filter(Boolean);
  return `${violation.check}: ${violation.message}${where.length > 0 ? ` (${where.join(', ')})` : ''}`;
}

export function operationSummaries(report: Report): OperationSummary[] {
  const rows = new Map<string, OperationSummary>();
  for (const result of report.cases) {
    const row = rows.get(result.operationId) ?? { operationId: result.operationId, cases: 0, passed: 0, failed: 0 };
    row.cases += 1;
    row.passed += result.passed ? 1 : 0;
    row.failed += result.passed ? 0 : 1;
    rows.set(result.operationId, row);
  }
  return [...rows.values()];
}

function formatFailure(failure: CaseResult, indent = '  '): string[] {
  const lines = [`${indent}${failure.operationId} [${failure.kind}] ${failure.title}`];
  for (const violation of failure.violations) lines.push(`${indent}  ✗ ${describeViolation(violation)}`);
  if (failure.status || failure.body) lines.push(`${indent}    status ${failure.status}${failure.body ? `, body: ${failure.body.slice(0, 300)}` : ''}`);
  for (const request of failure.requests) lines.push(`${indent}    ${request}`);
  return lines;
}

export function formatReport(report: Report): string {
  const lines: string[] = [];
  const rows = operationSummaries(report);
  const width = Math.max(9, ...rows.map((row) => row.operationId.length));
  lines.push(`Conformance of ${report.baseUrl} (seed ${report.seed})`, '');
  lines.push(`${'operation'.padEnd(width)}  cases  passed  failed`);
  for (const row of rows) {
    lines.push(`${row.operationId.padEnd(width)}  ${String(row.cases).padStart(5)}  ${String(row.passed).padStart(6)}  ${String(row.failed).padStart(6)}`);
  }
  const failures = report.cases.filter((result) => !result.passed);
  if (failures.length > 0) {
    lines.push('', 'Failures:');
    const perOperation = new Map<string, number>();
    for (const failure of failures) {
      const shown = perOperation.get(failure.operationId) ?? 0;
      perOperation.set(failure.operationId, shown + 1);
      if (shown < SHOWN_FAILURES) lines.push(...formatFailure(failure));
    }
    for (const [id, count] of perOperation) {
      if (count > SHOWN_FAILURES) lines.push(`  ${id}: ${count - SHOWN_FAILURES} more failure(s) (see --json, --junit or --markdown)`);
    }
  }
  lines.push('');
  if (report.lostTarget) lines.push(`Stopped: ${report.lostTarget}.`);
  else if (report.interrupted) lines.push('Interrupted: not every case ran.');
  if (report.cleanup.kept > 0) lines.push(`Kept ${report.cleanup.kept} created resource(s) (--keep-data).`);
  else lines.push(`Deleted the ${report.cleanup.deleted} resource(s) it created.`);
  for (const left of report.cleanup.left) lines.push(`  could not delete ${left}`);
  lines.push(`${report.passed} passed, ${report.failed} failed`);
  return lines.join('\n');
}
