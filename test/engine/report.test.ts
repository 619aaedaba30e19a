import { describe, expect, it } from 'vitest';
import type { ImportReport } from '../../src/lib/report';
import {
  MAX_REPORTED_ERRORS,
  MAX_REPORTED_WARNINGS,
  MAX_WARNING_LENGTH,
  mergeReports,
  ReportBuilder,
} from '../../src/lib/report';

/** A report of `rows` failed rows (one error each) and `skips` skipped rows, starting at `firstRow`, with warnings. */
function reportOf(options: { failed?: number; skipped?: number; warnings?: string[]; firstRow?: number }): ImportReport {
  const builder = new ReportBuilder('patients', 'p.csv');
  let row = options.firstRow ?? 2;
  for (let i = 0; i < (options.failed ?? 0); i++, row++) {
    builder.add({ row, state: 'failed', errors: [{ row, message: 'bad' }] });
  }
  for (let i = 0; i < (options.skipped ?? 0); i++, row++) {
    builder.add({ row, state: 'skipped', reason: 'every column is empty' });
  }
  (options.warnings ?? []).forEach((w) => builder.warn(w));
  return builder.build();
}

const many = (n: number, prefix = 'w'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);

describe('report caps', () => {
  it('keeps everything when under the caps, with no omitted counts', () => {
    const report = reportOf({ failed: 3, skipped: 2, warnings: ['a', 'b', 'a'] });
    expect(report.warnings).toEqual(['a', 'b']);
    expect(report.omitted).toBeUndefined();
    expect([report.errors.length, report.skips.length]).toEqual([3, 2]);
  });

  it(`lists at most ${MAX_REPORTED_WARNINGS} warnings, the last saying how many were left out`, () => {
    const report = reportOf({ warnings: many(80) });
    expect(report.warnings).toHaveLength(MAX_REPORTED_WARNINGS);
    expect(report.warnings.slice(0, 49)).toEqual(many(49));
    expect(report.warnings.at(-1)).toBe(`31 further warnings were not listed (limit ${MAX_REPORTED_WARNINGS})`);
    expect(report.omitted).toEqual({ errors: 0, skips: 0, warnings: 31 });
  });

  it(`cuts a warning to ${MAX_WARNING_LENGTH} characters`, () => {
    const report = reportOf({ warnings: ['x'.repeat(5000), `${'y'.repeat(MAX_WARNING_LENGTH - 2)}\u{1F600}z`] });
    expect(report.warnings.map((w) => w.length)).toEqual([MAX_WARNING_LENGTH, MAX_WARNING_LENGTH - 1]);
    expect(report.warnings[0].endsWith('\u2026')).toBe(true);
    expect(report.warnings[1]).toBe(`${'y'.repeat(MAX_WARNING_LENGTH - 2)}\u2026`);
  });

  it('caps errors and skips, counting what was left out exactly, all within the warning cap', () => {
    const report = reportOf({ failed: MAX_REPORTED_ERRORS + 7, skipped: MAX_REPORTED_ERRORS + 3, warnings: many(60) });
    expect(report.errors).toHaveLength(MAX_REPORTED_ERRORS);
    expect(report.skips).toHaveLength(MAX_REPORTED_ERRORS);
    expect(report.failed).toBe(MAX_REPORTED_ERRORS + 7);
    expect(report.warnings).toHaveLength(MAX_REPORTED_WARNINGS);
    expect(report.warnings.slice(-3)).toEqual([
      `7 further row errors were not listed`,
      `3 further skipped rows were not listed`,
      `13 further warnings were not listed (limit ${MAX_REPORTED_WARNINGS})`,
    ]);
    expect(report.omitted).toEqual({ errors: 7, skips: 3, warnings: 13 });
  });

  it('builds the same report again and again (it is saved after every batch)', () => {
    const builder = new ReportBuilder('patients');
    many(60).forEach((w) => builder.warn(w));
    expect(builder.build()).toEqual(builder.build());
  });
});

describe('mergeReports', () => {
  it('adds the counters, keeps the caps and keeps the omitted counts exact across runs', () => {
    const first = reportOf({ failed: 900, warnings: ['same', ...many(40, 'a')] });
    const second = reportOf({ failed: 300, firstRow: 5000, warnings: ['same', ...many(40, 'b')] });
    let merged = mergeReports(first, second);
    expect(merged.failed).toBe(1200);
    expect(merged.errors).toHaveLength(MAX_REPORTED_ERRORS);
    expect(merged.warnings).toHaveLength(MAX_REPORTED_WARNINGS);
    // 81 distinct warnings; room for 48 next to the two notices.
    expect(merged.warnings.slice(-2)).toEqual([
      `200 further row errors were not listed`,
      `33 further warnings were not listed (limit ${MAX_REPORTED_WARNINGS})`,
    ]);
    expect(merged.omitted).toEqual({ errors: 200, skips: 0, warnings: 33 });

    // A third run: earlier notices are replaced, not repeated, and the counts keep adding up.
    merged = mergeReports(merged, reportOf({ failed: 10, firstRow: 9000, warnings: ['same'] }));
    expect(merged.failed).toBe(1210);
    expect(merged.omitted).toEqual({ errors: 210, skips: 0, warnings: 33 });
    expect(merged.warnings.filter((w) => /further/.test(w))).toEqual([
      `210 further row errors were not listed`,
      `33 further warnings were not listed (limit ${MAX_REPORTED_WARNINGS})`,
    ]);
    expect(merged.warnings).toHaveLength(MAX_REPORTED_WARNINGS);
  });

  it('de-duplicates the warnings a resumed run repeats', () => {
    const merged = mergeReports(reportOf({ warnings: ['read as tab-separated values'] }), reportOf({ warnings: ['read as tab-separated values'] }));
    expect(merged.warnings).toEqual(['read as tab-separated values']);
    expect(merged.omitted).toBeUndefined();
  });
});
