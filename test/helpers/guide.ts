import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The guide's example tables shipped in examples/guide, in dependency order. */
export const GUIDE_FILES = ['patients.csv', 'conditions.csv', 'patient_conditions.csv', 'encounters.csv'] as const;

export const GUIDE_DIR = join(__dirname, '..', '..', 'examples', 'guide');

export function guideCsv(file: string): string {
  return readFileSync(join(GUIDE_DIR, file), 'utf8');
}
