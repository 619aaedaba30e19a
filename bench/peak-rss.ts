/** Parent side of the peak-memory figure: one fresh child process per run (see peak-rss-child.ts). */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { PeakRssResult } from './peak-rss-child';

const CHILD = fileURLToPath(new URL('./peak-rss-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

export type { PeakRssResult };

/** The old-space cap (MB) of the import scripts in package.json. */
export const IMPORT_HEAP_MB = 192;

export function measurePeakRss(csvPath: string): Promise<PeakRssResult> {
  return new Promise((resolve, reject) => {
    // Same Node binary as the parent (Node 22 from the `node` package), TypeScript through tsx, and
    // the heap setting `npm run import` uses (package.json): the importer's live data is small, so a
    // bounded old space only stops V8 from growing the heap lazily; it does not slow the import.
    const child = spawn(process.execPath, [`--max-old-space-size=${IMPORT_HEAP_MB}`, '--import', 'tsx', CHILD, csvPath], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => (out += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) {
        reject(new Error(`peak-rss child exited with ${code}`));
        return;
      }
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '') as PeakRssResult);
      } catch (err) {
        reject(new Error(`peak-rss child printed no result: ${String(err)}`));
      }
    });
  });
}
