import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The real Synthea CSV export the tests read (never copied into the repository): SYNTHEA_CSV_DIR,
 * else `shared/data/synthea-csv-27` beside the checkout, else the workplace's shared folder.
 * Suites that need it are skipped where none of these holds it.
 */
export const SYNTHEA_DIR: string =
  process.env.SYNTHEA_CSV_DIR ??
  [fileURLToPath(new URL('../../../shared/data/synthea-csv-27', import.meta.url)), '/work/shared/data/synthea-csv-27'].find((dir) =>
    existsSync(join(dir, 'patients.csv'))
  ) ??
  '/work/shared/data/synthea-csv-27';

export const HAS_SYNTHEA = existsSync(join(SYNTHEA_DIR, 'patients.csv'));
