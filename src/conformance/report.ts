// The run as text: a table per operation, the first failures as reproducible requests,
// and the closing `N passed, N failed` line.
import type { Report } from './run.js';

const SHOWN_FAILURES = 3;

export function formatReport(report: Report): string {
  const lines: string[] = [];
  const operations = new Map<string, { cases: number; passed: number }>();
  for (const result of report.cases) {
    const row = operations.get(result.operationId) ?? { cases: 0, passed: 0 };
    row.cases += 1;
    row.passed += result.passed ? 1 : 0;
    operations.set(result.operationId, row);
  }
  const width = Math.max(9, ...[...operations.keys()].map((id) => id.length));
  lines.push(`Conformance of ${report.baseUrl} (seed ${report.seed})`, '');
  lines.push(`${'operation'.padEnd(width)}  cases  passed  failed`);
  for (const [id, row] of operations) {
    lines.push(`${id.padEnd(width)}  ${String(row.cases).padStart(5)}  ${String(row.passed).padStart(6)}  ${String(row.cases - row.passed).padStart(6)}`);
  }
  const failures = report.cases.filter((result) => !result.passed);
  if (failures.length > 0) {
    lines.push('', 'Failures:');
    const perOperation = new Map<string, number>();
    for (const failure of failures) {
      const shown = perOperation.get(failure.operationId) ?? 0;
      perOperation.set(failure.operationId, shown + 1);
      if (shown >= SHOWN_FAILURES) continue;
      lines.push(`  ${failure.operationId} [${failure.kind}] ${failure.title}`);
      if (failure.request) lines.push(`      ${failure.request}`);
      for (const violation of failure.violations) lines.push(`    → ${violation}`);
    }
    for (const [id, count] of perOperation) {
      if (count > SHOWN_FAILURES) lines.push(`  ${id}: ${count - SHOWN_FAILURES} more failure(s) (see --json)`);
    }
  }
  lines.push('', `${report.passed} passed, ${report.failed} failed`);
  return lines.join('\n');
}
