/**
 * Child process for the peak-memory figure: imports one CSV file from disk (csvFromFile, streamed)
 * into the null server and prints one JSON line. Run alone in its own process so that nothing else
 * (the parent's generated texts, other measurements) counts towards its resident set size.
 *
 *   node --import tsx bench/peak-rss-child.ts <file.csv>
 */
import { importCsv } from '../src/lib';
import { csvFromFile } from '../src/lib/csv/file';
import { nullMedplum } from './null-medplum';

export interface PeakRssResult {
  rows: number;
  seconds: number;
  /** Largest RSS seen by sampling every 100 ms, in bytes. */
  sampledPeakRss: number;
  /** The kernel's own high-water mark (getrusage ru_maxrss), in bytes: catches peaks between samples. */
  maxRss: number;
  /** RSS before the import started (runtime, tsx, libraries), in bytes. */
  baselineRss: number;
  requests: number;
}

async function main(path: string): Promise<void> {
  const baselineRss = process.memoryUsage().rss;
  let sampledPeakRss = baselineRss;
  const sampler = setInterval(() => {
    sampledPeakRss = Math.max(sampledPeakRss, process.memoryUsage().rss);
  }, 100);
  const { medplum, stats } = nullMedplum();
  const start = performance.now();
  const { report } = await importCsv(medplum, await csvFromFile(path));
  const seconds = (performance.now() - start) / 1000;
  clearInterval(sampler);
  sampledPeakRss = Math.max(sampledPeakRss, process.memoryUsage().rss);
  if (report.created !== report.rows) {
    throw new Error(`expected every row created, got ${JSON.stringify({ ...report, errors: report.errors.slice(0, 3) })}`);
  }
  const result: PeakRssResult = {
    rows: report.rows,
    seconds,
    sampledPeakRss,
    maxRss: process.resourceUsage().maxRSS * 1024,
    baselineRss,
    requests: stats.requests,
  };
  process.stdout.write(JSON.stringify(result) + '\n');
}

main(process.argv[2]).catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
