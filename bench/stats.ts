/** Timing helpers. Every published figure is the median of several runs: robust to one run disturbed by GC or the OS. */
import type { RunSample } from './measure';

export function median(values: readonly number[]): number {
  if (values.length === 0) {
    return NaN;
  }
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Progress goes to stderr, so that stdout holds only the summary table. */
export function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

/** One untimed warm-up (JIT, definitions index), then `runs` timed runs; returns the samples. */
export async function timed(
  what: string,
  runs: number,
  measure: () => Promise<RunSample>,
  warmUp?: () => Promise<unknown>
): Promise<RunSample[]> {
  await warmUp?.();
  const samples: RunSample[] = [];
  for (let i = 0; i < runs; i++) {
    samples.push(await measure());
    log(`${what}: run ${i + 1}/${runs}: ${Math.round(samples[i].rowsPerSecond).toLocaleString('en-US')} rows/s`);
  }
  return samples;
}
